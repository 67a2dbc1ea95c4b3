import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { check, replayRun } from '../../src/explore/explorer.ts';
import type { StrategyName } from '../../src/scenario/define.ts';
import lostUpdate from '../../scenarios/lost-update.ts';
import counterAtomic from '../../scenarios/counter-atomic.ts';
import { catalogued, hyrum } from '../helpers.ts';

describe('the lost update', () => {
  for (const strategy of ['random', 'pct', 'dfs'] as StrategyName[]) {
    it(`is found by ${strategy}`, () => {
      const r = check(lostUpdate, { strategy, memoryModel: 'sc', runs: 2000 });
      assert.equal(r.finding?.verdict.kind, 'assertion');
      assert.equal(r.finding?.verdict.message, 'counter is 1, expected 2');
      // The replay string replays the same run in this process.
      const again = replayRun(lostUpdate, r.finding!.replay);
      assert.equal(again.verdict?.kind, 'assertion');
      assert.deepEqual(again.trace, r.finding!.trace);
    });
  }

  it("is not found in its fixed twin by exhaustive search under every model", () => {
    for (const memoryModel of ['sc', 'tso', 'pso'] as const) {
      const r = check(counterAtomic, { strategy: 'dfs', memoryModel });
      assert.equal(r.exhausted, true);
      assert.equal(r.finding, null);
      assert.ok(r.runs > 1);
    }
  });

  it('replays to the identical trace in a fresh process', () => {
    const found = hyrum('check', catalogued('lost-update'), '--strategy', 'random', '--seed', '7', '--json');
    assert.equal(found.code, 1);
    const f = JSON.parse(found.stdout).finding;
    const replayed = hyrum('replay', catalogued('lost-update'), f.replay, '--json');
    assert.equal(replayed.code, 1);
    const r = JSON.parse(replayed.stdout);
    assert.deepEqual(r.verdict, f.verdict);
    assert.deepEqual(r.trace, f.trace);
    assert.equal(r.trace.length, 4);
  });
});

describe('exhaustive DFS', () => {
  it('explores C(4,2) = 6 interleavings of the lost update without bound, fewer with a preemption bound', () => {
    const runs = (preemptionBound?: number) =>
      check(lostUpdate, { strategy: 'dfs', memoryModel: 'sc', preemptionBound, keepGoing: true, stateHash: false }).runs;
    assert.equal(runs(), 6);
    // Bound 0: T0 or T1 first, each running to completion.
    assert.equal(runs(0), 2);
    // Bound 1 adds a1 b1 b2 a2 and b1 a1 a2 b2; a1 b1 a2 b2 and b1 a1 b2 a2 need two preemptions.
    assert.equal(runs(1), 4);
  });

  it('reports the same first finding for the same seed (random and PCT are deterministic)', () => {
    for (const strategy of ['random', 'pct'] as const) {
      const a = check(lostUpdate, { strategy, memoryModel: 'tso', seed: 42 });
      const b = check(lostUpdate, { strategy, memoryModel: 'tso', seed: 42 });
      assert.equal(a.finding?.replay, b.finding?.replay);
      assert.equal(a.runs, b.runs);
    }
  });
});
