/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sock.h — who, how long, how much: the socket-level programs and the parts
 * of the packet path that read sockets rather than packets. Included once, by
 * flowtap.bpf.c, after its maps (one object, one skeleton).
 *
 *  - cgroup/connect4/6 (outgoing) and cgroup/post_bind4/6 (listeners) run in
 *    the calling process's context: they keep its tgid, uid (and comm, where
 *    allowed: cfg_comm) in the socket's storage (`socks`). cgroup_skb runs
 *    in whatever context a packet is handled in; these run in the caller's.
 *  - the egress hook stamps a SYN_SENT socket's first SYN and counts its SYNs;
 *  - the SYN-ACK that begins a flow copies the process and the handshake into
 *    the flow table: for an outgoing flow from the connecting socket's
 *    storage, for an incoming one from its listener's (bpf_get_listener_sock:
 *    the SYN-ACK belongs to a request socket, whose listener is the one
 *    accept() will hand the connection out of);
 *  - sockops' PASSIVE_ESTABLISHED_CB (the handshake's ACK, on the new child
 *    socket) begins an incoming flow: it moves the flow from `pending` to
 *    the flow table with its handshake time and reports the begin;
 *  - the first FIN or RST reads the socket's TCP counters (bpf_tcp_sock).
 *
 * Each part is behind a rodata switch the loader clears when the running
 * kernel lacks its hook or helper; the verifier then never sees that code.
 */
#ifndef FLOWTAP_SOCK_H
#define FLOWTAP_SOCK_H

/* AF_INET / AF_INET6 (linux/socket.h, not in the UAPI headers a BPF build includes). */
#define FLOWTAP_AF_INET 2
#define FLOWTAP_AF_INET6 10

/* Set by the loader before load (native/loader.cc, ConfigureSockets). */
const volatile __u8 cfg_process = 1;   /* socks map + connect/post_bind programs */
const volatile __u8 cfg_listener = 1;  /* bpf_get_listener_sock in cgroup_skb */
const volatile __u8 cfg_tcp_stats = 1; /* bpf_tcp_sock in cgroup_skb */
const volatile __u8 cfg_sockops = 1;   /* the sockops program (incoming handshake time) */
/* Failed connection attempts: sockops' state and RTO callbacks, the socks
 * map and cgroup/sock_release. */
const volatile __u8 cfg_attempts = 1;
/* bpf_get_current_comm: cgroup programs may call it only with CAP_PERFMON
 * (Linux 6.18; pid, uid and cgroup id need no more than CAP_BPF). Without
 * it user space names the process from /proc. */
const volatile __u8 cfg_comm = 1;

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct flowtap_sock_info);
} socks SEC(".maps");

/* capture keeps the current process in sk's storage. Returns 1 (allow).
 * sk is never NULL here (a context pointer, or the context's socket): testing
 * it would be a pointer comparison the verifier refuses without CAP_PERFMON. */
static __always_inline int capture(struct bpf_sock *sk)
{
	struct flowtap_sock_info *info;
	__u64 id;

	if (!cfg_process || sk->protocol != IPPROTO_TCP || sk->type != FLOWTAP_SOCK_STREAM)
		return 1;
	info = bpf_sk_storage_get(&socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!info)
		return 1;
	id = bpf_get_current_pid_tgid();
	info->pid = id >> 32;
	info->uid = (__u32)bpf_get_current_uid_gid();
	if (cfg_comm)
		bpf_get_current_comm(info->comm, sizeof(info->comm));
	info->proc_ts_ns = bpf_ktime_get_boot_ns();
	return 1;
}

SEC("cgroup/connect4")
int flowtap_connect4(struct bpf_sock_addr *ctx)
{
	return capture(ctx->sk);
}

SEC("cgroup/connect6")
int flowtap_connect6(struct bpf_sock_addr *ctx)
{
	return capture(ctx->sk);
}

SEC("cgroup/post_bind4")
int flowtap_post_bind4(struct bpf_sock *sk)
{
	return capture(sk);
}

