/**
 * Text forms of the raw network-order address bytes in a record.
 * Node's net module parses addresses but has no formatter, so these are ours.
 */

/** Dotted quad of the 4 bytes at `off`. */
export function formatIPv4(b: Uint8Array, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/** True when the 16 bytes at `off` are an IPv4-mapped IPv6 address (::ffff:a.b.c.d). */
export function isIPv4Mapped(b: Uint8Array, off = 0): boolean {
  for (let i = 0; i < 10; i++) if (b[off + i] !== 0) return false;
  return b[off + 10] === 0xff && b[off + 11] === 0xff;
}

/**
 * RFC 5952 text of the 16 bytes at `off`: lower-case hex, no leading zeros,
 * the longest run of two or more zero groups written as "::" (the first such
 * run on ties), a single zero group written as "0". IPv4-mapped addresses are
 * formatted like any other here; callers turn them into IPv4 first.
 */
export function formatIPv6(b: Uint8Array, off = 0): string {
  let bestStart = -1;
  let bestLen = 0;
  let runStart = -1;
  for (let i = 0; i < 8; i++) {
    if (b[off + 2 * i] === 0 && b[off + 2 * i + 1] === 0) {
      if (runStart < 0) runStart = i;
      const runLen = i - runStart + 1;
      if (runLen > bestLen) {
        bestStart = runStart;
        bestLen = runLen;
      }
    } else {
      runStart = -1;
    }
  }
  if (bestLen < 2) bestStart = -1;

  let out = '';
  for (let i = 0; i < 8;) {
    if (i === bestStart) {
      out += '::';
      i += bestLen;
      continue;
    }
    if (out.length > 0 && out.charCodeAt(out.length - 1) !== 58 /* ':' */) out += ':';
    out += ((b[off + 2 * i] << 8) | b[off + 2 * i + 1]).toString(16);
    i++;
  }
  return out;
}
