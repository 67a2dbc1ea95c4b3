/**
 * Engine throughput: simulated memory operations per second on one core, tracing off, against
 * a bare loop that drives a generator and a DataView the same number of times (the floor any
 * generator-based engine pays).
 */
import { load32, store32, type SimCode } from '../src/engine/ops.ts';
import { monotonicMs } from '../src/engine/globals.ts';
import { RandomChooser } from '../src/explore/random.ts';
import type { Scenario } from '../src/scenario/define.ts';
import { runScenario } from '../src/scenario/run.ts';
import type { MemoryModel } from '../src/memory/model.ts';

/** Each thread: `iterations` times load its slot, store it back plus one (2 operations). */
export function loadStoreScenario(threads: number, iterations: number): Scenario<{ slots: number[] }> {
  function* worker(ctx: { slots: number[] }, i: number): SimCode {
    const a = ctx.slots[i]!;
    for (let k = 0; k < iterations; k++) {
      const v: number = yield load32(a);
      yield store32(a, v + 1);
    }
  }
  return {
    name: `load-store-${threads}`,
    cpus: threads,
    stepBudget: 4 * iterations,
    setup: (m) => ({ slots: Array.from({ length: threads }, () => m.alloc(4, 64)) }),
    threads: Array.from({ length: threads }, (_, i) => (ctx: { slots: number[] }) => worker(ctx, i)),
  };
}

export interface Throughput {
  readonly label: string;
  readonly opsPerSec: number;
}

/** Best of `reps` runs (the machine's other load only ever slows a run down). */
export function engineThroughput(threads: number, model: MemoryModel, totalOps: number, reps = 5): Throughput {
  const perThread = Math.floor(totalOps / threads / 2);
  const s = loadStoreScenario(threads, perThread);
  // Drains under TSO/PSO are steps but not operations the program issued.
  const ops = threads * 2 * perThread;
  let best = 0;
  for (let i = 0; i < reps; i++) {
    const t0 = monotonicMs();
    const r = runScenario(s, { memoryModel: model }, new RandomChooser(1));
    const ms = monotonicMs() - t0;
    if (r.verdict) throw new Error(`benchmark scenario failed: ${r.verdict.message}`);
    best = Math.max(best, (ops / ms) * 1000);
  }
  return { label: `${threads} thread${threads > 1 ? 's' : ''}, ${model}`, opsPerSec: best };
}

/** The floor: a generator yielding 2n times and a DataView load or store per yield. */
export function bareLoop(totalOps: number): Throughput {
  const view = new DataView(new ArrayBuffer(4096));
  function* g(n: number): Generator<number, void, number> {
    for (let k = 0; k < n; k++) {
      const v = yield 1;
      yield v + 1;
    }
  }
  const run = (n: number) => {
    const it = g(n);
    let r = it.next(0);
    let i = 0;
    while (!r.done) {
      let v = 0;
      if ((i++ & 1) === 0) v = view.getUint32(64, true);
      else view.setUint32(64, r.value, true);
      r = it.next(v);
    }
  };
  let best = 0;
  for (let i = 0; i < 5; i++) {
    const t0 = monotonicMs();
    run(totalOps / 2);
    best = Math.max(best, (totalOps / (monotonicMs() - t0)) * 1000);
  }
  return { label: 'bare generator + DataView loop', opsPerSec: best };
}
