/**
 * The flow record, declared once: its events and, for each attribute, the
 * key, the OTLP value type, where the value comes from, which events carry
 * it, whether it is always there or only when known, and what it means.
 * Everything that writes or describes a record derives from this table:
 * mapFlow (record.ts, the SDK and console paths), the OTLP protobuf encoder
 * (src/export/otlp/flow-encoder.ts: its key prefixes and value writers) and
 * the attribute tables of README.md and docs/ (docs.ts, `make docs`).
 *
 * Adding an attribute is one entry here (its getter is its source); an
 * attribute only some flows have is `presence: 'known'` with a getter that
 * returns undefined when the value is not known. A new event (a failed
 * connection attempt) is one more key of EVENTS, a member of FlowEvent's
 * `type`, and that key in the `events` of each attribute it carries.
 *
 * Names follow the OpenTelemetry naming rules: registered attributes keep
 * their registered names (client.*, server.*, network.* from the stable
 * semantic conventions; source.*, destination.*, container.id and process.*
 * are incubating and copied into semconv.ts, so a minor release of the
 * package cannot rename them); flowtap's own events and attributes are under
 * `flowtap.`.
 *
 * Source and destination are the flow's initiator and responder, whichever
 * side is watched; sent and received are counted by the watched socket (on
 * an incoming flow, sent is destination → source).
 */
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_CLIENT_PORT,
  ATTR_NETWORK_LOCAL_ADDRESS,
  ATTR_NETWORK_LOCAL_PORT,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_NETWORK_TRANSPORT,
  ATTR_NETWORK_TYPE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  NETWORK_TRANSPORT_VALUE_TCP,
  NETWORK_TYPE_VALUE_IPV4,
  NETWORK_TYPE_VALUE_IPV6,
} from '@opentelemetry/semantic-conventions';
import type { ProcessDetails } from '../enrich/process';
import type { FlowEvent } from '../kernel/decode';
import {
  FLOW_CLOSE_REASON_VALUE_FIN,
  FLOW_CLOSE_REASON_VALUE_RST,
  FLOW_CLOSED_BY_VALUE_DESTINATION,
  FLOW_CLOSED_BY_VALUE_SOURCE,
  FLOW_DIRECTION_VALUE_INCOMING,
  FLOW_DIRECTION_VALUE_OUTGOING,
  ATTR_DESTINATION_ADDRESS,
  ATTR_DESTINATION_PORT,
  ATTR_FLOWTAP_FLOW_CLOSE_REASON,
  ATTR_FLOWTAP_FLOW_CLOSED_BY,
  ATTR_FLOWTAP_FLOW_DESTINATION_DOMAINS,
  ATTR_FLOWTAP_FLOW_DIRECTION,
  ATTR_FLOWTAP_FLOW_DURATION,
  ATTR_FLOWTAP_FLOW_SOURCE_DOMAINS,
  ATTR_FLOWTAP_FLOW_BYTES_RECEIVED,
  ATTR_FLOWTAP_FLOW_BYTES_SENT,
  ATTR_FLOWTAP_FLOW_DESTINATION_RESOLVERS,
  ATTR_FLOWTAP_FLOW_HANDSHAKE_DURATION,
  ATTR_FLOWTAP_FLOW_HANDSHAKE_SYN_COUNT,
  ATTR_FLOWTAP_FLOW_ID,
  ATTR_FLOWTAP_FLOW_RETRANSMITTED_SEGMENTS,
  ATTR_FLOWTAP_FLOW_RTT_MIN,
  ATTR_FLOWTAP_FLOW_RTT_SMOOTHED,
  ATTR_FLOWTAP_FLOW_SEGMENTS_RECEIVED,
  ATTR_FLOWTAP_FLOW_SEGMENTS_SENT,
  ATTR_FLOWTAP_FLOW_SOURCE_RESOLVERS,
  ATTR_FLOWTAP_PROCESS_CGROUP_PATH,
  ATTR_PROCESS_COMMAND_ARGS,
  ATTR_PROCESS_EXECUTABLE_NAME,
  ATTR_PROCESS_EXECUTABLE_PATH,
  ATTR_PROCESS_PARENT_PID,
  ATTR_PROCESS_PID,
  ATTR_PROCESS_USER_ID,
  ATTR_SOURCE_ADDRESS,
  ATTR_SOURCE_PORT,
  EVENT_FLOWTAP_FLOW_BEGIN,
  EVENT_FLOWTAP_FLOW_END,
  EVENT_FLOWTAP_FLOW_ATTEMPT,
  ATTR_FLOWTAP_FLOW_ATTEMPT_REASON,
  ATTR_FLOWTAP_FLOW_ATTEMPT_SYN_COUNT,
  ATTR_FLOWTAP_FLOW_ATTEMPT_DURATION,
  FLOW_ATTEMPT_REASON_VALUE_REFUSED,
  FLOW_ATTEMPT_REASON_VALUE_UNREACHABLE,
  FLOW_ATTEMPT_REASON_VALUE_TIMED_OUT,
  FLOW_ATTEMPT_REASON_VALUE_ABANDONED,
} from './semconv';

