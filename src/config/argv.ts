/**
 * Reading the command line and the environment against the option table:
 * which flags were given (node:util parseArgs), which variable is set, and
 * where each value came from. Pure: argv and env come in as data.
 *
 * Flags are parsed with node:util parseArgs, not commander: commander 15 is
 * ESM-only, and Jest (CommonJS, no --experimental-vm-modules) cannot load it,
 * so nothing importing it could be unit-tested.
 */
import { parseArgs } from 'node:util';
import { envString, type Env } from './env';
import { ConfigError } from './error';
import { OPTIONS, type DefaultContext, type OptionSpec } from './options';
import type { FlagOptions } from './types';

/** What the command line asks for before any option is validated. */
export type InfoRequest = 'help' | 'version' | undefined;

/** Whether argv asks for --help/-h or --version/-V (help wins). Pure scan, never throws. */
export function requestedInfo(argv: readonly string[]): InfoRequest {
  let version = false;
  for (const a of argv) {
    if (a === '--') break;
    if (a === '--help' || a === '-h') return 'help';
    if (a === '--version' || a === '-V') version = true;
  }
  return version ? 'version' : undefined;
}

/** The first of `names` set to a non-blank value, with its name. */
export function firstEnv(env: Env, names: readonly string[]): { name: string; raw: string } | undefined {
  for (const name of names) {
    const raw = envString(env, name);
    if (raw !== undefined) return { name, raw };
  }
  return undefined;
}

type FlagValues = Partial<Record<string, string | boolean>>;

function parseFlags(argv: readonly string[]): FlagValues {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'V' },
  };
  for (const spec of Object.values(OPTIONS)) options[spec.flag] = { type: 'string' };
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw flagError(e);
  }
}

/** parseArgs errors, rewritten as one line that names the flag and what it wants. */
function flagError(e: unknown): ConfigError {
  const code = (e as NodeJS.ErrnoException).code;
  const message = e instanceof Error ? e.message : String(e);
  const quoted = /'([^' ]+)/.exec(message)?.[1] ?? '';
  const flag = /--([A-Za-z0-9-]+)/.exec(message)?.[1];
  const spec = Object.values(OPTIONS).find((s) => s.flag === flag);
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return new ConfigError(`unknown option '${quoted}' (see --help)`);
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return new ConfigError(`unexpected argument '${quoted}': flowtap takes options only (see --help)`);
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (spec !== undefined) {
        return new ConfigError(`--${spec.flag} needs a value: ${spec.valueName} (write --${spec.flag}=<value> for one starting with '-')`);
      }
      return new ConfigError(`--${flag ?? quoted} takes no value`);
    default:
      return new ConfigError(message.split('\n')[0]);
  }
}

/** The flag options of one command line and environment. */
export interface OptionReader {
  /** The option's value: its flag, else its first variable set, else its default. Throws ConfigError. */
  value<K extends keyof FlagOptions>(key: K, ctx: DefaultContext): FlagOptions[K];
  /** "--flag", or the variable the value came from; "--flag" for a default. */
  source(key: keyof FlagOptions): string;
  /** The flag or variable the value came from; undefined for a default. */
  givenBy(key: keyof FlagOptions): string | undefined;
}

/** Parses argv (without node and script; --help/--version accepted and ignored) and reads options from it and `env`. */
export function readOptions(argv: readonly string[], env: Env): OptionReader {
  const flags = parseFlags(argv);
  const found = (spec: OptionSpec<unknown>) => {
    const flagValue = flags[spec.flag];
    if (typeof flagValue === 'string') return { name: `--${spec.flag}`, raw: flagValue };
    return firstEnv(env, spec.env);
  };
  return {
    value<K extends keyof FlagOptions>(key: K, ctx: DefaultContext): FlagOptions[K] {
      const spec: OptionSpec<FlagOptions[K]> = OPTIONS[key];
      const given = found(spec as OptionSpec<unknown>);
      if (given !== undefined) return spec.parse(given.raw, given.name);
      return typeof spec.default === 'function' ? (spec.default as (c: DefaultContext) => FlagOptions[K])(ctx) : spec.default;
    },
    source(key) {
      const spec = OPTIONS[key] as OptionSpec<unknown>;
      return found(spec)?.name ?? `--${spec.flag}`;
    },
    givenBy(key) {
      return found(OPTIONS[key] as OptionSpec<unknown>)?.name;
    },
  };
}