SEC("cgroup/post_bind6")
int flowtap_post_bind6(struct bpf_sock *sk)
{
	return capture(sk);
}

/* The full TCP socket the hook runs for, or NULL (see tcp_sock_state). */
static __always_inline struct bpf_sock *tcp_full_sock(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;

	if (!sk)
		return 0;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->protocol != IPPROTO_TCP || sk->type != FLOWTAP_SOCK_STREAM)
		return 0;
	return sk;
}

/* An egress SYN (no ACK): stamp the first one of a socket in SYN_SENT and
 * count them all. Retransmitted SYNs pass the hook too. */
static __always_inline void sock_on_syn(struct __sk_buff *skb)
{
	struct flowtap_sock_info *info;
	struct bpf_sock *sk;

	if (!cfg_process)
		return;
	sk = tcp_full_sock(skb);
	if (!sk || sk->state != BPF_TCP_SYN_SENT)
		return;
	info = bpf_sk_storage_get(&socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!info)
		return;
	if (info->syn_ts_ns == 0) {
		info->syn_ts_ns = bpf_ktime_get_boot_ns();
		info->cgroup_id = bpf_skb_cgroup_id(skb);
	}
	info->syn_count++;
}

/* sock_on_synsent_rst: an ingress RST h for the hook's socket. Returns 1
 * when that socket is in SYN_SENT (no flow of it can be in the table), and
 * then, if the RST is one TCP accepts as the answer to its SYN (it has ACK
 * and acknowledges the SYN), notes the refusal in the socket's storage. */
static __always_inline int sock_on_synsent_rst(struct __sk_buff *skb, const struct l4_hdr *h)
{
	struct flowtap_sock_info *info;
	struct bpf_sock *sk;

	if (!cfg_attempts)
		return 0;
	sk = tcp_full_sock(skb);
	if (!sk || sk->state != BPF_TCP_SYN_SENT)
		return 0;
	if (!(h->tcp_flags & L4_TCP_ACK))
		return 1;
	if (cfg_tcp_stats) {
		struct bpf_tcp_sock *tp = bpf_tcp_sock(sk);
		__u32 acked, sent;

		if (!tp)
			return 1;
		/* TCP takes an RST in SYN_SENT whose ACK is after snd_una and not
		 * after snd_nxt. On loopback the answer can pass this hook inside
		 * connect(), before snd_nxt counts the SYN (TCP backlogs it and
		 * takes it later): the SYN's one sequence number is always sent. */
		acked = h->ack_seq - tp->snd_una;
		sent = tp->snd_nxt - tp->snd_una;
		if (acked == 0 || acked > (sent > 1 ? sent : 1))
			return 1;
	}
	info = bpf_sk_storage_get(&socks, sk, 0, 0);
	if (info && (info->attempt & FLOWTAP_ATTEMPT_WATCHED))
		info->attempt |= FLOWTAP_ATTEMPT_RST_SEEN;
	return 1;
}

static __always_inline void copy_process(struct flowtap_flow_value *v,
					 const struct flowtap_sock_info *info)
{
	if (!info || info->proc_ts_ns == 0)
		return;
	v->proc_ts_ns = info->proc_ts_ns;
	v->pid = info->pid;
	v->uid = info->uid;
	__builtin_memcpy(v->comm, info->comm, sizeof(v->comm));
	v->flags |= FLOWTAP_FLOW_PROCESS;
}

/* sock_begin fills what the flow table keeps beyond time and cgroup, for the
 * flow SYN-ACK h begins: the socket cookie, both initial sequence numbers,
 * the process, and (outgoing) the handshake. v->begin_ts_ns is set. */
static __always_inline void sock_begin(struct __sk_buff *skb, const struct l4_hdr *h, int ingress,
				       struct flowtap_flow_value *v)
{
	const struct flowtap_sock_info *info = 0;

