/**
 * One run of a scenario under one chooser: build a fresh machine, set memory up, start the
 * threads, run, then apply the final check.
 */
import type { Chooser, ChoiceLog, StepObserver } from '../engine/choice.ts';
import type { DeterminismLog } from '../engine/determinism.ts';
import { AssertionFailed, UsageError } from '../engine/errors.ts';
import { installTraps, removeTraps } from '../engine/globals.ts';
import { Machine } from '../engine/machine.ts';
import { errorSite } from '../engine/source.ts';
import type { TraceStep } from '../engine/trace.ts';
import type { Verdict } from '../engine/verdict.ts';
import type { MemoryModel } from '../memory/model.ts';
import type { Scenario, Versions } from './define.ts';
import { Kernel } from '../kernel/kernel.ts';
import { DEFAULT_KERNEL, kernelProfile } from '../kernel/profile.ts';
import { Glibc } from '../libc/glibc.ts';
import { DEFAULT_GLIBC, glibcProfile } from '../libc/profile.ts';
import { MemoryView, Setup } from './memory-view.ts';

export interface RunConfig {
  readonly memoryModel: MemoryModel;
  /** Kernel and glibc versions (the scenario's defaults when absent). */
  readonly versions?: Versions;
  /** The scenario variant (its first when absent). */
  readonly variant?: string;
  /** Tunables and kernel settings (--set name=value), over the scenario's own. */
  readonly settings?: Readonly<Record<string, string>>;
  /** Let the kernel vary incidental behaviour within the documented ABI (--perturb). */
  readonly perturb?: boolean;
  /** Told what every step touches (DPOR). */
  readonly observer?: StepObserver | null;
  /** Record coverage points (on by default in checks; see Machine.coverage). */
  readonly coverage?: boolean;
  readonly trace?: boolean;
  readonly determinism?: DeterminismLog | null;
  /** Fingerprint states: livelock as a repeated state, and the chooser may prune (engine/state-hash.ts). */
  readonly stateHash?: boolean;
}

/** What a run cost in the kernel model's terms (see kernel/profile.ts CostModel). */
export interface RunCost {
  readonly syscalls: number;
  /** Simulated nanoseconds: memory operations at memOpNs each plus the system calls' costs. */
  readonly simNs: number;
}

export interface RunResult {
  /** The kernel model of the run, when the scenario has one (for reports: processes, costs). */
  readonly kernel: Kernel | null;
  /** Costs, when the scenario has a kernel. */
  readonly cost: RunCost | null;
  readonly verdict: Verdict | null;
  readonly steps: number;
  readonly log: ChoiceLog;
  readonly trace: TraceStep[] | null;
  readonly outcome: string | undefined;
  /** Coverage points this run reached, with hit counts. */
  readonly coverage: ReadonlyMap<string, number> | null;
  /**
   * The run was cut short in a state explored before (the chooser pruned it, or a state recurred
   * unfairly): no final check, no outcome.
   */
  readonly pruned: boolean;
}

export function runScenario(s: Scenario, cfg: RunConfig, chooser: Chooser): RunResult {
  installTraps();
  try {
    return runWithTraps(s, cfg, chooser);
  } finally {
    removeTraps();
  }
}

/** The versions a run uses: the command line's, else the scenario's, else the defaults. */
export function resolveVersions(s: Scenario, given?: Versions): Required<Versions> {
  return {
    kernel: given?.kernel ?? s.versions?.kernel ?? DEFAULT_KERNEL,
    glibc: given?.glibc ?? s.versions?.glibc ?? DEFAULT_GLIBC,
  };
}

function runWithTraps(s: Scenario, cfg: RunConfig, chooser: Chooser): RunResult {
  const withKernel = s.kernel === true || s.glibc === true;
  const versions = resolveVersions(s, cfg.versions);
  const m = new Machine(
    {
      memoryModel: cfg.memoryModel,
      cpus: s.cpus ?? 2,
      stepBudget: s.stepBudget ?? 10_000,
      trace: cfg.trace,
      determinism: cfg.determinism,
      forkable: withKernel,
      observer: cfg.observer,
      coverage: cfg.coverage ?? true,
      stateHash: cfg.stateHash ?? false,
    },
    chooser,
  );
  const settings = { ...s.settings, ...cfg.settings };
  const kernel = withKernel
    ? new Kernel(m, kernelProfile(versions.kernel), { rseqDebug: settings.rseq_debug === '1', perturbIncidental: cfg.perturb })
    : null;
  const glibc = s.glibc ? new Glibc(glibcProfile(versions.glibc), settings) : null;
  if (glibc !== null && m.hashing) m.stateParts.push(glibc);
  const setup = new Setup(m.mem, kernel, glibc);
  const view = new MemoryView(m.mem);
  glibc?.layOut(setup);
  const variant = cfg.variant ?? s.variants?.[0] ?? '';
  if (s.variants && !s.variants.includes(variant)) throw new UsageError(`scenario ${s.name} has no variant '${variant}' (it has: ${s.variants.join(', ')})`);
  const ctx = userCall(s, 'setup', () => (s.setup ? s.setup(setup, variant) : undefined));
  if (ctx !== null && typeof ctx === 'object') Object.freeze(ctx);
  const initial = s.threads.map((fn) => m.startThread(fn, [ctx], null));
  if (kernel) {
    const main = kernel.createFirstProcess(initial[0]!);
    for (const t of initial.slice(1)) kernel.addThread(main.process, t, kernel.allocPid(kernel.rootNs) as never);
    glibc?.initProcess(m.mem, initial);
  }
  const invariant = s.invariant;
  const checkInvariant = invariant && (() => invariant.call(s, view, ctx));
  if (checkInvariant && s.invariantAt !== 'end') m.setHooks({ invariant: checkInvariant });
  let verdict = m.run();
  if (m.pruned) return { kernel, cost: null, verdict, steps: m.stepCount, log: m.log, trace: m.trace, outcome: undefined, coverage: m.coverage, pruned: true };
  if (verdict === null && checkInvariant && s.invariantAt === 'end') verdict = m.checkInvariantNow(checkInvariant);
  let outcome: string | undefined;
  if (verdict === null) {
    const results = initial.map((t) => t.retval);
    verdict = finalCheck(s, view, ctx, results);
    if (s.outcome) outcome = userCall(s, 'outcome', () => s.outcome!(view, ctx, results));
  }
  let cost: RunCost | null = null;
  if (kernel) {
    let syscalls = 0;
    let simNs = 0;
    for (const t of m.threads) {
      syscalls += t.syscalls;
      simNs += (t.steps - t.syscalls) * kernel.profile.costs.memOpNs + t.syscallNs;
    }
    cost = { syscalls, simNs };
  }
  return { kernel, cost, verdict, steps: m.stepCount, log: m.log, trace: m.trace, outcome, coverage: m.coverage, pruned: false };
}

function finalCheck(s: Scenario, view: MemoryView, ctx: unknown, results: unknown[]): Verdict | null {
  if (!s.check) return null;
  try {
    s.check(view, ctx, results);
    return null;
  } catch (e) {
    const site = errorSite(e);
    if (e instanceof AssertionFailed) return { kind: 'assertion', message: e.message, sites: site ? [site] : undefined };
    if (e instanceof UsageError) throw e;
    return { kind: 'exception', message: `final check threw ${String(e)}`, sites: site ? [site] : undefined };
  }
}

/** Call scenario code outside simulated threads; its exceptions are bad input. */
function userCall<R>(s: Scenario, what: string, f: () => R): R {
  try {
    return f();
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`scenario ${s.name}: ${what} threw ${String(e)}`, errorSite(e));
  }
}
