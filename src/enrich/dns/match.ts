/**
 * Answers to queries: a DNS response counts only when it answers a query the
 * programs saw, from the socket it reached, within a bounded time, once.
 * "Answers" means (RFC 5452 §9.1): the reversed addresses and ports of the
 * query, the same transport and the opposite hook (a query seen leaving is
 * answered arriving, and the other way round for a server inside the
 * cgroup), the same ID and the same question (name ignoring case, type,
 * class). Every other response is refused with the reason it failed.
 *
 * Bounded: at most `maxPending` queries are held (the oldest go first), and
 * each is dropped `2 × windowMs` after it was sent (the second window tells a
 * late answer from one nobody asked for). Times are the kernel's boot-time
 * stamps of the packets, so batching in user space does not make an answer late.
 */
import type { DnsEvent } from '../../kernel/decode';
import type { DnsQuestion } from './parse';

/** Why a response was not taken. Used as a counter key. */
export type DnsUnmatchedReason =
  | 'no_query' // no query held from the socket it reached
  | 'wrong_server' // the socket asked, but not this address and port
  | 'wrong_id' // the socket asked this server, under another ID
  | 'wrong_question' // ID and server right, the question not
  | 'late' // answers a query, but more than windowMs after it
  | 'duplicate'; // answers a query that was already answered

export const DNS_UNMATCHED_REASONS: readonly DnsUnmatchedReason[] = Object.freeze([
  'no_query',
  'wrong_server',
  'wrong_id',
  'wrong_question',
  'late',
  'duplicate',
]);

export interface DnsMatchOptions {
  /** Longest time from a query to its answer, in ms. Default 10 000. */
  windowMs?: number;
  /** Queries held at most (answered ones too, until they age out). Default 8192. */
  maxPending?: number;
}

export const DNS_MATCH_DEFAULTS = { windowMs: 10_000, maxPending: 8192 } as const;

export type DnsMatchResult = { ok: true } | { ok: false; reason: DnsUnmatchedReason };

interface Pending {
  /** The asking socket's key (socketKey) and its key with the ID, for removal. */
  socket: string;
  socketId: string;
  /** address and port of the server, as one key */
  serverKey: string;
  server: string;
  serverPort: number;
  question: DnsQuestion;
  tsNs: bigint;
  answered: boolean;
}

const NS_PER_MS = 1_000_000n;

export class DnsQueryMatcher {
  private readonly windowNs: bigint;
  private readonly maxPending: number;
  /** Queries by the socket that sent (or, for a server inside, received) them and their ID. */
  private readonly byId = new Map<string, Pending[]>();
  /** For each socket with queries held: how many, by server (address and port). */
  private readonly bySocket = new Map<string, Map<string, number>>();
  /** Every held query in arrival order: ages out from the front. */
  private fifo: Pending[] = [];
  private head = 0;
  private held = 0;
  /** Queries dropped to keep maxPending before they aged out. */
  evicted = 0;

  constructor(opts: DnsMatchOptions = {}) {
    const windowMs = opts.windowMs ?? DNS_MATCH_DEFAULTS.windowMs;
    this.maxPending = opts.maxPending ?? DNS_MATCH_DEFAULTS.maxPending;
    if (!(windowMs >= 1) || !(this.maxPending >= 1)) throw new RangeError('DnsQueryMatcher bounds must be >= 1');
    this.windowNs = BigInt(Math.floor(windowMs)) * NS_PER_MS;
  }

  /** Queries held now. */
  get pending(): number {
    return this.held;
  }

  /** Holds a query (event: the packet to port 53) until it is answered or ages out. */
  query(event: DnsEvent, question: DnsQuestion): void {
    this.expire(event.tsNs);
    const socket = socketKey(event.tcp, event.egress, event.srcAddr, event.srcPort);
    const serverKey = `${event.dstAddr} ${event.dstPort}`;
    const p: Pending = {
      socket,
      socketId: `${socket} ${question.id}`,
      serverKey,
      server: event.dstAddr,
      serverPort: event.dstPort,
      question,
      tsNs: event.tsNs,
      answered: false,
    };
    let list = this.byId.get(p.socketId);
    if (list === undefined) this.byId.set(p.socketId, (list = []));
    list.push(p);
    let servers = this.bySocket.get(socket);
    if (servers === undefined) this.bySocket.set(socket, (servers = new Map()));
    servers.set(serverKey, (servers.get(serverKey) ?? 0) + 1);
    this.fifo.push(p);
    this.held++;
    while (this.held > this.maxPending) {
      this.evicted++;
      this.drop(this.fifo[this.head++]);
    }
    this.compact();
  }

