import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider, SimpleLogRecordProcessor, type LogRecordExporter, type ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { Workload } from '../../../src/enrich/container';
import { LoggerRecordExport } from '../../../src/export/logger-sink';
import { OBSERVED_NS, SCOPE, variedFlowInputs } from '../../helpers/flowrecords';

const RESOURCE = resourceFromAttributes({ 'service.name': 'flowtap', 'host.name': 'vm', 'k8s.pod.uid': 'flowtaps-own-pod' });

describe('LoggerRecordExport: a provider per workload Resource', () => {
  function setup(maxProviders?: number) {
    // Every provider's exporter appends here; each is shut down on its own.
    const exported: ReadableLogRecord[] = [];
    const memory = { getFinishedLogRecords: () => exported };
    const exporter = (): LogRecordExporter => ({
      export: (logs, done) => {
        exported.push(...logs);
        done({ code: 0 });
      },
      forceFlush: () => Promise.resolve(),
      shutdown: () => Promise.resolve(),
    });
    const made: LoggerProvider[] = [];
    const sink = new LoggerRecordExport({
      providerFor: (resource) => {
        const p = new LoggerProvider({ resource, processors: [new SimpleLogRecordProcessor({ exporter: exporter() })] });
        made.push(p);
        return p;
      },
      resource: RESOURCE,
      scope: SCOPE,
      maxProviders,
    });
    const emit = (w: Workload | undefined): void => {
      const f = variedFlowInputs()[0];
      sink.emitFlow(f.event, f.domains, f.timestampNs, w, OBSERVED_NS);
    };
    return { memory, made, sink, emit };
  }

  it("gives each record its workload's Resource (the workload's attributes over flowtap's own), none: flowtap's own", () => {
    const { memory, emit } = setup();
    const a: Workload = { containerId: 'a'.repeat(64), podUid: '0a1b2c3d-0000-1111-2222-333344445555' };
    emit(a);
    emit(undefined);
    emit({ ...a });
    const [r1, r2, r3] = memory.getFinishedLogRecords();
    expect(r1.resource.attributes).toEqual({ 'container.id': a.containerId, 'k8s.pod.uid': a.podUid, 'service.name': 'flowtap', 'host.name': 'vm' });
    expect(r1.attributes['container.id']).toBeUndefined();
    expect(r2.resource).toBe(RESOURCE);
    expect(r3.resource).toBe(r1.resource); // an equal workload: the same provider
  });

  it('keeps at most maxProviders workload providers: the oldest is shut down (exporting what it held), made again when needed', async () => {
    const { memory, made, sink, emit } = setup(2);
    const ws: Workload[] = [0, 1, 2].map((i) => ({ containerId: `${i}`.repeat(64) }));
    for (const w of [ws[0], ws[1], ws[2], ws[0]]) emit(w);
    expect(sink.workloadProviders).toBe(2);
    expect(sink.providersMade).toBe(4);
    expect(made).toHaveLength(5); // flowtap's own, then 0, 1, 2, 0 again
    await sink.forceFlush();
    expect(memory.getFinishedLogRecords().map((r) => r.resource.attributes['container.id'])).toEqual([ws[0], ws[1], ws[2], ws[0]].map((w) => w.containerId));
    await sink.shutdown();
  });
});
