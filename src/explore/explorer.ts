/**
 * The explorer: check that the scenario's code is deterministic, then run it under a strategy
 * until something is found or the budget (runs, time, or the strategy's own end) is spent. A
 * finding is replayed from its choices with tracing on, which both yields the trace and proves
 * that the replay string reproduces the run.
 */
import { DeterminismLog, DivergenceFound, nondeterminismError } from '../engine/determinism.ts';
import { InternalError, NondeterminismError, UsageError } from '../engine/errors.ts';
import { monotonicMs } from '../engine/globals.ts';
import type { TraceStep } from '../engine/trace.ts';
import type { Verdict } from '../engine/verdict.ts';
import type { MemoryModel } from '../memory/model.ts';
import type { Scenario, StrategyName, Versions } from '../scenario/define.ts';
import { resolveVersions, runScenario, type RunConfig, type RunCost, type RunResult } from '../scenario/run.ts';
import { DfsStrategy } from './dfs.ts';
import { DporStrategy } from './dpor.ts';
import { PctStrategy } from './pct.ts';
import { RandomChooser, RandomStrategy } from './random.ts';
import { ReplayChooser } from './replay.ts';
import { decodeReplay, encodeReplay } from './replay-string.ts';
import { KERNEL_PROFILES } from '../kernel/profile.ts';
import { GLIBC_PROFILES } from '../libc/profile.ts';
import { shrink } from './shrink.ts';
import { Tally } from './tally.ts';
import { runSeed, type Strategy } from './strategy.ts';

export interface CheckOptions {
  readonly strategy: StrategyName;
  readonly memoryModel: MemoryModel;
  /** Kernel and glibc versions (the scenario's when absent). */
  readonly versions?: Versions;
  /** The scenario variant to check (its first when absent). */
  readonly variant?: string;
  /** Tunables and kernel settings (--set). */
  readonly settings?: Readonly<Record<string, string>>;
  /** Let the kernel vary incidental behaviour within what is documented (--perturb). */
  readonly perturb?: boolean;
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
  /** Shrink the first finding before reporting it (default true). */
  readonly shrink?: boolean;
  /**
   * Fingerprint states (engine/state-hash.ts): livelocks are found as repeated states, DFS
   * prunes states it has explored, and the distinct states are counted. Default: on for dfs and
   * dpor, off for random and pct (it leaves the machine's fast paths).
   */
  readonly stateHash?: boolean;
  /** Called every so often with the figures so far. */
  readonly onProgress?: (p: Progress) => void;
}

export interface Progress {
  readonly runs: number;
  readonly steps: number;
  /** Distinct states met so far (when states are fingerprinted). */
  readonly states?: number;
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
  /**
   * The versions under which the same choices give the same verdict (scenarios with a kernel or
   * glibc): the smallest set of profiles the finding needs, as "kernel 6.19 / glibc 2.34, 2.35".
   */
  readonly failsWith?: readonly Versions[];
  /** What shrinking did: the found run's steps and preemptions, and the re-runs it took. */
  readonly shrink?: { readonly stepsBefore: number; readonly preemptionsBefore: number; readonly preemptionsAfter: number; readonly runs: number };
}

export interface CheckResult {
  readonly scenario: string;
  readonly strategy: string;
  readonly memoryModel: MemoryModel;
  /** The versions modelled (only those the scenario uses). */
  readonly versions: Versions;
  readonly variant?: string;
  /** Cost of the first run (scenarios with a kernel): system calls and simulated time. */
  readonly cost: RunCost | null;
  readonly runs: number;
  readonly steps: number;
  /** Runs cut short in a state explored before (state hashing). */
  readonly pruned?: number;
  /** Distinct states met (state hashing with DFS; summed over the first choice's subtrees). */
  readonly states?: number;
  readonly elapsedMs: number;
  /** True when the strategy explored everything it could (dfs only). */
  readonly exhausted: boolean;
  readonly finding: Finding | null;
  readonly findings: number;
  /** Final-state outcomes (scenario.outcome) and how many runs ended in each. */
  readonly outcomes: ReadonlyMap<string, number>;
  /** Coverage points reached, with the number of runs that reached each. */
  readonly coverage: ReadonlyMap<string, number>;
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
    case 'dpor':
      return new DporStrategy(opts.memoryModel, opts.preemptionBound ?? Infinity);
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
  if (cfg.variant) out.v = cfg.variant;
  for (const [k, v] of Object.entries(cfg.settings ?? {})) out[`t.${k}`] = v;
  if (cfg.perturb) out.p = '1';
  if (cfg.stateHash) out.h = '1';
  if (cfg.versions?.kernel) out.k = cfg.versions.kernel;
  if (cfg.versions?.glibc) out.g = cfg.versions.glibc;
  return out;
}

