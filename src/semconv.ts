/**
 * Every attribute key, event name and enum value flowtap writes, in one place
 * (DESIGN.md "Event record contract"). Stable semantic conventions come from
 * @opentelemetry/semantic-conventions; unstable ones are copied here so a
 * minor release of that package cannot rename them under us; the tcp.flow.*
 * names are flowtap's own.
 */
export {
  ATTR_CLIENT_ADDRESS,
  ATTR_CLIENT_PORT,
  ATTR_ERROR_TYPE,
  ATTR_NETWORK_LOCAL_ADDRESS,
  ATTR_NETWORK_LOCAL_PORT,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_NETWORK_TRANSPORT,
  ATTR_NETWORK_TYPE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_SERVICE_NAME,
  NETWORK_TRANSPORT_VALUE_TCP,
  NETWORK_TYPE_VALUE_IPV4,
  NETWORK_TYPE_VALUE_IPV6,
} from '@opentelemetry/semantic-conventions';

// --- unstable (incubating) semantic conventions, copied -------------------
export const ATTR_SOURCE_ADDRESS = 'source.address' as const;
export const ATTR_SOURCE_PORT = 'source.port' as const;
export const ATTR_DESTINATION_ADDRESS = 'destination.address' as const;
export const ATTR_DESTINATION_PORT = 'destination.port' as const;
export const ATTR_HOST_NAME = 'host.name' as const;
/** SDK self-observability counter the batch processor reports drops on. */
export const METRIC_OTEL_SDK_PROCESSOR_LOG_PROCESSED = 'otel.sdk.processor.log.processed' as const;
/** error.type value the batch processor uses for a record dropped at a full queue. */
export const ERROR_TYPE_VALUE_QUEUE_FULL = 'queue_full' as const;

// --- flowtap's own -------------------------------------------------------
export const EVENT_TCP_FLOW_BEGIN = 'tcp.flow.begin' as const;
export const EVENT_TCP_FLOW_END = 'tcp.flow.end' as const;

export const ATTR_TCP_FLOW_DIRECTION = 'tcp.flow.direction' as const;
export const TCP_FLOW_DIRECTION_VALUE_INCOMING = 'incoming' as const;
export const TCP_FLOW_DIRECTION_VALUE_OUTGOING = 'outgoing' as const;

export const ATTR_TCP_FLOW_SOURCE_DOMAINS = 'tcp.flow.source.domains' as const;
export const ATTR_TCP_FLOW_DESTINATION_DOMAINS = 'tcp.flow.destination.domains' as const;

/** Seconds from the flow's begin to its end (double). FLOW_END only. */
export const ATTR_TCP_FLOW_DURATION = 'tcp.flow.duration' as const;
export const ATTR_TCP_FLOW_CLOSE_REASON = 'tcp.flow.close_reason' as const;
export const TCP_FLOW_CLOSE_REASON_VALUE_FIN = 'fin' as const;
export const TCP_FLOW_CLOSE_REASON_VALUE_RST = 'rst' as const;
export const ATTR_TCP_FLOW_CLOSED_BY = 'tcp.flow.closed_by' as const;
export const TCP_FLOW_CLOSED_BY_VALUE_SOURCE = 'source' as const;
export const TCP_FLOW_CLOSED_BY_VALUE_DESTINATION = 'destination' as const;

/** Default service.name of the resource (OTEL_SERVICE_NAME wins). */
export const SERVICE_NAME_DEFAULT = 'flowtap' as const;
/** Instrumentation scope name of the records. */
export const SCOPE_NAME = 'flowtap' as const;
