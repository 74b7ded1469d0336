// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * flowtap.bpf.c — cgroup_skb ingress/egress programs.
 *
 * For every packet of the sockets in the attached cgroup subtree:
 *  - a TCP SYN-ACK starts a flow (ingress: the local socket initiated, so the
 *    flow is outgoing, and only if that socket is a TCP socket in SYN_SENT;
 *    egress: the peer initiated, incoming). The record's source is the
 *    initiator, i.e. the SYN-ACK's own destination;
 *  - the first FIN or RST of a known flow ends it;
 *  - a DNS message to or from port 53 (UDP or TCP) is copied up with its
 *    addresses and ports: user space takes a response only when it answers a
 *    query it saw (reversed tuple, ID, question) and then names the flow's
 *    ends from it.
 * Everything else leaves on the fast path. Every path returns FLOWTAP_PASS:
 * flowtap observes, it never drops.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "flowtap.h"
#include "l3.h"
#include "l4.h"

#define FLOWTAP_PASS 1

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Map sizes of 1 are placeholders: the loader sets every size before load,
 * from user space's settings (src/config/limits.ts has the defaults). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1);
} events SEC(".maps");

/* Once-per-flow table: one entry per flow per observation point
 * (both ends inside the cgroup = two entries, opposite directions). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1);
	__type(key, struct flowtap_flow_key);
	__type(value, struct flowtap_flow_value);
} flows SEC(".maps");

/* Incoming flows whose SYN-ACK left and whose handshake's ACK has not come
 * yet: their begin waits for it (sockops' PASSIVE_ESTABLISHED_CB moves the
 * entry to `flows` and reports the begin). A table of their own, so that
 * SYN-ACKs no ACK follows (a flood of spoofed SYNs, SYN cookies included)
 * evict only each other, never a flow that began. Sized like `flows`. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1);
	__type(key, struct flowtap_flow_key);
	__type(value, struct flowtap_flow_value);
} pending SEC(".maps");

/* CIDR filters: the verdict for a peer address is the value of its longest
 * matching prefix (user space folds include/exclude into it), else
 * cfg_cidr_unmatched. Sized and filled by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct flowtap_cidr4_key);
	__type(value, __u32);
} cidr4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct flowtap_cidr6_key);
	__type(value, __u32);
} cidr6 SEC(".maps");

/* Filter settings: the loader writes every one before load, as user space
 * computed them (src/kernel/filter.ts). The verifier treats rodata as
 * constants and removes the code behind a check that is off: with no filter
 * (cfg_filter = 0) the SYN-ACK path pays one load and no lookup. */
const volatile __u8 cfg_filter;        /* 1: some filter below is on */
const volatile __u8 cfg_directions;    /* FLOWTAP_DIR_BIT of each direction reported */
const volatile __u8 cfg_port_filter;   /* 1: consult cfg_port_skip */
const volatile __u8 cfg_cidr4_filter;  /* 1: look IPv4 peers up in cidr4 */
const volatile __u8 cfg_cidr6_filter;  /* 1: look IPv6 peers up in cidr6 */
const volatile __u8 cfg_cidr_unmatched; /* enum flowtap_verdict of a peer no prefix matches */
/* Bit p set: flows whose responder port is p are left out. */
const volatile __u64 cfg_port_skip[FLOWTAP_PORT_SKIP_WORDS];

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FLOWTAP_CNT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Wake the reader only once this many bytes wait in the ring buffer (it
 * polls at its poll interval anyway): each wake-up is an irq_work
 * self-interrupt, and waking per record made the slow path ~3.6x dearer under
 * connection churn (docs/benchmarks.md). 0 = wake for every record (lowest
 * latency). Set by the loader before load. */
const volatile __u32 cfg_wakeup_bytes;

static __always_inline __u64 submit_flags(void)
{
	if (cfg_wakeup_bytes == 0)
		return 0;
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= cfg_wakeup_bytes
		       ? BPF_RB_FORCE_WAKEUP
		       : BPF_RB_NO_WAKEUP;
}

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += 1;
}

