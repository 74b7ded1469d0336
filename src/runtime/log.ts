/**
 * flowtap's own diagnostics: JSON lines on an injected stream (stderr in
 * production), never mixed with records.
 *   {"time":"2024-05-01T12:00:00.000Z","level":"info","msg":"ready",...fields}
 */

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type LogFields = Record<string, unknown>;

export interface Log {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** Whether a line at `level` would be written. */
  enabled(level: LogLevel): boolean;
}

export interface LineSink {
  write(chunk: string): unknown;
}

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** JSON.stringify that writes bigints as decimal strings and Errors as their message. */
function replacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) {
    const code = (value as NodeJS.ErrnoException).code;
    return code === undefined ? value.message : { message: value.message, code };
  }
  return value;
}

export function createLog(out: LineSink, level: LogLevel = 'info', now: () => Date = () => new Date()): Log {
  const min = RANK[level];
  const write = (lvl: LogLevel, msg: string, fields?: LogFields): void => {
    if (RANK[lvl] < min) return;
    // time, level and msg come first and a field cannot overwrite them.
    const line: LogFields = { time: now().toISOString(), level: lvl, msg };
    if (fields !== undefined) {
      for (const [k, v] of Object.entries(fields)) if (!(k in line)) line[k] = v;
    }
    out.write(`${JSON.stringify(line, replacer)}\n`);
  };
  return {
    debug: (msg, fields) => write('debug', msg, fields),
    info: (msg, fields) => write('info', msg, fields),
    warn: (msg, fields) => write('warn', msg, fields),
    error: (msg, fields) => write('error', msg, fields),
    enabled: (lvl) => RANK[lvl] >= min,
  };
}