	v->flow_id = ((__u64)bpf_get_prandom_u32() << 32) | bpf_get_prandom_u32();
	if (ingress) {
		/* the connecting socket (on egress the hook runs for the
		 * listener: the connection's own socket does not exist yet) */
		v->cookie = bpf_get_socket_cookie(skb);
		/* our SYN-ACK reply: the peer's ISN, and ours + 1 acknowledged */
		v->peer_isn = h->seq;
		v->local_isn = h->ack_seq - 1;
		if (cfg_process) {
			struct bpf_sock *sk = tcp_full_sock(skb);

			if (sk)
				info = bpf_sk_storage_get(&socks, sk, 0, 0);
		}
		copy_process(v, info);
		if (info && info->syn_ts_ns != 0 && info->syn_ts_ns <= v->begin_ts_ns) {
			v->handshake_ns = v->begin_ts_ns - info->syn_ts_ns;
			v->syn_count = info->syn_count;
			v->flags |= FLOWTAP_FLOW_HANDSHAKE;
		}
	} else {
		v->local_isn = h->seq;
		v->peer_isn = h->ack_seq - 1;
		v->syn_count = 1;
		if (cfg_process && cfg_listener) {
			struct bpf_sock *sk = skb->sk;

			if (sk) {
				struct bpf_sock *l = bpf_get_listener_sock(sk);

				if (l)
					info = bpf_sk_storage_get(&socks, l, 0, 0);
			}
		}
		copy_process(v, info);
	}
}

/* sockops_key writes the key of the flow of the socket skops runs for: the
 * peer is the initiator (incoming) or the responder (outgoing). A v4-mapped
 * IPv6 socket's packets (and so its key) are IPv4. Returns 0 for a family
 * that is neither. */
static __always_inline int sockops_key(struct bpf_sock_ops *skops, struct flowtap_flow_key *k, __u8 dir)
{
	__u8 *local = dir == FLOWTAP_DIR_INCOMING ? k->daddr : k->saddr;
	__u8 *remote = dir == FLOWTAP_DIR_INCOMING ? k->saddr : k->daddr;
	__u16 lport = skops->local_port, rport = bpf_ntohl(skops->remote_port);

	k->sport = dir == FLOWTAP_DIR_INCOMING ? rport : lport;
	k->dport = dir == FLOWTAP_DIR_INCOMING ? lport : rport;
	k->direction = dir;
	if (skops->family == FLOWTAP_AF_INET) {
		__u32 a = skops->remote_ip4, b = skops->local_ip4;

		k->family = 4;
		__builtin_memcpy(remote, &a, 4);
		__builtin_memcpy(local, &b, 4);
	} else if (skops->family == FLOWTAP_AF_INET6) {
		__u32 r[4], l[4];

		/* one 4-byte context read each: the verifier refuses the 8-byte
		 * reads clang would merge them into */
#pragma unroll
		for (int i = 0; i < 4; i++) {
			r[i] = *(volatile __u32 *)&skops->remote_ip6[i];
			l[i] = *(volatile __u32 *)&skops->local_ip6[i];
		}

		if (r[0] == 0 && r[1] == 0 && r[2] == bpf_htonl(0xffff)) {
			k->family = 4;
			__builtin_memcpy(remote, &r[3], 4);
			__builtin_memcpy(local, &l[3], 4);
		} else {
			k->family = 6;
			__builtin_memcpy(remote, r, 16);
			__builtin_memcpy(local, l, 16);
		}
	} else {
		return 0;
	}
	return 1;
}

/* The handshake's ACK reached an incoming connection's new socket
 * (PASSIVE_ESTABLISHED_CB: TCP took the ACK, a SYN cookie's too): the flow
 * waiting in `pending` begins, stamped with the ACK's time and the new
 * socket's cookie; the begin keeps the SYN-ACK's time. */