static __always_inline void hdr_fill(struct flowtap_hdr *h, __u8 type, __u16 size)
{
	h->ts_ns = bpf_ktime_get_boot_ns();
	h->type = type;
	h->version = FLOWTAP_ABI_VERSION;
	h->size = size;
	h->_pad0 = 0;
}

/* key_fill writes the flow key for initiator a:ap -> responder b:bp. */
static __always_inline void key_fill(struct flowtap_flow_key *k, const __u8 *a, __u16 ap,
				     const __u8 *b, __u16 bp, __u8 family, __u8 dir)
{
	__builtin_memcpy(k->saddr, a, 16);
	__builtin_memcpy(k->daddr, b, 16);
	k->sport = ap;
	k->dport = bp;
	k->family = family;
	k->direction = dir;
	k->_pad[0] = k->_pad[1] = 0;
}

/* SOCK_STREAM (linux/net.h): not in the UAPI headers a BPF build includes. */
#define FLOWTAP_SOCK_STREAM 1

/* filter_skips returns 1 when the user's filters leave out a flow of
 * direction dir whose responder listens on port and whose peer (the side
 * outside the cgroup's socket) has address peer of this family: the one check
 * of every program that reports flows. */
static __always_inline int filter_skips(__u8 dir, __u16 port, __u8 family, const __u8 *peer)
{
	__u32 verdict = cfg_cidr_unmatched;
	__u32 *v = 0;

	if (!(cfg_directions & FLOWTAP_DIR_BIT(dir)))
		return 1;
	if (cfg_port_filter && (cfg_port_skip[port >> 6] & (1ULL << (port & 63))))
		return 1;
	if (cfg_cidr4_filter && family == 4) {
		struct flowtap_cidr4_key k4 = { .prefixlen = 32 };

		__builtin_memcpy(k4.addr, peer, 4);
		v = bpf_map_lookup_elem(&cidr4, &k4);
	} else if (cfg_cidr6_filter && family == 6) {
		struct flowtap_cidr6_key k6 = { .prefixlen = 128 };

		__builtin_memcpy(k6.addr, peer, 16);
		v = bpf_map_lookup_elem(&cidr6, &k6);
	}
	if (v)
		verdict = *v;
	return verdict == FLOWTAP_VERDICT_SKIP;
}

struct tcp_end_stats;
static __always_inline void emit_flow(const struct flowtap_flow_key *k, __u8 type,
				      const struct flowtap_flow_value *v, __u8 reason,
				      __u8 closed_by, const struct tcp_end_stats *st);

#include "sock.h"

/* emit_flow reports flow k: its begin (st = 0), its end, or a failed
 * attempt (reason: enum flowtap_attempt_reason). v is what the flow table
 * holds for it (a copy, for an end: the entry is gone). */