/**
 * Random runs with the determinism check on (their findings are not reported), stopping early
 * once `maxSteps` steps were spent. Run 1 repeats run 0's schedule. On a divergence the two runs
 * are repeated with call sites captured at the diverging operation, for the error message.
 */
export function checkDeterminism(s: Scenario, cfg: RunConfig, runs: number, seed: number, maxSteps = 300_000): void {
  const log = new DeterminismLog();
  const schedules: (readonly number[] | number)[] = [];
  const chooserFor = (i: number) => {
    const sched = schedules[i]!;
    return typeof sched === 'number' ? new RandomChooser(sched) : new ReplayChooser(sched);
  };
  let steps = 0;
  try {
    for (let i = 0; i < runs + 1 && steps < maxSteps; i++) {
      schedules[i] = i === 1 ? (schedules[0] as number) : runSeed(seed ^ 0x5eed, i);
      log.run = i;
      steps += runScenario(s, { ...cfg, determinism: log }, chooserFor(i)).steps;
    }
  } catch (e) {
    if (!(e instanceof DivergenceFound)) throw e;
    const d = e.divergence;
    const locate = (run: number) => {
      const l = new DeterminismLog({ path: d.path, count: d.count });
      try {
        runScenario(s, { ...cfg, determinism: l }, chooserFor(run));
      } catch (err) {
        if (err instanceof UsageError) throw err;
      }
      return l.located;
    };
    throw nondeterminismError(d, locate(d.runs[0]), locate(d.runs[1]));
  }
}

/** The configuration every run of a check shares. */
export function runConfigOf(s: Scenario, opts: CheckOptions): RunConfig {
  return {
    memoryModel: opts.memoryModel,
    versions: scenarioVersions(s, opts.versions),
    variant: opts.variant,
    settings: opts.settings,
    perturb: opts.perturb,
    stateHash: opts.stateHash ?? (opts.strategy === 'dfs' || opts.strategy === 'dpor'),
  };
}

export function check(s: Scenario, opts: CheckOptions): CheckResult {
  const start = monotonicMs();
  const seed = opts.seed ?? 1;
  const cfg = runConfigOf(s, opts);
  guard(() => checkDeterminism(s, cfg, opts.determinismRuns ?? 12, seed));
  const strategy = makeStrategy(opts);
  const maxRuns = opts.runs ?? (opts.strategy === 'dfs' || opts.strategy === 'dpor' ? Infinity : 1000);
  const runCfg: RunConfig = strategy instanceof DporStrategy ? { ...cfg, observer: strategy } : cfg;
  const deadline = opts.timeMs === undefined ? Infinity : start + opts.timeMs;
  const tally = new Tally();
  let findings = 0;
  let first: { result: RunResult; run: number } | null = null;
  let cost: RunCost | null = null;
  let exhausted = false;
  while (tally.runs < maxRuns) {
    const chooser = strategy.nextRun();
    if (chooser === null) {
      exhausted = true;
      break;
    }
    const r = guard(() => runScenario(s, runCfg, chooser));
    strategy.endRun(r.log, r.steps);
    tally.add(r);
    if (tally.runs === 1) cost = r.cost;
    if (r.verdict !== null) {
      findings++;
      if (first === null) first = { result: r, run: tally.runs - 1 };
      if (!opts.keepGoing) break;
    }
    if ((tally.runs & 15) === 0) {
      const now = monotonicMs();
      opts.onProgress?.({ runs: tally.runs, steps: tally.steps, states: statesOf(strategy), elapsedMs: now - start, findings });
      if (now >= deadline) break;
    }
  }
  if (!exhausted && (strategy instanceof DfsStrategy || strategy instanceof DporStrategy) && strategy.done) exhausted = true;
  const finding = first === null ? null : makeFinding(s, cfg, first.result, first.run, opts.shrink !== false);
  return {
    scenario: s.name,
    strategy: strategy.describe(),
    memoryModel: opts.memoryModel,
    versions: cfg.versions ?? {},
    variant: opts.variant,
    cost,
    runs: tally.runs,
    steps: tally.steps,
    pruned: tally.pruned,
    states: statesOf(strategy),
    elapsedMs: monotonicMs() - start,
    exhausted,
    finding,
    findings,
    outcomes: tally.outcomes,
    coverage: tally.coverage,
  };
}