/** The names known for a flow's two addresses (the DNS cache's answer). */
export interface FlowDomains {
  /** Names for the source (initiator) address. */
  src: readonly string[];
  /** Names for the destination (responder) address; the first is the one asked. */
  dst: readonly string[];
}

/**
 * What the pipeline knows about a flow event beyond the event itself: the
 * DNS cache's answer for its two addresses (names and the resolvers that
 * gave them), the /proc cache's answer for its process and the path of its
 * socket's cgroup. A field left out is not known. The pipeline fills one
 * object per event, valid during the call only (its arrays may be kept).
 */
export interface FlowContext extends FlowDomains {
  /** Addresses of the resolvers whose answers gave `src` its names, newest first. */
  srcResolvers?: readonly string[];
  /** The same for `dst`. */
  dstResolvers?: readonly string[];
  /** /proc's details of event.process (src/enrich/process.ts). */
  process?: ProcessDetails;
  /** The socket's cgroup as a path in the cgroup v2 hierarchy (`/system.slice/x.service`). */
  cgroupPath?: string;
}

/** The kinds of flow event, each one log record: FlowEvent's `type`. */
export type FlowEventKind = FlowEvent['type'];

export interface EventEntry {
  /** The record's EventName. */
  name: string;
  /** One line: when the event happens (docs). */
  brief: string;
}

/** Each event kind's record. */
export const EVENTS: { readonly [K in FlowEventKind]: EventEntry } = {
  begin: { name: EVENT_FLOWTAP_FLOW_BEGIN, brief: 'a TCP flow began: its handshake reply (SYN-ACK) passed the hook' },
  end: { name: EVENT_FLOWTAP_FLOW_END, brief: 'the first FIN or RST of a flow whose begin was seen passed the hook' },
  attempt: {
    name: EVENT_FLOWTAP_FLOW_ATTEMPT,
    brief:
      'an outgoing connect failed before any SYN-ACK: refused (RST), unreachable (ICMP error), timed out (the SYNs went unanswered) or abandoned (the application closed the socket)',
  },
};

/** OTLP AnyValue types of the record's attributes. */
export type AttributeType = 'string' | 'int' | 'double' | 'string[]';

interface ValueOf {
  string: string;
  int: number;
  double: number;
  'string[]': readonly string[];
}

/**
 * The arguments of a flow's seed event as the flow-monitoring contract names
 * them, the flow's direction and its two ends: which attributes each one
 * feeds is a column of the docs.
 */
export type SeedArgument = 'connectionDirection' | 'srcIP' | 'dstIP' | 'srcPort' | 'dstPort' | 'srcDomains' | 'dstDomains';

export const SEED_ARGUMENTS: readonly SeedArgument[] = ['connectionDirection', 'srcIP', 'dstIP', 'srcPort', 'dstPort', 'srcDomains', 'dstDomains'];

/**
 * Where an attribute's value comes from: the decoded flow event and what the
 * pipeline knows about it (FlowContext: the names for its addresses and who
 * answered them, the process, the socket's cgroup). Undefined means "not
 * known": the attribute is left out (presence 'known' only). The local
 * socket's workload (container, pod) is the record's Resource, not an
 * attribute (src/record/resource.ts).
 */
export type Source<T> = (event: FlowEvent, context: FlowContext) => T | undefined;

