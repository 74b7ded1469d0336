/**
 * The accuracy oracle: a packet capture (tcpdump) of the same traffic, read
 * back with tshark, and the ground truth derived from it — independently of
 * flowtap: nothing here imports from src/.
 *
 *   const cap = await startCapture(host.ns, host.dev);
 *   ... traffic ...
 *   const stats = await cap.stop();              // packets captured / dropped by the kernel
 *   const { segments, dns } = await readCapture(cap.file);
 *   const flows = deriveFlows(segments);         // one per handshake, retransmissions folded in
 *
 * Ground truth, from the wire:
 * - a flow exists when a SYN-ACK was followed by the initiator's ACK of it
 *   (the handshake completed); retransmitted SYNs and SYN-ACKs (same initial
 *   sequence numbers) belong to the same flow, while the same 4-tuple opened
 *   again (a new SYN with a new ISN) is a new flow;
 * - its end is the first FIN or RST after that, from either side;
 * - the SYN-ACK the initiator accepted is the last one before its ACK that
 *   completed the handshake (an earlier one was lost before the initiator's
 *   stack, e.g. dropped by a firewall after the capture saw it);
 * - a SYN answered by a RST is "refused"; a SYN never answered is "silent".
 * - DNS answers give, for each address, the name asked and then each CNAME
 *   hop that led to it.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from './processes';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_ACK = 0x10;

export interface CaptureStats {
  captured: number;
  /** Dropped by the kernel before tcpdump could read them: the oracle is incomplete when > 0. */
  droppedByKernel: number;
}

export interface Capture {
  /** The pcap file tcpdump writes. */
  readonly file: string;
  /** SIGINT; resolves once tcpdump has written and closed the file. Idempotent. */
  stop(): Promise<CaptureStats>;
  /** stop() and remove the file. */
  close(): Promise<void>;
}

/**
 * Starts tcpdump on interface `dev` inside namespace `ns` (undefined: this
 * namespace) and resolves once it listens. Captures TCP and DNS over UDP,
 * headers only.
 */