static __always_inline void emit_flow(const struct flowtap_flow_key *k, __u8 type,
				      const struct flowtap_flow_value *v, __u8 reason,
				      __u8 closed_by, const struct tcp_end_stats *st)
{
	struct flowtap_flow_event *e;
	__u8 flags = v->flags;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(FLOWTAP_CNT_RINGBUF_FULL_FLOW);
		return;
	}
	hdr_fill(&e->hdr, type, sizeof(*e));
	/* a begin is the SYN-ACK's time, also when the ACK confirmed it later */
	if (type == FLOWTAP_EV_FLOW_BEGIN && v->begin_ts_ns != 0)
		e->hdr.ts_ns = v->begin_ts_ns;
	__builtin_memcpy(e->saddr, k->saddr, 16);
	__builtin_memcpy(e->daddr, k->daddr, 16);
	e->sport = k->sport;
	e->dport = k->dport;
	e->family = k->family;
	e->direction = k->direction;
	e->close_reason = reason;
	e->closed_by = closed_by;
	e->cgroup_id = v->cgroup_id;
	e->begin_ts_ns = v->begin_ts_ns;
	e->cookie = v->cookie;
	e->flow_id = v->flow_id;
	e->proc_ts_ns = v->proc_ts_ns;
	e->pid = v->pid;
	e->uid = v->uid;
	__builtin_memcpy(e->comm, v->comm, sizeof(e->comm));
	e->handshake_ns = v->handshake_ns;
	e->syn_count = v->syn_count;
	/* an incoming handshake ends with its ACK, after the SYN-ACK */
	if (!(flags & FLOWTAP_FLOW_HANDSHAKE) && v->ack_ts_ns != 0 &&
	    v->ack_ts_ns >= v->begin_ts_ns) {
		e->handshake_ns = v->ack_ts_ns - v->begin_ts_ns;
		flags |= FLOWTAP_FLOW_HANDSHAKE;
	}
	if (!(flags & FLOWTAP_FLOW_HANDSHAKE)) {
		e->handshake_ns = 0;
		e->syn_count = 0;
	}
	e->_pad1[0] = e->_pad1[1] = e->_pad1[2] = 0;
	if (st && st->valid) {
		flags |= FLOWTAP_FLOW_TCP_STATS;
		e->bytes_sent = st->bytes_sent;
		e->bytes_received = st->bytes_received;
		e->segs_out = st->segs_out;
		e->segs_in = st->segs_in;
		e->retrans_segs = st->retrans_segs;
		e->srtt_us = st->srtt_us;
		e->min_rtt_us = st->min_rtt_us;
	} else {
		e->bytes_sent = e->bytes_received = 0;
		e->segs_out = e->segs_in = e->retrans_segs = e->srtt_us = e->min_rtt_us = 0;
	}
	e->_pad2 = 0;
	e->flags = flags;
	bpf_ringbuf_submit(e, submit_flags());
	if (type == FLOWTAP_EV_FLOW_ATTEMPT)
		count(FLOWTAP_CNT_ATTEMPT_REFUSED + reason - FLOWTAP_ATTEMPT_REFUSED);
	else
		count(type == FLOWTAP_EV_FLOW_BEGIN ? FLOWTAP_CNT_FLOW_BEGIN : FLOWTAP_CNT_FLOW_END);
}

/* filtered returns 1 when the user's filters leave out the flow whose
 * SYN-ACK p/h is: by direction, by responder port (the SYN-ACK's source
 * port), or by peer address (the SYN-ACK's source on ingress, where the peer
 * responded; its destination on egress, where the peer initiated). */
static __always_inline int filtered(const struct l3_pkt *p, const struct l4_hdr *h, int ingress,
				    __u8 dir)
{
	return filter_skips(dir, h->sport, p->family, ingress ? p->saddr : p->daddr);
}

/* No TCP state: what tcp_sock_state returns for anything but a TCP socket
 * (BPF_TCP_* states are 1..BPF_TCP_MAX_STATES-1). */
#define FLOWTAP_NO_TCP_STATE 0

/* tcp_sock_state returns the state of the TCP socket the hook runs for, or
 * FLOWTAP_NO_TCP_STATE: no socket, not a full socket (a request or timewait
 * socket), or not TCP (a raw socket's copy of a TCP segment has its own). */
static __always_inline __u32 tcp_sock_state(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;

	if (!sk)
		return FLOWTAP_NO_TCP_STATE;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->protocol != IPPROTO_TCP || sk->type != FLOWTAP_SOCK_STREAM)
		return FLOWTAP_NO_TCP_STATE;
	return sk->state;
}

/* sk_awaits_synack returns 1 when the socket the ingress hook runs for is a
 * TCP socket in SYN_SENT: the only socket a SYN-ACK can be the reply for.
 * The hook runs in tcp_filter() (sk_filter), before TCP processes the
 * segment, so a real reply still finds its socket in SYN_SENT. Anything else
 * is a SYN-ACK nobody asked for: sent to a listener (the hook runs for the
 * listener), to an established or closing connection (one begun before
 * attach, or a spoofed one), or a raw socket's copy. */
