/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * flowtap.h — the one header shared by the kernel programs (bpf/flowtap.bpf.c)
 * and user space (native/). It fixes the layout of every record written to the
 * ring buffer and of the counter map.
 *
 * When you change a ring-buffer record, bump FLOWTAP_ABI_VERSION and change
 * the TypeScript decoder with it: src/kernel/decode.ts (offsets and sizes) — the
 * layout test (test/integration/layout.test.ts) compares the sizes/offsets the addon
 * reports with the decoder's constants and fails when they drift apart. The
 * counters, the flow table and the filter maps are shared with the addon only,
 * which is always built from the same header: they need no version bump.
 *
 * All multi-byte integers are host byte order (little-endian on the supported
 * hosts) except addresses, which are kept as the raw network-order bytes.
 * Every struct is padded explicitly to a multiple of 8 bytes.
 */
#ifndef FLOWTAP_H
#define FLOWTAP_H

#include <linux/types.h>

#define FLOWTAP_ABI_VERSION 4

/* Bytes of a DNS message copied into a DNS record. 1232 is the EDNS(0) UDP
 * payload size recommended by DNS Flag Day 2020, so any answer from a resolver
 * that follows it arrives whole; a longer one is cut here and marked. */
#define FLOWTAP_DNS_MAX 1232

/* Bytes of a DNS query copied (a record sent to port 53, not from it): the
 * header and the question, whose name takes at most 255 bytes, fit; what a
 * query carries after its question (EDNS options) is not needed. The record
 * of a query is reserved this much shorter. */
#define FLOWTAP_DNS_QUERY_MAX 320

enum flowtap_event_type {
	FLOWTAP_EV_FLOW_BEGIN = 1,
	FLOWTAP_EV_FLOW_END = 2,
	FLOWTAP_EV_DNS = 3,
	FLOWTAP_EV_FLOW_ATTEMPT = 4, /* an outgoing connect that never got its SYN-ACK */
};

/* From the monitored cgroup's point of view. */
enum flowtap_direction {
	FLOWTAP_DIR_INCOMING = 1, /* the peer initiated (SYN-ACK seen on egress, then its ACK) */
	FLOWTAP_DIR_OUTGOING = 2, /* a local socket initiated (SYN-ACK on ingress) */
};

enum flowtap_close_reason {
	FLOWTAP_CLOSE_FIN = 1,
	FLOWTAP_CLOSE_RST = 2,
};

/* Why a connection attempt failed (FLOWTAP_EV_FLOW_ATTEMPT's close_reason). */
enum flowtap_attempt_reason {
	FLOWTAP_ATTEMPT_REFUSED = 1,     /* an RST answered the SYN */
	FLOWTAP_ATTEMPT_UNREACHABLE = 2, /* the kernel closed it on no RST and no timeout of its own: an ICMP error */
	FLOWTAP_ATTEMPT_TIMED_OUT = 3,   /* the SYN retransmission timer gave up */
	FLOWTAP_ATTEMPT_ABANDONED = 4,   /* the application closed the socket before any answer */
};

enum flowtap_closed_by {
	FLOWTAP_CLOSED_BY_SOURCE = 1,      /* the initiator sent the first FIN/RST */
	FLOWTAP_CLOSED_BY_DESTINATION = 2, /* the responder did */
};

enum flowtap_dns_flags {
	FLOWTAP_DNS_TRUNCATED = 1, /* message longer than FLOWTAP_DNS_MAX: cut */
	FLOWTAP_DNS_TCP = 2,       /* came over TCP (length prefix stripped) */
	FLOWTAP_DNS_EGRESS = 4,    /* seen leaving the cgroup (a local client asking or server answering) */
};

/* Common prefix of every ring-buffer record. 16 bytes. */
struct flowtap_hdr {
	__u64 ts_ns;   /* bpf_ktime_get_boot_ns() when the packet passed the hook */
	__u8 type;     /* enum flowtap_event_type */
	__u8 version;  /* FLOWTAP_ABI_VERSION */
	__u16 size;    /* bytes of this record, header included */
	__u32 _pad0;
};

