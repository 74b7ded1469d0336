/**
 * Builders of ring-buffer records as bpf/flowtap.h lays them out, written
 * byte by byte with the offsets of the C struct (not the decoder's constants),
 * so a decoder constant that drifts fails the tests.
 */

export interface FlowSpec {
  type?: 1 | 2 | 4;
  tsNs?: bigint;
  /** 4 or 16 raw bytes (network order). */
  saddr: number[];
  daddr: number[];
  sport: number;
  dport: number;
  family: number;
  direction: number;
  closeReason?: number;
  closedBy?: number;
  cgroupId?: bigint;
  beginTsNs?: bigint;
  cookie?: bigint;
  flowId?: bigint;
  /** The process part: written with flag bit 1. */
  process?: { pid: number; uid: number; comm: string; tsNs: bigint };
  /** The handshake part: flag bit 2. */
  handshake?: { ns: bigint; syns: number };
  /** The TCP statistics part: flag bit 4. */
  tcp?: { sent: bigint; received: bigint; segsOut: number; segsIn: number; retrans: number; srttUs: number; minRttUs: number };
  /** Written as they are into flags, instead of the parts' bits. */
  flags?: number;
  version?: number;
  /** Written into hdr.size (default 176). */
  size?: number;
}

export function flowRecord(f: FlowSpec): Buffer {
  const b = Buffer.alloc(176);
  b.writeBigUInt64LE(f.tsNs ?? 1_000n, 0);
  b[8] = f.type ?? 1;
  b[9] = f.version ?? 4;
  b.writeUInt16LE(f.size ?? 176, 10);
  Buffer.from(f.saddr).copy(b, 16);
  Buffer.from(f.daddr).copy(b, 32);
  b.writeUInt16LE(f.sport, 48);
  b.writeUInt16LE(f.dport, 50);
  b[52] = f.family;
  b[53] = f.direction;
  b[54] = f.closeReason ?? 0;
  b[55] = f.closedBy ?? 0;
  b.writeBigUInt64LE(f.cgroupId ?? 0n, 56);
  b.writeBigUInt64LE(f.beginTsNs ?? 0n, 64);
  b.writeBigUInt64LE(f.cookie ?? 0n, 72);
  b.writeBigUInt64LE(f.flowId ?? 0n, 80);
  let flags = 0;
  if (f.process) {
    flags |= 1;
    b.writeBigUInt64LE(f.process.tsNs, 88);
    b.writeUInt32LE(f.process.pid, 96);
    b.writeUInt32LE(f.process.uid, 100);
    b.write(f.process.comm, 104, 16, 'utf8');
  }
  if (f.handshake) {
    flags |= 2;
    b.writeBigUInt64LE(f.handshake.ns, 120);
    b.writeUInt32LE(f.handshake.syns, 128);
  }
  if (f.tcp) {
    flags |= 4;
    b.writeBigUInt64LE(f.tcp.sent, 136);
    b.writeBigUInt64LE(f.tcp.received, 144);
    b.writeUInt32LE(f.tcp.segsOut, 152);
    b.writeUInt32LE(f.tcp.segsIn, 156);
    b.writeUInt32LE(f.tcp.retrans, 160);
    b.writeUInt32LE(f.tcp.srttUs, 164);
    b.writeUInt32LE(f.tcp.minRttUs, 168);
  }
  b[132] = f.flags ?? flags;
  return b;
}

export interface DnsSpec {
  tsNs?: bigint;
  data: Buffer;
  msgLen?: number;
  flags?: number;
  family?: number;
  cgroupId?: bigint;
  /** 4 or 16 raw bytes (network order); default 198.18.0.53:53 → 198.18.0.1:40000. */
  saddr?: number[];
  daddr?: number[];
  sport?: number;
  dport?: number;
  /** Override hdr.size / len (default: the full 72 + 1232 record, data.length). */
  size?: number;
  len?: number;
}

export function dnsRecord(d: DnsSpec): Buffer {
  const b = Buffer.alloc(72 + 1232);
  b.writeBigUInt64LE(d.tsNs ?? 2_000n, 0);
  b[8] = 3;
  b[9] = 4;
  b.writeUInt16LE(d.size ?? b.length, 10);
  Buffer.from(d.saddr ?? [198, 18, 0, 53]).copy(b, 16);
  Buffer.from(d.daddr ?? [198, 18, 0, 1]).copy(b, 32);
  b.writeUInt16LE(d.sport ?? 53, 48);
  b.writeUInt16LE(d.dport ?? 40000, 50);
  b.writeUInt16LE(d.len ?? d.data.length, 52);
  b.writeUInt16LE(d.msgLen ?? d.data.length, 54);
  b[56] = d.flags ?? 0;
  b[57] = d.family ?? 4;
  b.writeBigUInt64LE(d.cgroupId ?? 0n, 64);
  d.data.copy(b, 72);
  return b;
}

/** 16 bytes of an IPv6 address from its 8 groups. */
export function v6(...groups: number[]): number[] {
  if (groups.length !== 8) throw new Error('8 groups');
  return groups.flatMap((g) => [g >> 8, g & 0xff]);
}

/** 16 bytes: ::ffff:a.b.c.d */
export function v4mapped(a: number, b: number, c: number, d: number): number[] {
  return [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d];
}

/** 16 bytes: an IPv4 address in the first 4, zeros after (as the kernel writes it). */
export function v4(a: number, b: number, c: number, d: number): number[] {
  return [a, b, c, d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
}
