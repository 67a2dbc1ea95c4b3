import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { check } from '../../src/explore/explorer.ts';
import { KERNEL_PROFILES } from '../../src/kernel/profile.ts';
import getpidCache from '../../scenarios/getpid-cache.ts';

describe('the version set of a finding', () => {
  it("is every profile with glibc's PID cache (2.9, 2.10, 2.24), on every kernel, for getpid-cache/raw-fork", () => {
    const r = check(getpidCache, { strategy: 'dfs', memoryModel: 'sc', variant: 'raw-fork', versions: { glibc: '2.24' } });
    assert.equal(r.finding?.verdict.kind, 'assertion');
    const glibcs = [...new Set(r.finding!.failsWith!.map((v) => v.glibc))].sort();
    const kernels = [...new Set(r.finding!.failsWith!.map((v) => v.kernel))].sort();
    assert.deepEqual(glibcs, ['2.10', '2.24', '2.9']);
    assert.deepEqual(kernels, Object.keys(KERNEL_PROFILES).sort());
  });
});