static __always_inline int sk_awaits_synack(struct __sk_buff *skb)
{
	return tcp_sock_state(skb) == BPF_TCP_SYN_SENT;
}

/* A SYN-ACK: the handshake reply. Its destination is the initiator. */
static __always_inline void on_synack(struct __sk_buff *skb, const struct l3_pkt *p,
				      const struct l4_hdr *h, int ingress)
{
	struct flowtap_flow_key k;
	struct flowtap_flow_value v = {};
	struct flowtap_flow_value *known;
	long err;

	key_fill(&k, p->daddr, h->dport, p->saddr, h->sport, p->family,
		 ingress ? FLOWTAP_DIR_OUTGOING : FLOWTAP_DIR_INCOMING);
	/* A filtered flow never enters the table: no begin, and no end either. */
	if (cfg_filter && filtered(p, h, ingress, k.direction)) {
		count(FLOWTAP_CNT_FILTERED);
		return;
	}
	/* Look before inserting: on a full LRU table even an update that fails
	 * with EEXIST takes a free node first, evicting some other live flow. */
	known = bpf_map_lookup_elem(&flows, &k);
	/* An incoming flow waits in `pending` for its handshake's ACK when
	 * sockops runs (it sees the ACK); else it begins at its SYN-ACK. */
	if (!known && !ingress && cfg_sockops)
		known = bpf_map_lookup_elem(&pending, &k);
	if (known) {
		/* Before the socket check: when a retransmitted SYN-ACK arrives,
		 * the initiator may already be ESTABLISHED. */
		count(FLOWTAP_CNT_SYNACK_DUPLICATE);
		if (!ingress)
			known->syn_count++; /* our own SYN-ACK, sent again */
		return;
	}
	/* Only on ingress. On egress a real SYN-ACK belongs to a request
	 * socket, which is not a full socket: the hook runs for its listener,
	 * in LISTEN, so no socket state marks a real SYN-ACK there. And what
	 * leaves the cgroup was built by its own processes (a raw socket, at
	 * worst), not by a remote peer: egress is not gated. */
	if (ingress && !sk_awaits_synack(skb)) {
		count(FLOWTAP_CNT_SYNACK_UNSOLICITED);
		return;
	}
	v.begin_ts_ns = bpf_ktime_get_boot_ns();
	v.cgroup_id = bpf_skb_cgroup_id(skb);
	sock_begin(skb, h, ingress, &v);
	if (!ingress && cfg_sockops) {
		err = bpf_map_update_elem(&pending, &k, &v, BPF_NOEXIST);
		if (err == -17 /* EEXIST */) {
			count(FLOWTAP_CNT_SYNACK_DUPLICATE);
			count(FLOWTAP_CNT_FLOW_TABLE_RACE);
		} else if (err == 0) {
			count(FLOWTAP_CNT_SYNACK_PENDING);
		}
		return;
	}
	err = bpf_map_update_elem(&flows, &k, &v, BPF_NOEXIST);
	if (err == -17 /* EEXIST: another CPU inserted it just now */) {
		count(FLOWTAP_CNT_SYNACK_DUPLICATE);
		count(FLOWTAP_CNT_FLOW_TABLE_RACE);
		return;
	}
	if (err)
		/* Better a possible duplicate than a missed flow: emit, and count. */
		count(FLOWTAP_CNT_FLOW_TABLE_FULL);
	else
		/* User space derives evictions: inserts - deletes - entries. */
		count(FLOWTAP_CNT_FLOW_TABLE_INSERT);
	emit_flow(&k, FLOWTAP_EV_FLOW_BEGIN, &v, 0, 0, 0);
}

/* end_if_known reports the end of flow k, whose first FIN or RST the packet
 * p/h is, if the table holds it. Returns 1 if the flow was known. Only the
 * CPU whose delete succeeds reports: once per flow. */
