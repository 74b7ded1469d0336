// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * flowtap.bpf.c — cgroup_skb ingress/egress programs.
 *
 * For every packet of the sockets in the attached cgroup subtree:
 *  - a TCP SYN-ACK starts a flow (ingress: the local socket initiated, so the
 *    flow is outgoing; egress: the peer initiated, incoming). The record's
 *    source is the initiator, i.e. the SYN-ACK's own destination;
 *  - the first FIN or RST of a known flow ends it;
 *  - a DNS response (source port 53, UDP or TCP) is copied up so user space
 *    can name the flow's ends.
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

/* Sizes below are defaults; the loader sets them before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

/* Once-per-flow table: one entry per flow per observation point
 * (both ends inside the cgroup = two entries, opposite directions). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flowtap_flow_key);
	__type(value, struct flowtap_flow_value);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FLOWTAP_CNT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

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

static __always_inline void emit_flow(const struct flowtap_flow_key *k, __u8 type,
				      __u64 cgroup_id, __u64 begin_ts, __u8 reason, __u8 closed_by)
{
	struct flowtap_flow_event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(FLOWTAP_CNT_RINGBUF_FULL_FLOW);
		return;
	}
	hdr_fill(&e->hdr, type, sizeof(*e));
	__builtin_memcpy(e->saddr, k->saddr, 16);
	__builtin_memcpy(e->daddr, k->daddr, 16);
	e->sport = k->sport;
	e->dport = k->dport;
	e->family = k->family;
	e->direction = k->direction;
	e->close_reason = reason;
	e->closed_by = closed_by;
	e->cgroup_id = cgroup_id;
	e->begin_ts_ns = begin_ts;
	bpf_ringbuf_submit(e, 0);
	count(type == FLOWTAP_EV_FLOW_BEGIN ? FLOWTAP_CNT_FLOW_BEGIN : FLOWTAP_CNT_FLOW_END);
}

/* A SYN-ACK: the handshake reply. Its destination is the initiator. */
static __always_inline void on_synack(struct __sk_buff *skb, const struct l3_pkt *p,
				      const struct l4_hdr *h, int ingress)
{
	struct flowtap_flow_key k;
	struct flowtap_flow_value v;
	long err;

	key_fill(&k, p->daddr, h->dport, p->saddr, h->sport, p->family,
		 ingress ? FLOWTAP_DIR_OUTGOING : FLOWTAP_DIR_INCOMING);
	v.begin_ts_ns = bpf_ktime_get_boot_ns();
	v.cgroup_id = bpf_skb_cgroup_id(skb);
	err = bpf_map_update_elem(&flows, &k, &v, BPF_NOEXIST);
	if (err == -17 /* EEXIST: a retransmitted SYN-ACK */) {
		count(FLOWTAP_CNT_SYNACK_DUPLICATE);
		return;
	}
	if (err)
		/* Better a possible duplicate than a missed flow: emit, and count. */
		count(FLOWTAP_CNT_FLOW_TABLE_FULL);
	emit_flow(&k, FLOWTAP_EV_FLOW_BEGIN, v.cgroup_id, v.begin_ts_ns, 0, 0);
}

/* end_if_known reports the end of flow k if the table holds it. Returns 1 if
 * the flow was known. Only the CPU whose delete succeeds reports: once per flow. */
static __always_inline int end_if_known(const struct flowtap_flow_key *k, __u8 reason,
					__u8 closed_by)
{
	struct flowtap_flow_value *v = bpf_map_lookup_elem(&flows, k);
	__u64 begin, cg;

	if (!v)
		return 0;
	begin = v->begin_ts_ns;
	cg = v->cgroup_id;
	if (bpf_map_delete_elem(&flows, k) == 0)
		emit_flow(k, FLOWTAP_EV_FLOW_END, cg, begin, reason, closed_by);
	return 1;
}

/* The first FIN or RST of a known flow ends it. The packet is either sent by
 * the initiator (key = packet src -> dst) or by the responder (dst -> src);
 * which direction each key carries depends on the hook. */
static __always_inline void on_teardown(const struct l3_pkt *p, const struct l4_hdr *h,
					int ingress)
{
	struct flowtap_flow_key k;
	__u8 reason = (h->tcp_flags & L4_TCP_RST) ? FLOWTAP_CLOSE_RST : FLOWTAP_CLOSE_FIN;

	/* sent by the initiator */
	key_fill(&k, p->saddr, h->sport, p->daddr, h->dport, p->family,
		 ingress ? FLOWTAP_DIR_INCOMING : FLOWTAP_DIR_OUTGOING);
	if (end_if_known(&k, reason, FLOWTAP_CLOSED_BY_SOURCE))
		return;
	/* sent by the responder */
	key_fill(&k, p->daddr, h->dport, p->saddr, h->sport, p->family,
		 ingress ? FLOWTAP_DIR_OUTGOING : FLOWTAP_DIR_INCOMING);
	end_if_known(&k, reason, FLOWTAP_CLOSED_BY_DESTINATION);
}

