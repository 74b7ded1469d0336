/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* l4.h — TCP/UDP header fields flowtap needs. */
#ifndef FLOWTAP_L4_H
#define FLOWTAP_L4_H

#include <linux/tcp.h>
#include <linux/udp.h>

/* TCP flag bits in byte 13 of the TCP header. */
#define L4_TCP_FIN 0x01
#define L4_TCP_SYN 0x02
#define L4_TCP_RST 0x04
#define L4_TCP_ACK 0x10
#define L4_TCP_FLAGS_OFF 13

#define L4_DNS_PORT 53

/* Fields of the TCP or UDP header, ports in host order. */
struct l4_hdr {
	__u16 sport;
	__u16 dport;
	__u8 tcp_flags;   /* 0 for UDP */
	__u8 _pad;
	__u16 hdr_len;    /* TCP: doff * 4; UDP: 8 */
	__u16 udp_len;    /* UDP length field (header included); 0 for TCP */
	__u16 _pad2;
	__u32 seq;        /* TCP sequence and acknowledgment numbers, host order; 0 for UDP */
	__u32 ack_seq;
};

/* l4_parse loads the L4 header at off. Returns 0, or a counter index when the
 * header is truncated or malformed (a TCP header longer than the packet
 * counts as truncated). */
static __always_inline int l4_parse(struct __sk_buff *skb, __u32 off, __u8 proto,
				    struct l4_hdr *h)
{
	if (proto == IPPROTO_TCP) {
		__u8 tcp[14];

		if (bpf_skb_load_bytes(skb, off, tcp, sizeof(tcp)) < 0)
			return FLOWTAP_CNT_SKIP_TRUNCATED;
		h->sport = (tcp[0] << 8) | tcp[1];
		h->dport = (tcp[2] << 8) | tcp[3];
		h->hdr_len = (tcp[12] >> 4) * 4;
		h->tcp_flags = tcp[L4_TCP_FLAGS_OFF];
		h->udp_len = 0;
		h->seq = ((__u32)tcp[4] << 24) | ((__u32)tcp[5] << 16) | ((__u32)tcp[6] << 8) | tcp[7];
		h->ack_seq = ((__u32)tcp[8] << 24) | ((__u32)tcp[9] << 16) | ((__u32)tcp[10] << 8) | tcp[11];
		if (h->hdr_len < sizeof(struct tcphdr))
			return FLOWTAP_CNT_SKIP_TRUNCATED;
		/* data offset beyond the packet: the kernel's TCP drops such a
		 * segment, so only a raw socket's copy can get here */
		if (off + h->hdr_len > skb->len)
			return FLOWTAP_CNT_SKIP_TRUNCATED;
	} else {
		struct udphdr udp;

		if (bpf_skb_load_bytes(skb, off, &udp, sizeof(udp)) < 0)
			return FLOWTAP_CNT_SKIP_TRUNCATED;
		h->sport = bpf_ntohs(udp.source);
		h->dport = bpf_ntohs(udp.dest);
		h->hdr_len = sizeof(udp);
		h->udp_len = bpf_ntohs(udp.len);
		h->tcp_flags = 0;
		h->seq = h->ack_seq = 0;
	}
	return 0;
}

#endif /* FLOWTAP_L4_H */
