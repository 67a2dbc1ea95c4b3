import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkParallel } from '../../src/explore/parallel.ts';
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

  it('find nothing with 2 workers where 1 finds nothing, over the same runs', async () => {
    const opts = { strategy: 'random', memoryModel: 'pso', versions: { glibc: '2.10' }, runs: 400, seed: 3 } as const;
    const two = await checkParallel(reclaimStacks, catalogued('reclaim-stacks'), opts, 2);
    assert.equal(two.finding, null);
    assert.equal(two.runs, 400);
  });
});
