/**
 * A worker process of a parallel check: loads the scenario file itself, then runs its share,
 * reporting progress and findings to the parent over IPC. Random and PCT: the run indices
 * first, first + stride, ... with the strategy's chooser for each; DFS: the root subtrees at
 * those positions; DPOR: the subtrees of split DPOR (dpor.ts) the parent sends one by one as the
 * worker becomes free, each searched by a DPOR strategy of its own and reported with its tally
 * and the subtrees its races ask for, so that the parent sums exactly the subtrees a search in
 * one process would. (Processes rather than worker threads: on this 2-core machine worker threads
 * of one process ran ~18% slower each than separate processes.)
 */
import { pathToFileURL } from 'node:url';
import type { Scenario } from '../scenario/define.ts';
import { runScenario, type RunConfig } from '../scenario/run.ts';
import { UsageError } from '../engine/errors.ts';
import { DfsStrategy } from './dfs.ts';
import type { Subtree } from './dpor.ts';
import { SplitSearch, type SubtreeTally } from './parallel.ts';
import { Tally } from './tally.ts';
import { PctStrategy } from './pct.ts';
import { RandomStrategy } from './random.ts';

export interface WorkerTask {
  readonly file: string;
  readonly cfg: RunConfig;
  readonly strategy: 'random' | 'pct' | 'dfs' | 'dpor';
  /** dfs, dpor: the preemption bound (null: none). */
  readonly bound?: number | null;
  /** dpor: the levels above the subtrees (splitWalk). */
  readonly depth?: number;
  /** dpor: go on after a finding (the parent then sends no stop). */
  readonly keepGoing?: boolean;
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
      /** dpor: what the subtree `index` gave. */
      readonly subtree?: {
        readonly index: number;
        readonly tally: SubtreeTally | null;
        readonly exhausted: boolean;
        readonly demands: Subtree[];
      };
    }
  | { readonly type: 'error'; readonly run: number; readonly usage: boolean; readonly message: string };

/** dpor: a subtree to search (after the task, which says how). */
export interface SubtreeMessage {
  readonly type: 'subtree';
  readonly index: number;
  readonly subtree: Subtree;
}

const port = {
  postMessage: (m: WorkerMessage) => process.send!(m),
  on: (_event: 'message', f: (m: unknown) => void) => process.on('message', f),
};

/**
 * Messages after the task, kept from the start (one that comes while no listener is on would be
 * lost): the lowest run (or subtree) the parent says has a finding, past which nothing needs
 * running, and the subtrees to search (dpor).
 */
const stop = { above: Infinity };
const inbox: SubtreeMessage[] = [];
let wake: (() => void) | null = null;

function stopListener(): { readonly above: number } {
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

/**
 * Split DPOR: search the subtrees the parent sends, one at a time, and say what each gave (the
 * worker stays until killed). A finding is reported with its subtree's number.
 */
async function dporMain(task: WorkerTask, s: Scenario): Promise<void> {
  const search = new SplitSearch(s, task.cfg, task.bound ?? Infinity, task.depth!, {
    keepGoing: task.keepGoing ?? false,
    maxRuns: task.maxRuns,
    deadline: task.deadline,
    stop: stopListener(),
    onFinding: (subtree) => port.postMessage({ type: 'finding', run: subtree } satisfies WorkerMessage),
    onProgress: (runs, steps) => port.postMessage({ type: 'progress', runs, steps } satisfies WorkerMessage),
  });
  for (;;) {
    while (inbox.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    const { index, subtree } = inbox.shift()!;
    const r = await search.explore(index, subtree);
    if (r.error !== undefined) {
      const e = r.error;
      const message = e instanceof Error ? e.message : String(e);
      port.postMessage({ type: 'error', run: index, usage: e instanceof UsageError, message } satisfies WorkerMessage);
      continue;
    }
    const done = { index, tally: r.tally, exhausted: r.exhausted, demands: r.demands };
    port.postMessage({ type: 'done', runs: r.tally?.runs ?? 0, steps: r.tally?.steps ?? 0, outcomes: [], coverage: [], subtree: done } satisfies WorkerMessage);
  }
}

async function main(task: WorkerTask): Promise<void> {
  const mod = (await import(pathToFileURL(task.file).href)) as { default: Scenario };
  const s = mod.default;
  if (task.strategy === 'dfs') return dfsMain(task, s);
  if (task.strategy === 'dpor') return dporMain(task, s);
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
let started = false;
port.on('message', (m) => {
  if (!started) {
    started = true;
    main(m as WorkerTask).catch((e: unknown) => {
      const message = e instanceof Error ? (e.stack ?? e.message) : String(e);
      port.postMessage({ type: 'error', run: -1, usage: e instanceof UsageError, message } satisfies WorkerMessage);
    });
    return;
  }
  const above = (m as { stopAbove?: unknown }).stopAbove;
  if (typeof above === 'number') stop.above = Math.min(stop.above, above);
  if ((m as SubtreeMessage).type === 'subtree') {
    inbox.push(m as SubtreeMessage);
    wake?.();
  }
});


