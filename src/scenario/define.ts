/**
 * What a scenario file exports (as its default export): memory set-up, the threads to start,
 * the checks, and the catalogue's expectations. A scenario is a TypeScript module the CLI loads
 * directly; see scenarios/ for examples.
 */
import type { MemoryModel } from '../memory/model.ts';
import type { SimCode } from '../engine/ops.ts';
import type { VerdictKind } from '../engine/verdict.ts';
import type { MemoryView, Setup } from './memory-view.ts';

export type StrategyName = 'random' | 'pct' | 'dfs' | 'dpor';

/** The versions a run models: kernel and glibc profiles by version string. */
export interface Versions {
  readonly kernel?: string;
  readonly glibc?: string;
}

/** One line of the catalogue: how to check the scenario, and what must come out. */
export interface Expectation {
  readonly memoryModel?: MemoryModel;
  readonly versions?: Versions;
  /** Which of the scenario's variants (see Scenario.variants). */
  readonly variant?: string;
  /** Settings for this line (see Scenario.settings). */
  readonly settings?: Readonly<Record<string, string>>;
  /** Vary incidental kernel behaviour (see CheckOptions.perturb). */
  readonly perturb?: boolean;
  readonly strategy?: StrategyName;
  readonly runs?: number;
  /** For dfs: at most this many preemptions per run (omit for no bound). */
  readonly preemptionBound?: number;
  readonly seed?: number;
  /** Fingerprint states (see CheckOptions.stateHash; default on for dfs and dpor). */
  readonly stateHash?: boolean;
  /** The verdict that must be found, or 'none' when exploration must find nothing. */
  readonly verdict: VerdictKind | 'none';
}

export interface Scenario<C = any> {
  readonly name: string;
  readonly description?: string;
  /** Simulated CPUs (default 2). */
  readonly cpus?: number;
  /** Memory model when the command line names none (default sc). */
  readonly memoryModel?: MemoryModel;
  /** Steps one thread may take before the run is a `hang` (default 10000). */
  readonly stepBudget?: number;
  /**
   * Attach the kernel model: the threads become tasks of one process, system calls work, and
   * threads can fork. The glibc model (Setup.glibc) needs it.
   */
  readonly kernel?: boolean;
  /** Attach the glibc model (implies the kernel). */
  readonly glibc?: boolean;
  /** Versions when the command line names none. */
  readonly versions?: Versions;
  /**
   * Tunables and kernel settings: `glibc.pthread.rseq` (0 or 1), `rseq_debug` (0 or 1).
   * The command line's --set wins.
   */
  readonly settings?: Readonly<Record<string, string>>;
  /**
   * Named variants of the scenario (cases of a table); setup receives the chosen one (the
   * first when none is named).
   */
  readonly variants?: readonly string[];
  /** Lay out memory; the value returned is handed to every thread and check. */
  setup?(m: Setup, variant: string): C;
  /** The threads started at the beginning, each given the setup's value. */
  readonly threads: ReadonlyArray<(ctx: C) => SimCode<unknown>>;
  /** Checked on committed memory: false or a message means violated. */
  invariant?(m: MemoryView, ctx: C): boolean | string | void;
  /** When the invariant is checked: after every step (default) or once at the end. */
  readonly invariantAt?: 'step' | 'end';
  /** Checked when every thread is done and every buffer drained; use assert(). */
  check?(m: MemoryView, ctx: C, results: unknown[]): void;
  /** A summary of the final state (litmus tests collect the set of outcomes). */
  outcome?(m: MemoryView, ctx: C, results: unknown[]): string;
  /** The catalogue's checks of this scenario. */
  readonly expect?: readonly Expectation[];
}

/** Define a scenario (an identity function that gives the object its type). */
export function scenario<C>(s: Scenario<C>): Scenario<C> {
  return s;
}
