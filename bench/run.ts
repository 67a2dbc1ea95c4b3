/**
 * `npm run bench`: Hyrum's performance figures, measured side by side in one run.
 */
import path from 'node:path';
import { availableParallelism } from 'node:os';
import counterAtomic from '../scenarios/counter-atomic.ts';
import reclaimStacks from '../scenarios/reclaim-stacks.ts';
import { checkParallel } from '../src/explore/parallel.ts';
import { check, type CheckResult } from '../src/explore/explorer.ts';
import lostUpdate from '../scenarios/lost-update.ts';
import { bareLoop, engineThroughput } from './engine.ts';
import { runsPerSecond } from './explorer.ts';
import { benchAgainstSpin } from './spin.ts';

const M = 1e6;
const fmt = (n: number) => `${(n / M).toFixed(1)} M/s`;

const ops = Number(process.env.BENCH_OPS ?? 4_000_000);
console.log(`Engine: simulated memory operations per second, one core, tracing off (${ops / M} M operations each, best of 5)`);
const floor = bareLoop(ops);
console.log(`  ${floor.label.padEnd(34)} ${fmt(floor.opsPerSec)}`);
for (const [threads, model] of [
  [1, 'sc'],
  [2, 'sc'],
  [2, 'tso'],
  [2, 'pso'],
] as const) {
  const t = engineThroughput(threads, model, ops);
  console.log(`  ${t.label.padEnd(34)} ${fmt(t.opsPerSec)}   ${(t.opsPerSec / floor.opsPerSec).toFixed(2)}x of the bare loop`);
}

console.log('\nExplorer: complete runs per second (memory model tso, determinism pre-check excluded)');
for (const [name, s] of [
  ['lost-update (2 threads x 2 ops)', lostUpdate],
  ['counter-atomic (3 threads x 1 op)', counterAtomic],
] as const) {
  for (const strategy of ['random', 'pct', 'dfs'] as const) {
    const r = runsPerSecond(s, strategy, 20_000);
    console.log(`  ${name.padEnd(34)} ${strategy.padEnd(7)} ${Math.round(r.perSec).toString().padStart(8)} runs/s (${r.runs} runs)`);
  }
}

console.log('\nState hashing: stateless vs stateful DFS (states cached), reclaim-stacks, preemption bound 1, nothing to find');
for (const [glibc, memoryModel] of [
  ['2.9', 'sc'],
  ['2.10', 'sc'],
] as const) {
  const opts = { strategy: 'dfs', memoryModel, versions: { glibc }, preemptionBound: 1, determinismRuns: 0 } as const;
  const plain = check(reclaimStacks, { ...opts, stateHash: false });
  const cached = check(reclaimStacks, { ...opts, stateHash: true });
  const row = (label: string, r: CheckResult) =>
    `  glibc ${glibc} ${memoryModel} ${label.padEnd(10)} ${String(r.runs).padStart(6)} runs ${String(r.steps).padStart(8)} steps ${r.states === undefined ? '' : `${r.states} distinct states, `}${Math.round(r.elapsedMs)} ms`;
  console.log(row('stateless', plain));
  console.log(row('stateful', cached));
  console.log(`    runs ${(cached.runs / plain.runs).toFixed(2)}x, steps ${(cached.steps / plain.steps).toFixed(2)}x, time ${(cached.elapsedMs / plain.elapsedMs).toFixed(2)}x`);
}

console.log('\nParallel workers: PCT on reclaim-stacks (glibc 2.10, PSO: nothing to find, so CPU-bound), same runs, worker processes in both');
{
  const file = path.resolve('scenarios/reclaim-stacks.ts');
  const opts = { strategy: 'pct', memoryModel: 'pso', versions: { glibc: '2.10' }, runs: 60000, seed: 1, determinismRuns: 0 } as const;
  const rates: number[] = [];
  for (const workers of [1, 2]) {
    const r = await checkParallel(reclaimStacks, file, opts, workers, false);
    rates.push((r.runs / r.elapsedMs) * 1000);
    console.log(`  ${String(workers).padEnd(2)} worker${workers > 1 ? 's' : ' '} ${Math.round(rates[rates.length - 1]!).toString().padStart(8)} runs/s (${r.runs} runs, finding: ${r.finding ? r.finding.run : 'none'})`);
  }
  console.log(`  speed-up with 2 workers: ${(rates[1]! / rates[0]!).toFixed(2)}x (this machine has ${availableParallelism()} cores)`);
  // The machine's own ceiling: two independent one-worker checks of half the runs at once.
  const t0 = performance.now();
  const halves = await Promise.all([1, 2].map((seed) => checkParallel(reclaimStacks, file, { ...opts, runs: opts.runs / 2, seed }, 1, false)));
  const both = (halves[0]!.runs + halves[1]!.runs) / ((performance.now() - t0) / 1000);
  console.log(
    `  two independent 1-worker checks at once: ${Math.round(both)} runs/s together, ${(both / rates[0]!).toFixed(2)}x of one alone ` +
      `(the most any split of the work can gain here; 2 workers reached ${((rates[1]! / both) * 100).toFixed(0)}% of it)`,
  );
}

console.log('\nHyrum against SPIN: the same problems, first counterexample of the buggy variant and full check of the fixed one');
benchAgainstSpin();
