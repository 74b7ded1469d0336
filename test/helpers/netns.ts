/**
 * Test "hosts": network namespaces joined by a veth pair, addressed from the
 * benchmarking range 198.18.0.0/15 and the ULA range fd00::/8. The addresses
 * exist only inside these namespaces; nothing here touches the host's own
 * interfaces. Torn down in destroy() and, as a last resort, at process exit.
 */
import { execFileSync, spawn, ChildProcess, SpawnOptions } from 'node:child_process';

const live = new Set<TestNet>();
process.on('exit', () => {
  for (const n of live) n.destroy();
});

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

  constructor() {
    const tag = `ft${process.pid % 10000}${Math.random().toString(36).slice(2, 6)}`;
    const k = 1 + Math.floor(Math.random() * 250);
    this.a = { ns: `${tag}a`, ipv4: `198.18.${k}.1`, ipv6: `fd00:0:0:${k.toString(16)}::1`, prefix: [] };
    this.b = { ns: `${tag}b`, ipv4: `198.18.${k}.2`, ipv6: `fd00:0:0:${k.toString(16)}::2`, prefix: [] };
    live.add(this);
    try {
      for (const h of [this.a, this.b]) {
        ip('netns', 'add', h.ns);
        h.prefix = ['ip', 'netns', 'exec', h.ns];
        ip('-n', h.ns, 'link', 'set', 'lo', 'up');
      }
      ip('link', 'add', `${tag}x`, 'netns', this.a.ns, 'type', 'veth', 'peer', 'name', `${tag}y`, 'netns', this.b.ns);
      this.devs.set(this.a, `${tag}x`);
      this.devs.set(this.b, `${tag}y`);
      for (const [h, dev] of [[this.a, `${tag}x`], [this.b, `${tag}y`]] as const) {
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

  spawnIn(h: TestHost, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    return spawn('ip', ['netns', 'exec', h.ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const h of [this.a, this.b]) {
      try {
        ip('netns', 'del', h.ns);
      } catch {
        /* never created */
      }
    }
    live.delete(this);
  }
}
