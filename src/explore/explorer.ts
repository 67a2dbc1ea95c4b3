/**
 * The explorer: check that the scenario's code is deterministic, then run it under a strategy
 * until something is found or the budget (runs, time, or the strategy's own end) is spent. A
 * finding is replayed from its choices with tracing on, which both yields the trace and proves
 * that the replay string reproduces the run.
 */
import { DeterminismLog } from '../engine/determinism.ts';
import { InternalError, NondeterminismError, UsageError } from '../engine/errors.ts';
import { monotonicMs } from '../engine/globals.ts';
import type { TraceStep } from '../engine/trace.ts';
import type { Verdict } from '../engine/verdict.ts';
import type { MemoryModel } from '../memory/model.ts';
import type { Scenario, StrategyName, Versions } from '../scenario/define.ts';
import { resolveVersions, runScenario, type RunConfig, type RunResult } from '../scenario/run.ts';
import { DfsStrategy } from './dfs.ts';
import { PctStrategy } from './pct.ts';
import { RandomChooser, RandomStrategy } from './random.ts';
import { ReplayChooser } from './replay.ts';
import { decodeReplay, encodeReplay } from './replay-string.ts';
import { runSeed, type Strategy } from './strategy.ts';

export interface CheckOptions {
  readonly strategy: StrategyName;
  readonly memoryModel: MemoryModel;
  /** Kernel and glibc versions (the scenario's when absent). */
  readonly versions?: Versions;
  /** Stop after this many runs (default: 1000 for random and pct, unbounded for dfs). */
  readonly runs?: number;
  /** Stop after this many milliseconds of wall-clock time. */
  readonly timeMs?: number;
  readonly seed?: number;
  /** PCT's bug depth d (default 3). */
  readonly pctDepth?: number;
  /** DFS's preemption bound (default: none). */
  readonly preemptionBound?: number;
  /** Random runs spent checking determinism before exploring (default 12; 0 skips). */
  readonly determinismRuns?: number;
  /** Keep going after the first finding (to collect outcomes); findings are still counted. */
  readonly keepGoing?: boolean;
  /** Called every so often with the figures so far. */
  readonly onProgress?: (p: Progress) => void;
}

export interface Progress {
  readonly runs: number;
  readonly steps: number;
  readonly elapsedMs: number;
  readonly findings: number;
}

export interface Finding {
  readonly verdict: Verdict;
  readonly replay: string;
  readonly trace: readonly TraceStep[];
  /** The run (0-based) that found it. */
  readonly run: number;
  readonly steps: number;
}

export interface CheckResult {
  readonly scenario: string;
  readonly strategy: string;
  readonly memoryModel: MemoryModel;
  /** The versions modelled (only those the scenario uses). */
  readonly versions: Versions;
  readonly runs: number;
  readonly steps: number;
  readonly elapsedMs: number;
  /** True when the strategy explored everything it could (dfs only). */
  readonly exhausted: boolean;
  readonly finding: Finding | null;
  readonly findings: number;
  /** Final-state outcomes (scenario.outcome) and how many runs ended in each. */
  readonly outcomes: ReadonlyMap<string, number>;
}

export function makeStrategy(opts: CheckOptions): Strategy {
  const seed = opts.seed ?? 1;
  switch (opts.strategy) {
    case 'random':
      return new RandomStrategy(seed);
    case 'pct':
      return new PctStrategy(seed, opts.pctDepth ?? 3);
    case 'dfs':
      return new DfsStrategy(opts.preemptionBound ?? Infinity);
  }
}

/** The versions that matter to a scenario: none without a kernel, the kernel's, and glibc's. */
export function scenarioVersions(s: Scenario, given?: Versions): Versions {
  const v = resolveVersions(s, given);
  if (s.glibc) return v;
  if (s.kernel) return { kernel: v.kernel };
  return {};
}

/** Replay parameters that make a run reproducible on their own. */
function replayParams(cfg: RunConfig): Record<string, string> {
  const out: Record<string, string> = { mm: cfg.memoryModel };
  if (cfg.versions?.kernel) out.k = cfg.versions.kernel;
  if (cfg.versions?.glibc) out.g = cfg.versions.glibc;
  return out;
}

/** Random runs with the determinism check on; their findings are not reported. */
export function checkDeterminism(s: Scenario, cfg: RunConfig, runs: number, seed: number): void {
  const log = new DeterminismLog();
  for (let i = 0; i < runs; i++) {
    const r = runScenario(s, { ...cfg, determinism: log }, new RandomChooser(runSeed(seed ^ 0x5eed, i)));
    if (i === 0 && r.verdict === null) {
      // The same schedule twice must give the same run.
      runScenario(s, { ...cfg, determinism: log }, new ReplayChooser(r.log.values()));
    }
  }
}