static __always_inline int end_if_known(struct __sk_buff *skb, const struct l3_pkt *p,
					const struct l4_hdr *h, int ingress,
					const struct flowtap_flow_key *k, __u8 reason, __u8 closed_by)
{
	struct flowtap_flow_value *found = bpf_map_lookup_elem(&flows, k);
	struct flowtap_flow_value v;
	struct tcp_end_stats st = {};

	if (!found)
		return 0;
	/* a copy: once deleted, the entry may be reused by another CPU's insert */
	__builtin_memcpy(&v, found, sizeof(v));
	if (bpf_map_delete_elem(&flows, k) == 0) {
		count(FLOWTAP_CNT_FLOW_TABLE_DELETE);
		sock_end_stats(skb, p, h, ingress, &v, &st);
		emit_flow(k, FLOWTAP_EV_FLOW_END, &v, reason, closed_by, &st);
	}
	return 1;
}

/* past_first_fin returns 1 when the packet's socket is in a state it reaches
 * only after a FIN has passed this socket's hooks: the peer's FIN arrived
 * (CLOSE_WAIT, CLOSING, LAST_ACK) or its own FIN was sent and acknowledged
 * (FIN_WAIT2). That FIN's teardown already tried both keys of the socket's
 * flow, so a later FIN or RST cannot find it: no lookup. Not FIN_WAIT1: it is
 * set before the socket's FIN leaves, which may wait behind queued data.
 * Under connection churn this skips the two missed lookups of the second
 * FIN of every connection. */
static __always_inline int past_first_fin(struct __sk_buff *skb)
{
	__u32 state = tcp_sock_state(skb);

	return state == BPF_TCP_CLOSE_WAIT || state == BPF_TCP_CLOSING || state == BPF_TCP_LAST_ACK ||
	       state == BPF_TCP_FIN_WAIT2;
}

/* The first FIN or RST of a known flow ends it. The packet is either sent by
 * the initiator (key = packet src -> dst) or by the responder (dst -> src);
 * which direction each key carries depends on the hook. */
static __always_inline void on_teardown(struct __sk_buff *skb, const struct l3_pkt *p,
					const struct l4_hdr *h, int ingress)
{
	struct flowtap_flow_key k;
	__u8 reason = (h->tcp_flags & L4_TCP_RST) ? FLOWTAP_CLOSE_RST : FLOWTAP_CLOSE_FIN;

	/* an RST answering a connect: no flow began, the attempt failed */
	if (ingress && reason == FLOWTAP_CLOSE_RST && sock_on_synsent_rst(skb, h))
		return;
	if (past_first_fin(skb))
		return;

	/* sent by the initiator */
	key_fill(&k, p->saddr, h->sport, p->daddr, h->dport, p->family,
		 ingress ? FLOWTAP_DIR_INCOMING : FLOWTAP_DIR_OUTGOING);
	if (end_if_known(skb, p, h, ingress, &k, reason, FLOWTAP_CLOSED_BY_SOURCE))
		return;
	/* sent by the responder */
	key_fill(&k, p->daddr, h->dport, p->saddr, h->sport, p->family,
		 ingress ? FLOWTAP_DIR_OUTGOING : FLOWTAP_DIR_INCOMING);
	end_if_known(skb, p, h, ingress, &k, reason, FLOWTAP_CLOSED_BY_DESTINATION);
}

/* Copies the DNS message at off (msg_len bytes long on the wire) up, with
 * its addresses and ports (saddr:sport -> daddr:dport). At most `max` bytes
 * (a constant at each call: FLOWTAP_DNS_MAX for a response,
 * FLOWTAP_DNS_QUERY_MAX for a query) are copied, and the record is reserved
 * that long. */
