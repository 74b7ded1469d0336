/**
 * jest's node environment, plus: a test that fails has what it started
 * (test/helpers/processes.ts spawn, after its own afterEach hooks had their
 * chance) killed at once, and whatever is still running when a test file is
 * done — its afterAll hooks included — is killed and named on stderr, then
 * the cgroups and namespaces it did not remove are removed. A process left
 * behind would otherwise hold its pipes open and keep jest from exiting; a
 * failing test must fail, not hang.
 */
import NodeEnvironment from 'jest-environment-node';
import type { Circus } from '@jest/types';
import { killTracked, processMark, removeLeftovers } from './processes.ts';

export default class ProcessReapingEnvironment extends NodeEnvironment {
  private testMark = 0;

  async handleTestEvent(event: Circus.Event): Promise<void> {
    if (event.name === 'test_started') this.testMark = processMark(this.global);
    if (event.name === 'test_done' && event.test.errors.length > 0) {
      const killed = await killTracked(this.testMark, this.global);
      for (const p of killed) process.stderr.write(`test failed: killed what it left running: ${p.command}\n`);
    }
  }

  override async teardown(): Promise<void> {
    // exits already under way (a process killed in afterAll) are reported by the event loop: let them arrive first
    await new Promise((resolve) => setTimeout(resolve, 100));
    const killed = await killTracked(0, this.global);
    for (const p of killed) process.stderr.write(`test file done: killed what it left running: ${p.command}\n`);
    for (const what of removeLeftovers(this.global)) process.stderr.write(`test file done: removed what it left behind: ${what}\n`);
    await super.teardown();
  }
}