export function check(s: Scenario, opts: CheckOptions): CheckResult {
  const start = monotonicMs();
  const seed = opts.seed ?? 1;
  const cfg: RunConfig = { memoryModel: opts.memoryModel, versions: scenarioVersions(s, opts.versions) };
  guard(() => checkDeterminism(s, cfg, opts.determinismRuns ?? 12, seed));
  const strategy = makeStrategy(opts);
  const maxRuns = opts.runs ?? (opts.strategy === 'dfs' ? Infinity : 1000);
  const deadline = opts.timeMs === undefined ? Infinity : start + opts.timeMs;
  const outcomes = new Map<string, number>();
  let runs = 0;
  let steps = 0;
  let findings = 0;
  let first: { result: RunResult; run: number } | null = null;
  let exhausted = false;
  while (runs < maxRuns) {
    const chooser = strategy.nextRun();
    if (chooser === null) {
      exhausted = true;
      break;
    }
    const r = guard(() => runScenario(s, cfg, chooser));
    strategy.endRun(r.log, r.steps);
    runs++;
    steps += r.steps;
    if (r.outcome !== undefined) outcomes.set(r.outcome, (outcomes.get(r.outcome) ?? 0) + 1);
    if (r.verdict !== null) {
      findings++;
      if (first === null) first = { result: r, run: runs - 1 };
      if (!opts.keepGoing) break;
    }
    if ((runs & 15) === 0) {
      const now = monotonicMs();
      opts.onProgress?.({ runs, steps, elapsedMs: now - start, findings });
      if (now >= deadline) break;
    }
  }
  if (!exhausted && strategy instanceof DfsStrategy && strategy.done) exhausted = true;
  let finding: Finding | null = null;
  if (first !== null) {
    const replay = encodeReplay({ params: replayParams(cfg), choices: first.result.log.values() });
    const traced = replayRun(s, replay);
    if (traced.verdict?.kind !== first.result.verdict!.kind) {
      throw new NondeterminismError(
        `run ${first.run} ended in '${first.result.verdict!.kind}' but its replay ended in '${traced.verdict?.kind ?? 'no finding'}': the scenario is not deterministic`,
      );
    }
    finding = { verdict: traced.verdict, replay, trace: traced.trace ?? [], run: first.run, steps: traced.steps };
  }
  return {
    scenario: s.name,
    strategy: strategy.describe(),
    memoryModel: opts.memoryModel,
    versions: cfg.versions ?? {},
    runs,
    steps,
    elapsedMs: monotonicMs() - start,
    exhausted,
    finding,
    findings,
    outcomes,
  };
}

/** Run once from a replay string, traced. */
export function replayRun(s: Scenario, replay: string): RunResult {
  const data = decodeReplay(replay);
  const mm = data.params.mm;
  if (mm !== 'sc' && mm !== 'tso' && mm !== 'pso') throw new UsageError(`replay string names no memory model (mm=sc|tso|pso)`);
  const chooser = new ReplayChooser(data.choices);
  const versions = { kernel: data.params.k, glibc: data.params.g };
  const r = guard(() => runScenario(s, { memoryModel: mm, versions, trace: true, determinism: new DeterminismLog() }, chooser));
  if (chooser.remaining > 0) {
    throw new NondeterminismError(
      `the run ended with ${chooser.remaining} of the replay string's choices unused: the scenario does not behave as it did when the string was made`,
    );
  }
  return r;
}

/** Run once under a chooser for `hyrum run`, traced. */
export function tracedRun(s: Scenario, memoryModel: MemoryModel, seed: number, given?: Versions): { result: RunResult; replay: string } {
  const cfg: RunConfig = { memoryModel, versions: scenarioVersions(s, given) };
  const r = guard(() => runScenario(s, { ...cfg, trace: true, determinism: new DeterminismLog() }, new RandomChooser(runSeed(seed, 0))));
  return { result: r, replay: encodeReplay({ params: replayParams(cfg), choices: r.log.values() }) };
}

/** Errors that escape a run are bad input (UsageError) or Hyrum's own (InternalError). */
function guard<R>(f: () => R): R {
  try {
    return f();
  } catch (e) {
    if (e instanceof UsageError || e instanceof InternalError) throw e;
    throw new InternalError(`internal error: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}
