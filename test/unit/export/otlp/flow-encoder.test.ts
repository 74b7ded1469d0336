import { resourceFromAttributes } from '@opentelemetry/resources';
import { decodeBatch, type FlowEvent } from '../../../../src/kernel/decode';
import { FlowLogRecordEncoder } from '../../../../src/export/otlp/flow-encoder';
import { LogsRequestFrame, ProtoWriter } from '../../../../src/export/otlp/proto';
import { LogRecordEncoder } from './log-record-encoder';
import { ATTRIBUTES } from '../../../../src/record/schema';
import { mapFlow, type FlowContext } from '../../../../src/record/record';
import { workloadKey, type Workload } from '../../../../src/enrich/container';
import { OBSERVED_NS, SCOPE, sdkBytes, variedFlowInputs, type FlowInput } from '../../../helpers/flowrecords';
import { prng } from '../../../helpers/prng';
import { flowRecord, v4, v4mapped } from '../../record/recordfix';

const RESOURCE = resourceFromAttributes({ 'service.name': 'flowtap', 'host.name': 'vm' });

/** The request the OTLP export queue sends for `inputs`: the direct encoder into a (growing) writer, framed. */
function directBytes(inputs: FlowInput[], initialBytes = 64): Buffer {
  const frame = new LogsRequestFrame(RESOURCE, SCOPE);
  const w = new ProtoWriter(initialBytes);
  frame.open(w);
  const enc = new FlowLogRecordEncoder();
  for (const f of inputs) {
    frame.select(w, f.workload);
    enc.encode(w, f.event, f.domains, f.timestampNs, OBSERVED_NS);
  }
  return Buffer.from(frame.frame(w));
}

/** One log_records field by the direct encoder, and by the generic encoder of mapFlow's record. */
function bothFields(f: FlowInput): [Buffer, Buffer] {
  const direct = new ProtoWriter(16);
  new FlowLogRecordEncoder().encode(direct, f.event, f.domains, f.timestampNs, OBSERVED_NS);
  const generic = new ProtoWriter(16);
  new LogRecordEncoder().encode(generic, mapFlow(f.event, f.domains, f.timestampNs), OBSERVED_NS);
  return [Buffer.from(direct.view()), Buffer.from(generic.view())];
}

// --- random flows, decoded from raw ring-buffer records ---------------------------------------------

const RANDOM_WORKLOADS: Workload[] = [
  { containerId: '0123456789abcdef'.repeat(4), podUid: '11111111-2222-3333-4444-555555555555' },
  { containerId: 'fedcba9876543210'.repeat(4), podUid: '11111111-2222-3333-4444-555555555555' },
  { podUid: '66666666-7777-8888-9999-000000000000' },
  { containerId: 'pod-ünïcødé' },
];

type Rand = () => number;
const int = (r: Rand, n: number): number => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)];

/** 16 address bytes: IPv6 with runs of zero groups, or IPv4-mapped. */
function randomV6(r: Rand): number[] {
  if (r() < 0.15) return v4mapped(int(r, 256), int(r, 256), int(r, 256), int(r, 256));
  const groups = Array.from({ length: 8 }, () => (r() < 0.4 ? 0 : r() < 0.5 ? int(r, 16) : int(r, 0x10000)));
  return groups.flatMap((g) => [g >> 8, g & 0xff]);
}

const LABELS = ['www', 'api', 'example', 'cdn', 'a', 'xn--bcher-kva', 'bücher', 'ünïcødé', '€uro', '𝄞clef', 'x'.repeat(63), 'long-label-for-a-two-byte-length'];

function randomName(r: Rand): string {
  const n = 1 + int(r, 5);
  return Array.from({ length: n }, () => pick(r, LABELS)).join('.');
}

function randomNames(r: Rand): string[] {
  const n = r() < 0.5 ? 0 : r() < 0.8 ? 1 + int(r, 3) : int(r, 30);
  return Array.from({ length: n }, () => randomName(r));
}

/** A 64-bit value: 0, small, just past 32 bits, or any. */
function randomU64(r: Rand): bigint {
  return pick(r, [0n, 1n, BigInt(int(r, 2 ** 32)), 2n ** 32n + BigInt(int(r, 1000)), (BigInt(int(r, 2 ** 32)) << 32n) | BigInt(int(r, 2 ** 32))]);
}