/* Which optional parts of a flow record hold values (flowtap_flow_event.flags). */
enum flowtap_flow_flags {
	FLOWTAP_FLOW_PROCESS = 1,   /* pid, uid, comm, proc_ts_ns: the socket's process was captured */
	FLOWTAP_FLOW_HANDSHAKE = 2, /* handshake_ns, syn_count */
	FLOWTAP_FLOW_TCP_STATS = 4, /* FLOW_END only: bytes_*, segs_*, retrans_segs, srtt_us, min_rtt_us */
};

/* Length of a task's comm (TASK_COMM_LEN), NUL included. */
#define FLOWTAP_COMM_LEN 16

/* FLOWTAP_EV_FLOW_BEGIN, FLOWTAP_EV_FLOW_END and FLOWTAP_EV_FLOW_ATTEMPT. 176 bytes.
 * An attempt carries close_reason = enum flowtap_attempt_reason, closed_by 0,
 * begin_ts_ns 0, and under FLOWTAP_FLOW_HANDSHAKE the time from the first
 * SYN to the failure and the SYNs sent; never FLOWTAP_FLOW_TCP_STATS.
 * saddr/sport are the initiator, daddr/dport the responder, whatever packet
 * carried the event. IPv4 addresses sit in the first 4 bytes of saddr/daddr,
 * the other 12 bytes are zero. The fields after begin_ts_ns are valid only
 * when their flag (enum flowtap_flow_flags) is set; else they are zero. */
struct flowtap_flow_event {
	struct flowtap_hdr hdr;
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u8 family;       /* 4 or 6: the packet's IP version (skb->protocol) */
	__u8 direction;    /* enum flowtap_direction */
	__u8 close_reason; /* FLOW_END only: enum flowtap_close_reason, else 0 */
	__u8 closed_by;    /* FLOW_END only: enum flowtap_closed_by, else 0 */
	__u64 cgroup_id;   /* cgroup v2 id of the local socket (0 if unknown) */
	__u64 begin_ts_ns; /* FLOW_END only: the begin's ts_ns, else 0 */
	__u64 cookie;      /* socket cookie of the local socket, 0 if unknown (an incoming
			    * flow's begin: its socket is made by the handshake's ACK) */
	__u64 flow_id;     /* random, drawn at the begin: the same on begin and end */
	/* FLOWTAP_FLOW_PROCESS: the process that connected (outgoing) or that
	 * bound the listener that accepted (incoming), captured in its own
	 * context by cgroup/connect4/6 or cgroup/post_bind4/6. */
	__u64 proc_ts_ns;  /* bpf_ktime_get_boot_ns() at the capture */
	__u32 pid;         /* tgid, in the initial pid namespace */
	__u32 uid;         /* real uid, in the initial user namespace */
	char comm[FLOWTAP_COMM_LEN]; /* the thread's comm at the capture, NUL-terminated;
				      * all zero where the kernel does not allow reading it */
	/* FLOWTAP_FLOW_HANDSHAKE. Outgoing: first SYN sent -> SYN-ACK received,
	 * and the SYNs sent; incoming (FLOW_END only): first SYN-ACK sent -> the
	 * handshake's ACK received, and the SYN-ACKs sent. */
	__u64 handshake_ns;
	__u32 syn_count;
	__u8 flags;        /* enum flowtap_flow_flags */
	__u8 _pad1[3];
	/* FLOWTAP_FLOW_TCP_STATS: the socket's counters when the first FIN or
	 * RST passed the hook, that segment included. */
	__u64 bytes_sent;     /* payload bytes sent */
	__u64 bytes_received; /* payload bytes received in order */
	__u32 segs_out;
	__u32 segs_in;
	__u32 retrans_segs;   /* tcp_sock total_retrans */
	__u32 srtt_us;        /* smoothed RTT */
	__u32 min_rtt_us;     /* minimum RTT seen */
	__u32 _pad2;
};

/* FLOWTAP_EV_DNS: one DNS message to or from port 53 as the workload saw it:
 * a response (from port 53) or a query (to port 53, or leaving a UDP socket
 * connected to port 53). User space takes an answer only when it answers a
 * query it saw: the addresses and ports are the packet's own, so it can
 * reverse them, except that a query leaving a connected socket carries the
 * destination the socket was connected to (what its answer comes back from
 * when NAT on the way out rewrote the packet). IPv4 addresses sit in the
 * first 4 bytes of saddr/daddr, the other 12 bytes are zero.
 * The record is 72 + FLOWTAP_DNS_MAX bytes (72 + FLOWTAP_DNS_QUERY_MAX when
 * only the destination port is 53); only `len` bytes of data are valid. */