  /**
   * True when some query is held from the socket the response (event)
   * reached: without one it is 'no_query' whatever it says, and need not be
   * parsed to know it.
   */
  expects(event: DnsEvent): boolean {
    this.expire(event.tsNs);
    return this.bySocket.has(answerSocket(event));
  }

  /** Decides whether the response (event, with its question) answers a held query; a match marks it answered. */
  answer(event: DnsEvent, question: DnsQuestion): DnsMatchResult {
    this.expire(event.tsNs);
    const socket = answerSocket(event);
    const servers = this.bySocket.get(socket);
    if (servers === undefined) return { ok: false, reason: 'no_query' };
    const list = this.byId.get(`${socket} ${question.id}`);
    let late = false;
    let duplicate = false;
    let sameIdAndServer = false;
    for (const p of list ?? []) {
      if (p.server !== event.srcAddr || p.serverPort !== event.srcPort) continue;
      sameIdAndServer = true;
      if (!sameQuestion(p.question, question)) continue;
      if (p.answered) duplicate = true;
      else if (event.tsNs - p.tsNs > this.windowNs) late = true;
      else {
        p.answered = true;
        return { ok: true };
      }
    }
    if (late) return { ok: false, reason: 'late' };
    if (duplicate) return { ok: false, reason: 'duplicate' };
    if (sameIdAndServer) return { ok: false, reason: 'wrong_question' };
    // this ID was asked of another server: the server is what is wrong
    if (list !== undefined) return { ok: false, reason: 'wrong_server' };
    if (servers.has(`${event.srcAddr} ${event.srcPort}`)) return { ok: false, reason: 'wrong_id' };
    return { ok: false, reason: 'wrong_server' };
  }

  /** Drops the queries sent more than two windows before nowNs. */
  private expire(nowNs: bigint): void {
    const horizon = nowNs - 2n * this.windowNs;
    while (this.head < this.fifo.length && this.fifo[this.head].tsNs < horizon) this.drop(this.fifo[this.head++]);
    this.compact();
  }

  /** Forgets p (the FIFO's front: each query is dropped once, by age or by the bound). */
  private drop(p: Pending): void {
    this.held--;
    const list = this.byId.get(p.socketId);
    if (list !== undefined) {
      const i = list.indexOf(p);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.byId.delete(p.socketId);
    }
    const servers = this.bySocket.get(p.socket);
    if (servers === undefined) return;
    const n = (servers.get(p.serverKey) ?? 1) - 1;
    if (n > 0) servers.set(p.serverKey, n);
    else servers.delete(p.serverKey);
    if (servers.size === 0) this.bySocket.delete(p.socket);
  }

  /** Forgets the front of the FIFO once it is half of it. */
  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.fifo.length) {
      this.fifo = this.fifo.slice(this.head);
      this.head = 0;
    }
  }
}

/**
 * The key of a socket on one side of DNS: transport, the hook its queries
 * pass (egress: a client inside; ingress: a server inside, keyed by its
 * remote client), address and port.
 */
function socketKey(tcp: boolean, queryEgress: boolean, addr: string, port: number): string {
  return `${tcp ? 't' : 'u'}${queryEgress ? 'e' : 'i'} ${addr} ${port}`;
}

/** The key of the socket a response is for: its destination, and its query passed the other hook. */
function answerSocket(event: DnsEvent): string {
  return socketKey(event.tcp, !event.egress, event.dstAddr, event.dstPort);
}

function sameQuestion(a: DnsQuestion, b: DnsQuestion): boolean {
  return a.name === b.name && a.type === b.type && a.class === b.class;
}