/** A count up to 2^53 (bytes of a long flow), with the varint size edges. */
function randomCount(r: Rand): bigint {
  return pick(r, [0n, 127n, 128n, 16384n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 40n + 7n, BigInt(int(r, 2 ** 31))]);
}

const PATHS = ['/usr/bin/curl', '/usr/local/bin/ünïcødé', '/opt/' + 'p'.repeat(120), '/usr/bin/python3.12'];
const ARGS = ['python3', '-c', 'print(1)', '--flag=€', '', 'x'.repeat(200), 'http://s.test/'];

/** What the pipeline may know about a flow beyond its names: resolvers, /proc details, cgroup path (each maybe not). */
function randomContext(r: Rand, src: string[], dst: string[]): FlowContext {
  const resolvers = (names: string[]): string[] =>
    names.length === 0 || r() < 0.2 ? [] : Array.from({ length: 1 + int(r, 3) }, () => pick(r, ['198.18.0.53', 'fd00::53', '127.0.0.53']));
  const known = r() < 0.7;
  return {
    src,
    dst,
    srcResolvers: resolvers(src),
    dstResolvers: resolvers(dst),
    process: known
      ? {
          pid: int(r, 2 ** 22),
          startNs: 1n,
          name: r() < 0.9 ? pick(r, ['curl', 'python3', 'ünï', '']) : undefined,
          executablePath: r() < 0.8 ? pick(r, PATHS) : undefined,
          commandArgs: r() < 0.8 ? Array.from({ length: int(r, 6) }, () => pick(r, ARGS)) : undefined,
          uid: r() < 0.9 ? pick(r, [0, 1000, 65534, 4294967294]) : undefined,
          parentPid: r() < 0.9 ? pick(r, [0, 1, int(r, 2 ** 22)]) : undefined,
        }
      : undefined,
    cgroupPath: r() < 0.6 ? pick(r, ['/', '/system.slice/nginx.service', '/kubepods.slice/' + 'k'.repeat(150), '/ünï.slice']) : undefined,
  };
}

function randomInput(r: Rand, i: number): FlowInput {
  const six = r() < 0.4;
  const end = r() < 0.5;
  const attempt = !end && r() < 0.3; // a failed connection attempt: its reason, and its SYNs and time when known
  const tsNs = BigInt(1 + int(r, 2 ** 40)) * 1000n + BigInt(int(r, 1000));
  const durationNs = pick(r, [0n, 1n, 999_999_999n, 1_000_000_000n, 3_000_000_000n, BigInt(int(r, 2 ** 40))]);
  const beginTsNs = r() < 0.2 ? 0n : r() < 0.1 ? tsNs + 1n : tsNs - durationNs;
  const raw = flowRecord({
    type: attempt ? 4 : end ? 2 : 1,
    tsNs,
    saddr: six ? randomV6(r) : v4(int(r, 256), int(r, 256), int(r, 256), int(r, 256)),
    daddr: six ? randomV6(r) : v4(int(r, 256), int(r, 256), int(r, 256), int(r, 256)),
    sport: pick(r, [0, 1, 9, 10, 127, 128, 16383, 16384, 65535, int(r, 65536)]),
    dport: pick(r, [80, 443, 65535, int(r, 65536)]),
    family: six ? 6 : 4,
    direction: 1 + int(r, 2),
    closeReason: end ? 1 + int(r, 2) : attempt ? 1 + int(r, 4) : 0,
    closedBy: end ? 1 + int(r, 2) : 0,
    cgroupId: BigInt(int(r, 1000)),
    beginTsNs: end ? beginTsNs : 0n,
    flowId: randomU64(r),
    cookie: randomU64(r),
    process:
      r() < 0.8
        ? { tsNs: tsNs - 1n, pid: int(r, 2 ** 22), uid: pick(r, [0, 1000, 4294967294]), comm: pick(r, ['', 'curl', 'python3', 'a'.repeat(15)]) }
        : undefined,
    handshake:
      r() < 0.7
        ? attempt
          ? { ns: durationNs, syns: 1 + int(r, 7) }
          : { ns: pick(r, [0n, 1n, 999n, 1_000_000n, BigInt(int(r, 2 ** 40))]), syns: pick(r, [0, 1, 2, 7]) }
        : undefined,
    tcp:
      end && r() < 0.8
        ? {
            sent: randomCount(r),
            received: randomCount(r),
            segsOut: int(r, 2 ** 31),
            segsIn: pick(r, [0, 1, 200, 2 ** 32 - 1]),
            retrans: pick(r, [0, 1, int(r, 1000)]),
            srttUs: pick(r, [0, 1, 120, 1_000_000, int(r, 2 ** 31)]),
            minRttUs: pick(r, [0, 7, int(r, 2 ** 20)]),
          }
        : undefined,
  });
  const { events, errors } = decodeBatch(raw);
  if (errors !== 0 || events.length !== 1) throw new Error(`record ${i} did not decode`);
  const src = randomNames(r);
  const dst = randomNames(r);
  if (r() < 0.02) dst.unshift(''); // an empty name still maps to something
  const domains = randomContext(r, src, dst);
  const workload = r() < 0.5 ? pick(r, RANDOM_WORKLOADS) : undefined;
  return { event: events[0] as FlowEvent, domains, timestampNs: 1_700_000_000_000_000_000n + tsNs, workload };
}

