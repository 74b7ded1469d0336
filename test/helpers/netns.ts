/**
 * Test "hosts": network namespaces addressed from the benchmarking range
 * 198.18.0.0/15 and the ULA range fd00::/8. TestNet is two hosts joined by
 * one veth pair; TestLan is any number of hosts on a bridge that sits in a
 * namespace of its own, with nftables rulesets for packet loss (nftDrop,
 * nftRejectReset, nftDropFirstSynAck). The addresses exist only inside these
 * namespaces; nothing here touches the host's own interfaces. Torn down in
 * destroy(), when construction fails half-way and, as a last resort, at
 * process exit.
 */
import { execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { leftover, processGroup } from './processes.ts';

export interface TestHost {
  ns: string;
  ipv4: string;
  ipv6: string;
  /** argv prefix that runs a command inside this namespace */
  prefix: string[];
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Two hosts, a and b, on one link (a /24 and a /64). */
export class TestNet {
  readonly a: TestHost;
  readonly b: TestHost;
  private destroyed = false;
  private readonly devs = new Map<TestHost, string>();
  private readonly children = processGroup();
  private readonly forget: () => void;

  constructor() {
    const tag = `ft${process.pid % 10000}${Math.random().toString(36).slice(2, 6)}`;
    const k = 1 + Math.floor(Math.random() * 250);
    this.a = { ns: `${tag}a`, ipv4: `198.18.${k}.1`, ipv6: `fd00:0:0:${k.toString(16)}::1`, prefix: [] };
    this.b = { ns: `${tag}b`, ipv4: `198.18.${k}.2`, ipv6: `fd00:0:0:${k.toString(16)}::2`, prefix: [] };
    this.forget = leftover(`network namespaces ${this.a.ns} ${this.b.ns}`, () => this.destroy());
    try {
      for (const h of [this.a, this.b]) {
        ip('netns', 'add', h.ns);
        h.prefix = ['ip', 'netns', 'exec', h.ns];
        ip('-n', h.ns, 'link', 'set', 'lo', 'up');
      }
      ip('link', 'add', `${tag}x`, 'netns', this.a.ns, 'type', 'veth', 'peer', 'name', `${tag}y`, 'netns', this.b.ns);
      this.devs.set(this.a, `${tag}x`);
      this.devs.set(this.b, `${tag}y`);
      for (const [h, dev] of [
        [this.a, `${tag}x`],
        [this.b, `${tag}y`],
      ] as const) {
        ip('-n', h.ns, 'addr', 'add', `${h.ipv4}/24`, 'dev', dev);
        ip('-n', h.ns, '-6', 'addr', 'add', `${h.ipv6}/64`, 'dev', dev, 'nodad');
        ip('-n', h.ns, 'link', 'set', dev, 'up');
      }
    } catch (e) {
      this.destroy();
      throw e;
    }
  }

  /** The IPv4 address .n on the link's /24 (e.g. n=3 → 198.18.k.3). */
  v4(n: number): string {
    return this.a.ipv4.replace(/\.1$/, `.${n}`);
  }

  /** Adds another address (IPv4 on the /24, or IPv6 on the /64) to host h. */
  addAddress(h: TestHost, addr: string): void {
    const v6 = addr.includes(':');
    ip('-n', h.ns, ...(v6 ? ['-6'] : []), 'addr', 'add', `${addr}/${v6 ? 64 : 24}`, 'dev', this.devs.get(h)!, ...(v6 ? ['nodad'] : []));
  }

  /** Loads an nftables ruleset (nft -f syntax) inside host h. */
  nft(h: TestHost, ruleset: string): void {
    execFileSync('ip', ['netns', 'exec', h.ns, 'nft', '-f', '-'], { input: ruleset, stdio: ['pipe', 'ignore', 'pipe'] });
  }

  /** Spawns cmd inside host h; destroy() kills it if it still runs (a namespace's processes outlive its deletion). */
  spawnIn(h: TestHost, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    return this.children.spawn('ip', ['netns', 'exec', h.ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.children.killAll();
    for (const h of [this.a, this.b]) {
      try {
        ip('netns', 'del', h.ns);
      } catch {
        /* never created */
      }
    }
    this.forget();
  }
}

/** One host of a TestLan: its namespace, addresses and link. */
export interface LanHost extends TestHost {
  /** 0-based position in TestLan.hosts. */
  index: number;
  /** Its interface (inside its namespace) on the bridge. */
  dev: string;
  /** The bridge port its link ends in (inside TestLan.bridgeNs): captures there see all its traffic. */
  bridgePort: string;
}

/**
 * Several hosts (network namespaces) on one Ethernet segment: a bridge in a
 * namespace of its own, and one veth pair per host. Host i has 198.18.k.(i+1)/24
 * and fd00:0:0:k::(i+1)/64 (k random per LAN); the addresses exist only in
 * these namespaces. Everything is removed in destroy(), when the constructor
 * fails half-way, and at process exit.
 *
 *   const lan = new TestLan(3);
 *   try { lan.nft(lan.hosts[1], nftDrop('input', 'tcp dport 9')); ... } finally { lan.destroy(); }
 */
export class TestLan {
  readonly hosts: LanHost[] = [];
  /** The namespace holding the bridge (named `ftbr0`). */
  readonly bridgeNs: string;
  readonly subnet: number;
  private destroyed = false;
  private readonly namespaces: string[] = [];
  private readonly children = processGroup();
  private readonly forget: () => void;

  constructor(count = 3) {
    if (count < 1 || count > 200) throw new Error(`TestLan: 1 to 200 hosts, not ${count}`);
    const tag = `fl${process.pid % 10000}${Math.random().toString(36).slice(2, 6)}`;
    this.subnet = 1 + Math.floor(Math.random() * 250);
    this.bridgeNs = `${tag}br`;
    this.forget = leftover(`network namespaces ${tag}*`, () => this.destroy());
    try {
      this.addNamespace(this.bridgeNs);
      ip('-n', this.bridgeNs, 'link', 'add', 'name', 'ftbr0', 'type', 'bridge');
      ip('-n', this.bridgeNs, 'link', 'set', 'ftbr0', 'up');
      for (let i = 0; i < count; i++) {
        const ns = `${tag}h${i}`;
        const h: LanHost = {
          ns,
          index: i,
          ipv4: `198.18.${this.subnet}.${i + 1}`,
          ipv6: `fd00:0:0:${this.subnet.toString(16)}::${(i + 1).toString(16)}`,
          prefix: ['ip', 'netns', 'exec', ns],
          dev: 'eth0',
          bridgePort: `p${i}`,
        };
        this.addNamespace(ns);
        ip('link', 'add', 'name', h.bridgePort, 'netns', this.bridgeNs, 'type', 'veth', 'peer', 'name', h.dev, 'netns', ns);
        ip('-n', this.bridgeNs, 'link', 'set', h.bridgePort, 'master', 'ftbr0');
        ip('-n', this.bridgeNs, 'link', 'set', h.bridgePort, 'up');
        ip('-n', ns, 'addr', 'add', `${h.ipv4}/24`, 'dev', h.dev);
        ip('-n', ns, '-6', 'addr', 'add', `${h.ipv6}/64`, 'dev', h.dev, 'nodad');
        ip('-n', ns, 'link', 'set', h.dev, 'up');
        this.hosts.push(h);
      }
    } catch (e) {
      this.destroy();
      throw e;
    }
  }

  private addNamespace(ns: string): void {
    ip('netns', 'add', ns);
    this.namespaces.push(ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  }

  /** Runs cmd inside host h (or the bridge namespace) to completion; returns stdout. */
  exec(h: TestHost | string, cmd: string, args: string[], input?: string): string {
    const ns = typeof h === 'string' ? h : h.ns;
    return execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  }

  /** Sets sysctls inside host h, e.g. { 'net.core.somaxconn': 65535 }. */
  sysctl(h: TestHost, values: Record<string, string | number>): void {
    for (const [k, v] of Object.entries(values)) this.exec(h, 'sysctl', ['-q', '-w', `${k}=${v}`]);
  }

  /** Loads an nftables ruleset (nft -f syntax, e.g. from nftDrop) inside host h. */
  nft(h: TestHost, ruleset: string): void {
    this.exec(h, 'nft', ['-f', '-'], ruleset);
  }

  /** Deletes the nftables table `name` (family inet) inside host h, if present. */
  nftDelete(h: TestHost, name: string): void {
    try {
      this.exec(h, 'nft', ['delete', 'table', 'inet', name]);
    } catch {
      /* not there */
    }
  }

  /** Spawns cmd inside host h (or the bridge namespace); destroy() kills it if it still runs. */
  spawnIn(h: TestHost | string, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    return this.children.spawn('ip', ['netns', 'exec', typeof h === 'string' ? h : h.ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.children.killAll();
    for (const ns of this.namespaces.reverse()) {
      try {
        ip('netns', 'del', ns);
      } catch {
        /* already gone */
      }
    }
    this.forget();
  }
}

/*
 * nftables rulesets for packet loss inside a host. Each is one `inet` table
 * (named by the caller, so a test can delete it again with nftDelete) with one
 * base chain on the given hook. `match` is an nft expression such as
 * "tcp dport 9" or "ip6 saddr fd00::1 tcp sport 8080".
 */

/** Silently drops what matches. */
export function nftDrop(table: string, hook: 'input' | 'output', match: string): string {
  return `table inet ${table} {\n chain c {\n  type filter hook ${hook} priority -10;\n  ${match} counter drop\n }\n}\n`;
}

/** Answers what matches with a TCP RST (from the packet's destination), and drops it. */
export function nftRejectReset(table: string, match: string): string {
  return `table inet ${table} {\n chain c {\n  type filter hook input priority -10;\n  meta l4proto tcp ${match} counter reject with tcp reset\n }\n}\n`;
}

/** Answers what matches with an ICMP host unreachable (ICMPv6 address unreachable), and drops it. */
export function nftRejectUnreachable(table: string, match: string): string {
  return `table inet ${table} {\n chain c {\n  type filter hook input priority -10;\n  ${match} counter reject with icmpx type host-unreachable\n }\n}\n`;
}

/**
 * Drops the first SYN-ACK of every connection from `port` (a 4-tuple is
 * remembered for 5 minutes): the handshake completes only with a
 * retransmitted SYN-ACK. On `input` the host receiving the SYN-ACK (the
 * client) never sees the first one; the sender's hooks did see it.
 */
export function nftDropFirstSynAck(table: string, hook: 'input' | 'output', port: number): string {
  const rule = (ipf: 'ip' | 'ip6', set: string) =>
    `  tcp flags & (syn | ack) == (syn | ack) tcp sport ${port} ${ipf} saddr . tcp sport . ${ipf} daddr . tcp dport != @${set} ` +
    `add @${set} { ${ipf} saddr . tcp sport . ${ipf} daddr . tcp dport } counter drop`;
  return [
    `table inet ${table} {`,
    '  set seen4 { type ipv4_addr . inet_service . ipv4_addr . inet_service; flags dynamic,timeout; timeout 5m; size 65536; }',
    '  set seen6 { type ipv6_addr . inet_service . ipv6_addr . inet_service; flags dynamic,timeout; timeout 5m; size 65536; }',
    ' chain c {',
    `  type filter hook ${hook} priority -10;`,
    rule('ip', 'seen4'),
    rule('ip6', 'seen6'),
    ' }',
    '}',
    '',
  ].join('\n');
}

/**
 * Drops the first SYN of every connection to `port` (a 4-tuple is remembered
 * for 5 minutes): the handshake completes only with a retransmitted SYN. On
 * `input` the server's host never sees the first one; the client's hooks did.
 */
export function nftDropFirstSyn(table: string, port: number): string {
  const rule = (ipf: 'ip' | 'ip6', set: string) =>
    `  tcp flags & (syn | ack) == syn tcp dport ${port} ${ipf} saddr . tcp sport . ${ipf} daddr . tcp dport != @${set} ` +
    `add @${set} { ${ipf} saddr . tcp sport . ${ipf} daddr . tcp dport } counter drop`;
  return [
    `table inet ${table} {`,
    '  set seen4 { type ipv4_addr . inet_service . ipv4_addr . inet_service; flags dynamic,timeout; timeout 5m; size 65536; }',
    '  set seen6 { type ipv6_addr . inet_service . ipv6_addr . inet_service; flags dynamic,timeout; timeout 5m; size 65536; }',
    ' chain c {',
    '  type filter hook input priority -10;',
    rule('ip', 'seen4'),
    rule('ip6', 'seen6'),
    ' }',
    '}',
    '',
  ].join('\n');
}
