/**
 * No import cycle in src/: every relative import (type-only ones included:
 * a cycle of types is still two modules that cannot be understood apart) is
 * followed, and any module reached again on its own path is a cycle.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const SRC = resolve(__dirname, '..', '..', 'src');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) return sources(full);
    return name.endsWith('.ts') ? [full] : [];
  });
}

/** The src/ files `file` imports or re-exports from, relative specifiers only. */
export function importsOf(file: string, text: string): string[] {
  const out: string[] = [];
  const re = /(?:^|\n)\s*(?:import|export)\s[^'";]*?from\s*['"](\.[^'"]*)['"]|(?:^|\n)\s*import\s*['"](\.[^'"]*)['"]/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const spec = m[1] ?? m[2];
    const base = resolve(dirname(file), spec);
    const found = [`${base}.ts`, join(base, 'index.ts')].find((f) => {
      try {
        return statSync(f).isFile();
      } catch {
        return false;
      }
    });
    if (found !== undefined) out.push(found);
  }
  return out;
}

/** Every cycle, each as the files around it (shortest rotation first). */
function cycles(graph: Map<string, string[]>): string[][] {
  const found = new Map<string, string[]>();
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const g of graph.get(f) ?? []) {
      if (state.get(g) === 'open') {
        const cycle = stack.slice(stack.indexOf(g));
        const key = [...cycle].sort().join(' ');
        if (!found.has(key)) found.set(key, cycle);
      } else if (state.get(g) === undefined) {
        visit(g);
      }
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) if (state.get(f) === undefined) visit(f);
  return [...found.values()];
}

describe('src/ imports', () => {
  const graph = new Map(sources(SRC).map((f) => [f, importsOf(f, readFileSync(f, 'utf8'))]));

  it('finds the imports it walks (the walker itself works)', () => {
    const cli = graph.get(join(SRC, 'cli.ts')) ?? [];
    expect(cli).toContain(join(SRC, 'config', 'config.ts'));
    expect(cli).toContain(join(SRC, 'runtime', 'young-generation.ts'));
    const fake = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
    ]);
    expect(cycles(fake)).toEqual([['a', 'b', 'c']]);
  });

  it('has no cycle, type-only imports included', () => {
    const names = cycles(graph).map((c) => [...c, c[0]].map((f) => relative(SRC, f)).join(' → '));
    expect(names).toEqual([]);
  });
});
