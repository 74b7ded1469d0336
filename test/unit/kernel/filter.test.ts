import { ConfigError, helpText, parseConfig } from '../../../src/config/config';
import {
  FilterSyntaxError,
  filtersActive,
  kernelFilters,
  parseAddress,
  parseCidr,
  parseCidrList,
  parsePortList,
  probeFilters,
  type ProbeFilters,
} from '../../../src/kernel/filter';
import * as L from '../../../src/kernel/layout';

const MOUNTINFO = '29 24 0:26 / /sys/fs/cgroup rw,relatime shared:9 - cgroup2 cgroup2 rw\n';

describe('parsePortList', () => {
  it('reads ports and inclusive ranges, with spaces around items', () => {
    expect(parsePortList('22')).toEqual([[22, 22]]);
    expect(parsePortList('22,8000-8100, 443 ,1-65535')).toEqual([
      [22, 22],
      [8000, 8100],
      [443, 443],
      [1, 65535],
    ]);
    expect(parsePortList('9000 - 9001')).toEqual([[9000, 9001]]);
  });

  it('an empty list is no ports', () => {
    expect(parsePortList('')).toEqual([]);
    expect(parsePortList('   ')).toEqual([]);
  });

  it.each([
    ['0', /'0' is not a port/],
    ['65536', /'65536' is not a port/],
    ['http', /'http' is not a port/],
    ['22,,80', /empty item at position 2/],
    ['22,', /empty item/],
    ['100-10', /ends before it starts/],
    ['1-2-3', /is not a port/],
    ['-5', /is not a port/],
    ['8080.5', /is not a port/],
  ])('refuses %j', (raw, re) => {
    expect(() => parsePortList(raw)).toThrow(FilterSyntaxError);
    expect(() => parsePortList(raw)).toThrow(re);
  });
});

describe('parseAddress', () => {
  it('reads IPv4 and every IPv6 spelling into network-order bytes', () => {
    expect(Array.from(parseAddress('10.1.2.3')!)).toEqual([10, 1, 2, 3]);
    const v6 = (s: string) => Buffer.from(parseAddress(s)!).toString('hex');
    expect(v6('::')).toBe('0'.repeat(32));
    expect(v6('::1')).toBe('0'.repeat(31) + '1');
    expect(v6('fd00::')).toBe('fd00' + '0'.repeat(28));
    expect(v6('2001:db8::8:800:200c:417a')).toBe('20010db80000000000080800200c417a');
    expect(v6('1:2:3:4:5:6:7:8')).toBe('00010002000300040005000600070008');
    expect(v6('::ffff:10.0.0.1')).toBe('00000000000000000000ffff0a000001');
    expect(v6('::10.0.0.1')).toBe('0000000000000000000000000a000001');
    expect(v6('1:2:3:4:5:6:10.0.0.1')).toBe('0001000200030004000500060a000001');
  });

  it('refuses what is not an address, and zones', () => {
    for (const s of ['', '10.0.0', '10.0.0.256', 'fe80::1%eth0', ':::', 'example.com', '1::2::3']) expect(parseAddress(s)).toBeUndefined();
  });
});

