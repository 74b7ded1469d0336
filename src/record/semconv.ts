/**
 * Names flowtap writes besides the flow record's attributes and events
 * (those are declared in schema.ts): resource and self-telemetry names, and
 * the values of the record's closed-set attributes. Stable semantic
 * conventions come from @opentelemetry/semantic-conventions; unstable ones
 * are copied here so a minor release of that package cannot rename them;
 * flowtap's own are under `flowtap.`.
 */
export { ATTR_ERROR_TYPE, ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';

/** SDK self-observability counter the batch processor reports drops on. */
export const METRIC_OTEL_SDK_PROCESSOR_LOG_PROCESSED = 'otel.sdk.processor.log.processed' as const;
/** error.type value the batch processor uses for a record dropped at a full queue. */
export const ERROR_TYPE_VALUE_QUEUE_FULL = 'queue_full' as const;

// --- values of the flow record's flowtap.flow.* attributes (schema.ts) ----
export const FLOW_DIRECTION_VALUE_INCOMING = 'incoming' as const;
export const FLOW_DIRECTION_VALUE_OUTGOING = 'outgoing' as const;
export const FLOW_CLOSE_REASON_VALUE_FIN = 'fin' as const;
export const FLOW_CLOSE_REASON_VALUE_RST = 'rst' as const;
export const FLOW_ATTEMPT_REASON_VALUE_REFUSED = 'refused' as const;
export const FLOW_ATTEMPT_REASON_VALUE_UNREACHABLE = 'unreachable' as const;
export const FLOW_ATTEMPT_REASON_VALUE_TIMED_OUT = 'timed_out' as const;
export const FLOW_ATTEMPT_REASON_VALUE_ABANDONED = 'abandoned' as const;
export const FLOW_CLOSED_BY_VALUE_SOURCE = 'source' as const;
export const FLOW_CLOSED_BY_VALUE_DESTINATION = 'destination' as const;

/** Default service.name of the resource (OTEL_SERVICE_NAME wins). */
export const SERVICE_NAME_DEFAULT = 'flowtap' as const;
/** Instrumentation scope name of the records. */
export const SCOPE_NAME = 'flowtap' as const;

// --- record keys: the schema's entries (schema.ts) and every reader of a record use these ---
export const EVENT_FLOWTAP_FLOW_BEGIN = 'flowtap.flow.begin' as const;
export const EVENT_FLOWTAP_FLOW_END = 'flowtap.flow.end' as const;
export const EVENT_FLOWTAP_FLOW_ATTEMPT = 'flowtap.flow.attempt' as const;
export const ATTR_FLOWTAP_FLOW_ATTEMPT_REASON = 'flowtap.flow.attempt.reason' as const;
export const ATTR_FLOWTAP_FLOW_ATTEMPT_SYN_COUNT = 'flowtap.flow.attempt.syn_count' as const;
export const ATTR_FLOWTAP_FLOW_ATTEMPT_DURATION = 'flowtap.flow.attempt.duration' as const;
export const ATTR_FLOWTAP_FLOW_DIRECTION = 'flowtap.flow.direction' as const;
export const ATTR_FLOWTAP_FLOW_SOURCE_DOMAINS = 'flowtap.flow.source.domains' as const;
export const ATTR_FLOWTAP_FLOW_DESTINATION_DOMAINS = 'flowtap.flow.destination.domains' as const;
export const ATTR_FLOWTAP_FLOW_DURATION = 'flowtap.flow.duration' as const;
export const ATTR_FLOWTAP_FLOW_CLOSE_REASON = 'flowtap.flow.close_reason' as const;
export const ATTR_FLOWTAP_FLOW_CLOSED_BY = 'flowtap.flow.closed_by' as const;
export const ATTR_SOURCE_ADDRESS = 'source.address' as const;
export const ATTR_SOURCE_PORT = 'source.port' as const;
export const ATTR_DESTINATION_ADDRESS = 'destination.address' as const;
export const ATTR_DESTINATION_PORT = 'destination.port' as const;
export const ATTR_CONTAINER_ID = 'container.id' as const;
export const ATTR_K8S_POD_UID = 'k8s.pod.uid' as const;
export const ATTR_PROCESS_PID = 'process.pid' as const;
export const ATTR_PROCESS_EXECUTABLE_NAME = 'process.executable.name' as const;
export const ATTR_PROCESS_EXECUTABLE_PATH = 'process.executable.path' as const;
export const ATTR_PROCESS_COMMAND_ARGS = 'process.command_args' as const;
export const ATTR_PROCESS_USER_ID = 'process.user.id' as const;
export const ATTR_PROCESS_PARENT_PID = 'process.parent_pid' as const;
export const ATTR_FLOWTAP_PROCESS_CGROUP_PATH = 'flowtap.process.cgroup.path' as const;
export const ATTR_FLOWTAP_FLOW_ID = 'flowtap.flow.id' as const;
export const ATTR_FLOWTAP_FLOW_BYTES_SENT = 'flowtap.flow.bytes_sent' as const;
export const ATTR_FLOWTAP_FLOW_BYTES_RECEIVED = 'flowtap.flow.bytes_received' as const;
export const ATTR_FLOWTAP_FLOW_SEGMENTS_SENT = 'flowtap.flow.segments_sent' as const;
export const ATTR_FLOWTAP_FLOW_SEGMENTS_RECEIVED = 'flowtap.flow.segments_received' as const;
export const ATTR_FLOWTAP_FLOW_RETRANSMITTED_SEGMENTS = 'flowtap.flow.retransmitted_segments' as const;
export const ATTR_FLOWTAP_FLOW_RTT_SMOOTHED = 'flowtap.flow.rtt.smoothed' as const;
export const ATTR_FLOWTAP_FLOW_RTT_MIN = 'flowtap.flow.rtt.min' as const;
export const ATTR_FLOWTAP_FLOW_HANDSHAKE_DURATION = 'flowtap.flow.handshake.duration' as const;
export const ATTR_FLOWTAP_FLOW_HANDSHAKE_SYN_COUNT = 'flowtap.flow.handshake.syn_count' as const;
export const ATTR_FLOWTAP_FLOW_SOURCE_RESOLVERS = 'flowtap.flow.source.resolvers' as const;
export const ATTR_FLOWTAP_FLOW_DESTINATION_RESOLVERS = 'flowtap.flow.destination.resolvers' as const;

// --- flowtap's self-telemetry (metrics; docs/reliability.md) ---------------
export const METRIC_FLOWTAP_FLOW_EVENTS = 'flowtap.flow.events' as const;
export const METRIC_FLOWTAP_RECORDS_EMITTED = 'flowtap.records.emitted' as const;
export const METRIC_FLOWTAP_RECORDS_EXPORTED = 'flowtap.records.exported' as const;
export const METRIC_FLOWTAP_RECORDS_DROPPED = 'flowtap.records.dropped' as const;
export const METRIC_FLOWTAP_RECORDS_RETRIED = 'flowtap.records.retried' as const;
export const METRIC_FLOWTAP_EXPORT_QUEUE_RECORDS = 'flowtap.export_queue.records' as const;
export const METRIC_FLOWTAP_EXPORT_QUEUE_BYTES = 'flowtap.export_queue.bytes' as const;
export const METRIC_FLOWTAP_EXPORT_QUEUE_CAPACITY = 'flowtap.export_queue.capacity' as const;
export const METRIC_FLOWTAP_ERRORS = 'flowtap.errors' as const;
export const METRIC_FLOWTAP_PACKETS_SKIPPED = 'flowtap.packets.skipped' as const;
export const METRIC_FLOWTAP_FLOWS_FILTERED = 'flowtap.flows.filtered' as const;
export const METRIC_FLOWTAP_FLOWS_HALF_OPEN = 'flowtap.flows.half_open' as const;
export const METRIC_FLOWTAP_FLOW_TABLE_FULL = 'flowtap.flow_table.full' as const;
export const METRIC_FLOWTAP_FLOW_TABLE_ENTRIES = 'flowtap.flow_table.entries' as const;
export const METRIC_FLOWTAP_FLOW_TABLE_EVICTIONS = 'flowtap.flow_table.evictions' as const;
export const METRIC_FLOWTAP_HANDOFF_WAITS = 'flowtap.handoff.waits' as const;
export const METRIC_FLOWTAP_DNS_RESPONSES = 'flowtap.dns.responses' as const;
export const METRIC_FLOWTAP_DNS_RESPONSES_DROPPED = 'flowtap.dns.responses.dropped' as const;
export const METRIC_FLOWTAP_DNS_CACHE_NAMES = 'flowtap.dns.cache.names' as const;
export const METRIC_FLOWTAP_DNS_CACHE_ADDRESSES = 'flowtap.dns.cache.addresses' as const;
export const METRIC_FLOWTAP_DNS_CACHE_LOOKUPS = 'flowtap.dns.cache.lookups' as const;
export const METRIC_FLOWTAP_DNS_CACHE_EVICTIONS = 'flowtap.dns.cache.evictions' as const;
export const METRIC_FLOWTAP_PROCESS_CACHE_ENTRIES = 'flowtap.process.cache.entries' as const;
export const METRIC_FLOWTAP_PROCESS_CACHE_LOOKUPS = 'flowtap.process.cache.lookups' as const;
export const METRIC_FLOWTAP_PROCESS_CACHE_EVICTIONS = 'flowtap.process.cache.evictions' as const;
export const METRIC_FLOWTAP_BPF_PROGRAM_RUN_TIME = 'flowtap.bpf.program.run_time' as const;
export const METRIC_FLOWTAP_BPF_PROGRAM_RUNS = 'flowtap.bpf.program.runs' as const;
/** flowtap.flow.events: `begin` or `end`. */
export const ATTR_FLOWTAP_EVENT_TYPE = 'flowtap.event.type' as const;
/** Why something was dropped, skipped or evicted. */
export const ATTR_FLOWTAP_REASON = 'flowtap.reason' as const;
/** flowtap.errors: `decode`, `processing` or `bad_record`. */
export const ATTR_FLOWTAP_ERROR_TYPE = 'error.type' as const;
/** flowtap.dns.responses: `parsed`, or the reason the response was skipped. */
export const ATTR_FLOWTAP_DNS_RESULT = 'flowtap.dns.result' as const;
/** flowtap.dns.cache.lookups: `hit` or `miss`; flowtap.process.cache.lookups also `gone`, `reused` (a reused pid, not reported). */
export const ATTR_FLOWTAP_LOOKUP_RESULT = 'flowtap.lookup.result' as const;
/** flowtap.bpf.program.*: `ingress` or `egress`. */
export const ATTR_FLOWTAP_BPF_PROGRAM = 'flowtap.bpf.program' as const;
