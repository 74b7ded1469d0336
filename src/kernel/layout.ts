/**
 * The ring-buffer record layout of bpf/flowtap.h, as the decoder reads it.
 * Change together with that header (and FLOWTAP_ABI_VERSION); the layout test
 * compares these numbers with the sizeof/offsetof the addon reports.
 */

export const ABI_VERSION = 4;

/** enum flowtap_event_type */
export const EV_FLOW_BEGIN = 1;
export const EV_FLOW_END = 2;
export const EV_DNS = 3;
export const EV_FLOW_ATTEMPT = 4;

/** enum flowtap_direction */
export const DIR_INCOMING = 1;
export const DIR_OUTGOING = 2;

/** enum flowtap_close_reason */
export const CLOSE_FIN = 1;
export const CLOSE_RST = 2;

/** enum flowtap_attempt_reason */
export const ATTEMPT_REFUSED = 1;
export const ATTEMPT_UNREACHABLE = 2;
export const ATTEMPT_TIMED_OUT = 3;
export const ATTEMPT_ABANDONED = 4;

/** enum flowtap_closed_by */
export const CLOSED_BY_SOURCE = 1;
export const CLOSED_BY_DESTINATION = 2;

/** enum flowtap_flow_flags */
export const FLOW_FLAG_PROCESS = 1;
export const FLOW_FLAG_HANDSHAKE = 2;
export const FLOW_FLAG_TCP_STATS = 4;

/** FLOWTAP_COMM_LEN */
export const COMM_LEN = 16;

/** enum flowtap_dns_flags */
export const DNS_FLAG_TRUNCATED = 1;
export const DNS_FLAG_TCP = 2;
export const DNS_FLAG_EGRESS = 4;

/** FLOWTAP_DNS_MAX */
export const DNS_MAX = 1232;

/** FLOWTAP_DNS_QUERY_MAX */
export const DNS_QUERY_MAX = 320;

/** enum flowtap_verdict: what a CIDR filter prefix gives a flow */
export const VERDICT_REPORT = 1;
export const VERDICT_SKIP = 2;

/** struct flowtap_cidr4_key / flowtap_cidr6_key: prefixlen (u32), then the address */
export const CIDR4_KEY_SIZE = 8;
export const CIDR6_KEY_SIZE = 20;
export const CIDR_KEY_ADDR = 4;

/** The rodata port bitmap cfg_port_skip: one bit per port. */
export const PORT_SKIP_BYTES = 65_536 / 8;

/** struct flowtap_hdr */
export const HDR_SIZE = 16;
export const HDR_TS_NS = 0;
export const HDR_TYPE = 8;
export const HDR_VERSION = 9;
export const HDR_SIZE_FIELD = 10;

/** struct flowtap_flow_event */
export const FLOW_SIZE = 176;
export const FLOW_SADDR = 16;
export const FLOW_DADDR = 32;
export const FLOW_SPORT = 48;
export const FLOW_DPORT = 50;
export const FLOW_FAMILY = 52;
export const FLOW_DIRECTION = 53;
export const FLOW_CLOSE_REASON = 54;
export const FLOW_CLOSED_BY = 55;
export const FLOW_CGROUP_ID = 56;
export const FLOW_BEGIN_TS_NS = 64;
export const FLOW_COOKIE = 72;
export const FLOW_FLOW_ID = 80;
export const FLOW_PROC_TS_NS = 88;
export const FLOW_PID = 96;
export const FLOW_UID = 100;
export const FLOW_COMM = 104;
export const FLOW_HANDSHAKE_NS = 120;
export const FLOW_SYN_COUNT = 128;
export const FLOW_FLAGS = 132;
export const FLOW_BYTES_SENT = 136;
export const FLOW_BYTES_RECEIVED = 144;
export const FLOW_SEGS_OUT = 152;
export const FLOW_SEGS_IN = 156;
export const FLOW_RETRANS_SEGS = 160;
export const FLOW_SRTT_US = 164;
export const FLOW_MIN_RTT_US = 168;

/** struct flowtap_dns_event */
export const DNS_SIZE = 72 + DNS_MAX;
export const DNS_SADDR = 16;
export const DNS_DADDR = 32;
export const DNS_SPORT = 48;
export const DNS_DPORT = 50;
export const DNS_LEN = 52;
export const DNS_MSG_LEN = 54;
export const DNS_FLAGS = 56;
export const DNS_FAMILY = 57;
export const DNS_CGROUP_ID = 64;
export const DNS_DATA = 72;

/**
 * The same numbers keyed the way the addon's layout() reports them:
 * "<struct>" is sizeof, "<struct>.<field>" is offsetof, FLOWTAP_* the
 * constants, cfg_port_skip the bytes of that rodata array. Padding fields
 * are left out: the decoder never reads them.
 */