static __always_inline void emit_dns(struct __sk_buff *skb, __u8 family, const __u8 *saddr,
				     __u16 sport, const __u8 *daddr, __u16 dport, __u32 off,
				     __u32 msg_len, __u8 flags, const __u32 max)
{
	struct flowtap_dns_event *e;
	__u32 n = msg_len;

	if (n == 0)
		return;
	if (n > max) {
		n = max;
		flags |= FLOWTAP_DNS_TRUNCATED;
	}
	e = bpf_ringbuf_reserve(&events, __builtin_offsetof(struct flowtap_dns_event, data) + max, 0);
	if (!e) {
		count(FLOWTAP_CNT_RINGBUF_FULL_DNS);
		return;
	}
	/* verifier: keep n provably within [1, max] at the call */
	asm volatile("" : "+r"(n));
	if (n < 1 || n > max || bpf_skb_load_bytes(skb, off, e->data, n) < 0) {
		bpf_ringbuf_discard(e, 0);
		count(FLOWTAP_CNT_SKIP_LOAD);
		return;
	}
	hdr_fill(&e->hdr, FLOWTAP_EV_DNS, __builtin_offsetof(struct flowtap_dns_event, data) + max);
	__builtin_memcpy(e->saddr, saddr, 16);
	__builtin_memcpy(e->daddr, daddr, 16);
	e->sport = sport;
	e->dport = dport;
	e->len = n;
	e->msg_len = msg_len > 0xffff ? 0xffff : msg_len;
	e->flags = flags;
	e->family = family;
	__builtin_memset(e->_pad1, 0, sizeof(e->_pad1));
	e->cgroup_id = bpf_skb_cgroup_id(skb);
	bpf_ringbuf_submit(e, submit_flags());
	count(FLOWTAP_CNT_DNS);
	if (flags & FLOWTAP_DNS_TRUNCATED)
		count(FLOWTAP_CNT_DNS_TRUNCATED);
}

/* Address families (linux/socket.h: not in the UAPI headers a BPF build includes). */
#define FLOWTAP_AF_INET 2
#define FLOWTAP_AF_INET6 10

/* connected_udp_dns returns 1 when the hook runs for a UDP socket connected
 * to port 53: a resolver's socket (glibc, c-ares and Go connect theirs). */
static __always_inline int connected_udp_dns(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;

	if (!sk)
		return 0;
	sk = bpf_sk_fullsock(sk);
	return sk && sk->protocol == IPPROTO_UDP && sk->dst_port == bpf_htons(L4_DNS_PORT);
}

/* sk_peer writes the address and port a connected socket was connected to
 * (the destination as the process asked for it, before any NAT on the way
 * out rewrote the packet) for a packet of this family. Returns 0, writing
 * nothing, when the socket is not connected or its address does not fit. */
static __always_inline int sk_peer(struct __sk_buff *skb, __u8 family, __u8 *addr, __u16 *port)
{
	struct bpf_sock *sk = skb->sk;
	__u32 a[4];

	if (!sk)
		return 0;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->dst_port == 0)
		return 0;
	if (sk->family == FLOWTAP_AF_INET && family == 4) {
		a[0] = sk->dst_ip4;
		a[1] = a[2] = a[3] = 0;
	} else if (sk->family == FLOWTAP_AF_INET6) {
		a[0] = sk->dst_ip6[0];
		a[1] = sk->dst_ip6[1];
		a[2] = sk->dst_ip6[2];
		a[3] = sk->dst_ip6[3];
		if (family == 4) {
			/* an IPv4 packet of a dual-stack socket: ::ffff:a.b.c.d */
			if (a[0] != 0 || a[1] != 0 || a[2] != bpf_htonl(0xffff))
				return 0;
			a[0] = a[3];
			a[1] = a[2] = a[3] = 0;
		}
	} else {
		return 0;
	}
	__builtin_memcpy(addr, a, 16);
	*port = bpf_ntohs(sk->dst_port);
	return 1;
}

/* emit_dns_either copies a response (from port 53) or a query (to port 53,
 * or from a UDP socket connected to port 53) up: two calls, so each reserves
 * a constant size. A query leaving a connected socket is recorded with the
 * destination the socket was connected to, which its answer comes back from
 * even when NAT on the way (Docker's embedded DNS, a DNS service address)
 * sent the packet elsewhere. */
