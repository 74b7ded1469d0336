/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* l3.h — IPv4/IPv6 parsing for cgroup_skb programs. At these hooks skb->data
 * points at the network header; the IP version comes from skb->protocol, never
 * from the socket family (an IPv4 flow on a dual-stack AF_INET6 socket is IPv4). */
#ifndef FLOWTAP_L3_H
#define FLOWTAP_L3_H

#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* Extension headers walked before giving up (counted as skip_ipv6_ext). */
#define L3_IPV6_MAX_EXT 8

#define L3_IP_OFFSET_MASK 0x1fff /* fragment offset bits of iphdr.frag_off */

struct l3_pkt {
	__u8 saddr[16];
	__u8 daddr[16];
	__u32 l4_off;  /* byte offset of the L4 header from skb->data */
	__u8 family;   /* 4 or 6 */
	__u8 proto;    /* IPPROTO_* of the L4 header */
	__u8 _pad[2];
};

/* Result of l3_parse: L3_OK, or the counter (enum flowtap_counter) that
 * explains why the packet was skipped, or L3_IGNORE for packets that are
 * simply not ours (neither TCP nor UDP) and are not counted. */
#define L3_OK 0
#define L3_IGNORE (-1)

/* l3_ipv6_is_ext returns 1 for the IPv6 extension headers flowtap walks. */
static __always_inline int l3_ipv6_is_ext(__u8 nexthdr)
{
	return nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING ||
	       nexthdr == IPPROTO_FRAGMENT || nexthdr == IPPROTO_DSTOPTS ||
	       nexthdr == IPPROTO_AH;
}

/* l3_parse_ipv4 fills p from the IPv4 header (options allowed) with
 * bpf_skb_load_bytes, so it also works on non-linear skbs. Returns L3_OK,
 * L3_IGNORE, or a counter index. */
static __always_inline int l3_parse_ipv4(struct __sk_buff *skb, struct l3_pkt *p)
{
	struct iphdr ip;

	if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) < 0)
		return FLOWTAP_CNT_SKIP_TRUNCATED;
	if (ip.protocol != IPPROTO_TCP && ip.protocol != IPPROTO_UDP)
		return L3_IGNORE;
	if (ip.ihl < 5)
		return FLOWTAP_CNT_SKIP_BAD_IHL;
	if (bpf_ntohs(ip.frag_off) & L3_IP_OFFSET_MASK)
		return FLOWTAP_CNT_SKIP_FRAGMENT;
	__builtin_memset(p, 0, sizeof(*p));
	__builtin_memcpy(p->saddr, &ip.saddr, 4);
	__builtin_memcpy(p->daddr, &ip.daddr, 4);
	p->l4_off = ip.ihl * 4;
	p->family = 4;
	p->proto = ip.protocol;
	return L3_OK;
}

/* l3_parse_ipv6 fills p from the IPv6 header, walking hop-by-hop, routing,
 * destination options, AH and a first fragment header. Returns L3_OK,
 * L3_IGNORE, or a counter index. */
static __always_inline int l3_parse_ipv6(struct __sk_buff *skb, struct l3_pkt *p)
{
	struct ipv6hdr ip6;
	__u32 off = sizeof(ip6);
	__u8 nexthdr;

	if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)) < 0)
		return FLOWTAP_CNT_SKIP_TRUNCATED;
	nexthdr = ip6.nexthdr;

#pragma unroll
	for (int i = 0; i < L3_IPV6_MAX_EXT; i++) {
		__u8 ext[8];

		if (!l3_ipv6_is_ext(nexthdr))
			break;
		if (bpf_skb_load_bytes(skb, off, ext, sizeof(ext)) < 0)
			return FLOWTAP_CNT_SKIP_TRUNCATED;
		if (nexthdr == IPPROTO_FRAGMENT) {
			/* ext[2..3]: offset (13 bits) | res | M; non-first has no L4 header */
			if (((ext[2] << 8) | ext[3]) & 0xfff8)
				return FLOWTAP_CNT_SKIP_FRAGMENT;
			off += 8;
		} else if (nexthdr == IPPROTO_AH) {
			off += (ext[1] + 2) * 4;
		} else {
			off += (ext[1] + 1) * 8;
		}
		nexthdr = ext[0];
	}
	if (l3_ipv6_is_ext(nexthdr))
		return FLOWTAP_CNT_SKIP_IPV6_EXT;
	if (nexthdr != IPPROTO_TCP && nexthdr != IPPROTO_UDP)
		return L3_IGNORE;

	__builtin_memcpy(p->saddr, &ip6.saddr, 16);
	__builtin_memcpy(p->daddr, &ip6.daddr, 16);
	p->l4_off = off;
	p->family = 6;
	p->proto = nexthdr;
	p->_pad[0] = p->_pad[1] = 0;
	return L3_OK;
}

#endif /* FLOWTAP_L3_H */