export const LAYOUT: Readonly<Record<string, number>> = Object.freeze({
  flowtap_hdr: HDR_SIZE,
  'flowtap_hdr.ts_ns': HDR_TS_NS,
  'flowtap_hdr.type': HDR_TYPE,
  'flowtap_hdr.version': HDR_VERSION,
  'flowtap_hdr.size': HDR_SIZE_FIELD,

  flowtap_cidr4_key: CIDR4_KEY_SIZE,
  'flowtap_cidr4_key.addr': CIDR_KEY_ADDR,
  flowtap_cidr6_key: CIDR6_KEY_SIZE,
  'flowtap_cidr6_key.addr': CIDR_KEY_ADDR,
  FLOWTAP_EV_FLOW_ATTEMPT: EV_FLOW_ATTEMPT,
  FLOWTAP_ATTEMPT_REFUSED: ATTEMPT_REFUSED,
  FLOWTAP_ATTEMPT_UNREACHABLE: ATTEMPT_UNREACHABLE,
  FLOWTAP_ATTEMPT_TIMED_OUT: ATTEMPT_TIMED_OUT,
  FLOWTAP_ATTEMPT_ABANDONED: ATTEMPT_ABANDONED,
  FLOWTAP_DIR_INCOMING: DIR_INCOMING,
  FLOWTAP_DIR_OUTGOING: DIR_OUTGOING,
  FLOWTAP_VERDICT_REPORT: VERDICT_REPORT,
  FLOWTAP_VERDICT_SKIP: VERDICT_SKIP,
  cfg_port_skip: PORT_SKIP_BYTES,

  flowtap_flow_event: FLOW_SIZE,
  'flowtap_flow_event.hdr': 0,
  'flowtap_flow_event.saddr': FLOW_SADDR,
  'flowtap_flow_event.daddr': FLOW_DADDR,
  'flowtap_flow_event.sport': FLOW_SPORT,
  'flowtap_flow_event.dport': FLOW_DPORT,
  'flowtap_flow_event.family': FLOW_FAMILY,
  'flowtap_flow_event.direction': FLOW_DIRECTION,
  'flowtap_flow_event.close_reason': FLOW_CLOSE_REASON,
  'flowtap_flow_event.closed_by': FLOW_CLOSED_BY,
  'flowtap_flow_event.cgroup_id': FLOW_CGROUP_ID,
  'flowtap_flow_event.begin_ts_ns': FLOW_BEGIN_TS_NS,
  'flowtap_flow_event.cookie': FLOW_COOKIE,
  'flowtap_flow_event.flow_id': FLOW_FLOW_ID,
  'flowtap_flow_event.proc_ts_ns': FLOW_PROC_TS_NS,
  'flowtap_flow_event.pid': FLOW_PID,
  'flowtap_flow_event.uid': FLOW_UID,
  'flowtap_flow_event.comm': FLOW_COMM,
  'flowtap_flow_event.handshake_ns': FLOW_HANDSHAKE_NS,
  'flowtap_flow_event.syn_count': FLOW_SYN_COUNT,
  'flowtap_flow_event.flags': FLOW_FLAGS,
  'flowtap_flow_event.bytes_sent': FLOW_BYTES_SENT,
  'flowtap_flow_event.bytes_received': FLOW_BYTES_RECEIVED,
  'flowtap_flow_event.segs_out': FLOW_SEGS_OUT,
  'flowtap_flow_event.segs_in': FLOW_SEGS_IN,
  'flowtap_flow_event.retrans_segs': FLOW_RETRANS_SEGS,
  'flowtap_flow_event.srtt_us': FLOW_SRTT_US,
  'flowtap_flow_event.min_rtt_us': FLOW_MIN_RTT_US,

  flowtap_dns_event: DNS_SIZE,
  'flowtap_dns_event.hdr': 0,
  'flowtap_dns_event.saddr': DNS_SADDR,
  'flowtap_dns_event.daddr': DNS_DADDR,
  'flowtap_dns_event.sport': DNS_SPORT,
  'flowtap_dns_event.dport': DNS_DPORT,
  'flowtap_dns_event.len': DNS_LEN,
  'flowtap_dns_event.msg_len': DNS_MSG_LEN,
  'flowtap_dns_event.flags': DNS_FLAGS,
  'flowtap_dns_event.family': DNS_FAMILY,
  'flowtap_dns_event.cgroup_id': DNS_CGROUP_ID,
  'flowtap_dns_event.data': DNS_DATA,
  FLOWTAP_DNS_MAX: DNS_MAX,
  FLOWTAP_DNS_QUERY_MAX: DNS_QUERY_MAX,
  FLOWTAP_COMM_LEN: COMM_LEN,
});