static __always_inline void passive_established(struct bpf_sock_ops *skops)
{
	struct flowtap_flow_key k = {};
	struct flowtap_flow_value *v, c;
	long err;

	if (!sockops_key(skops, &k, FLOWTAP_DIR_INCOMING))
		return;
	v = bpf_map_lookup_elem(&pending, &k);
	if (!v)
		return;
	/* a copy: once deleted, the entry may be reused by another CPU's insert */
	__builtin_memcpy(&c, v, sizeof(c));
	if (bpf_map_delete_elem(&pending, &k) != 0)
		return;
	c.ack_ts_ns = bpf_ktime_get_boot_ns();
	c.cookie = bpf_get_socket_cookie(skops);
	count(FLOWTAP_CNT_SYNACK_CONFIRMED);
	/* BPF_ANY: an entry of the same tuple left in the table is a flow
	 * whose end was never seen; this handshake replaces it */
	err = bpf_map_update_elem(&flows, &k, &c, BPF_ANY);
	if (err)
		count(FLOWTAP_CNT_FLOW_TABLE_FULL);
	else
		count(FLOWTAP_CNT_FLOW_TABLE_INSERT);
	emit_flow(&k, FLOWTAP_EV_FLOW_BEGIN, &c, 0, 0, 0);
}

/* --- failed connection attempts -------------------------------------------
 * TCP_CONNECT_CB (connect(), before the first SYN) marks a connect the
 * filters let through as watched and asks for the socket's state changes
 * and retransmission timeouts. Until the socket leaves SYN_SENT, what may
 * end it is noted in its storage: an acceptable RST on ingress, RTO_CB
 * saying the SYN retransmissions are used up, an error the client read with
 * getsockopt(SO_ERROR) (cgroup/getsockopt), cgroup/sock_release (the
 * application closed it). SYN_SENT -> CLOSE reports the attempt with the
 * first of those that is known; when none is, the kernel closed the socket
 * on an ICMP or ICMPv6 error for its SYN (tcp_v4_err/tcp_v6_err: the only
 * other path from SYN_SENT to CLOSE but connect(AF_UNSPEC) and a socket
 * destroyed from outside). Leaving SYN_SENT any other way (the SYN-ACK)
 * switches the callbacks off again: an established socket costs nothing. */

#define FLOWTAP_ATTEMPT_CB_FLAGS (BPF_SOCK_OPS_STATE_CB_FLAG | BPF_SOCK_OPS_RTO_CB_FLAG)

static __always_inline void attempt_watch(struct bpf_sock_ops *skops)
{
	struct flowtap_flow_key k = {};
	struct flowtap_sock_info *info;
	struct bpf_sock *sk = skops->sk;

	if (!sk || !sockops_key(skops, &k, FLOWTAP_DIR_OUTGOING))
		return;
	if (cfg_filter && filter_skips(FLOWTAP_DIR_OUTGOING, k.dport, k.family, k.daddr))
		return;
	info = bpf_sk_storage_get(&socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!info)
		return;
	info->attempt = FLOWTAP_ATTEMPT_WATCHED;
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | FLOWTAP_ATTEMPT_CB_FLAGS);
}

static __always_inline struct flowtap_sock_info *attempt_info(struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk = skops->sk;
	struct flowtap_sock_info *info;

	if (!sk)
		return 0;
	info = bpf_sk_storage_get(&socks, sk, 0, 0);
	if (!info || !(info->attempt & FLOWTAP_ATTEMPT_WATCHED))
		return 0;
	return info;
}

/* RTO_CB: args[2] is tcp_write_timeout's `expired`: it gives up now. */
static __always_inline void attempt_rto(struct bpf_sock_ops *skops)
{
	struct flowtap_sock_info *info;

	if (skops->state != BPF_TCP_SYN_SENT || skops->args[2] == 0)
		return;
	info = attempt_info(skops);
	if (info)
		info->attempt |= FLOWTAP_ATTEMPT_EXPIRED;
}

