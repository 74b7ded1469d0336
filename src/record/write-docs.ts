/**
 * `make docs`: rewrites the schema tables (docs.ts) of the Markdown files
 * named on the command line, in place; says which ones changed. A build-time
 * entry point, not part of flowtap's runtime.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { rewriteTables, tablesIn } from './docs';

function main(files: string[]): number {
  if (files.length === 0) {
    process.stderr.write('usage: node dist/record/write-docs.js FILE.md...\n');
    return 2;
  }
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    if (tablesIn(text).length === 0) {
      process.stderr.write(`${file}: no <!-- schema:<table>:begin --> markers\n`);
      return 2;
    }
    const out = rewriteTables(text);
    if (out !== text) {
      writeFileSync(file, out);
      process.stdout.write(`${file}: rewritten\n`);
    }
  }
  return 0;
}

process.exitCode = main(process.argv.slice(2));