static __always_inline void emit_dns_either(struct __sk_buff *skb, const struct l3_pkt *p,
					    const struct l4_hdr *h, __u32 off, __u32 msg_len,
					    __u8 flags)
{
	__u8 daddr[16];
	__u16 dport;

	if (h->sport == L4_DNS_PORT) {
		emit_dns(skb, p->family, p->saddr, h->sport, p->daddr, h->dport, off, msg_len, flags,
			 FLOWTAP_DNS_MAX);
		return;
	}
	if (!(flags & FLOWTAP_DNS_EGRESS) || !sk_peer(skb, p->family, daddr, &dport)) {
		__builtin_memcpy(daddr, p->daddr, 16);
		dport = h->dport;
	}
	emit_dns(skb, p->family, p->saddr, h->sport, daddr, dport, off, msg_len, flags,
		 FLOWTAP_DNS_QUERY_MAX);
}

/* Slow path: a packet the fast path could not rule out. Parses with
 * bpf_skb_load_bytes (works on non-linear skbs, IPv4 options, IPv6
 * extension headers). */
static __noinline int slow_path(struct __sk_buff *skb, int ingress)
{
	struct l3_pkt p;
	struct l4_hdr h;
	int rc;

	if (skb->protocol == bpf_htons(ETH_P_IP))
		rc = l3_parse_ipv4(skb, &p);
	else if (skb->protocol == bpf_htons(ETH_P_IPV6))
		rc = l3_parse_ipv6(skb, &p);
	else
		return FLOWTAP_PASS;
	if (rc == L3_IGNORE)
		return FLOWTAP_PASS;
	if (rc != L3_OK) {
		count(rc);
		return FLOWTAP_PASS;
	}
	rc = l4_parse(skb, p.l4_off, p.proto, &h);
	if (rc) {
		count(rc);
		return FLOWTAP_PASS;
	}

	if (p.proto == IPPROTO_UDP) {
		/* not from or to port 53: still a query when it leaves a socket
		 * connected to port 53 (NAT changed the port on the way out) */
		if (h.sport != L4_DNS_PORT && h.dport != L4_DNS_PORT &&
		    (ingress || !connected_udp_dns(skb)))
			return FLOWTAP_PASS;
		if (h.udp_len < sizeof(struct udphdr)) {
			/* a UDP length shorter than the UDP header: malformed (only a
			 * raw socket's copy gets here; UDP itself drops it) */
			count(FLOWTAP_CNT_SKIP_TRUNCATED);
		} else if (h.udp_len > sizeof(struct udphdr)) {
			__u32 off = p.l4_off + sizeof(struct udphdr);
			__u32 len = h.udp_len - sizeof(struct udphdr);

			if (off + len > skb->len) /* UDP length beyond the packet */
				count(FLOWTAP_CNT_SKIP_TRUNCATED);
			else
				emit_dns_either(skb, &p, &h, off, len, ingress ? 0 : FLOWTAP_DNS_EGRESS);
		}
		return FLOWTAP_PASS;
	}

	if ((h.tcp_flags & (L4_TCP_SYN | L4_TCP_ACK)) == (L4_TCP_SYN | L4_TCP_ACK))
		on_synack(skb, &p, &h, ingress);
	else if (!ingress && (h.tcp_flags & (L4_TCP_SYN | L4_TCP_RST)) == L4_TCP_SYN)
		sock_on_syn(skb);
	else if (h.tcp_flags & (L4_TCP_FIN | L4_TCP_RST))
		on_teardown(skb, &p, &h, ingress);

	if ((h.sport == L4_DNS_PORT || h.dport == L4_DNS_PORT) &&
	    !(h.tcp_flags & (L4_TCP_SYN | L4_TCP_RST))) {
		/* DNS over TCP: a 2-byte length, then the message. Only a message
		 * that fits in this segment is passed up; longer ones are counted. */
		__u32 off = p.l4_off + h.hdr_len;
		__u8 lenbuf[2];
		__u32 msg_len;

		if (off + 2 <= skb->len && bpf_skb_load_bytes(skb, off, lenbuf, 2) == 0) {
			msg_len = (lenbuf[0] << 8) | lenbuf[1];
			if (off + 2 + msg_len > skb->len)
				count(FLOWTAP_CNT_DNS_TCP_MULTISEGMENT);
			else
				emit_dns_either(skb, &p, &h, off + 2, msg_len,
						FLOWTAP_DNS_TCP | (ingress ? 0 : FLOWTAP_DNS_EGRESS));
		}
	}
	return FLOWTAP_PASS;
}