/* STATE_CB: args[0] the old state, args[1] the new one. */
static __always_inline void attempt_state(struct bpf_sock_ops *skops)
{
	struct flowtap_flow_key k = {};
	struct flowtap_flow_value v = {};
	struct flowtap_sock_info *info;
	__u32 marks;
	__u8 reason;

	if (skops->args[0] != BPF_TCP_SYN_SENT)
		return;
	info = attempt_info(skops);
	if (skops->args[1] != BPF_TCP_CLOSE) {
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags & ~FLOWTAP_ATTEMPT_CB_FLAGS);
		if (info)
			info->attempt = 0;
		return;
	}
	if (!info)
		return;
	marks = info->attempt;
	info->attempt = 0;
	if (marks & FLOWTAP_ATTEMPT_RST_SEEN)
		reason = FLOWTAP_ATTEMPT_REFUSED;
	else if (marks & FLOWTAP_ATTEMPT_EXPIRED)
		reason = FLOWTAP_ATTEMPT_TIMED_OUT;
	else if (marks & FLOWTAP_ATTEMPT_SOFT_ERROR)
		reason = FLOWTAP_ATTEMPT_UNREACHABLE;
	else if (marks & FLOWTAP_ATTEMPT_RELEASED)
		reason = FLOWTAP_ATTEMPT_ABANDONED;
	else
		reason = FLOWTAP_ATTEMPT_UNREACHABLE;
	if (!sockops_key(skops, &k, FLOWTAP_DIR_OUTGOING))
		return;
	v.cgroup_id = info->cgroup_id;
	v.cookie = bpf_get_socket_cookie(skops);
	v.flow_id = ((__u64)bpf_get_prandom_u32() << 32) | bpf_get_prandom_u32();
	copy_process(&v, info);
	if (info->syn_ts_ns != 0) {
		__u64 now = bpf_ktime_get_boot_ns();

		if (now >= info->syn_ts_ns) {
			v.handshake_ns = now - info->syn_ts_ns;
			v.syn_count = info->syn_count;
			v.flags |= FLOWTAP_FLOW_HANDSHAKE;
		}
	}
	emit_flow(&k, FLOWTAP_EV_FLOW_ATTEMPT, &v, reason, 0, 0);
}

SEC("sockops")
int flowtap_sockops(struct bpf_sock_ops *skops)
{
	if (!cfg_sockops)
		return 1;
	switch (skops->op) {
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		passive_established(skops);
		break;
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		if (cfg_attempts)
			attempt_watch(skops);
		break;
	case BPF_SOCK_OPS_RTO_CB:
		if (cfg_attempts)
			attempt_rto(skops);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (cfg_attempts)
			attempt_state(skops);
		break;
	}
	return 1;
}

/* SOL_SOCKET, SO_ERROR (asm-generic/socket.h: not in the UAPI headers a BPF build includes). */
#define FLOWTAP_SOL_SOCKET 1
#define FLOWTAP_SO_ERROR 4

/* getsockopt(SO_ERROR) on a connect still in SYN_SENT: how a non-blocking
 * client learns of an ICMP error that came while connect() held the socket.
 * TCP keeps such an error as a soft one (sk_err_soft, which SO_ERROR hands
 * out) and does not close the socket; the client then closes it. A
 * non-zero error seen here is an ICMP or ICMPv6 error for the SYN: RSTs and
 * timeouts close the socket themselves. */
SEC("cgroup/getsockopt")
int flowtap_getsockopt(struct bpf_sockopt *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	struct flowtap_sock_info *info;
	int *val;

	if (!cfg_attempts || ctx->level != FLOWTAP_SOL_SOCKET || ctx->optname != FLOWTAP_SO_ERROR)
		return 1;
	if (!sk || sk->protocol != IPPROTO_TCP || sk->state != BPF_TCP_SYN_SENT || ctx->retval != 0)
		return 1;
	val = ctx->optval;
	if ((void *)(val + 1) > ctx->optval_end || *val == 0)
		return 1;
	info = bpf_sk_storage_get(&socks, sk, 0, 0);
	if (info && (info->attempt & FLOWTAP_ATTEMPT_WATCHED))
		info->attempt |= FLOWTAP_ATTEMPT_SOFT_ERROR;
	return 1;
}

