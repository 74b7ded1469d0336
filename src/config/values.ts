/**
 * Value parsers for the option table: each takes the raw text of a flag or
 * variable and the name it came from ("--flag" or the variable), and returns
 * the typed value or throws a ConfigError naming that source. Pure.
 */
import { FilterSyntaxError } from '../kernel/filter';
import { ConfigError, invalid } from './error';
import { describeLimit, withinLimit, type Limit } from './limits';

/** What `parse(raw, name)` is for every option. */
export type Parser<T> = (raw: string, name: string) => T;

/** A decimal whole number within `limit`. */
export function integer(limit: Limit): Parser<number> {
  return (raw, name) => {
    const v = raw.trim();
    const n = /^\d+$/.test(v) ? Number(v) : NaN;
    if (!withinLimit(limit, n)) throw invalid(name, raw, describeLimit(limit));
    return n;
  };
}

/** One of `values`, case-insensitive. */
export function oneOf<T extends string>(values: readonly T[]): Parser<T> {
  return (raw, name) => {
    const v = raw.trim().toLowerCase();
    if ((values as readonly string[]).includes(v)) return v as T;
    throw invalid(name, raw, `one of ${values.join(', ')}`);
  };
}

/** true or false, case-insensitive (as the SDK reads its boolean variables). */
export function boolean(raw: string, name: string): boolean {
  const v = raw.trim().toLowerCase();
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw invalid(name, raw, 'true or false');
}

/** `url` with any user name and password replaced by "***": what may be shown in a message or a log line. */
export function redactUrl(url: string): string {
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#@]*@/, '$1***@');
}

/** An http:// or https:// URL with a host. A bad one is echoed without its credentials. */
export function endpoint(raw: string, name: string): string {
  const expected = 'an http:// or https:// URL, e.g. http://localhost:4317';
  const v = raw.trim();
  let url: URL | undefined;
  try {
    url = new URL(v);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
    throw invalid(name, redactUrl(raw), expected);
  }
  return v;
}

/** A listen address: host ('' = every address) and port (0 = any free one). */
export interface HostPort {
  host: string;
  port: number;
}

/** "host:port", "[v6]:port" or ":port" (every address); port 0 picks a free one. */
export function hostPort(raw: string, name: string): HostPort {
  const expected = 'host:port, [ipv6]:port or :port, with a port from 0 to 65535';
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]/]*)):(\d{1,5})$/.exec(raw.trim());
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || !(port >= 0 && port <= 65_535)) throw invalid(name, raw, expected);
  return { host: m[1] ?? m[2], port };
}

/**
 * A non-empty filter list (filter.ts parses it); errors name the flag or
 * variable. An empty one is refused: an empty variable is unset, and an
 * empty flag is more likely a shell variable that expanded to nothing than a
 * wish for no filter.
 */
export function filterList<T>(parse: (raw: string) => T[], expected: string): Parser<T[]> {
  return (raw, name) => {
    if (raw.trim() === '') throw invalid(name, raw, `${expected}, not an empty list (leave ${name} out for no filter)`);
    try {
      return parse(raw);
    } catch (e) {
      if (e instanceof FilterSyntaxError) throw new ConfigError(`invalid ${name} '${raw}': ${e.message}; expected ${expected}`);
      throw e;
    }
  };
}

/** A non-blank path. */
export function directory(raw: string, name: string): string {
  if (raw.trim() === '') throw invalid(name, raw, 'a cgroup v2 directory');
  return raw;
}