struct flowtap_dns_event {
	struct flowtap_hdr hdr;
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u16 len;      /* bytes of data copied */
	__u16 msg_len;  /* length of the whole DNS message on the wire */
	__u8 flags;     /* enum flowtap_dns_flags */
	__u8 family;    /* 4 or 6 */
	__u8 _pad1[6];
	__u64 cgroup_id;
	__u8 data[FLOWTAP_DNS_MAX];
};

/* Key of the LRU flow table: one entry per flow per observation point. */
struct flowtap_flow_key {
	__u8 saddr[16]; /* initiator */
	__u8 daddr[16]; /* responder */
	__u16 sport;
	__u16 dport;
	__u8 family;
	__u8 direction;
	__u8 _pad[2];
};

/* What the flow table keeps from the begin for the end. */
struct flowtap_flow_value {
	__u64 begin_ts_ns;
	__u64 cgroup_id;
	__u64 cookie;        /* outgoing: from the begin; incoming: set by sockops */
	__u64 flow_id;
	__u64 proc_ts_ns;
	__u32 pid;
	__u32 uid;
	char comm[FLOWTAP_COMM_LEN];
	__u64 handshake_ns;  /* outgoing: known at the begin */
	__u64 ack_ts_ns;     /* incoming: the handshake's ACK (sockops), 0 until then */
	__u32 local_isn;     /* initial sequence numbers, from the SYN-ACK */
	__u32 peer_isn;
	__u32 syn_count;     /* SYNs (outgoing) or SYN-ACKs (incoming) sent */
	__u8 flags;          /* enum flowtap_flow_flags known at the begin */
	__u8 _pad[3];
};

/* Per-socket storage (BPF_MAP_TYPE_SK_STORAGE `socks`): who made the socket,
 * and its handshake so far. */
struct flowtap_sock_info {
	__u64 proc_ts_ns; /* 0: no process captured */
	__u64 syn_ts_ns;  /* the first SYN passing egress, 0 before */
	__u64 cgroup_id;  /* the socket's cgroup, read at that SYN (sockops cannot) */
	__u32 pid;
	__u32 uid;
	char comm[FLOWTAP_COMM_LEN];
	__u32 syn_count;  /* SYNs that passed egress */
	__u32 attempt;    /* enum flowtap_attempt_mark: what is known of a connect still in SYN_SENT */
};

/* flowtap_sock_info.attempt bits. FLOWTAP_ATTEMPT_WATCHED is set by sockops
 * at TCP_CONNECT_CB for a connect the filters let through; the others record
 * what the failure, when it comes (SYN_SENT -> CLOSE), is due to. */
enum flowtap_attempt_mark {
	FLOWTAP_ATTEMPT_WATCHED = 1,
	FLOWTAP_ATTEMPT_RST_SEEN = 2,  /* an acceptable RST arrived while SYN_SENT */
	FLOWTAP_ATTEMPT_EXPIRED = 4,   /* RTO_CB said the SYN retransmissions are used up */
	FLOWTAP_ATTEMPT_RELEASED = 8,  /* cgroup/sock_release ran while SYN_SENT */
	FLOWTAP_ATTEMPT_SOFT_ERROR = 16, /* getsockopt(SO_ERROR) handed the client an error while SYN_SENT */
};

/* Index into the per-CPU counter array `counters`. User space sums the CPUs.
 * Names (snake_case of the suffix) are what the addon reports to JS. */
