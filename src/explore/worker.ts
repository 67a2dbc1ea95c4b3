/**
 * A worker process of a parallel check: loads the scenario file itself, then runs the run
 * indices it is given (i = first, first + stride, ...) with the strategy's chooser for each,
 * reporting progress and findings to the parent over IPC. Only random and PCT runs are handed
 * out. (Processes rather than worker threads: on this 2-core machine worker threads of one
 * process ran ~18% slower each than separate processes.)
 */
import { pathToFileURL } from 'node:url';
import type { Scenario } from '../scenario/define.ts';
import { runScenario, type RunConfig } from '../scenario/run.ts';
import { UsageError } from '../engine/errors.ts';
import { DfsStrategy } from './dfs.ts';
import { PctStrategy } from './pct.ts';
import { RandomStrategy } from './random.ts';

export interface WorkerTask {
  readonly file: string;
  readonly cfg: RunConfig;
  readonly strategy: 'random' | 'pct' | 'dfs';
  /** dfs: the preemption bound (null: none). */
  readonly bound?: number | null;
  readonly seed: number;
  readonly pctDepth: number;
  readonly pctK: number;
  readonly first: number;
  readonly stride: number;
  readonly maxRuns: number;
  readonly deadline: number;
}

export type WorkerMessage =
  | { readonly type: 'progress'; readonly runs: number; readonly steps: number }
  | { readonly type: 'finding'; readonly run: number; readonly choices?: number[] }
  | {
      readonly type: 'done';
      readonly runs: number;
      readonly steps: number;
      readonly outcomes: [string, number][];
      readonly coverage: [string, number][];
      readonly exhausted?: boolean;
    }
  | { readonly type: 'error'; readonly run: number; readonly usage: boolean; readonly message: string };

const port = {
  postMessage: (m: WorkerMessage) => process.send!(m),
  on: (_event: 'message', f: (m: { stopAbove: number }) => void) => process.on('message', f as (m: unknown) => void),
};

/**
 * DFS over the root subtrees at positions first, first + stride, ...: runs in DFS order, a
 * finding reported with its root position (the order a sequential DFS would meet it in).
 */
async function dfsMain(task: WorkerTask, s: Scenario): Promise<void> {
  const dfs = new DfsStrategy(task.bound ?? Infinity, { first: task.first, stride: task.stride });
  let stopAbove = Infinity;
  port.on('message', (m: { stopAbove: number }) => {
    stopAbove = Math.min(stopAbove, m.stopAbove);
  });
  let runs = 0;
  let steps = 0;
  const outcomes = new Map<string, number>();
  const coverage = new Map<string, number>();
  for (let chooser = dfs.nextRun(); chooser !== null; chooser = dfs.nextRun()) {
    const r = runScenario(s, task.cfg, chooser);
    runs++;
    steps += r.steps;
    if (r.outcome !== undefined) outcomes.set(r.outcome, (outcomes.get(r.outcome) ?? 0) + 1);
    if (r.coverage) for (const p of r.coverage.keys()) coverage.set(p, (coverage.get(p) ?? 0) + 1);
    const position = dfs.rootPosition;
    if (r.verdict !== null) {
      port.postMessage({ type: 'finding', run: position, choices: r.log.values() } satisfies WorkerMessage);
      break;
    }
    dfs.endRun();
    if ((runs & 63) === 0) {
      port.postMessage({ type: 'progress', runs, steps } satisfies WorkerMessage);
      await new Promise((resolve) => setImmediate(resolve));
      if (dfs.rootPosition > stopAbove || performance.now() + performance.timeOrigin >= task.deadline) break;
    }
  }
  port.postMessage({ type: 'done', runs, steps, outcomes: [...outcomes], coverage: [...coverage], exhausted: dfs.done } satisfies WorkerMessage);
}

async function main(task: WorkerTask): Promise<void> {
  const mod = (await import(pathToFileURL(task.file).href)) as { default: Scenario };
  const s = mod.default;
  if (task.strategy === 'dfs') return dfsMain(task, s);
  const strategy =
    task.strategy === 'random' ? new RandomStrategy(task.seed) : Object.assign(new PctStrategy(task.seed, task.pctDepth), { k: task.pctK });
  let stopAbove = Infinity;
  port.on('message', (m: { stopAbove: number }) => {
    stopAbove = Math.min(stopAbove, m.stopAbove);
  });
  let runs = 0;
  let steps = 0;
  const outcomes = new Map<string, number>();
  const coverage = new Map<string, number>();
  for (let i = task.first; i < task.maxRuns && i < stopAbove; i += task.stride) {
    let r;
    try {
      r = runScenario(s, task.cfg, strategy.chooserFor(i));
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      port.postMessage({ type: 'error', run: i, usage: e instanceof UsageError, message } satisfies WorkerMessage);
      return;
    }
    runs++;
    steps += r.steps;
    if (r.outcome !== undefined) outcomes.set(r.outcome, (outcomes.get(r.outcome) ?? 0) + 1);
    if (r.coverage) for (const p of r.coverage.keys()) coverage.set(p, (coverage.get(p) ?? 0) + 1);
    if (r.verdict !== null) {
      port.postMessage({ type: 'finding', run: i } satisfies WorkerMessage);
      break;
    }
    if ((runs & 63) === 0) {
      port.postMessage({ type: 'progress', runs, steps } satisfies WorkerMessage);
      // Let stop messages in, and give up at the deadline.
      await new Promise((resolve) => setImmediate(resolve));
      if (performance.now() + performance.timeOrigin >= task.deadline) break;
    }
  }
  port.postMessage({ type: 'done', runs, steps, outcomes: [...outcomes], coverage: [...coverage] } satisfies WorkerMessage);
}

/** The parent sends the task as the first message. */
process.once('message', (task: WorkerTask) => {
  main(task).catch((e: unknown) => {
    const message = e instanceof Error ? (e.stack ?? e.message) : String(e);
    port.postMessage({ type: 'error', run: -1, usage: e instanceof UsageError, message } satisfies WorkerMessage);
  });
});