export async function startCapture(ns: string | undefined, dev: string, filter = 'tcp or udp port 53'): Promise<Capture> {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-cap-'));
  const file = join(dir, 'capture.pcap');
  // --immediate-mode: without it, TPACKET_V3 hands packets over a block at a time, and a block
  // not yet full when SIGINT comes is never written. -B: a 64 MiB kernel buffer for bursts.
  // -Z root: keep root, so the file in our temp dir stays writable.
  const argv = ['tcpdump', '-i', dev, '--immediate-mode', '-n', '-s', '256', '-B', '65536', '-Z', 'root', '-w', file, filter];
  const child: ChildProcess = ns === undefined ? spawn(argv[0], argv.slice(1)) : spawn('ip', ['netns', 'exec', ns, ...argv]);
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tcpdump did not start: ${err}`)), 10_000);
    const check = () => {
      if (/listening on/.test(err)) {
        clearTimeout(timer);
        child.stderr!.off('data', check);
        resolve();
      }
    };
    child.stderr!.on('data', check);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`tcpdump exited: ${err}`));
    });
  });
  let stopped: Promise<CaptureStats> | undefined;
  const stop = (): Promise<CaptureStats> =>
    (stopped ??= (async () => {
      child.kill('SIGINT');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      const num = (re: RegExp) => Number(re.exec(err)?.[1] ?? NaN);
      return { captured: num(/(\d+) packets? captured/), droppedByKernel: num(/(\d+) packets? dropped by kernel/) };
    })());
  return {
    file,
    stop,
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One TCP segment as captured. */
export interface Segment {
  /** Seconds since the epoch (capture timestamp). */
  time: number;
  family: 4 | 6;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  flags: number;
  seq: number;
  ack: number;
}

/** One DNS response as captured. */
export interface DnsAnswer {
  time: number;
  /** The name asked (lower case, no trailing dot). */
  question: string;
  /** For each address in the answer: the name asked, then every CNAME hop to the address's owner. */
  names: Map<string, string[]>;
}

const FIELDS = [
  'frame.time_epoch',
  'ip.src',
  'ip.dst',
  'ipv6.src',
  'ipv6.dst',
  'tcp.srcport',
  'tcp.dstport',
  'tcp.flags',
  'tcp.seq_raw',
  'tcp.ack_raw',
  'dns.flags.response',
  'dns.qry.name',
  'dns.resp.name',
  'dns.resp.type',
  'dns.cname',
  'dns.a',
  'dns.aaaa',
] as const;

/** Runs tshark over the file and parses its field output. */
export async function readCapture(file: string): Promise<{ segments: Segment[]; dns: DnsAnswer[] }> {
  const args = ['-r', file, '-n', '-T', 'fields', '-E', 'separator=/t', '-E', 'occurrence=a', '-E', 'aggregator=,'];
  // sequence analysis is not needed and slow; raw numbers are what we compare
  args.push('-o', 'tcp.analyze_sequence_numbers:FALSE', '-o', 'tcp.relative_sequence_numbers:FALSE');
  for (const f of FIELDS) args.push('-e', f);
  const text = await new Promise<string>((resolve, reject) => {
    const child = spawn('tshark', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out).toString('utf8')) : reject(new Error(`tshark exited ${code}: ${err}`))));
  });
  return parseTsharkFields(text);
}

/** Parses tshark `-T fields` output with the FIELDS above (tab-separated, multiple values comma-joined). */
export function parseTsharkFields(text: string): { segments: Segment[]; dns: DnsAnswer[] } {
  const segments: Segment[] = [];
  const dns: DnsAnswer[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const v = line.split('\t');
    const get = (name: (typeof FIELDS)[number]) => v[FIELDS.indexOf(name)] ?? '';
    const list = (name: (typeof FIELDS)[number]) => (get(name) === '' ? [] : get(name).split(','));
    const time = Number(get('frame.time_epoch'));
    const v4 = get('ip.src') !== '';
    const src = (v4 ? list('ip.src') : list('ipv6.src'))[0];
    const dst = (v4 ? list('ip.dst') : list('ipv6.dst'))[0];
    if (get('tcp.flags') !== '') {
      segments.push({
        time,
        family: v4 ? 4 : 6,
        src,
        dst,
        sport: Number(list('tcp.srcport')[0]),
        dport: Number(list('tcp.dstport')[0]),
        flags: Number(list('tcp.flags')[0]),
        seq: Number(list('tcp.seq_raw')[0]),
        ack: Number(list('tcp.ack_raw')[0]),
      });
    }
    const response = get('dns.flags.response');
    if (response === '1' || response === 'True') {
      const answer = dnsAnswer(time, list('dns.qry.name'), list('dns.resp.name'), list('dns.resp.type'), list('dns.cname'), list('dns.a'), list('dns.aaaa'));
      if (answer !== undefined) dns.push(answer);
    }
  }
  return { segments, dns };
}

function dnsAnswer(time: number, qnames: string[], names: string[], types: string[], cnames: string[], as: string[], aaaas: string[]): DnsAnswer | undefined {
  if (qnames.length === 0) return undefined;
  const norm = (n: string) => n.toLowerCase().replace(/\.$/, '');
  const question = norm(qnames[0]);
  const cnameOf = new Map<string, string>();
  const owners: [address: string, owner: string][] = [];
  let [c, a, aaaa] = [0, 0, 0];
  for (let i = 0; i < types.length; i++) {
    const owner = norm(names[i] ?? '');
    if (types[i] === '5') cnameOf.set(owner, norm(cnames[c++]));
    else if (types[i] === '1') owners.push([as[a++], owner]);
    else if (types[i] === '28') owners.push([aaaas[aaaa++], owner]);
  }
  const result = new Map<string, string[]>();
  for (const [address, owner] of owners) {
    const chain = [question];
    for (let cur = question; cur !== owner && cnameOf.has(cur) && chain.length < 32;) {
      cur = cnameOf.get(cur)!;
      chain.push(cur);
    }
    if (chain[chain.length - 1] === owner) result.set(address, chain);
  }
  return { time, question, names: result };
}

/** One TCP connection attempt, from the wire. */
export interface OracleFlow {
  family: 4 | 6;
  initiator: string;
  initiatorPort: number;
  responder: string;
  responderPort: number;
  /** The initiator's and the responder's initial sequence numbers. */
  initiatorIsn: number;
  responderIsn: number | undefined;
  /** First SYN seen (undefined when the capture began after it). */
  synTime: number | undefined;
  /** First SYN-ACK seen. */
  synAckTime: number | undefined;
  /** The SYN-ACK the initiator acknowledged: the last one before the ACK that completed the handshake. */
  acceptedSynAckTime: number | undefined;
  /** Latest SYN-ACK seen so far (while deriving). */
  lastSynAckTime: number | undefined;
  /** SYN-ACKs on the wire, retransmissions included. */
  synAcks: number;
  /** SYNs on the wire, retransmissions included. */
  syns: number;
  /** The initiator acknowledged the SYN-ACK: a flow. */
  established: boolean;
  /** A RST answered the SYN (no SYN-ACK). */
  refused: boolean;
  /** When that RST passed the capture. */
  refusedTime: number | undefined;
  /** The first FIN or RST after the SYN-ACK. */
  end: { time: number; reason: 'fin' | 'rst'; by: 'source' | 'destination' } | undefined;
}

const u32 = (n: number) => n >>> 0;

/** The flows (connection attempts) in capture order; see the module comment for the rules. */
export function deriveFlows(segments: readonly Segment[]): OracleFlow[] {
  const flows: OracleFlow[] = [];
  const current = new Map<string, OracleFlow>(); // initiator→responder 4-tuple → its latest attempt
  const key = (f: number, a: string, ap: number, b: string, bp: number) => `${f}|${a}|${ap}|${b}|${bp}`;
  const open = (s: Segment, asInitiator: boolean, isn: number): OracleFlow => {
    const f: OracleFlow = {
      family: s.family,
      initiator: asInitiator ? s.src : s.dst,
      initiatorPort: asInitiator ? s.sport : s.dport,
      responder: asInitiator ? s.dst : s.src,
      responderPort: asInitiator ? s.dport : s.sport,
      initiatorIsn: isn,
      responderIsn: undefined,
      synTime: undefined,
      synAckTime: undefined,
      acceptedSynAckTime: undefined,
      lastSynAckTime: undefined,
      synAcks: 0,
      syns: 0,
      established: false,
      refused: false,
      refusedTime: undefined,
      end: undefined,
    };
    flows.push(f);
    current.set(key(f.family, f.initiator, f.initiatorPort, f.responder, f.responderPort), f);
    return f;
  };

  for (const s of segments) {
    const fwd = key(s.family, s.src, s.sport, s.dst, s.dport); // sender = initiator
    const rev = key(s.family, s.dst, s.dport, s.src, s.sport); // sender = responder
    const syn = (s.flags & TCP_SYN) !== 0;
    const ack = (s.flags & TCP_ACK) !== 0;
    if (syn && !ack) {
      let f = current.get(fwd);
      if (f === undefined || f.initiatorIsn !== s.seq) f = open(s, true, s.seq);
      f.syns++;
      f.synTime ??= s.time;
      continue;
    }
    if (syn && ack) {
      let f = current.get(rev);
      if (f === undefined || u32(f.initiatorIsn + 1) !== s.ack) f = open(s, false, u32(s.ack - 1));
      f.synAcks++;
      f.responderIsn ??= s.seq;
      f.synAckTime ??= s.time;
      if (!f.established) f.lastSynAckTime = s.time;
      continue;
    }
    const byInitiator = current.get(fwd);
    const f = byInitiator ?? current.get(rev);
    if (f === undefined) continue;
    if (byInitiator !== undefined && ack && !f.established && f.responderIsn !== undefined && s.ack === u32(f.responderIsn + 1)) {
      f.established = true;
      f.acceptedSynAckTime = f.lastSynAckTime;
    }
    if ((s.flags & (TCP_FIN | TCP_RST)) !== 0 && f.end === undefined) {
      if (f.synAckTime === undefined) {
        if ((s.flags & TCP_RST) !== 0 && byInitiator === undefined && !f.refused) {
          f.refused = true;
          f.refusedTime = s.time;
        }
        continue;
      }
      f.end = { time: s.time, reason: (s.flags & TCP_RST) !== 0 ? 'rst' : 'fin', by: byInitiator !== undefined ? 'source' : 'destination' };
    }
  }
  return flows;
}

/**
 * The DNS names for each address from the answers seen up to `before`
 * (seconds since the epoch): the newest answer about an address wins.
 */
export function namesByAddress(answers: readonly DnsAnswer[], before = Infinity): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const a of answers) if (a.time <= before) for (const [addr, names] of a.names) out.set(addr, names);
  return out;
}
