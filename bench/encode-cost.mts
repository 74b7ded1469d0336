/**
 * CPU cost of the OTLP flow encoder per record, with its request frame: 1e6
 * synthetic flow events (both families, begin and end, with and without
 * names; most with a process, its /proc details, a handshake and, on
 * an end, TCP counters, as the kernel and the process cache give them)
 * through FlowLogRecordEncoder.encode into one writer, framed into a
 * request (LogsRequestFrame) every 2048 records; each run's user+system CPU
 * time over the records. Prints min and median of the runs. WORKLOADS says
 * whose the records are: `none` (flowtap's own Resource), `one` (one
 * workload: a sidecar), `runs` (8 workloads, 8 consecutive records each),
 * `switch` (8 workloads, another every record: the worst case). A build
 * without workload resources (one Resource for all) runs them all alike.
 * Pin it to a CPU and interleave two builds to compare them:
 *   taskset -c 1 node bench/encode-cost.mts [DIST_DIR] [RUNS] [WORKLOADS]
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ROOT } from './lib.mts';

/* eslint-disable @typescript-eslint/no-explicit-any */
const require = createRequire(import.meta.url);
const distDir = process.argv[2] || join(ROOT, 'dist');
const runs = Number(process.argv[3] ?? 7);
const mode = process.argv[4] ?? 'none';
const { FlowLogRecordEncoder } = require(join(distDir, 'export/otlp/flow-encoder.js'));
const { ProtoWriter, LogsRequestFrame } = require(join(distDir, 'export/otlp/proto.js'));
const resource = { attributes: { 'service.name': 'flowtap', 'host.name': 'node-1', 'host.arch': 'amd64', 'telemetry.sdk.language': 'nodejs' } };
const frame: any = new LogsRequestFrame(resource, { name: 'flowtap', version: '0.1.0' });
/** The workload API (select per record) or the build before it (one Resource, a containerId argument). */
const grouped = typeof frame.select === 'function';
const WORKLOADS = Array.from({ length: 8 }, (_, i) => ({ containerId: `${i}`.repeat(64), podUid: `0a1b2c3d-0000-1111-2222-33334444555${i}` }));
const workloadOf = (i: number): any =>
  mode === 'none' ? undefined : mode === 'one' ? WORKLOADS[0] : mode === 'runs' ? WORKLOADS[(i >> 3) & 7] : mode === 'switch' ? WORKLOADS[i & 7] : undefined;
if (!['none', 'one', 'runs', 'switch'].includes(mode)) throw new Error(`WORKLOADS: none, one, runs or switch, not ${mode}`);

const RECORDS = 1e6;
const inputs = Array.from({ length: 64 }, (_, i) => {
  const six = i % 3 === 0;
  const end = i % 2 === 1;
  return {
    event: {
      type: end ? 'end' : 'begin',
      tsNs: 5_000_000_000n + BigInt(i),
      family: six ? 6 : 4,
      direction: i % 4 < 2 ? 'outgoing' : 'incoming',
      srcAddr: six ? `fd00::${i + 2}` : `198.18.0.${i + 5}`,
      srcPort: 30000 + i * 311,
      dstAddr: six ? 'fd00:0:0:1::1' : `198.19.0.${i}`,
      dstPort: i % 5 === 0 ? 80 : 443,
      cgroupId: 7n,
      closeReason: end ? (i % 8 === 1 ? 'rst' : 'fin') : undefined,
      closedBy: end ? (i % 6 === 1 ? 'source' : 'destination') : undefined,
      beginTsNs: end ? 1_000_000_000n + BigInt(i * 1000) : undefined,
      flowId: (0x9e3779b97f4a7c15n * BigInt(i + 1)) & 0xffffffffffffffffn,
      cookie: BigInt(4096 + i),
      process: i % 8 === 7 ? undefined : { pid: 1000 + i, uid: 1000, comm: 'curl', capturedAtNs: 4_000_000_000n, cgroupId: 7n },
      handshake: i % 4 < 2 || end ? { durationNs: 120_000n + BigInt(i), synCount: 1 } : undefined,
      tcp: end
        ? {
            bytesSent: 512 + i,
            bytesReceived: 70_000 + i * 1000,
            segsOut: 10 + i,
            segsIn: 60 + i,
            retransSegs: i % 7 === 0 ? 1 : 0,
            srttUs: 150 + i,
            minRttUs: 90,
          }
        : undefined,
    },
    domains: {
      src: [],
      dst: i % 4 === 0 ? ['www.example.com', 'edge.example.net'] : [],
      srcResolvers: [],
      dstResolvers: i % 4 === 0 ? ['198.18.0.53'] : [],
      process:
        i % 8 === 7
          ? undefined
          : {
              pid: 1000 + i,
              startNs: 1n,
              name: 'curl',
              executablePath: '/usr/bin/curl',
              commandArgs: ['curl', '-s', 'https://www.example.com/'],
              uid: 1000,
              parentPid: 1,
            },
      cgroupPath: '/system.slice/app.service',
    },
  };
});

const encoder: any = new FlowLogRecordEncoder();
const w: any = new ProtoWriter(1 << 20);
const open = (): void => (grouped ? frame.open(w) : (w.pos = frame.headRoom));
const perRecordNs: number[] = [];
let requestBytes = 0;
for (let run = 0; run < runs; run++) {
  const start = process.cpuUsage();
  open();
  for (let i = 0; i < RECORDS; i++) {
    if (i > 0 && (i & 2047) === 0) {
      requestBytes = frame.frame(w).length;
      open();
    }
    const f = inputs[i & 63];
    if (grouped) {
      frame.select(w, workloadOf(i));
      encoder.encode(w, f.event, f.domains, 1_700_000_000_000_000_000n, 1_700_000_001_000_000_000n);
    } else {
      encoder.encode(w, f.event, f.domains, 1_700_000_000_000_000_000n, 1_700_000_001_000_000_000n);
    }
  }
  requestBytes = frame.frame(w).length;
  const cpu = process.cpuUsage(start);
  perRecordNs.push(((cpu.user + cpu.system) * 1000) / RECORDS);
}
perRecordNs.sort((a, b) => a - b);
console.log(
  `${distDir} ${grouped ? mode : 'one Resource'}: CPU ns/record over ${RECORDS} records, ${runs} runs: min ${perRecordNs[0].toFixed(1)} median ${perRecordNs[runs >> 1].toFixed(1)}; last request ${requestBytes} bytes`,
);