describe('parseCidr / parseCidrList', () => {
  it('canonical prefixes: RFC 5952 for IPv6, a bare address is one host', () => {
    expect(parseCidr('10.0.0.0/8')).toBe('10.0.0.0/8');
    expect(parseCidr('10.1.2.3')).toBe('10.1.2.3/32');
    expect(parseCidr('0.0.0.0/0')).toBe('0.0.0.0/0');
    expect(parseCidr('FD00:0000::/8')).toBe('fd00::/8');
    expect(parseCidr('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1/128');
    expect(parseCidr('::/0')).toBe('::/0');
  });

  it('an IPv4-mapped IPv6 prefix becomes its IPv4 prefix (flows are never IPv4-mapped)', () => {
    expect(parseCidr('::ffff:10.0.0.0/104')).toBe('10.0.0.0/8');
    expect(parseCidr('::ffff:192.0.2.7')).toBe('192.0.2.7/32');
    // shorter than /96 it is not an IPv4 prefix: kept as IPv6
    expect(parseCidr('::/64')).toBe('::/64');
  });

  it.each([
    ['10.0.0.1/8', /host bits set \(did you mean 10\.0\.0\.0\/8\?\)/],
    ['fd00::1/8', /did you mean fd00::\/8\?/],
    ['10.0.0.0/33', /prefix length must be 0 to 32/],
    ['fd00::/129', /0 to 128/],
    ['10.0.0.0/', /prefix length/],
    ['10.0.0.0/x', /prefix length/],
    ['example.com/8', /not an IPv4 or IPv6 address/],
    ['10.0.0.0/8/8', /prefix length/],
  ])('refuses %j', (raw, re) => {
    expect(() => parseCidr(raw)).toThrow(FilterSyntaxError);
    expect(() => parseCidr(raw)).toThrow(re);
  });

  it('reads a comma-separated mix of families', () => {
    expect(parseCidrList('10.0.0.0/8, 172.16.0.0/12,192.168.0.0/16,fd00::/8,::1')).toEqual([
      '10.0.0.0/8',
      '172.16.0.0/12',
      '192.168.0.0/16',
      'fd00::/8',
      '::1/128',
    ]);
    expect(parseCidrList('')).toEqual([]);
    expect(() => parseCidrList('10.0.0.0/8,,fd00::/8')).toThrow(/empty item at position 2/);
  });
});

describe('filter options in the configuration', () => {
  it('default to no filter', () => {
    const c = parseConfig([], {}, MOUNTINFO);
    expect(probeFilters(c)).toEqual({ direction: 'both', includePorts: [], excludePorts: [], includeCidrs: [], excludeCidrs: [] });
    expect(filtersActive(probeFilters(c))).toBe(false);
  });

  it('come from flags and from FLOWTAP_* variables; the flag wins', () => {
    const env = {
      FLOWTAP_DIRECTION: 'incoming',
      FLOWTAP_INCLUDE_PORTS: '443',
      FLOWTAP_EXCLUDE_PORTS: '22,8000-8100',
      FLOWTAP_INCLUDE_CIDRS: '198.18.0.0/15',
      FLOWTAP_EXCLUDE_CIDRS: '10.0.0.0/8,fd00::/8',
    };
    expect(probeFilters(parseConfig([], env, MOUNTINFO))).toEqual({
      direction: 'incoming',
      includePorts: [[443, 443]],
      excludePorts: [
        [22, 22],
        [8000, 8100],
      ],
      includeCidrs: ['198.18.0.0/15'],
      excludeCidrs: ['10.0.0.0/8', 'fd00::/8'],
    });
    const c = parseConfig(['--direction', 'OUTGOING', '--exclude-ports', '9090', '--include-cidrs', '10.0.0.0/8'], env, MOUNTINFO);
    expect(c.direction).toBe('outgoing');
    expect(c.excludePorts).toEqual([[9090, 9090]]);
    expect(c.includeCidrs).toEqual(['10.0.0.0/8']);
    expect(c.includePorts).toEqual([[443, 443]]);
    expect(filtersActive(probeFilters(c))).toBe(true);
  });

  it.each([
    [['--exclude-ports', '22,ssh'], {}, /^invalid --exclude-ports '22,ssh': 'ssh' is not a port from 1 to 65535; expected comma-separated ports and ranges/],
    [[], { FLOWTAP_INCLUDE_PORTS: '10-1' }, /^invalid FLOWTAP_INCLUDE_PORTS '10-1': range '10-1' ends before it starts/],
    [['--include-cidrs', '10.0.0.1/8'], {}, /^invalid --include-cidrs '10\.0\.0\.1\/8': .*did you mean 10\.0\.0\.0\/8/],
    [[], { FLOWTAP_EXCLUDE_CIDRS: 'fd00::/200' }, /^invalid FLOWTAP_EXCLUDE_CIDRS/],
    [['--direction', 'in'], {}, /^invalid --direction 'in': expected one of incoming, outgoing, both/],
    // an empty flag is refused (an empty variable is unset): most often a shell variable that expanded to nothing
    [['--include-ports', ''], {}, /^invalid --include-ports '': expected comma-separated ports and ranges, e\.g\. 22,8000-8100, not an empty list/],
    [
      ['--exclude-cidrs', ' '],
      {},
      /^invalid --exclude-cidrs ' ': expected comma-separated IPv4\/IPv6 prefixes.*, not an empty list \(leave --exclude-cidrs out for no filter\)$/,
    ],
    [[], { FLOWTAP_DIRECTION: 'up' }, /^invalid FLOWTAP_DIRECTION/],
  ])('%j %j: a one-line ConfigError naming it', (argv, env, re) => {
    let error: unknown;
    try {
      parseConfig(argv as string[], env as Record<string, string>, MOUNTINFO);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(re);
    expect((error as Error).message).not.toContain('\n');
  });

  it('are in --help with their variables', () => {
    const help = helpText();
    for (const s of [
      '--direction incoming|outgoing|both',
      '--include-ports <ports>',
      '--exclude-ports <ports>',
      '--include-cidrs <cidrs>',
      '--exclude-cidrs <cidrs>',
      'FLOWTAP_EXCLUDE_CIDRS',
      'default any port',
    ]) {
      expect(help).toContain(s);
    }
  });
});

describe('kernelFilters: what the kernel programs get', () => {
  const NONE: ProbeFilters = { direction: 'both', includePorts: [], excludePorts: [], includeCidrs: [], excludeCidrs: [] };
  const skipped = (portSkip: Buffer, p: number) => (portSkip.readBigUInt64LE((p >> 6) * 8) >> BigInt(p & 63)) & 1n;
  /** The cidr4/cidr6 entries as "prefix/len → verdict". */
  const entries = (keys: Buffer, values: Buffer, keySize: number): Record<string, string> => {
    const out: Record<string, string> = {};
    for (let i = 0; i * keySize < keys.length; i++) {
      const len = keys.readUInt32LE(i * keySize);
      const addr = keys.subarray(i * keySize + L.CIDR_KEY_ADDR, (i + 1) * keySize);
      const text = addr.length === 4 ? Array.from(addr).join('.') : parseCidr(`${addr.toString('hex').match(/.{4}/g)!.join(':')}/${len}`).split('/')[0];
      out[`${text}/${len}`] = values.readUInt32LE(i * 4) === L.VERDICT_REPORT ? 'report' : 'skip';
    }
    return out;
  };

  it('no filter: everything off, one load on the SYN-ACK path', () => {
    const k = kernelFilters(NONE);
    expect(k).toMatchObject({ filter: 0, directions: 0b110, portFilter: 0, cidr4Filter: 0, cidr6Filter: 0, cidrUnmatched: L.VERDICT_REPORT });
    expect(k.portSkip).toHaveLength(L.PORT_SKIP_BYTES);
    expect(k.portSkip.every((b) => b === 0)).toBe(true);
    expect(k.cidr4Keys).toHaveLength(0);
    expect(k.cidr6Values).toHaveLength(0);
  });

  it('direction: the bit of each direction reported', () => {
    expect(kernelFilters({ ...NONE, direction: 'incoming' })).toMatchObject({ filter: 1, directions: 1 << L.DIR_INCOMING });
    expect(kernelFilters({ ...NONE, direction: 'outgoing' })).toMatchObject({ filter: 1, directions: 1 << L.DIR_OUTGOING });
  });

  it('ports: an include list skips every other port, an exclude wins; bounds 1 and 65535', () => {
    const k = kernelFilters({
      ...NONE,
      includePorts: [
        [1, 1],
        [8000, 8100],
        [65535, 65535],
      ],
      excludePorts: [[8080, 8080]],
    });
    expect(k).toMatchObject({ filter: 1, portFilter: 1 });
    for (const p of [1, 8000, 8079, 8081, 8100, 65535]) expect([p, skipped(k.portSkip, p)]).toEqual([p, 0n]);
    for (const p of [0, 2, 7999, 8080, 8101, 65534]) expect([p, skipped(k.portSkip, p)]).toEqual([p, 1n]);
    const ex = kernelFilters({ ...NONE, excludePorts: [[22, 22]] });
    expect([21, 22, 23].map((p) => skipped(ex.portSkip, p))).toEqual([0n, 1n, 0n]);
  });

  it('CIDRs: each prefix stores its final verdict; with an include list, unmatched peers are skipped', () => {
    const k = kernelFilters({ ...NONE, includeCidrs: ['10.0.0.0/8', 'fd00::/8'], excludeCidrs: ['10.1.0.0/16', '10.1.2.0/24', '192.168.0.0/16'] });
    expect(k).toMatchObject({ filter: 1, cidr4Filter: 1, cidr6Filter: 1, cidrUnmatched: L.VERDICT_SKIP });
    expect(entries(k.cidr4Keys, k.cidr4Values, L.CIDR4_KEY_SIZE)).toEqual({
      '10.0.0.0/8': 'report',
      '10.1.0.0/16': 'skip',
      '10.1.2.0/24': 'skip',
      '192.168.0.0/16': 'skip',
    });
    expect(entries(k.cidr6Keys, k.cidr6Values, L.CIDR6_KEY_SIZE)).toEqual({ 'fd00::/8': 'report' });
  });

  it('CIDRs: an include inside an exclude stays skipped (exclude always wins); a prefix in both lists once', () => {
    const k = kernelFilters({ ...NONE, includeCidrs: ['10.1.0.0/16', '10.0.0.0/8'], excludeCidrs: ['10.0.0.0/8'] });
    expect(entries(k.cidr4Keys, k.cidr4Values, L.CIDR4_KEY_SIZE)).toEqual({ '10.1.0.0/16': 'skip', '10.0.0.0/8': 'skip' });
    expect(k.cidr4Values).toHaveLength(8);
  });

  it('CIDRs: exclude only: unmatched peers are reported, only the IPv6 trie used for an IPv6 list', () => {
    const k = kernelFilters({ ...NONE, excludeCidrs: ['::/0'] });
    expect(k).toMatchObject({ filter: 1, cidr4Filter: 0, cidr6Filter: 1, cidrUnmatched: L.VERDICT_REPORT });
    expect(entries(k.cidr6Keys, k.cidr6Values, L.CIDR6_KEY_SIZE)).toEqual({ '::/0': 'skip' });
    expect(Array.from(k.cidr6Keys)).toEqual(new Array(L.CIDR6_KEY_SIZE).fill(0));
  });

  it('the key bytes: prefixlen little-endian, then the address in network order', () => {
    const k = kernelFilters({ ...NONE, includeCidrs: ['198.18.0.0/15'] });
    expect(Array.from(k.cidr4Keys)).toEqual([15, 0, 0, 0, 198, 18, 0, 0]);
    expect(Array.from(k.cidr4Values)).toEqual([L.VERDICT_REPORT, 0, 0, 0]);
  });
});
