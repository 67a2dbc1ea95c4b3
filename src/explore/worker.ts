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
import { Tally } from './tally.ts';
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

/** The lowest run (or subtree) the parent says has a finding: nothing past it needs running. */
function stopListener(): { above: number } {
  const stop = { above: Infinity };
  port.on('message', (m: { stopAbove: number }) => {
    stop.above = Math.min(stop.above, m.stopAbove);
  });
  return stop;
}

function done(t: Tally): Extract<WorkerMessage, { type: 'done' }> {
  return { type: 'done', runs: t.runs, steps: t.steps, outcomes: [...t.outcomes], coverage: [...t.coverage] };
}

/**
 * DFS over the root subtrees at positions first, first + stride, ...: runs in DFS order, a
 * finding reported with its root position (the order a sequential DFS would meet it in).
 */
async function dfsMain(task: WorkerTask, s: Scenario): Promise<void> {
  const dfs = new DfsStrategy(task.bound ?? Infinity, { first: task.first, stride: task.stride });
  const stop = stopListener();
  const tally = new Tally();
  for (let chooser = dfs.nextRun(); chooser !== null; chooser = dfs.nextRun()) {
    const r = runScenario(s, task.cfg, chooser);
    tally.add(r);
    const position = dfs.rootPosition;
    if (r.verdict !== null) {
      port.postMessage({ type: 'finding', run: position, choices: r.log.values() } satisfies WorkerMessage);
      break;
    }
    dfs.endRun();
    if ((tally.runs & 63) === 0) {
      port.postMessage({ type: 'progress', runs: tally.runs, steps: tally.steps } satisfies WorkerMessage);
      await new Promise((resolve) => setImmediate(resolve));
      if (dfs.rootPosition > stop.above || performance.now() + performance.timeOrigin >= task.deadline) break;
    }
  }
  port.postMessage({ ...done(tally), exhausted: dfs.done } satisfies WorkerMessage);
}

async function main(task: WorkerTask): Promise<void> {
  const mod = (await import(pathToFileURL(task.file).href)) as { default: Scenario };
  const s = mod.default;
  if (task.strategy === 'dfs') return dfsMain(task, s);
  const strategy =
    task.strategy === 'random' ? new RandomStrategy(task.seed) : Object.assign(new PctStrategy(task.seed, task.pctDepth), { k: task.pctK });
  const stop = stopListener();
  const tally = new Tally();
  for (let i = task.first; i < task.maxRuns && i < stop.above; i += task.stride) {
    let r;
    try {
      r = runScenario(s, task.cfg, strategy.chooserFor(i));
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      port.postMessage({ type: 'error', run: i, usage: e instanceof UsageError, message } satisfies WorkerMessage);
      return;
    }
    tally.add(r);
    if (r.verdict !== null) {
      port.postMessage({ type: 'finding', run: i } satisfies WorkerMessage);
      break;
    }
    if ((tally.runs & 63) === 0) {
      port.postMessage({ type: 'progress', runs: tally.runs, steps: tally.steps } satisfies WorkerMessage);
      // Let stop messages in, and give up at the deadline.
      await new Promise((resolve) => setImmediate(resolve));
      if (performance.now() + performance.timeOrigin >= task.deadline) break;
    }
  }
  port.postMessage(done(tally) satisfies WorkerMessage);
}

/** The parent sends the task as the first message. */
process.once('message', (task: WorkerTask) => {
  main(task).catch((e: unknown) => {
    const message = e instanceof Error ? (e.stack ?? e.message) : String(e);
    port.postMessage({ type: 'error', run: -1, usage: e instanceof UsageError, message } satisfies WorkerMessage);
  });
});


