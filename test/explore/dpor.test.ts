import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { check } from '../../src/explore/explorer.ts';
import { MEMORY_MODELS } from '../../src/memory/model.ts';
import { LITMUS_TESTS, litmus } from '../../src/scenario/litmus.ts';
import type { Scenario } from '../../src/scenario/define.ts';
import { cas32, load32, store32, type SimCode } from '../../src/engine/ops.ts';
import lostUpdate from '../../scenarios/lost-update.ts';
import counterAtomic from '../../scenarios/counter-atomic.ts';
import { root } from '../helpers.ts';

const goldenFile = path.join(root, 'test/golden/dpor-runs.json');
const golden = JSON.parse(readFileSync(goldenFile, 'utf8')) as Record<string, { dfs: number; dpor: number }>;

/** Three threads that never touch the same memory: one Mazurkiewicz trace. */
const independent: Scenario<{ slots: number[] }> = {
  name: 'independent',
  cpus: 3,
  setup: (m) => ({ slots: [m.alloc(4, 64), m.alloc(4, 64), m.alloc(4, 64)] }),
  threads: [0, 1, 2].map((i) =>
    function* (ctx: { slots: number[] }): SimCode {
      const v: number = yield load32(ctx.slots[i]!);
      yield store32(ctx.slots[i]!, v + 1);
    },
  ),
};

/** A Treiber-style push of two nodes by two threads (a small lock-free structure). */
const treiber: Scenario<{ head: number; nodes: number[] }> = {
  name: 'treiber-push',
  setup: (m) => ({ head: m.alloc(4), nodes: [m.alloc(8), m.alloc(8)] }),
  threads: [0, 1].map((i) =>
    function* (ctx: { head: number; nodes: number[] }): SimCode {
      const node = ctx.nodes[i]!;
      for (;;) {
        const h: number = yield load32(ctx.head);
        yield store32(node, h);
        if ((yield cas32(ctx.head, h, node)) === h) return;
      }
    },
  ),
  outcome: (m, ctx) => `head=${m.read32(ctx.head) === ctx.nodes[0] ? 'n0' : 'n1'}`,
};

const benchmarks: [string, Scenario][] = [
  ['independent', independent as Scenario],
  ['lost-update', lostUpdate],
  ['counter-atomic', counterAtomic],
  ['treiber-push', treiber as Scenario],
  ...LITMUS_TESTS.map((t) => [`litmus ${t.name}`, litmus(t) as Scenario] as [string, Scenario]),
];

/** Known numbers of Mazurkiewicz traces (under SC), counted by hand in the comments. */
const MAZURKIEWICZ: Record<string, number> = {
  independent: 1, // nothing conflicts
  'lost-update': 4, // r0 w0 / r1 w1 on one word: 6 interleavings, r0 r1 commute in two of them
  'counter-atomic': 6, // three fetch_adds on one word all conflict: 3!
  'litmus SB': 3, // two conflicting pairs, the cyclic order is impossible
  'litmus 2+2W': 3,
  'litmus IRIW': 15, // 2^4 read-before/after-write choices minus the cyclic one
};

describe('DPOR', () => {
  const seen: Record<string, { dfs: number; dpor: number }> = {};
  for (const [name, s] of benchmarks) {
    for (const mm of MEMORY_MODELS) {
      it(`${name} under ${mm}: same outcomes and findings as DFS, fewer executions`, () => {
        const dfs = check(s, { strategy: 'dfs', memoryModel: mm, keepGoing: true, shrink: false, stateHash: false });
        const dpor = check(s, { strategy: 'dpor', memoryModel: mm, keepGoing: true, shrink: false });
        assert.equal(dfs.exhausted && dpor.exhausted, true);
        assert.deepEqual([...dpor.outcomes.keys()].sort(), [...dfs.outcomes.keys()].sort());
        assert.equal(dpor.findings > 0, dfs.findings > 0, 'DPOR finds a bug exactly when DFS does');
        if (name === 'counter-atomic') assert.ok(dpor.runs <= dfs.runs, 'every step conflicts: no reduction possible');
        else assert.ok(dpor.runs < dfs.runs, `DPOR ${dpor.runs} vs DFS ${dfs.runs}`);
        const key = `${name}/${mm}`;
        seen[key] = { dfs: dfs.runs, dpor: dpor.runs };
        if (process.env.UPDATE_GOLDEN) {
          golden[key] = seen[key]!;
          writeFileSync(goldenFile, `${JSON.stringify(golden, null, 2)}\n`);
        }
        assert.deepEqual(seen[key], golden[key]);
        if (mm === 'sc' && MAZURKIEWICZ[name] !== undefined) assert.equal(dpor.runs, MAZURKIEWICZ[name], 'one execution per Mazurkiewicz trace');
      });
    }
  }
});
