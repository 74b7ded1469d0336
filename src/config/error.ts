/**
 * A bad flag or variable. Its message is always one line: control characters
 * in it (a value may hold a newline) are written as escapes, and a very long
 * value is cut.
 */
export class ConfigError extends Error {
  override name = 'ConfigError';

  constructor(message: string) {
    super(oneLine(message));
  }
}

const MAX_MESSAGE_CHARS = 1000;

/** `message` with control characters escaped and cut to MAX_MESSAGE_CHARS: one line, whatever a value holds. */
export function oneLine(message: string): string {
  const escaped = message.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => {
    const named: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
    return named[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
  return escaped.length > MAX_MESSAGE_CHARS ? `${escaped.slice(0, MAX_MESSAGE_CHARS)}…` : escaped;
}

/** "invalid <name> '<raw>': expected <expected>". */
export function invalid(name: string, raw: string, expected: string): ConfigError {
  return new ConfigError(`invalid ${name} '${raw}': expected ${expected}`);
}
