/**
 * Parallel exploration on worker processes (worker.ts). Random walk and PCT: run indices are
 * dealt round-robin; DFS: the subtrees under the first choice are (by their position in DFS
 * order); DPOR: the subtrees of split DPOR (dpor.ts, DporStrategy.entersSubtree: the first levels
 * explored with every alternative, each subtree under them a DPOR search of its own) are dealt
 * to workers as they become free, numbered in DFS order, then in phases the subtrees races asked
 * for. The reported finding is the one a sequential check meets first: the lowest run index, or
 * the lowest subtree (when a worker finds one, the others finish everything before it and stop),
 * so findings do not depend on the worker count. For DPOR the runs, steps, outcomes and coverage
 * are summed over the subtrees up to the finding's, so they do not either, and `checkSplitDpor`
 * gives the same in one process. The finding is then replayed, shrunk and traced here.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { monotonicMs } from '../engine/globals.ts';
import { InternalError, UsageError } from '../engine/errors.ts';
import type { Scenario } from '../scenario/define.ts';
import { runScenario, type RunConfig, type RunCost } from '../scenario/run.ts';
import { check, checkDeterminism, makeFinding, runConfigOf, type CheckOptions, type CheckResult } from './explorer.ts';
import { DfsStrategy } from './dfs.ts';
import { DporStrategy, type Subtree } from './dpor.ts';
import { PctStrategy } from './pct.ts';
import { RandomStrategy } from './random.ts';
import { ReplayChooser } from './replay.ts';
import { Tally } from './tally.ts';
import type { SubtreeMessage, WorkerMessage, WorkerTask } from './worker.ts';

/**
 * `inProcess`: with one worker, run in this process (the default) or in one worker process like
 * the others (for measuring how runs per second scale with workers). DPOR in this process is
 * plain DPOR (`check`); in worker processes, split DPOR.
 */
export async function checkParallel(s: Scenario, file: string, opts: CheckOptions, workers: number, inProcess = true): Promise<CheckResult> {
  if (workers <= 1 && inProcess) return check(s, opts);
  if (opts.strategy === 'dpor') return checkDporParallel(s, file, opts, workers);
  const start = monotonicMs();
  const seed = opts.seed ?? 1;
  const cfg = runConfigOf(s, opts);
  checkDeterminism(s, cfg, opts.determinismRuns ?? 12, seed);
  const dfs = opts.strategy === 'dfs';
  if (dfs) {
    // The root choice's arity bounds how many workers can share the tree.
    const probe = runScenario(s, cfg, new DfsStrategy(opts.preemptionBound ?? Infinity).nextRun()!);
    if (probe.log.len === 0) return check(s, opts);
    workers = Math.min(workers, probe.log.arity[0]!);
  }
  // Run 0 here: it calibrates PCT's k.
  const pct = new PctStrategy(seed, opts.pctDepth ?? 3);
  const first = opts.strategy === 'pct' ? runScenario(s, cfg, pct.nextRun()) : null;
  if (first) pct.endRun(first.log);
  let findingChoices: number[] | null = null;
  let allExhausted = dfs;
  const maxRuns = opts.runs ?? 1000;
  const deadline = deadlineOf(opts);
  let lowest = first?.verdict ? 0 : Infinity;
  let runs = first ? 1 : 0;
  let steps = first?.steps ?? 0;
  const outcomes = new Map<string, number>();
  const coverage = new Map<string, number>(first?.coverage ? [...first.coverage.keys()].map((k) => [k, 1]) : []);
  if (first?.outcome !== undefined) outcomes.set(first.outcome, 1);
  const errors: Extract<WorkerMessage, { type: 'error' }>[] = [];
  const progress = new Map<number, { runs: number; steps: number }>();
  await runPool(
    workers,
    (w) => ({
      file,
      cfg,
      strategy: opts.strategy as 'random' | 'pct' | 'dfs',
      bound: opts.preemptionBound ?? null,
      seed,
      pctDepth: opts.pctDepth ?? 3,
      pctK: pct.k,
      first: (first ? 1 : 0) + w,
      stride: workers,
      maxRuns: lowest === Infinity ? (dfs ? Infinity : maxRuns) : 0,
      deadline,
    }),
    (w, m, pool) => {
      if (m.type === 'progress') {
        progress.set(w, m);
        let r = runs;
        let st = steps;
        for (const p of progress.values()) {
          r += p.runs;
          st += p.steps;
        }
        opts.onProgress?.({ runs: r, steps: st, elapsedMs: monotonicMs() - start, findings: lowest === Infinity ? 0 : 1 });
      } else if (m.type === 'finding') {
        if (m.run < lowest) {
          lowest = m.run;
          findingChoices = m.choices ?? null;
          for (const other of pool) if (other.connected) other.send({ stopAbove: lowest });
        }
      } else if (m.type === 'done') {
        progress.delete(w);
        runs += m.runs;
        steps += m.steps;
        for (const [o, n] of m.outcomes) outcomes.set(o, (outcomes.get(o) ?? 0) + n);
        for (const [p, n] of m.coverage) coverage.set(p, (coverage.get(p) ?? 0) + n);
        if (!m.exhausted) allExhausted = false;
      } else errors.push(m);
    },
  );
  // An error in a run past the lowest finding is one a sequential check never meets.
  throwFirstError(errors, lowest);
  const result: CheckResult = {
    scenario: s.name,
    strategy: `${
      dfs
        ? `exhaustive DFS, ${opts.preemptionBound === undefined ? 'no preemption bound' : `preemption bound ${opts.preemptionBound}`}`
        : `${opts.strategy === 'pct' ? `PCT depth ${opts.pctDepth ?? 3}` : 'random walk'}, seed ${seed}`
    }, ${workers} workers`,
    memoryModel: opts.memoryModel,
    versions: cfg.versions ?? {},
    variant: opts.variant,
    cost: first?.cost ?? null,
    runs,
    steps,
    elapsedMs: monotonicMs() - start,
    exhausted: allExhausted && lowest === Infinity,
    finding: null,
    findings: 0,
    outcomes,
    coverage,
  };
  if (lowest === Infinity) return result;
  // Repeat the lowest failing run here, where it is shrunk and traced.
  const chooser =
    findingChoices !== null
      ? new ReplayChooser(findingChoices)
      : opts.strategy === 'pct'
        ? pct.chooserFor(lowest)
        : new RandomStrategy(seed).chooserFor(lowest);
  const failing = runScenario(s, cfg, chooser);
  const finding = makeFinding(s, cfg, failing, lowest, opts.shrink !== false);
  return { ...result, finding, findings: 1, elapsedMs: monotonicMs() - start };
}

