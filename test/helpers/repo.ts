/**
 * Where the repository is, for the tests (jest, CommonJS) and the
 * benchmarks (ES modules) alike: neither __dirname nor import.meta works in
 * both, so the root is the nearest directory at or above the working
 * directory whose package.json is flowtap's (jest and the Makefile run there).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'flowtap') return dir;
    if (dirname(dir) === dir) throw new Error(`no flowtap package.json at or above ${from}: run from the repository`);
  }
}

export const ROOT = findRoot(process.cwd());
/** The real CLI, as built by `make build`. */
export const CLI = join(ROOT, 'dist', 'cli.js');
export const FIXTURES = join(ROOT, 'test', 'fixtures');
