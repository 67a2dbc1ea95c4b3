import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { check } from '../../src/explore/explorer.ts';
import { MEMORY_MODELS } from '../../src/memory/model.ts';
import { LITMUS_TESTS, litmus } from '../../src/scenario/litmus.ts';
import { root } from '../helpers.ts';

const goldenFile = path.join(root, 'test/golden/dfs-runs.json');
const golden = JSON.parse(readFileSync(goldenFile, 'utf8')) as Record<string, number>;
/** Stateful DFS (states fingerprinted, revisits pruned): runs and distinct states per test. */
const statefulFile = path.join(root, 'test/golden/dfs-stateful-runs.json');
const stateful = JSON.parse(readFileSync(statefulFile, 'utf8')) as Record<string, { runs: number; states: number }>;
const seen: Record<string, number> = {};

describe('litmus tests: exact outcome sets per memory model (exhaustive DFS)', () => {
  for (const t of LITMUS_TESTS) {
    for (const mm of MEMORY_MODELS) {
      it(`${t.name} under ${mm}`, () => {
        const r = check(litmus(t), { strategy: 'dfs', memoryModel: mm, stateHash: false });
        assert.equal(r.exhausted, true);
        assert.equal(r.finding, null);
        assert.deepEqual([...r.outcomes.keys()].sort(), [...t.allowed[mm]].sort());
        seen[`${t.name}/${mm}`] = r.runs;
        if (process.env.UPDATE_GOLDEN) {
          golden[`${t.name}/${mm}`] = r.runs;
          writeFileSync(goldenFile, `${JSON.stringify(golden, null, 2)}\n`);
        }
        assert.equal(r.runs, golden[`${t.name}/${mm}`]);
      });
    }
  }

  for (const t of LITMUS_TESTS) {
    for (const mm of MEMORY_MODELS) {
      it(`${t.name} under ${mm}, states cached: the same outcomes in no more runs`, () => {
        const r = check(litmus(t), { strategy: 'dfs', memoryModel: mm, stateHash: true });
        assert.equal(r.exhausted, true);
        assert.deepEqual([...r.outcomes.keys()].sort(), [...t.allowed[mm]].sort());
        assert.ok(r.runs <= golden[`${t.name}/${mm}`]!, `${r.runs} runs with states cached, ${golden[`${t.name}/${mm}`]} without`);
        const got = { runs: r.runs, states: r.states ?? 0 };
        if (process.env.UPDATE_GOLDEN) {
          stateful[`${t.name}/${mm}`] = got;
          writeFileSync(statefulFile, `${JSON.stringify(stateful, null, 2)}\n`);
        }
        assert.deepEqual(got, stateful[`${t.name}/${mm}`]);
      });
    }
  }

  it('counts SC interleavings as combinatorics says: SB has C(4,2) = 6, IRIW 6!/(1!1!2!2!) = 180', () => {
    assert.equal(seen['SB/sc'], 6);
    assert.equal(seen['IRIW/sc'], 180);
  });
});
