/** The process environment as data: passed in, never read from process.env here. */
export type Env = Readonly<Record<string, string | undefined>>;

/** A variable's value, trimmed; undefined when unset, empty or blank (as the SDK reads env). */
export function envString(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}