interface EntryOf<T extends AttributeType> {
  key: string;
  type: T;
  /** The events whose records carry it. */
  events: readonly FlowEventKind[];
  /** 'always': on every record of those events; 'known': only when its source has a value. */
  presence: 'always' | 'known';
  source: Source<ValueOf[T]>;
  /** The seed-event arguments its value is made of (none: a constant, or from elsewhere). */
  seed: readonly SeedArgument[];
  /** A string attribute's values when they are a closed set (the encoder writes each whole, made at load). */
  values?: readonly string[];
  /** One line: what it means (docs; Markdown). */
  brief: string;
}

export type AttributeEntry = { [T in AttributeType]: EntryOf<T> }[AttributeType];

const END: readonly FlowEventKind[] = ['end'];
/** What a failed attempt carries like a flow: its tuple, direction, names and network.*. */
const ALL: readonly FlowEventKind[] = ['begin', 'end', 'attempt'];
const ATTEMPT: readonly FlowEventKind[] = ['attempt'];

const outgoing = (e: FlowEvent): boolean => e.direction === FLOW_DIRECTION_VALUE_OUTGOING;

/** A 64-bit id as 16 lower-case hex digits; 0 (never drawn) is no id. */
const hex64 = (id: bigint | undefined): string | undefined => (id === undefined || id === 0n ? undefined : id.toString(16).padStart(16, '0'));

/** The base name of an executable's path (process.executable.name), or undefined. */
const executableName = (path: string | undefined): string | undefined => (path === undefined ? undefined : path.slice(path.lastIndexOf('/') + 1));

/** A list, or undefined when it is empty or not known. */
const nonEmpty = (list: readonly string[] | undefined): readonly string[] | undefined => (list === undefined || list.length === 0 ? undefined : list);

