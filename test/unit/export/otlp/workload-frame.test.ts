import { resourceFromAttributes } from '@opentelemetry/resources';
import type { Workload } from '../../../../src/enrich/container';
import { FlowLogRecordEncoder } from '../../../../src/export/otlp/flow-encoder';
import { LogsRequestFrame, ProtoWriter } from '../../../../src/export/otlp/proto';
import type { BatchSender, SendResult } from '../../../../src/export/otlp/queue';
import { OtlpRecordExport } from '../../../../src/export/otlp/sink';
import { OBSERVED_NS, SCOPE, sdkBytes, variedFlowInputs, type FlowInput } from '../../../helpers/flowrecords';

const RESOURCE = resourceFromAttributes({ 'service.name': 'flowtap', 'host.name': 'vm', 'k8s.pod.uid': 'flowtaps-own-pod' });
const A: Workload = { containerId: 'a'.repeat(64), podUid: '0a1b2c3d-0000-1111-2222-333344445555' };
const B: Workload = { containerId: 'b'.repeat(64) };
const C: Workload = { podUid: '9f8e7d6c-5b4a-3928-1706-a5b4c3d2e1f0' };

/** Sends go here; the first `failures` are refused (retryable). */
class CaptureSender implements BatchSender {
  sent: { bytes: Buffer; records: number }[] = [];
  constructor(private failures = 0) {}
  send(request: Uint8Array, records: number): Promise<SendResult> {
    this.sent.push({ bytes: Buffer.from(request), records });
    if (this.failures-- > 0) return Promise.resolve({ ok: false, retryable: true, error: new Error('14 UNAVAILABLE') });
    return Promise.resolve({ ok: true });
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

function sink(sender: BatchSender, over: { maxCachedResources?: number; maxBatchRecords?: number } = {}): OtlpRecordExport {
  return new OtlpRecordExport({
    resource: RESOURCE,
    scope: SCOPE,
    sender,
    maxQueueRecords: 1000,
    maxBatchRecords: over.maxBatchRecords ?? 500,
    scheduledDelayMillis: 60_000,
    retry: { initialBackoffMillis: 1, maxBackoffMillis: 1, jitter: 0 },
    maxCachedResources: over.maxCachedResources,
  });
}

/** The varied flows, each given the workload at its index of `workloads`. */
function flows(workloads: (Workload | undefined)[]): FlowInput[] {
  const base = variedFlowInputs();
  return workloads.map((workload, i) => ({ ...base[i % base.length], workload }));
}

/** The SDK serializer's request for each run of one workload, concatenated: a request of several ResourceLogs. */
function sdkRuns(inputs: FlowInput[]): Buffer {
  const runs: FlowInput[][] = [];
  for (const f of inputs) {
    const last = runs[runs.length - 1];
    if (last !== undefined && last[0].workload === f.workload) last.push(f);
    else runs.push([f]);
  }
  return Buffer.concat(runs.map((r) => sdkBytes(r, RESOURCE)));
}

/** Bytes of the records' log_records fields alone. */
function recordBytes(inputs: FlowInput[]): number {
  const w = new ProtoWriter(64);
  const enc = new FlowLogRecordEncoder();
  for (const f of inputs) enc.encode(w, f.event, f.domains, f.timestampNs, OBSERVED_NS);
  return w.pos;
}

describe('a Resource per workload (LogsRequestFrame runs)', () => {
  it('puts consecutive records of one workload under one ResourceLogs, a switch opening the next: byte for byte the SDK per run', async () => {
    const inputs = flows([A, A, B, undefined, undefined, A, C, C, B, A]);
    const sender = new CaptureSender();
    const s = sink(sender);
    for (const f of inputs) s.emitFlow(f.event, f.domains, f.timestampNs, f.workload, OBSERVED_NS);
    expect(s.queue.heldRecords).toBe(inputs.length);
    expect(s.queue.heldBytes).toBe(recordBytes(inputs)); // the heads are not records
    await s.forceFlush();
    expect(sender.sent).toHaveLength(1);
    expect(sender.sent[0].records).toBe(inputs.length);
    expect(sender.sent[0].bytes).toEqual(sdkRuns(inputs));
    // each workload's resource encoded once, though A came back twice
    expect(s.frame.resourcesEncoded).toBe(3);
  });

  it("a workload's resource has its container.id and k8s.pod.uid over flowtap's own (its own k8s.pod.uid yields)", async () => {
    const sender = new CaptureSender();
    const s = sink(sender);
    const [f] = flows([A]);
    s.emitFlow(f.event, f.domains, f.timestampNs, f.workload, OBSERVED_NS);
    await s.forceFlush();
    const text = sender.sent[0].bytes.toString('latin1');
    expect(text).toContain(A.podUid);
    expect(text).toContain(A.containerId);
    expect(text).not.toContain('flowtaps-own-pod');
  });

  it("an equal workload in another object continues the run; a batch that seals mid-run starts the next with the run's resource", async () => {
    const inputs = flows([A, { ...A }, { ...A }, B, B]);
    const sender = new CaptureSender();
    const s = sink(sender, { maxBatchRecords: 2 });
    for (const f of inputs) s.emitFlow(f.event, f.domains, f.timestampNs, f.workload, OBSERVED_NS);
    await s.forceFlush();
    expect(sender.sent.map((r) => r.records)).toEqual([2, 2, 1]);
    expect(sender.sent[0].bytes).toEqual(sdkBytes(inputs.slice(0, 2), RESOURCE));
    expect(sender.sent[1].bytes).toEqual(Buffer.concat([sdkBytes([inputs[2]], RESOURCE), sdkBytes([inputs[3]], RESOURCE)]));
    expect(sender.sent[2].bytes).toEqual(sdkBytes([inputs[4]], RESOURCE));
  });

  it('a request of several runs is sent again, compacted, byte for byte after a failure; the accounting holds', async () => {
    const inputs = flows([A, B, undefined, C]);
    const sender = new CaptureSender(1);
    const s = sink(sender);
    for (const f of inputs) s.emitFlow(f.event, f.domains, f.timestampNs, f.workload, OBSERVED_NS);
    await s.forceFlush();
    expect(sender.sent).toHaveLength(2);
    expect(sender.sent[1].bytes).toEqual(sender.sent[0].bytes);
    expect(sender.sent[1].bytes).toEqual(sdkRuns(inputs));
    expect([s.queue.heldRecords, s.queue.heldBytes]).toEqual([0, 0]);
  });

  it('keeps at most maxCachedResources workload resources encoded, and re-encodes an evicted one right', async () => {
    // 20 workloads, twice round: more than the frame remembers by identity (16) and than the cache holds (2).
    const ws: Workload[] = Array.from({ length: 20 }, (_, i) => ({ containerId: i.toString(16).padStart(2, '0').repeat(32) }));
    const inputs = flows([...ws, ...ws]);
    const sender = new CaptureSender();
    const s = sink(sender, { maxCachedResources: 2 });
    for (const f of inputs) {
      s.emitFlow(f.event, f.domains, f.timestampNs, f.workload, OBSERVED_NS);
      expect(s.frame.cachedResources).toBeLessThanOrEqual(2);
    }
    await s.forceFlush();
    expect(sender.sent[0].bytes).toEqual(sdkRuns(inputs));
    expect(s.frame.resourcesEncoded).toBe(40); // every one evicted before it came back
  });

  it('finds a resource again without encoding it while the cache holds it (a few workloads, switching)', async () => {
    const inputs = flows([A, B, A, C, B, A, { ...C }]);
    const sender = new CaptureSender();
    const s = sink(sender, { maxCachedResources: 3 });
    for (const f of inputs) s.emitFlow(f.event, f.domains, f.timestampNs, f.workload, OBSERVED_NS);
    await s.forceFlush();
    expect(sender.sent[0].bytes).toEqual(sdkRuns(inputs));
    expect(s.frame.resourcesEncoded).toBe(3);
  });

  it('takes back a run that got no record (a switch, or an encode that failed, before any)', () => {
    const frame = new LogsRequestFrame(RESOURCE, SCOPE);
    const w = new ProtoWriter(16);
    frame.open(w);
    frame.select(w, A);
    frame.select(w, B);
    const [f] = flows([B]);
    new FlowLogRecordEncoder().encode(w, f.event, f.domains, f.timestampNs, OBSERVED_NS);
    expect(frame.recordBytes(w)).toBe(recordBytes([f]));
    frame.select(w, C);
    expect(Buffer.from(frame.frame(w))).toEqual(sdkBytes([f], RESOURCE));
  });
});
