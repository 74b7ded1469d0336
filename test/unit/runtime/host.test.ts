import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cgroupProcessCount } from '../../../src/runtime/host';

describe('cgroupProcessCount', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'flowtap-procs-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('counts the processes of a cgroup and of every cgroup below it', () => {
    // A cgroup tree's shape, in a plain directory: cgroup.procs lists one pid a line.
    writeFileSync(join(root, 'cgroup.procs'), '1\n2\n');
    mkdirSync(join(root, 'a', 'b'), { recursive: true });
    writeFileSync(join(root, 'a', 'cgroup.procs'), '');
    writeFileSync(join(root, 'a', 'b', 'cgroup.procs'), '10\n11\n12\n');
    mkdirSync(join(root, 'c'));
    writeFileSync(join(root, 'c', 'cgroup.procs'), '20\n');
    expect(cgroupProcessCount(root)).toBe(6);
  });

  it('is 0 for an empty cgroup, undefined where there is none', () => {
    writeFileSync(join(root, 'cgroup.procs'), '');
    expect(cgroupProcessCount(root)).toBe(0);
    expect(cgroupProcessCount(join(root, 'missing'))).toBeUndefined();
  });
});
