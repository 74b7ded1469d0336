import { formatIPv4, formatIPv6, isIPv4Mapped } from '../../../src/kernel/address';
import { v6, v4mapped } from '../record/recordfix';

const fmt = (...groups: number[]): string => formatIPv6(Uint8Array.from(v6(...groups)));

describe('formatIPv6 (RFC 5952)', () => {
  it.each([
    ['the unspecified address', [0, 0, 0, 0, 0, 0, 0, 0], '::'],
    ['loopback', [0, 0, 0, 0, 0, 0, 0, 1], '::1'],
    ['a ULA with a trailing host', [0xfd00, 0, 0, 0, 0, 0, 0, 1], 'fd00::1'],
    ['a run at the end', [0xfe80, 0x1, 0, 0, 0, 0, 0, 0], 'fe80:1::'],
    ['the longest run, not the first', [0x2001, 0xdb8, 0, 0, 1, 0, 0, 0], '2001:db8:0:0:1::'],
    ['the first run on ties', [0x2001, 0xdb8, 0, 0, 1, 0, 0, 1], '2001:db8::1:0:0:1'],
    ['no :: for a single zero group', [0x2001, 0xdb8, 0, 1, 1, 1, 1, 1], '2001:db8:0:1:1:1:1:1'],
    ['lower case, no leading zeros', [0x2001, 0x0db8, 0x00ab, 0xcdef, 0x000a, 0x0b0c, 0xffff, 0x0010], '2001:db8:ab:cdef:a:b0c:ffff:10'],
    ['a run in the middle', [0x2001, 0xdb8, 0, 0, 0, 0, 0x2, 0x1], '2001:db8::2:1'],
    ['no zeros', [1, 2, 3, 4, 5, 6, 7, 8], '1:2:3:4:5:6:7:8'],
    ['a leading run longer than a later one', [0, 0, 0, 1, 0, 0, 0x2, 0x3], '::1:0:0:2:3'],
  ])('%s', (_name, groups, text) => {
    expect(fmt(...groups)).toBe(text);
  });

  it('reads at an offset', () => {
    const b = Buffer.concat([Buffer.from([9, 9, 9]), Buffer.from(v6(0xfd00, 0, 0, 0, 0, 0, 0, 0x42))]);
    expect(formatIPv6(b, 3)).toBe('fd00::42');
  });
});

describe('formatIPv4 / isIPv4Mapped', () => {
  it('writes a dotted quad', () => {
    expect(formatIPv4(Uint8Array.from([198, 18, 0, 255]))).toBe('198.18.0.255');
    expect(formatIPv4(Uint8Array.from([1, 10, 0, 0, 5]), 1)).toBe('10.0.0.5');
  });

  it('recognises ::ffff:a.b.c.d and nothing else', () => {
    expect(isIPv4Mapped(Uint8Array.from(v4mapped(10, 0, 0, 5)))).toBe(true);
    expect(isIPv4Mapped(Uint8Array.from(v6(0, 0, 0, 0, 0, 0xfffe, 0x0a00, 5)))).toBe(false);
    expect(isIPv4Mapped(Uint8Array.from(v6(0, 0, 0, 0, 1, 0xffff, 0x0a00, 5)))).toBe(false);
    expect(isIPv4Mapped(Uint8Array.from(v6(0, 0, 0, 0, 0, 0, 0x0a00, 5)))).toBe(false);
  });
});
