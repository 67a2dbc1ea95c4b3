import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { check } from '../../src/explore/explorer.ts';
import getpidCost from '../../scenarios/getpid-cost.ts';

describe('getpid-cost (seed 000)', () => {
  it('costs 20-30% more simulated time per call on glibc 2.25 than on 2.24, one syscall per call', () => {
    const run = (glibc: string) => check(getpidCost, { strategy: 'dfs', memoryModel: 'sc', versions: { glibc }, determinismRuns: 0 }).cost!;
    const before = run('2.24');
    const after = run('2.25');
    const ratio = after.simNs / before.simNs;
    assert.ok(ratio > 1.2 && ratio < 1.3, `2.25 / 2.24 = ${ratio.toFixed(3)}`);
    assert.equal(before.syscalls, 0, 'glibc 2.24 answers from its cache');
    assert.equal(after.syscalls, 201, 'glibc 2.25 makes one system call per getpid()');
  });
});