/* fast_l4_pass returns 1 when the L4 header at byte `off` of the linear
 * data shows a packet that cannot matter (not TCP SYN/FIN/RST, neither from
 * nor to port 53), 0 when the slow path must look, -1 when the bytes are not linear.
 * `off` must be a compile-time constant at each call: adding a register to a
 * packet pointer needs CAP_PERFMON, constants need only CAP_BPF (verifier
 * workaround, see the two call sites). */
static __always_inline int fast_l4_pass(void *data, void *end, const __u32 off, __u8 proto)
{
	__u8 *l4 = data + off;

	if ((void *)(l4 + L4_TCP_FLAGS_OFF + 1) > end)
		return -1;
	/* source port 53 (network order in bytes 0..1): a response; destination
	 * port 53 (bytes 2..3): a query */
	if ((l4[0] == 0 && l4[1] == L4_DNS_PORT) || (l4[2] == 0 && l4[3] == L4_DNS_PORT))
		return 0;
	if (proto == IPPROTO_TCP && (l4[L4_TCP_FLAGS_OFF] & (L4_TCP_SYN | L4_TCP_FIN | L4_TCP_RST)))
		return 0;
	return 1;
}

/* Fast path: decide from the linear header bytes, with direct packet access,
 * whether this packet can matter at all: a TCP segment with SYN, FIN or RST,
 * anything from or to port 53, or UDP leaving a socket connected to port 53.
 * Everything else (the bulk of traffic) returns here. When the headers are
 * not in the linear area, the slow path decides. */
static __always_inline int handle(struct __sk_buff *skb, int ingress)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u8 proto;
	int pass;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data;

		if ((void *)(ip + 1) > end)
			return slow_path(skb, ingress);
		proto = ip->protocol;
		if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
			return FLOWTAP_PASS;
		/* options and fragments are rare: the slow path handles them */
		if (ip->ihl != 5 || (ip->frag_off & bpf_htons(L3_IP_OFFSET_MASK)))
			return slow_path(skb, ingress);
		pass = fast_l4_pass(data, end, sizeof(struct iphdr), proto);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data;

		if ((void *)(ip6 + 1) > end)
			return slow_path(skb, ingress);
		proto = ip6->nexthdr;
		if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
			return l3_ipv6_is_ext(proto) ? slow_path(skb, ingress) : FLOWTAP_PASS;
		/* verifier workaround: without this barrier clang merges both
		 * branches' tails into one `data + reg` (20 or 40), which the
		 * verifier refuses without CAP_PERFMON. */
		asm volatile("" ::: "memory");
		pass = fast_l4_pass(data, end, sizeof(struct ipv6hdr), proto);
	} else {
		return FLOWTAP_PASS;
	}
	if (pass != 1)
		return slow_path(skb, ingress);
	/* UDP leaving a socket connected to port 53 is a query whatever port
	 * NAT gave the packet: only UDP egress pays this socket read */
	if (proto == IPPROTO_UDP && !ingress && connected_udp_dns(skb))
		return slow_path(skb, ingress);
	return FLOWTAP_PASS;
}

SEC("cgroup_skb/ingress")
int flowtap_ingress(struct __sk_buff *skb)
{
	return handle(skb, 1);
}

SEC("cgroup_skb/egress")
int flowtap_egress(struct __sk_buff *skb)
{
	return handle(skb, 0);
}