enum flowtap_counter {
	FLOWTAP_CNT_FLOW_BEGIN = 0,         /* begin records submitted */
	FLOWTAP_CNT_FLOW_END,               /* end records submitted */
	FLOWTAP_CNT_DNS,                    /* DNS records submitted (queries and responses) */
	FLOWTAP_CNT_DNS_TRUNCATED,          /* of those, cut (at FLOWTAP_DNS_MAX, a query at FLOWTAP_DNS_QUERY_MAX) */
	FLOWTAP_CNT_DNS_TCP_MULTISEGMENT,   /* DNS over TCP not in one segment: skipped */
	FLOWTAP_CNT_SYNACK_DUPLICATE,       /* retransmitted SYN-ACK of a known flow */
	FLOWTAP_CNT_RINGBUF_FULL_FLOW,      /* flow record lost: ring buffer full */
	FLOWTAP_CNT_RINGBUF_FULL_DNS,       /* DNS record lost: ring buffer full */
	FLOWTAP_CNT_FLOW_TABLE_FULL,        /* flow table update failed */
	FLOWTAP_CNT_SKIP_TRUNCATED,         /* header shorter than it claims: skipped */
	FLOWTAP_CNT_SKIP_BAD_IHL,           /* IPv4 ihl < 5: skipped */
	FLOWTAP_CNT_SKIP_FRAGMENT,          /* non-first fragment: no L4 header */
	FLOWTAP_CNT_SKIP_IPV6_EXT,          /* IPv6 extension chain too long / unknown */
	FLOWTAP_CNT_SKIP_LOAD,              /* bpf_skb_load_bytes failed */
	FLOWTAP_CNT_FILTERED,               /* SYN-ACK of a flow a user filter leaves out */
	FLOWTAP_CNT_FLOW_TABLE_INSERT,      /* flows added to the flow table */
	FLOWTAP_CNT_FLOW_TABLE_DELETE,      /* flows removed by their first FIN/RST */
	FLOWTAP_CNT_SYNACK_UNSOLICITED,     /* ingress SYN-ACK not for a TCP socket in SYN_SENT */
	FLOWTAP_CNT_FLOW_TABLE_RACE,        /* of synack_duplicate: another CPU inserted the flow between lookup and insert */
	FLOWTAP_CNT_SYNACK_PENDING,         /* incoming flows whose SYN-ACK left: waiting for the ACK (sockops) */
	FLOWTAP_CNT_SYNACK_CONFIRMED,       /* of those, the ACK came: the flow began */
	FLOWTAP_CNT_ATTEMPT_REFUSED,        /* attempt records submitted, by reason */
	FLOWTAP_CNT_ATTEMPT_UNREACHABLE,
	FLOWTAP_CNT_ATTEMPT_TIMED_OUT,
	FLOWTAP_CNT_ATTEMPT_ABANDONED,
	FLOWTAP_CNT__MAX,
};

#define FLOWTAP_COUNTER_NAMES                                                   \
	"flow_begin", "flow_end", "dns", "dns_truncated", "dns_tcp_multisegment", \
	"synack_duplicate", "ringbuf_full_flow", "ringbuf_full_dns",             \
	"flow_table_full", "skip_truncated", "skip_bad_ihl", "skip_fragment",    \
	"skip_ipv6_ext", "skip_load", "filtered", "flow_table_insert",           \
	"flow_table_delete", "synack_unsolicited", "flow_table_race",            \
	"synack_pending", "synack_confirmed", "attempt_refused", "attempt_unreachable", "attempt_timed_out",            \
	"attempt_abandoned"

/* Filters (docs/configuration.md). Which ones are on, and the port bitmap,
 * are rodata set before load; the CIDR lists are two LPM tries (`cidr4`,
 * `cidr6`) that user space fills after load and before attach. */

/* Words of the rodata port bitmap cfg_port_skip: one bit per TCP port. */
#define FLOWTAP_PORT_SKIP_WORDS (65536 / 64)

/* Bit of a direction (enum flowtap_direction) in the rodata cfg_directions. */
#define FLOWTAP_DIR_BIT(dir) (1u << (dir))

/* What a flow whose peer address falls under a prefix gets. User space stores
 * the final verdict for each prefix, so the longest match decides alone
 * (src/kernel/filter.ts works them out). */
enum flowtap_verdict {
	FLOWTAP_VERDICT_REPORT = 1,
	FLOWTAP_VERDICT_SKIP = 2,
};

/* LPM trie keys: prefixlen in bits, then the address in network order. */
struct flowtap_cidr4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct flowtap_cidr6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

#endif /* FLOWTAP_H */