/** The record's attributes, in the order they are written. */
export const ATTRIBUTES: readonly AttributeEntry[] = [
  {
    key: ATTR_FLOWTAP_FLOW_DIRECTION,
    type: 'string',
    events: ALL,
    presence: 'always',
    source: (e) => e.direction,
    seed: ['connectionDirection'],
    values: [FLOW_DIRECTION_VALUE_OUTGOING, FLOW_DIRECTION_VALUE_INCOMING],
    brief: '`outgoing` (a process in the watched cgroup connected) or `incoming` (it accepted)',
  },
  { key: ATTR_SOURCE_ADDRESS, type: 'string', events: ALL, presence: 'always', source: (e) => e.srcAddr, seed: ['srcIP'], brief: "the initiator's IP" },
  { key: ATTR_SOURCE_PORT, type: 'int', events: ALL, presence: 'always', source: (e) => e.srcPort, seed: ['srcPort'], brief: "the initiator's port" },
  { key: ATTR_DESTINATION_ADDRESS, type: 'string', events: ALL, presence: 'always', source: (e) => e.dstAddr, seed: ['dstIP'], brief: "the responder's IP" },
  { key: ATTR_DESTINATION_PORT, type: 'int', events: ALL, presence: 'always', source: (e) => e.dstPort, seed: ['dstPort'], brief: "the responder's port" },
  {
    key: ATTR_FLOWTAP_FLOW_SOURCE_DOMAINS,
    type: 'string[]',
    events: ALL,
    presence: 'always',
    source: (_e, c) => c.src,
    seed: ['srcDomains'],
    brief: 'names the DNS cache holds for the source IP (may be empty)',
  },
  {
    key: ATTR_FLOWTAP_FLOW_DESTINATION_DOMAINS,
    type: 'string[]',
    events: ALL,
    presence: 'always',
    source: (_e, c) => c.dst,
    seed: ['dstDomains'],
    brief: 'names for the destination IP: the name that was asked first, then its CNAME chain (may be empty)',
  },
  { key: ATTR_CLIENT_ADDRESS, type: 'string', events: ALL, presence: 'always', source: (e) => e.srcAddr, seed: ['srcIP'], brief: "the initiator's IP" },
  { key: ATTR_CLIENT_PORT, type: 'int', events: ALL, presence: 'always', source: (e) => e.srcPort, seed: ['srcPort'], brief: "the initiator's port" },
  {
    key: ATTR_SERVER_ADDRESS,
    type: 'string',
    events: ALL,
    presence: 'always',
    source: (e, c) => (c.dst.length > 0 ? c.dst[0] : e.dstAddr),
    seed: ['dstDomains', 'dstIP'],
    brief: "the first destination domain if known, else the responder's IP",
  },
  { key: ATTR_SERVER_PORT, type: 'int', events: ALL, presence: 'always', source: (e) => e.dstPort, seed: ['dstPort'], brief: "the responder's port" },
  {
    key: ATTR_NETWORK_TRANSPORT,
    type: 'string',
    events: ALL,
    presence: 'always',
    source: () => NETWORK_TRANSPORT_VALUE_TCP,
    seed: [],
    values: [NETWORK_TRANSPORT_VALUE_TCP],
    brief: '`tcp`',
  },
  {
    key: ATTR_NETWORK_TYPE,
    type: 'string',
    events: ALL,
    presence: 'always',
    source: (e) => (e.family === 4 ? NETWORK_TYPE_VALUE_IPV4 : NETWORK_TYPE_VALUE_IPV6),
    seed: ['srcIP', 'dstIP'],
    values: [NETWORK_TYPE_VALUE_IPV4, NETWORK_TYPE_VALUE_IPV6],
    brief: '`ipv4` or `ipv6` (an IPv4 flow on a dual-stack socket is `ipv4`)',
  },
  // The watched socket is the initiator of an outgoing flow and the responder of an incoming one.
  {
    key: ATTR_NETWORK_LOCAL_ADDRESS,
    type: 'string',
    events: ALL,
    presence: 'always',
    source: (e) => (outgoing(e) ? e.srcAddr : e.dstAddr),
    seed: ['connectionDirection', 'srcIP', 'dstIP'],
    brief: "the watched socket's own IP",
  },
  {
    key: ATTR_NETWORK_LOCAL_PORT,
    type: 'int',
    events: ALL,
    presence: 'always',
    source: (e) => (outgoing(e) ? e.srcPort : e.dstPort),
    seed: ['connectionDirection', 'srcPort', 'dstPort'],
    brief: "the watched socket's own port",
  },
  {
    key: ATTR_NETWORK_PEER_ADDRESS,
    type: 'string',
    events: ALL,
    presence: 'always',
    source: (e) => (outgoing(e) ? e.dstAddr : e.srcAddr),
    seed: ['connectionDirection', 'srcIP', 'dstIP'],
    brief: "the other side's IP",
  },
  {
    key: ATTR_NETWORK_PEER_PORT,
    type: 'int',
    events: ALL,
    presence: 'always',
    source: (e) => (outgoing(e) ? e.dstPort : e.srcPort),
    seed: ['connectionDirection', 'srcPort', 'dstPort'],
    brief: "the other side's port",
  },
  {
    key: ATTR_FLOWTAP_FLOW_DURATION,
    type: 'double',
    events: END,
    presence: 'known',
    // A begin time of 0 means the begin was not seen: no duration then.
    source: (e) => (e.beginTsNs !== undefined && e.beginTsNs !== 0n && e.tsNs >= e.beginTsNs ? Number(e.tsNs - e.beginTsNs) / 1e9 : undefined),
    seed: [],
    brief: "seconds from the flow's begin to its end",
  },
  {
    key: ATTR_FLOWTAP_FLOW_CLOSE_REASON,
    type: 'string',
    events: END,
    presence: 'always',
    source: (e) => e.closeReason,
    seed: [],
    values: [FLOW_CLOSE_REASON_VALUE_FIN, FLOW_CLOSE_REASON_VALUE_RST],
    brief: '`fin` or `rst`: the first of them seen on the flow',
  },
  {
    key: ATTR_FLOWTAP_FLOW_CLOSED_BY,
    type: 'string',
    events: END,
    presence: 'always',
    source: (e) => e.closedBy,
    seed: [],
    values: [FLOW_CLOSED_BY_VALUE_SOURCE, FLOW_CLOSED_BY_VALUE_DESTINATION],
    brief: '`source` or `destination`: the side that sent that FIN or RST',
  },
  {
    key: ATTR_FLOWTAP_FLOW_ID,
    type: 'string',
    events: ['begin', 'end'],
    presence: 'known',
    source: (e) => hex64(e.flowId),
    seed: [],
    brief: "the flow's id, 16 lower-case hex digits: 64 bits the kernel draws at random at the begin, the same on the flow's begin and end",
  },
  {
    key: ATTR_FLOWTAP_FLOW_SOURCE_RESOLVERS,
    type: 'string[]',
    events: ALL,
    presence: 'known',
    source: (_e, c) => nonEmpty(c.srcResolvers),
    seed: [],
    brief: 'IPs of the DNS servers whose answers gave the source IP its names, newest answer first (none: no names)',
  },
  {
    key: ATTR_FLOWTAP_FLOW_DESTINATION_RESOLVERS,
    type: 'string[]',
    events: ALL,
    presence: 'known',
    source: (_e, c) => nonEmpty(c.dstResolvers),
    seed: [],
    brief: 'IPs of the DNS servers whose answers gave the destination IP its names, newest answer first (none: no names)',
  },
  // The process of the watched socket: the one that connected (outgoing) or bound the listener (incoming).
  {
    key: ATTR_PROCESS_PID,
    type: 'int',
    events: ALL,
    presence: 'known',
    source: (e) => e.process?.pid,
    seed: [],
    brief:
      "the pid of the process that connected the watched socket (outgoing) or bound its listener (incoming), in the host's pid namespace; none for a socket bound or connected before flowtap attached",
  },
  {
    key: ATTR_PROCESS_EXECUTABLE_NAME,
    type: 'string',
    events: ALL,
    presence: 'known',
    source: (e, c) => executableName(c.process?.executablePath) ?? e.process?.comm ?? c.process?.name,
    seed: [],
    brief:
      "the base name of `/proc/<pid>/exe` of that process; when that is not known, the connecting thread's name at the capture (where the kernel lets flowtap read it), else `/proc/<pid>/comm`",
  },
  {
    key: ATTR_PROCESS_EXECUTABLE_PATH,
    type: 'string',
    events: ALL,
    presence: 'known',
    source: (_e, c) => c.process?.executablePath,
    seed: [],
    brief: '`/proc/<pid>/exe` of that process; none when it is gone, not readable, or runs another program since (exec)',
  },
  {
    key: ATTR_PROCESS_COMMAND_ARGS,
    type: 'string[]',
    events: ALL,
    presence: 'known',
    source: (_e, c) => c.process?.commandArgs,
    seed: [],
    brief: '`/proc/<pid>/cmdline` of that process, split at NUL (as the exe path: none when unknown)',
  },
  {
    key: ATTR_PROCESS_USER_ID,
    type: 'int',
    events: ALL,
    presence: 'known',
    source: (e) => e.process?.uid,
    seed: [],
    brief: "that process's real uid at the capture (the host's user namespace)",
  },
  {
    key: ATTR_PROCESS_PARENT_PID,
    type: 'int',
    events: ALL,
    presence: 'known',
    source: (_e, c) => c.process?.parentPid,
    seed: [],
    brief: "that process's parent pid, from `/proc/<pid>/stat`",
  },
  {
    key: ATTR_FLOWTAP_PROCESS_CGROUP_PATH,
    type: 'string',
    events: ALL,
    presence: 'known',
    source: (_e, c) => c.cgroupPath,
    seed: [],
    brief:
      "the watched socket's cgroup as a path in the cgroup v2 hierarchy (a systemd unit's, a container's: `/system.slice/nginx.service`), for the watched cgroup and those below it",
  },
  // TCP counters of the watched socket when the flow's first FIN or RST passed: sent = by the watched socket.
  {
    key: ATTR_FLOWTAP_FLOW_BYTES_SENT,
    type: 'int',
    events: ['end'],
    presence: 'known',
    source: (e) => e.tcp?.bytesSent,
    seed: [],
    brief: 'payload bytes the watched socket sent (outgoing: source → destination; incoming: destination → source)',
  },
  {
    key: ATTR_FLOWTAP_FLOW_BYTES_RECEIVED,
    type: 'int',
    events: ['end'],
    presence: 'known',
    source: (e) => e.tcp?.bytesReceived,
    seed: [],
    brief: 'payload bytes the watched socket received in order',
  },
  {
    key: ATTR_FLOWTAP_FLOW_SEGMENTS_SENT,
    type: 'int',
    events: ['end'],
    presence: 'known',
    source: (e) => e.tcp?.segsOut,
    seed: [],
    brief: 'TCP segments the watched socket sent (SYN and pure ACKs included)',
  },
  {
    key: ATTR_FLOWTAP_FLOW_SEGMENTS_RECEIVED,
    type: 'int',
    events: ['end'],
    presence: 'known',
    source: (e) => e.tcp?.segsIn,
    seed: [],
    brief: 'TCP segments the watched socket received',
  },
  {
    key: ATTR_FLOWTAP_FLOW_RETRANSMITTED_SEGMENTS,
    type: 'int',
    events: ['end'],
    presence: 'known',
    source: (e) => e.tcp?.retransSegs,
    seed: [],
    brief: 'segments the watched socket retransmitted (a lost SYN included)',
  },
  {
    key: ATTR_FLOWTAP_FLOW_RTT_SMOOTHED,
    type: 'double',
    events: ['end'],
    presence: 'known',
    source: (e) => (e.tcp === undefined ? undefined : e.tcp.srttUs / 1e6),
    seed: [],
    brief: "the watched socket's smoothed round-trip time, seconds (microsecond resolution)",
  },
  {
    key: ATTR_FLOWTAP_FLOW_RTT_MIN,
    type: 'double',
    events: ['end'],
    presence: 'known',
    source: (e) => (e.tcp === undefined ? undefined : e.tcp.minRttUs / 1e6),
    seed: [],
    brief: 'the least round-trip time it saw, seconds (microsecond resolution)',
  },
  {
    key: ATTR_FLOWTAP_FLOW_HANDSHAKE_DURATION,
    type: 'double',
    events: ['begin', 'end'],
    presence: 'known',
    source: (e) => (e.handshake === undefined ? undefined : Number(e.handshake.durationNs) / 1e9),
    seed: [],
    brief:
      'seconds of the TCP handshake: outgoing, first SYN sent → SYN-ACK received (begin and end); incoming, first SYN-ACK sent → its ACK received (end only)',
  },
  {
    key: ATTR_FLOWTAP_FLOW_HANDSHAKE_SYN_COUNT,
    type: 'int',
    events: ['begin', 'end'],
    presence: 'known',
    source: (e) => e.handshake?.synCount,
    seed: [],
    brief: 'SYNs the watched socket sent (outgoing) or SYN-ACKs it sent (incoming) in the handshake: above 1, some were retransmitted',
  },
  {
    key: ATTR_FLOWTAP_FLOW_ATTEMPT_REASON,
    type: 'string',
    events: ATTEMPT,
    presence: 'always',
    source: (e) => e.attemptReason,
    seed: [],
    values: [
      FLOW_ATTEMPT_REASON_VALUE_REFUSED,
      FLOW_ATTEMPT_REASON_VALUE_UNREACHABLE,
      FLOW_ATTEMPT_REASON_VALUE_TIMED_OUT,
      FLOW_ATTEMPT_REASON_VALUE_ABANDONED,
    ],
    brief:
      '`refused` (an RST answered the SYN), `unreachable` (the kernel gave up on an ICMP or ICMPv6 error for it), `timed_out` (the SYN retransmissions ran out: `net.ipv4.tcp_syn_retries`) or `abandoned` (the application closed the socket first, as `curl --connect-timeout` does)',
  },
  {
    key: ATTR_FLOWTAP_FLOW_ATTEMPT_SYN_COUNT,
    type: 'int',
    events: ATTEMPT,
    presence: 'known',
    source: (e) => e.handshake?.synCount,
    seed: [],
    brief: 'SYNs the socket sent, retransmissions included',
  },
  {
    key: ATTR_FLOWTAP_FLOW_ATTEMPT_DURATION,
    type: 'double',
    events: ATTEMPT,
    presence: 'known',
    source: (e) => (e.handshake === undefined ? undefined : Number(e.handshake.durationNs) / 1e9),
    seed: [],
    brief: 'seconds from the first SYN to the failure',
  },
];

/** The event kinds, in EVENTS' order. */
export const EVENT_KINDS = Object.keys(EVENTS) as FlowEventKind[];

/** `make(kind)` for each event kind, by kind. */
export function byEventKind<T>(make: (kind: FlowEventKind) => T): { readonly [K in FlowEventKind]: T } {
  const out = {} as { [K in FlowEventKind]: T };
  for (const kind of EVENT_KINDS) out[kind] = make(kind);
  return out;
}

/** The attributes each event's record carries, in order. */
export const ATTRIBUTES_OF = byEventKind((kind) => ATTRIBUTES.filter((a) => a.events.includes(kind)));

/** The attribute of `key`, or undefined if the record has none. */
export function attributeOf(key: string): AttributeEntry | undefined {
  return ATTRIBUTES.find((a) => a.key === key);
}
