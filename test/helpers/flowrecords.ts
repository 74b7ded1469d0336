/**
 * Flow records that exercise the encoders: both families and directions,
 * begin and end (a fractional and a whole duration), no names, several names,
 * a long name (multi-byte protobuf lengths), a non-ASCII name, many names
 * (a record over 1 KiB). Made by the real mapping (src/record.ts).
 */
import type { FlowEvent } from '../../src/decode';
import { mapFlow, type FlowRecord } from '../../src/record';

const BASE_NS = 1_795_836_314_094_503_983n;

const v4: FlowEvent = {
  type: 'begin',
  tsNs: 0n,
  family: 4,
  direction: 'outgoing',
  srcAddr: '198.18.0.5',
  srcPort: 43512,
  dstAddr: '198.19.0.34',
  dstPort: 443,
  cgroupId: 7n,
  closeReason: undefined,
  closedBy: undefined,
  beginTsNs: undefined,
};

const v6: FlowEvent = { ...v4, family: 6, direction: 'incoming', srcAddr: 'fd00::2', srcPort: 50000, dstAddr: 'fd00:0:0:1::1', dstPort: 8080 };

export function variedFlowRecords(): FlowRecord[] {
  const long = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.example`;
  const many = Array.from({ length: 24 }, (_, i) => `cname-${i}.cdn.example.net`);
  const cases: [FlowEvent, { src: string[]; dst: string[] }][] = [
    [v4, { src: [], dst: [] }],
    [v4, { src: [], dst: ['www.example.com', 'example.com.cdn.example.net'] }],
    [v6, { src: ['client.example'], dst: ['server.example'] }],
    [{ ...v4, type: 'end', tsNs: 250_000_001n, beginTsNs: 1n, closeReason: 'fin', closedBy: 'source' }, { src: [], dst: ['example.com'] }],
    [{ ...v6, type: 'end', tsNs: 2_000_000_001n, beginTsNs: 1n, closeReason: 'rst', closedBy: 'destination' }, { src: [], dst: [] }],
    [v4, { src: [], dst: [long] }],
    [v6, { src: [], dst: ['bücher.example', 'ünïcødé.test'] }],
    [v4, { src: many.slice(0, 3), dst: many }],
  ];
  return cases.map(([ev, names], i) => mapFlow({ ...ev, srcPort: ev.srcPort + i }, names, BASE_NS + BigInt(i) * 1_000_003n + ev.tsNs));
}

/** A wall-clock ns observed time after every record above. */
export const OBSERVED_NS = BASE_NS + 60_000_000_000n;