function deadlineOf(opts: CheckOptions): number {
  return opts.timeMs === undefined ? Number.MAX_SAFE_INTEGER : performance.timeOrigin + performance.now() + opts.timeMs;
}

/**
 * Start `n` worker processes, send each its task and hand their messages to `onMessage` (with
 * the pool, to tell the others to stop); done when each has said 'done' or 'error'.
 */
async function runPool(n: number, taskFor: (w: number) => WorkerTask, onMessage: (w: number, m: WorkerMessage, pool: readonly ChildProcess[]) => void): Promise<void> {
  const pool: ChildProcess[] = [];
  try {
    await Promise.all(
      Array.from(
        { length: n },
        (_, w) =>
          new Promise<void>((resolve, reject) => {
            const worker = spawnWorker(
              w,
              (m) => {
                onMessage(w, m, pool);
                if (m.type === 'done' || m.type === 'error') resolve();
              },
              reject,
            );
            pool.push(worker);
            worker.send(taskFor(w));
          }),
      ),
    );
  } finally {
    for (const worker of pool) worker.kill();
  }
}

/** A worker process; an error it reports outside any run (run -1) is Hyrum's own and fails the check. */
function spawnWorker(w: number, onMessage: (m: WorkerMessage) => void, fail: (e: unknown) => void): ChildProcess {
  const worker = fork(fileURLToPath(new URL('./worker.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  worker.on('message', (msg) => {
    const m = msg as WorkerMessage;
    if (m.type === 'error' && m.run < 0) fail(new InternalError(`worker ${w}: ${m.message}`));
    else onMessage(m);
  });
  worker.on('error', fail);
  worker.on('exit', (code, signal) => {
    if (!worker.killed) fail(new InternalError(`worker ${w} exited (${code ?? signal})`));
  });
  return worker;
}

/** The error of the lowest run (or subtree) before `lowest`, as a sequential check would meet it. */
function throwFirstError(errors: readonly Extract<WorkerMessage, { type: 'error' }>[], lowest: number): void {
  const error = errors.filter((e) => e.run < lowest).sort((a, b) => a.run - b.run)[0];
  if (!error) return;
  if (error.usage) throw new UsageError(error.message);
  throw new InternalError(`run ${error.run}: ${error.message}`);
}

// ---- Split DPOR ---------------------------------------------------------------------------------

/** What split DPOR met in one subtree: all of it, or up to its first finding, or a limit. */
export interface SubtreeTally {
  /** The subtree's number: DFS order for the walk's, then in each later phase by their choices. */
  readonly index: number;
  readonly runs: number;
  readonly steps: number;
  readonly outcomes: [string, number][];
  readonly coverage: [string, number][];
  readonly findings: number;
  /** The subtree's first failing run: its position among the subtree's runs, and its choices. */
  readonly first: { readonly run: number; readonly choices: number[] } | null;
  /** Subtree 0: the cost of the check's first run. */
  readonly cost: RunCost | null;
}

export interface SplitLimits {
  readonly keepGoing: boolean;
  /** Runs of this search (one worker's). */
  readonly maxRuns: number;
  /** In performance.timeOrigin + performance.now() terms. */
  readonly deadline: number;
  /** The lowest subtree known to have a finding: nothing past it needs running. */
  readonly stop: { readonly above: number };
  readonly onFinding?: (subtree: number) => void;
  readonly onProgress?: (runs: number, steps: number) => void;
}

/** What searching one subtree gave. */
export interface SubtreeResult {
  /** Null when the subtree was not entered (a stop or a limit first). */
  readonly tally: SubtreeTally | null;
  /** Searched to the end (not cut short by a finding, a stop or a limit). */
  readonly exhausted: boolean;
  /** The subtrees its races asked for (DporStrategy.demands). */
  readonly demands: Subtree[];
  /** What a run threw. */
  readonly error?: unknown;
}

/** Subtrees wanted under the fully explored levels; the levels tried. */
const SPLIT_SUBTREES = 32;
const SPLIT_DEPTHS = [2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64];

/**
 * Split DPOR's levels and its first subtrees, a property of the check alone: the least depth
 * tried with at least SPLIT_SUBTREES subtrees under it (or under which no run goes), walked once
 * per depth tried (a run per path through the levels above the subtrees). Searching the levels
 * above the subtrees costs runs, and fewer, larger subtrees share worse: on reclaim-stacks
 * (glibc 2.10, PSO, preemption bound 1) 32 levels give 4 subtrees, one with 70% of the runs, and
 * 64 give 21 with 16% at most, for 2% more runs than plain DPOR.
 */
export function splitWalk(s: Scenario, cfg: RunConfig, bound: number, depths: readonly number[] = SPLIT_DEPTHS): { depth: number; subtrees: readonly Subtree[] } {
  for (const depth of depths) {
    const walk = new DporStrategy(cfg.memoryModel, bound, { depth });
    const runCfg: RunConfig = { ...cfg, observer: walk };
    for (let chooser = walk.nextRun(); chooser !== null; chooser = walk.nextRun()) {
      runScenario(s, runCfg, chooser);
      walk.endRun();
    }
    if (walk.subtrees.length >= SPLIT_SUBTREES || !walk.reachedDepth || depth === depths.at(-1)) return { depth, subtrees: walk.subtrees };
  }
  throw new InternalError('unreachable');
}

/** Demanded subtrees not yet searched, in the order of their choices. */
export function nextPhase(demands: Iterable<Subtree>, searched: Set<string>): Subtree[] {
  const tasks = new Map<string, Subtree>();
  for (const d of demands) {
    const key = d.choices.join(',');
    if (!searched.has(key)) tasks.set(key, d);
  }
  for (const key of tasks.keys()) searched.add(key);
  return [...tasks.values()].sort(({ choices: a }, { choices: b }) => {
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
    return a.length - b.length;
  });
}

/**
 * Searches split DPOR's subtrees one at a time (in this process, or in a worker for its parent),
 * each with a DPOR strategy of its own, so that what a subtree gives does not depend on who
 * searches it or on what was searched before.
 */
export class SplitSearch {
  runs = 0;
  steps = 0;

  constructor(
    private readonly s: Scenario,
    private readonly cfg: RunConfig,
    private readonly bound: number,
    private readonly depth: number,
    private readonly limits: SplitLimits,
  ) {}

  async explore(index: number, subtree: Subtree): Promise<SubtreeResult> {
    const limits = this.limits;
    const dpor = new DporStrategy(this.cfg.memoryModel, this.bound, { depth: this.depth, subtree });
    const runCfg: RunConfig = { ...this.cfg, observer: dpor };
    const tally = new Tally();
    let findings = 0;
    let first: SubtreeTally['first'] = null;
    let cost: RunCost | null = null;
    let exhausted = false;
    let error: unknown;
    for (let chooser = dpor.nextRun(); ; chooser = dpor.nextRun()) {
      if (chooser === null) {
        exhausted = true;
        break;
      }
      if (index > limits.stop.above || this.runs >= limits.maxRuns || performance.timeOrigin + performance.now() >= limits.deadline) break;
      let r;
      try {
        r = runScenario(this.s, runCfg, chooser);
      } catch (e) {
        error = e;
        break;
      }
      if (tally.runs === 0 && index === 0) cost = r.cost;
      tally.add(r);
      this.runs++;
      this.steps += r.steps;
      if (r.verdict !== null) {
        findings++;
        if (first === null) {
          first = { run: tally.runs - 1, choices: r.log.values() };
          limits.onFinding?.(index);
        }
        if (!limits.keepGoing) break;
      }
      dpor.endRun();
      if ((this.runs & 63) === 0) {
        limits.onProgress?.(this.runs, this.steps);
        // Let stop messages in.
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    const entered = tally.runs > 0;
    return {
      tally: entered ? { index, runs: tally.runs, steps: tally.steps, outcomes: [...tally.outcomes], coverage: [...tally.coverage], findings, first, cost } : null,
      exhausted,
      demands: dpor.demands,
      error,
    };
  }
}

/** An error a subtree's run threw, as `check` reports it. */
function rethrow(e: unknown): never {
  if (e instanceof UsageError || e instanceof InternalError) throw e;
  throw new InternalError(`internal error: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

/** What both split-DPOR searches begin with: the determinism check, then the walk above the subtrees. */
function startSplit(s: Scenario, opts: CheckOptions) {
  const start = monotonicMs();
  const cfg = runConfigOf(s, opts);
  checkDeterminism(s, cfg, opts.determinismRuns ?? 12, opts.seed ?? 1);
  const bound = opts.preemptionBound ?? Infinity;
  return { start, cfg, bound, keepGoing: opts.keepGoing ?? false, ...splitWalk(s, cfg, bound) };
}

/**
 * Split DPOR in this process: the walk's subtrees in DFS order, then the subtrees their races
 * asked for, phase after phase; the same runs, outcomes and finding as with worker processes.
 */
export async function checkSplitDpor(s: Scenario, opts: CheckOptions): Promise<CheckResult> {
  const { start, cfg, bound, keepGoing, depth, subtrees } = startSplit(s, opts);
  const search = new SplitSearch(s, cfg, bound, depth, {
    keepGoing,
    maxRuns: opts.runs ?? Infinity,
    deadline: deadlineOf(opts),
    stop: { above: Infinity },
    onProgress: (runs, steps) => opts.onProgress?.({ runs, steps, elapsedMs: monotonicMs() - start, findings: 0 }),
  });
  const tallies: SubtreeTally[] = [];
  const searched = new Set<string>();
  let complete = true;
  let found = false;
  for (let phase = subtrees, offset = 0; phase.length > 0 && complete && (keepGoing || !found); ) {
    const demands: Subtree[] = [];
    for (const [i, subtree] of phase.entries()) {
      const r = await search.explore(offset + i, subtree);
      if (r.error !== undefined) rethrow(r.error);
      if (r.tally) tallies.push(r.tally);
      demands.push(...r.demands);
      found ||= (r.tally?.findings ?? 0) > 0;
      if (!r.exhausted && !(found && !keepGoing)) complete = false;
      if (!complete || (found && !keepGoing)) break;
    }
    offset += phase.length;
    phase = nextPhase(demands, searched);
  }
  const describe = new DporStrategy(opts.memoryModel, bound, { depth }).describe();
  return splitResult(s, cfg, opts, start, describe, tallies, complete);
}

/**
 * Split DPOR on worker processes: the parent walks the levels above the subtrees, deals the
 * subtrees to the workers as they become free (which one searches a subtree changes nothing in
 * what it gives), and after each phase deals the subtrees races asked for that were not searched.
 */
async function checkDporParallel(s: Scenario, file: string, opts: CheckOptions, workers: number): Promise<CheckResult> {
  const { start, cfg, bound, keepGoing, depth, subtrees } = startSplit(s, opts);
  const tallies: SubtreeTally[] = [];
  const errors: Extract<WorkerMessage, { type: 'error' }>[] = [];
  const progress = new Map<number, { runs: number; steps: number }>();
  const pool: ChildProcess[] = [];
  let lowest = Infinity;
  let complete = true;
  let demands: Subtree[] = [];
  // The phase being dealt: its subtrees from `offset`, the next to deal, and how many are out.
  let phase: readonly Subtree[] = subtrees;
  let offset = 0;
  let next = 0;
  let out = 0;
  let phaseDone: { resolve: () => void; reject: (e: unknown) => void } | null = null;
  const deal = (w: number) => {
    const index = offset + next;
    if (next < phase.length && complete && (keepGoing || index < lowest)) {
      pool[w]!.send({ type: 'subtree', index, subtree: phase[next++]! } satisfies SubtreeMessage);
      out++;
    } else if (out === 0) phaseDone?.resolve();
  };
  const onMessage = (w: number, m: WorkerMessage) => {
    if (m.type === 'progress') {
      progress.set(w, m);
      let runs = 0;
      let steps = 0;
      for (const p of progress.values()) {
        runs += p.runs;
        steps += p.steps;
      }
      opts.onProgress?.({ runs, steps, elapsedMs: monotonicMs() - start, findings: lowest === Infinity ? 0 : 1 });
      return;
    }
    if (m.type === 'finding') {
      if (m.run < lowest) {
        lowest = m.run;
        if (!keepGoing) for (const other of pool) if (other.connected) other.send({ stopAbove: lowest });
      }
      return;
    }
    out--;
    if (m.type === 'done') {
      const t = m.subtree!;
      if (t.tally) tallies.push(t.tally);
      demands.push(...t.demands);
      // Cut short by a limit (a finding or a stop is not one).
      if (!t.exhausted && (t.tally?.findings ?? 0) === 0 && t.index < lowest) complete = false;
    } else {
      complete = false;
      errors.push(m);
    }
    deal(w);
  };
  const task: WorkerTask = {
    file,
    cfg,
    strategy: 'dpor',
    bound: opts.preemptionBound ?? null,
    depth,
    keepGoing,
    seed: opts.seed ?? 1,
    pctDepth: 0,
    pctK: 0,
    first: 0,
    stride: 1,
    // (IPC carries JSON: no Infinity.)
    maxRuns: opts.runs === undefined ? Number.MAX_SAFE_INTEGER : Math.ceil(opts.runs / workers),
    deadline: deadlineOf(opts),
  };
  const searched = new Set<string>();
  try {
    for (;;) {
      await new Promise<void>((resolve, reject) => {
        phaseDone = { resolve, reject };
        if (pool.length === 0) {
          for (let w = 0; w < workers; w++) {
            pool.push(spawnWorker(w, (m) => onMessage(w, m), (e) => phaseDone?.reject(e)));
            pool[w]!.send(task);
          }
        }
        for (let w = 0; w < workers; w++) deal(w);
      });
      if (!complete || (lowest < Infinity && !keepGoing)) break;
      offset += phase.length;
      phase = nextPhase(demands, searched);
      demands = [];
      next = 0;
      if (phase.length === 0) break;
    }
  } finally {
    for (const worker of pool) worker.kill();
  }
  throwFirstError(errors, keepGoing ? Infinity : lowest);
  const describe = new DporStrategy(opts.memoryModel, bound, { depth }).describe();
  return splitResult(s, cfg, opts, start, `${describe}, ${workers} workers`, tallies, complete);
}

/**
 * The check's result from subtree tallies: summed in their order up to the first subtree with a
 * finding (all of them when keeping going), whose first failing run is replayed here.
 */
function splitResult(s: Scenario, cfg: RunConfig, opts: CheckOptions, start: number, strategy: string, tallies: SubtreeTally[], complete: boolean): CheckResult {
  const keepGoing = opts.keepGoing ?? false;
  let runs = 0;
  let steps = 0;
  let findings = 0;
  let first: { run: number; choices: number[] } | null = null;
  const outcomes = new Map<string, number>();
  const coverage = new Map<string, number>();
  for (const t of [...tallies].sort((a, b) => a.index - b.index)) {
    if (first !== null && !keepGoing) break;
    if (t.first !== null && first === null) first = { run: runs + t.first.run, choices: t.first.choices };
    runs += t.runs;
    steps += t.steps;
    findings += t.findings;
    for (const [o, n] of t.outcomes) outcomes.set(o, (outcomes.get(o) ?? 0) + n);
    for (const [p, n] of t.coverage) coverage.set(p, (coverage.get(p) ?? 0) + n);
  }
  const result: CheckResult = {
    scenario: s.name,
    strategy,
    memoryModel: opts.memoryModel,
    versions: cfg.versions ?? {},
    variant: opts.variant,
    cost: tallies.find((t) => t.index === 0)?.cost ?? null,
    runs,
    steps,
    elapsedMs: monotonicMs() - start,
    exhausted: complete && (first === null || keepGoing),
    finding: null,
    findings,
    outcomes,
    coverage,
  };
  if (first === null) return result;
  const failing = runScenario(s, cfg, new ReplayChooser(first.choices));
  const finding = makeFinding(s, cfg, failing, first.run, opts.shrink !== false);
  return { ...result, finding, elapsedMs: monotonicMs() - start };
}
