/**
 * The real native addon (built from bpf/flowtap.h) against the TypeScript
 * decoder's constants: every sizeof/offsetof the addon reports must equal what
 * src/kernel/layout.ts reads, and the other way round.
 */
import { join } from 'node:path';
import { loadBinding } from '../../src/kernel/probe';
import { LAYOUT, ABI_VERSION } from '../../src/kernel/layout';

describe('record layout: native addon (C structs) vs TypeScript decoder', () => {
  const binding = loadBinding(join(__dirname, '..', '..'));

  it('has the same ABI version', () => {
    expect(binding.abiVersion).toBe(ABI_VERSION);
  });

  it('has the same size and offset for every struct field', () => {
    expect(LAYOUT).toEqual(binding.layout());
  });

  it('names the kernel counters', () => {
    expect(binding.counterNames).toContain('ringbuf_full_flow');
    expect(binding.counterNames).toContain('skip_truncated');
  });
});
