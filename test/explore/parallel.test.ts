import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkParallel, checkSplitDpor } from '../../src/explore/parallel.ts';
import type { CheckOptions, CheckResult } from '../../src/explore/explorer.ts';
import reclaimStacks from '../../scenarios/reclaim-stacks.ts';
import lostUpdate from '../../scenarios/lost-update.ts';
import { catalogued } from '../helpers.ts';

describe('parallel checks', () => {
  it('report the same finding (run, verdict, replay string) with 1 and 2 workers', async () => {
    const opts = { strategy: 'pct', memoryModel: 'pso', versions: { glibc: '2.9' }, runs: 20000, seed: 1 } as const;
    const one = await checkParallel(reclaimStacks, catalogued('reclaim-stacks'), opts, 1);
    const two = await checkParallel(reclaimStacks, catalogued('reclaim-stacks'), opts, 2);
    assert.equal(one.finding?.verdict.kind, 'hang');
    assert.equal(two.finding?.run, one.finding?.run);
    assert.equal(two.finding?.replay, one.finding?.replay);
  });

  it('split DFS by root subtrees: the same runs, exhaustion and first finding as a sequential DFS', async () => {
    const opts = { strategy: 'dfs', memoryModel: 'sc', versions: { glibc: '2.10' }, preemptionBound: 1, stateHash: false } as const;
    const one = await checkParallel(reclaimStacks, catalogued('reclaim-stacks'), opts, 1);
    const two = await checkParallel(reclaimStacks, catalogued('reclaim-stacks'), opts, 2);
    assert.equal(two.exhausted, true);
    assert.equal(two.runs, one.runs);
    // States cached: each root subtree keeps its own visited set, so 2 and 3 workers explore the same runs.
    const cached = { ...opts, stateHash: true } as const;
    const two2 = await checkParallel(reclaimStacks, catalogued('reclaim-stacks'), cached, 2);
    const three = await checkParallel(reclaimStacks, catalogued('reclaim-stacks'), cached, 3);
    assert.equal(two2.exhausted && three.exhausted, true);
    assert.equal(three.runs, two2.runs);
    assert.ok(two2.runs < one.runs, `${two2.runs} runs with states cached vs ${one.runs}`);
    const lost = await checkParallel(lostUpdate, catalogued('lost-update'), { strategy: 'dfs', memoryModel: 'sc' }, 2);
    const lostSeq = await checkParallel(lostUpdate, catalogued('lost-update'), { strategy: 'dfs', memoryModel: 'sc' }, 1);
    assert.equal(lost.finding?.replay, lostSeq.finding?.replay);
  });

  /** What must not depend on the worker count. */
  const figures = (r: CheckResult) => ({
    finding: r.finding && { run: r.finding.run, verdict: r.finding.verdict.kind, replay: r.finding.replay },
    runs: r.runs,
    steps: r.steps,
    findings: r.findings,
    exhausted: r.exhausted,
    outcomes: [...r.outcomes].sort(),
    coverage: [...r.coverage].sort(),
  });

  it('split DPOR: the same finding, runs and outcomes in this process as with 1, 2 and 3 worker processes', async () => {
    const cases: CheckOptions[] = [
      { strategy: 'dpor', memoryModel: 'sc' },
      { strategy: 'dpor', memoryModel: 'sc', preemptionBound: 1 },
      { strategy: 'dpor', memoryModel: 'sc', preemptionBound: 1, keepGoing: true },
    ];
    for (const opts of cases) {
      const here = figures(await checkSplitDpor(lostUpdate, opts));
      assert.equal(here.finding?.verdict, 'assertion');
      for (const [workers, inProcess] of [[1, false], [2, true], [3, true]] as const) {
        const r = await checkParallel(lostUpdate, catalogued('lost-update'), opts, workers, inProcess);
        assert.deepEqual(figures(r), here, `${JSON.stringify(opts)}, ${workers} workers`);
      }
    }
    const opts: CheckOptions = { strategy: 'dpor', memoryModel: 'sc', versions: { glibc: '2.10' }, preemptionBound: 1 };
    const here = figures(await checkSplitDpor(reclaimStacks, opts));
    assert.equal(here.exhausted, true);
    assert.equal(here.finding, null);
    for (const workers of [2, 3]) assert.deepEqual(figures(await checkParallel(reclaimStacks, catalogued('reclaim-stacks'), opts, workers)), here, `${workers} workers`);
  });

  it('find nothing with 2 workers where 1 finds nothing, over the same runs', async () => {
    const opts = { strategy: 'random', memoryModel: 'pso', versions: { glibc: '2.10' }, runs: 400, seed: 3 } as const;
    const two = await checkParallel(reclaimStacks, catalogued('reclaim-stacks'), opts, 2);
    assert.equal(two.finding, null);
    assert.equal(two.runs, 400);
  });
});
