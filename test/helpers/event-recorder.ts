/**
 * The real addon's probe on a cgroup, its flow events collected as decoded:
 * for kernel tests that look at FlowEvents (no collector). DNS events are
 * left out; records the decoder cannot read are counted.
 */
import { join } from 'node:path';
import { decodeBatch, type FlowEvent } from '../../src/kernel/decode';
import { loadBinding, type NativeProbe } from '../../src/kernel/probe';

export class FlowEventRecorder {
  readonly events: FlowEvent[] = [];
  readonly probe: NativeProbe;
  decodeErrors = 0;

  constructor(cgroupPath: string) {
    const binding = loadBinding(join(__dirname, '..', '..'));
    this.probe = new binding.Probe({
      cgroupPath,
      onBatch: (buf: Buffer) => {
        const r = decodeBatch(buf);
        this.decodeErrors += r.errors;
        for (const e of r.events) if (e.type !== 'dns') this.events.push(e);
      },
    });
  }
}