/* Copies the DNS message at off (msg_len bytes long on the wire) up. */
static __always_inline void emit_dns(struct __sk_buff *skb, const struct l3_pkt *p, __u32 off,
				     __u32 msg_len, __u8 flags)
{
	struct flowtap_dns_event *e;
	__u32 n = msg_len;

	if (n == 0)
		return;
	if (n > FLOWTAP_DNS_MAX) {
		n = FLOWTAP_DNS_MAX;
		flags |= FLOWTAP_DNS_TRUNCATED;
	}
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(FLOWTAP_CNT_RINGBUF_FULL_DNS);
		return;
	}
	/* verifier: keep n provably within [1, FLOWTAP_DNS_MAX] at the call */
	asm volatile("" : "+r"(n));
	if (n < 1 || n > FLOWTAP_DNS_MAX || bpf_skb_load_bytes(skb, off, e->data, n) < 0) {
		bpf_ringbuf_discard(e, 0);
		count(FLOWTAP_CNT_SKIP_LOAD);
		return;
	}
	hdr_fill(&e->hdr, FLOWTAP_EV_DNS, sizeof(*e));
	e->len = n;
	e->msg_len = msg_len > 0xffff ? 0xffff : msg_len;
	e->flags = flags;
	e->family = p->family;
	e->_pad1[0] = e->_pad1[1] = 0;
	e->cgroup_id = bpf_skb_cgroup_id(skb);
	bpf_ringbuf_submit(e, 0);
	count(FLOWTAP_CNT_DNS);
	if (flags & FLOWTAP_DNS_TRUNCATED)
		count(FLOWTAP_CNT_DNS_TRUNCATED);
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
		if (h.sport == L4_DNS_PORT && h.udp_len > sizeof(struct udphdr)) {
			__u32 off = p.l4_off + sizeof(struct udphdr);
			__u32 len = h.udp_len - sizeof(struct udphdr);

			if (off + len > skb->len) /* UDP length beyond the packet */
				count(FLOWTAP_CNT_SKIP_TRUNCATED);
			else
				emit_dns(skb, &p, off, len, ingress ? 0 : FLOWTAP_DNS_EGRESS);
		}
		return FLOWTAP_PASS;
	}

	if ((h.tcp_flags & (L4_TCP_SYN | L4_TCP_ACK)) == (L4_TCP_SYN | L4_TCP_ACK))
		on_synack(skb, &p, &h, ingress);
	else if (h.tcp_flags & (L4_TCP_FIN | L4_TCP_RST))
		on_teardown(&p, &h, ingress);

	if (h.sport == L4_DNS_PORT && !(h.tcp_flags & (L4_TCP_SYN | L4_TCP_RST))) {
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
				emit_dns(skb, &p, off + 2, msg_len,
					 FLOWTAP_DNS_TCP | (ingress ? 0 : FLOWTAP_DNS_EGRESS));
		}
	}
	return FLOWTAP_PASS;
}

/* Fast path: decide from the linear header bytes, with direct packet access,
 * whether this packet can matter at all: a TCP segment with SYN, FIN or RST,
 * or anything from port 53. Everything else (the bulk of traffic) returns
 * here. When the headers are not in the linear area, the slow path decides. */
static __always_inline int handle(struct __sk_buff *skb, int ingress)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u8 *l4;
	__u8 proto;

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
		l4 = data + sizeof(struct iphdr);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data;

		if ((void *)(ip6 + 1) > end)
			return slow_path(skb, ingress);
		proto = ip6->nexthdr;
		if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
			return l3_ipv6_is_ext(proto) ? slow_path(skb, ingress) : FLOWTAP_PASS;
		l4 = data + sizeof(struct ipv6hdr);
	} else {
		return FLOWTAP_PASS;
	}

	if ((void *)(l4 + L4_TCP_FLAGS_OFF + 1) > end)
		return slow_path(skb, ingress);
	/* source port 53 (network order in bytes 0..1) */
	if (l4[0] == 0 && l4[1] == L4_DNS_PORT)
		return slow_path(skb, ingress);
	if (proto == IPPROTO_TCP && (l4[L4_TCP_FLAGS_OFF] & (L4_TCP_SYN | L4_TCP_FIN | L4_TCP_RST)))
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