describe('FlowLogRecordEncoder: straight from the event', () => {
  it('writes, byte for byte, what the SDK serializer writes for mapFlow of the same flows', () => {
    const inputs = variedFlowInputs();
    expect(directBytes(inputs)).toEqual(sdkBytes(inputs));
    for (const f of inputs) expect(directBytes([f], 16)).toEqual(sdkBytes([f]));
  });

  it('covers what the varied flows should: both families, begin and end, names, container.id', () => {
    const inputs = variedFlowInputs();
    expect(new Set(inputs.map((f) => f.event.family))).toEqual(new Set([4, 6]));
    expect(inputs.filter((f) => f.event.type === 'end').map((f) => f.event.closeReason)).toEqual(['fin', 'rst', 'fin']);
    expect(inputs.some((f) => f.domains.src.length > 1 && f.domains.dst.length > 1)).toBe(true);
    expect(inputs.filter((f) => f.workload !== undefined)).toHaveLength(3);
  });

  it('matches mapFlow + the generic encoder on 3000 random decoded flows (seed 0xf10e)', () => {
    const r = prng(0xf10e);
    const seen = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const f = randomInput(r, i);
      for (const k of Object.keys(mapFlow(f.event, f.domains, f.timestampNs).attributes)) seen.add(k);
      const [direct, generic] = bothFields(f);
      if (!direct.equals(generic))
        throw new Error(
          `flow ${i} differs: ${JSON.stringify(mapFlow(f.event, f.domains, f.timestampNs), (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`,
        );
    }
    // The random flows reach every attribute of the schema.
    expect([...seen].sort()).toEqual(ATTRIBUTES.map((a) => a.key).sort());
  });

  it('matches the SDK serializer on random decoded flows, many to a request (seed 0x5d4)', () => {
    const r = prng(0x5d4);
    const inputs = Array.from({ length: 300 }, (_, i) => randomInput(r, i));
    // The SDK serializer groups a request's records by Resource; the frame by runs: the same when each workload's records are one run.
    const order = [...new Set(inputs.map((f) => (f.workload === undefined ? '' : workloadKey(f.workload))))];
    const runs = [...inputs].sort(
      (a, b) => order.indexOf(a.workload === undefined ? '' : workloadKey(a.workload)) - order.indexOf(b.workload === undefined ? '' : workloadKey(b.workload)),
    );
    expect(order.length).toBeGreaterThan(3);
    expect(directBytes(runs)).toEqual(sdkBytes(runs));
  });

  it('writes nothing but the record: a batch of records is their concatenation', () => {
    const inputs = variedFlowInputs();
    const w = new ProtoWriter(8);
    const enc = new FlowLogRecordEncoder();
    for (const f of inputs) enc.encode(w, f.event, f.domains, f.timestampNs, OBSERVED_NS);
    expect(Buffer.from(w.view())).toEqual(Buffer.concat(inputs.map((f) => bothFields(f)[1])));
  });
});
