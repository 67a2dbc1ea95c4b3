import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { check, runConfigOf, type CheckOptions } from '../../src/explore/explorer.ts';
import { checkSplitDpor, nextPhase, SplitSearch, splitWalk, type SubtreeTally } from '../../src/explore/parallel.ts';
import type { Subtree } from '../../src/explore/dpor.ts';
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

/**
 * Split DPOR in this process at a given depth, phase after phase; `order` permutes each phase's
 * subtrees and `searchers` deals them round-robin to that many searches, as workers would take them.
 */
async function splitSearch(s: Scenario, opts: CheckOptions, depth: number, order = (n: number) => [...Array(n).keys()], searchers = 1): Promise<SubtreeTally[]> {
  const cfg = runConfigOf(s, opts);
  const bound = opts.preemptionBound ?? Infinity;
  const limits = { keepGoing: true, maxRuns: Infinity, deadline: Infinity, stop: { above: Infinity } };
  const searches = Array.from({ length: searchers }, () => new SplitSearch(s, cfg, bound, depth, limits));
  const tallies: SubtreeTally[] = [];
  const searched = new Set<string>();
  for (let phase = splitWalk(s, cfg, bound, [depth]).subtrees, offset = 0; phase.length > 0; ) {
    const demands: Subtree[] = [];
    for (const [k, i] of order(phase.length).entries()) {
      const r = await searches[k % searchers]!.explore(offset + i, phase[i]!);
      assert.equal(r.exhausted, true);
      tallies.push(r.tally!);
      demands.push(...r.demands);
    }
    offset += phase.length;
    phase = nextPhase(demands, searched);
  }
  return tallies.sort((a, b) => a.index - b.index);
}

const outcomesOf = (tallies: readonly SubtreeTally[]) => [...new Set(tallies.flatMap((t) => t.outcomes.map(([o]) => o)))].sort();

describe('split DPOR', () => {
  for (const [name, s] of benchmarks) {
    for (const mm of MEMORY_MODELS) {
      it(`${name} under ${mm}: plain DPOR's outcomes and findings at every split depth, fewer executions than DFS`, async () => {
        const opts: CheckOptions = { strategy: 'dpor', memoryModel: mm, keepGoing: true, shrink: false };
        const plain = check(s, opts);
        for (const depth of [1, 2, 3, 5, 8]) {
          const tallies = await splitSearch(s, opts, depth);
          assert.deepEqual(outcomesOf(tallies), [...plain.outcomes.keys()].sort(), `split at depth ${depth}`);
          assert.equal(tallies.some((t) => t.findings > 0), plain.findings > 0, `split at depth ${depth}`);
        }
        const split = await checkSplitDpor(s, opts);
        assert.equal(split.exhausted, true);
        assert.deepEqual([...split.outcomes.keys()].sort(), [...plain.outcomes.keys()].sort());
        assert.equal(split.findings > 0, plain.findings > 0);
        const dfs = golden[`${name}/${mm}`]!.dfs;
        if (name === 'counter-atomic') assert.ok(split.runs <= dfs);
        else assert.ok(split.runs < dfs, `split DPOR ${split.runs} vs DFS ${dfs}`);
      });
    }
  }

  it('gives the same for a subtree whoever searches it, and in whatever order', async () => {
    const cases: [Scenario, CheckOptions][] = [
      [lostUpdate, { strategy: 'dpor', memoryModel: 'tso' }],
      [treiber as Scenario, { strategy: 'dpor', memoryModel: 'pso', preemptionBound: 1 }],
      [litmus(LITMUS_TESTS.find((t) => t.name === 'IRIW')!) as Scenario, { strategy: 'dpor', memoryModel: 'pso', preemptionBound: 1 }],
      [litmus(LITMUS_TESTS.find((t) => t.name === '2+2W')!) as Scenario, { strategy: 'dpor', memoryModel: 'pso', preemptionBound: 2 }],
    ];
    const reversed = (n: number) => [...Array(n).keys()].reverse();
    const oddsFirst = (n: number) => [...Array(n).keys()].sort((a, b) => (b % 2) - (a % 2) || a - b);
    for (const [s, opts] of cases) {
      for (const depth of [3, 6]) {
        const inOrder = await splitSearch(s, opts, depth);
        assert.ok(inOrder.length > 1, `${s.name}: ${inOrder.length} subtrees`);
        assert.deepEqual(await splitSearch(s, opts, depth, reversed, 2), inOrder, `${s.name} split at depth ${depth}, reversed`);
        assert.deepEqual(await splitSearch(s, opts, depth, oddsFirst, 3), inOrder, `${s.name} split at depth ${depth}, odd subtrees first`);
      }
    }
  });
});