/* The application closed a socket (close(), or its process ended): a
 * watched connect still in SYN_SENT was abandoned, unless an error for it
 * was seen. */
SEC("cgroup/sock_release")
int flowtap_sock_release(struct bpf_sock *sk)
{
	struct flowtap_sock_info *info;

	if (!cfg_attempts || sk->protocol != IPPROTO_TCP || sk->state != BPF_TCP_SYN_SENT)
		return 1;
	info = bpf_sk_storage_get(&socks, sk, 0, 0);
	if (info && (info->attempt & FLOWTAP_ATTEMPT_WATCHED))
		info->attempt |= FLOWTAP_ATTEMPT_RELEASED;
	return 1;
}

/* What the end record carries from the socket. */
struct tcp_end_stats {
	__u64 bytes_sent;
	__u64 bytes_received;
	__u32 segs_out;
	__u32 segs_in;
	__u32 retrans_segs;
	__u32 srtt_us;
	__u32 min_rtt_us;
	__u8 valid;
};

/* The 64-bit count whose low 32 bits are `low` and which lies in
 * [approx - 1, approx - 1 + 2^32): sequence numbers give a stream's length
 * exactly but modulo 2^32; tcp_sock's 64-bit byte counters (bytes_acked,
 * bytes_received) give it to within a window (less than 2^31) and the SYN or
 * FIN's one sequence number. */
static __always_inline __u64 widen(__u32 low, __u64 approx)
{
	__u64 base = approx ? approx - 1 : 0;

	return base + (__u32)(low - (__u32)base);
}

/* sock_end_stats reads the counters of the socket the first FIN or RST of
 * flow v passes, if it is the flow's own socket: a TCP stream socket (not a
 * raw socket's copy, nor a reset from the kernel's control socket) with the
 * flow's cookie where that is known.
 * Bytes are sequence-space lengths from the initial sequence numbers: for
 * the side sending a FIN, the FIN segment's own end (its payload is not yet
 * in snd_nxt on egress, nor in rcv_nxt on ingress: TCP has not processed it);
 * for the other side, what the socket has sent (snd_nxt) or received in
 * order (rcv_nxt) so far. The segment counters get the segment at hand on
 * ingress, where TCP has not counted it yet (egress has: it counts in
 * tcp_transmit_skb, before the IP output the hook runs in). */
static __always_inline void sock_end_stats(struct __sk_buff *skb, const struct l3_pkt *p,
					   const struct l4_hdr *h, int ingress,
					   const struct flowtap_flow_value *v,
					   struct tcp_end_stats *st)
{
	struct bpf_sock *sk;
	struct bpf_tcp_sock *tp;
	__u32 sent_end, rcvd_end;

	if (!cfg_tcp_stats)
		return;
	sk = tcp_full_sock(skb);
	if (!sk)
		return;
	tp = bpf_tcp_sock(sk);
	if (!tp || (v->cookie != 0 && bpf_get_socket_cookie(skb) != v->cookie))
		return;
	sent_end = tp->snd_nxt;
	rcvd_end = tp->rcv_nxt;
	if (h->tcp_flags & L4_TCP_FIN) {
		__u32 seg_end = h->seq + (skb->len - p->l4_off - h->hdr_len);

		if (ingress) {
			if ((__s32)(seg_end - rcvd_end) > 0)
				rcvd_end = seg_end;
		} else if ((__s32)(seg_end - sent_end) > 0) {
			sent_end = seg_end;
		}
	}
	st->bytes_sent = widen(sent_end - v->local_isn - 1, tp->bytes_acked);
	st->bytes_received = widen(rcvd_end - v->peer_isn - 1, tp->bytes_received);
	st->segs_out = tp->segs_out;
	st->segs_in = tp->segs_in + (ingress ? 1 : 0);
	st->retrans_segs = tp->total_retrans;
	st->srtt_us = tp->srtt_us >> 3;
	st->min_rtt_us = tp->rtt_min;
	st->valid = 1;
}

#endif /* FLOWTAP_SOCK_H */
