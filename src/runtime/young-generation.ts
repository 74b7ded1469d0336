/**
 * Part of the CLI entry (src/cli.ts), and imported by it before any other
 * module: keeps V8's young generation at its initial size (two 1 MiB
 * semi-spaces) unless the user sized it (node --max-semi-space-size /
 * --min-semi-space-size / --semi-space-growth-factor, also through
 * NODE_OPTIONS).
 *
 * Every event makes short-lived garbage and little of it survives, so a grown
 * young generation buys no CPU here (at 50 000 events/s a 2 x 16 MiB one
 * cost ~60 MiB more RSS for the same CPU). The growth factor is one of the
 * few heap flags V8 still honours after start-up, but only from then on:
 * loading grpc-js and the OpenTelemetry SDK alone grows the semi-spaces to
 * 4 MiB each, and V8 does not shrink them again. Set in main(), after the
 * imports, it left an 8 MiB new space; set here, first, 2 MiB (RSS at
 * 50 000 events/s: ~6 MiB less; bench/pipeline-ceiling.mts).
 */
import { setFlagsFromString } from 'node:v8';

const given = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
if (!/--(max|min)-semi-space-size|--semi-space-growth-factor/.test(given)) setFlagsFromString('--semi-space-growth-factor=1');
