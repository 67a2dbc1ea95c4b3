import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { check } from '../../src/explore/explorer.ts';
import { MEMORY_MODELS } from '../../src/memory/model.ts';
import { LITMUS_TESTS, litmus } from '../../src/scenario/litmus.ts';
import { root } from '../helpers.ts';

const goldenFile = path.join(root, 'test/golden/dfs-runs.json');
const golden = JSON.parse(readFileSync(goldenFile, 'utf8')) as Record<string, number>;
const seen: Record<string, number> = {};

describe('litmus tests: exact outcome sets per memory model (exhaustive DFS)', () => {
  for (const t of LITMUS_TESTS) {
    for (const mm of MEMORY_MODELS) {
      it(`${t.name} under ${mm}`, () => {
        const r = check(litmus(t), { strategy: 'dfs', memoryModel: mm });
        expect(r.exhausted).toBe(true);
        expect(r.finding).toBeNull();
        expect([...r.outcomes.keys()].sort()).toEqual([...t.allowed[mm]].sort());
        seen[`${t.name}/${mm}`] = r.runs;
        if (process.env.UPDATE_GOLDEN) {
          golden[`${t.name}/${mm}`] = r.runs;
          writeFileSync(goldenFile, `${JSON.stringify(golden, null, 2)}\n`);
        }
        expect(r.runs).toBe(golden[`${t.name}/${mm}`]);
      });
    }
  }

  it('counts SC interleavings as combinatorics says: SB has C(4,2) = 6, IRIW 6!/(1!1!2!2!) = 180', () => {
    expect(seen['SB/sc']).toBe(6);
    expect(seen['IRIW/sc']).toBe(180);
  });
});
