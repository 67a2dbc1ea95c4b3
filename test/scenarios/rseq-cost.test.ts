import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { check } from '../../src/explore/explorer.ts';
import rseqCost, { YIELDS } from '../../scenarios/rseq-cost.ts';

describe('rseq-cost (seed 004)', () => {
  it("6.19's fast path saves 12-20% of a switch-heavy workload's simulated time; the fix keeps classic for 32-byte registrations", () => {
    const run = (kernel: string) =>
      check(rseqCost, { strategy: 'dfs', preemptionBound: 0, memoryModel: 'sc', versions: { kernel, glibc: '2.35' }, runs: 1, determinismRuns: 0 }).cost!;
    const classic = run('6.18');
    const opt = run('6.19');
    const fixed = run('7.1');
    const ratio = classic.simNs / opt.simNs;
    assert.ok(ratio > 1.12 && ratio < 1.2, `6.18 / 6.19 = ${ratio.toFixed(3)}`);
    assert.equal(classic.syscalls, 2 * YIELDS);
    assert.equal(fixed.simNs, classic.simNs, 'glibc 2.35 registers 32 bytes: the fix keeps the classic behaviour');
  });
});
