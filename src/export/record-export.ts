/** What every record export is: a record sink with the lifecycle of an SDK provider. */
import type { RecordSink } from '../pipeline';

/** A record sink with the lifecycle of an SDK provider. */
export interface RecordExport extends RecordSink {
  /** Sends what is held; resolves once it is exported, failed or dropped. */
  forceFlush(): Promise<void>;
  /** Stops; what could not be sent is counted as dropped. Idempotent. */
  shutdown(): Promise<void>;
}

/** The instrumentation scope of the records. */
export interface Scope {
  name: string;
  version?: string;
}