/**
 * A finding from a failing run: shrunk (unless asked not to), then replayed from its replay
 * string with tracing on, which proves the string reproduces it.
 */
export function makeFinding(s: Scenario, cfg: RunConfig, result: RunResult, run: number, doShrink: boolean): Finding {
  let choices = result.log.values();
  let shrinkInfo: Finding['shrink'];
  if (doShrink) {
    const sh = guard(() => shrink(s, cfg, choices, result.verdict!));
    if (sh.result.verdict?.kind === result.verdict!.kind) {
      shrinkInfo = { stepsBefore: result.steps, preemptionsBefore: sh.preemptionsBefore, preemptionsAfter: sh.preemptionsAfter, runs: sh.runs };
      choices = sh.choices;
    }
  }
  const replay = encodeReplay({ params: replayParams(cfg), choices });
  const traced = replayRun(s, replay);
  if (traced.verdict?.kind !== result.verdict!.kind) {
    throw new NondeterminismError(
      `run ${run} ended in '${result.verdict!.kind}' but its replay ended in '${traced.verdict?.kind ?? 'no finding'}': the scenario is not deterministic`,
    );
  }
  return { verdict: traced.verdict, replay, trace: traced.trace ?? [], run, steps: traced.steps, shrink: shrinkInfo, failsWith: versionSet(s, cfg, choices, traced.verdict) };
}

/**
 * Replay the finding's choices under every other profile the scenario uses, and keep those where
 * the same verdict comes out (a replay that no longer fits the choices counts as "does not fail").
 */
function versionSet(s: Scenario, cfg: RunConfig, choices: readonly number[], verdict: Verdict): Versions[] | undefined {
  const uses = scenarioVersions(s, cfg.versions);
  if (uses.kernel === undefined && uses.glibc === undefined) return undefined;
  const kernels = uses.kernel === undefined ? [undefined] : Object.keys(KERNEL_PROFILES);
  const glibcs = uses.glibc === undefined ? [undefined] : Object.keys(GLIBC_PROFILES);
  const out: Versions[] = [];
  for (const kernel of kernels) {
    for (const glibc of glibcs) {
      const versions: Versions = { kernel, glibc };
      try {
        const r = runScenario(s, { ...cfg, versions }, new ReplayChooser(choices));
        if (r.verdict?.kind === verdict.kind) out.push(versions);
      } catch (e) {
        if (!(e instanceof UsageError)) throw e;
      }
    }
  }
  return out;
}

/** Run once from a replay string, traced. */
export function replayRun(s: Scenario, replay: string): RunResult {
  const data = decodeReplay(replay);
  const mm = data.params.mm;
  if (mm !== 'sc' && mm !== 'tso' && mm !== 'pso') throw new UsageError(`replay string names no memory model (mm=sc|tso|pso)`);
  const chooser = new ReplayChooser(data.choices);
  const versions = { kernel: data.params.k, glibc: data.params.g };
  const settings = Object.fromEntries(
    Object.entries(data.params)
      .filter(([k]) => k.startsWith('t.'))
      .map(([k, v]) => [k.slice(2), v]),
  );
  const cfg: RunConfig = { memoryModel: mm, versions, variant: data.params.v, settings, perturb: data.params.p === '1', stateHash: data.params.h === '1' };
  const r = guard(() => runScenario(s, { ...cfg, trace: true }, chooser));
  if (chooser.remaining > 0) {
    throw new NondeterminismError(
      `the run ended with ${chooser.remaining} of the replay string's choices unused: the scenario does not behave as it did when the string was made`,
    );
  }
  return r;
}

/** Run once under a chooser for `hyrum run`, traced. */
export function tracedRun(
  s: Scenario,
  memoryModel: MemoryModel,
  seed: number,
  given?: Versions,
  variant?: string,
  settings?: Readonly<Record<string, string>>,
  perturb?: boolean,
): { result: RunResult; replay: string } {
  const cfg: RunConfig = { memoryModel, versions: scenarioVersions(s, given), variant, settings, perturb };
  const r = guard(() => runScenario(s, { ...cfg, trace: true }, new RandomChooser(runSeed(seed, 0))));
  return { result: r, replay: encodeReplay({ params: replayParams(cfg), choices: r.log.values() }) };
}

function statesOf(strategy: Strategy): number | undefined {
  return strategy instanceof DfsStrategy && strategy.states > 0 ? strategy.states : undefined;
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
