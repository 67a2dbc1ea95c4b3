/**
 * What the rseq differential scenarios share: facts named as in probes/rseq's JSON lines, the
 * few user-space views the probes have and the model gives no call for (getauxval, the saved
 * RIP of a signal handler's ucontext, PTRACE_GET_RSEQ_CONFIGURATION, sched_yield), and the two
 * ways a scenario is run:
 *
 * - `every`: stateless DFS over every schedule (optionally preemption-bounded); each run yields
 *   its facts, and a fact the probe states about every run must come out the same in all of
 *   them (or an aggregate over them says which schedules it is about);
 * - `roundRobin`: one fixed schedule, threads in turn. For scenarios whose helper thread spins
 *   (as the probes' pokers do) until the other thread is inside its critical section: DFS would
 *   let the spinner run forever. The probe's fact is then "there is a schedule in which ...",
 *   and the round-robin schedule is one.
 */
import assert from 'node:assert/strict';
import type { Agents, Chooser } from '../../../src/engine/choice.ts';
import { atomic, load32, store32, type Op, type SimCode } from '../../../src/engine/ops.ts';
import type { SimThread } from '../../../src/engine/thread.ts';
import type { Verdict } from '../../../src/engine/verdict.ts';
import { DporStrategy } from '../../../src/explore/dpor.ts';
import { errnoName } from '../../../src/kernel/errno.ts';
import { auxv, RSEQ_SIG, sysRseq } from '../../../src/kernel/rseq.ts';
import { signalName } from '../../../src/kernel/signal.ts';
import {
  MAP_ANONYMOUS, MAP_FIXED, MAP_SHARED, mmap, PROT_READ, PROT_WRITE, wait4, wexitstatus, wifexited, wtermsig,
} from '../../../src/kernel/syscalls.ts';
import type { Task } from '../../../src/kernel/task.ts';
import { PAGE_SIZE } from '../../../src/memory/page.ts';
import type { Scenario } from '../../../src/scenario/define.ts';
import { MemoryView, type Setup } from '../../../src/scenario/memory-view.ts';
import { runScenario, type RunResult } from '../../../src/scenario/run.ts';

/** One probe case's facts, named as in its JSON line. */
export type Facts = Record<string, boolean | number | string>;
/** The facts of several cases a scenario runs in sequence, by case name. */
export type CaseFacts = Record<string, Facts>;

/** The profiles of this machine (Linux 6.18, Debian glibc 2.36). */
export const VERSIONS = { kernel: '6.18', glibc: '2.36' } as const;
/** GLIBC_TUNABLES=glibc.pthread.rseq=0, as run.sh runs every probe but state's first pass. */
export const GLIBC_RSEQ_OFF: Readonly<Record<string, string>> = { 'glibc.pthread.rseq': '0' };

/** The probes' sentinel for kernel-owned fields (probes.h SENT). */
export const SENT = 0xdeadbeef;
export const SIG = RSEQ_SIG;
export const F_UNREG = 1;

/** How the probes print a result: "OK", or the errno's name. */
export const ename = (r: number): string => (r === 0 ? 'OK' : r < 0 ? errnoName(r) : `ret ${r}`);

/** The probes' rs(): rseq(2) returning "OK" or the errno name. */
export function* rs(area: number, len: number, flags: number, sig: number): SimCode<string> {
  return ename((yield sysRseq(area, len, flags, sig)) as number);
}

/** A signed 32-bit load (the probes print most fields with %d). */
export function* loadInt(addr: number): SimCode<number> {
  return ((yield load32(addr)) as number) | 0;
}

// ---- a page shared with fork children, at a fixed address --------------------------------------

/**
 * The probes' MAP_SHARED result page. At a fixed address, so that the test can still read it when
 * a run ended in a crash (a child killed by SIGSEGV ends the model's run).
 */
export const SHARED = 0x6000_0000_0000;
/** A result word nobody wrote: the probes' "none". */
export const NONE = 0x7fff_fff0;

export function* mapShared(): SimCode<number> {
  return (yield mmap(SHARED, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED)) as number;
}

/** A result word as the probes print it: "none" when unwritten, else "OK" / errno name. */
export const resultName = (word: number): string => ((word | 0) === NONE ? 'none' : ename(word | 0));

/** waitpid and the probes' wdesc(): "exit:N" or "signal:SIGxxx". */
export function* waitChild(pid: number, statusAddr: number): SimCode<string> {
  yield wait4(pid, statusAddr, 0);
  const st: number = yield load32(statusAddr);
  return wifexited(st) ? `exit:${wexitstatus(st)}` : `signal:${signalName(wtermsig(st))}`;
}

// ---- user-space views the model has no call for ------------------------------------------------

const taskOf = (t: unknown): Task => (t as SimThread).task as Task;

/** getauxval(type): the kernel's auxiliary vector (0 when absent; not a system call). */
export const getauxval = (type: number): Op =>
  atomic({ name: 'getauxval', run: (t: unknown) => auxv(taskOf(t).kernel, type), describe: () => `getauxval(${type})` });

/**
 * ucontext's saved RIP in a signal handler (abort.c on_sig): the interrupted instruction
 * pointer, which the kernel set to abort_ip when it aborted a critical section.
 */
export const interruptedIp = (): Op => atomic({ name: 'ucontext RIP', run: (t: unknown) => (t as SimThread).ip });

/**
 * NEW_THREAD_RUNS: a thread that runs alone is stepped in a tight loop while its operations are
 * plain loads and stores (Machine.runAlone), and that loop does not notice a thread it has just
 * created: until the creator issues another kind of operation, the new thread cannot run (a
 * creator that spins on a flag the new thread sets never stops). The scenarios issue a
 * sched_yield right after creating a thread.
 *
 * sched_yield(2): the model's scheduler may switch at any step, so it is a system call that does nothing. */
export const schedYield = (): Op =>
  atomic({
    name: 'sched_yield',
    run(t: unknown): number {
      taskOf(t).kernel.charge(t as SimThread);
      return 0;
    },
  });

/**
 * PTRACE_GET_RSEQ_CONFIGURATION (state.c ptrace_config): the kernel's record of a task's
 * registration: [rseq_abi_pointer, rseq_abi_size, signature], zeros when unregistered.
 */
export const ptraceRseqConfig = (pid: number): Op =>
  atomic({
    name: 'ptrace(PTRACE_GET_RSEQ_CONFIGURATION)',
    run(t: unknown): number[] | number {
      const task = taskOf(t);
      const target = task.kernel.findTask(task.ns, pid);
      if (!target) return -3; // ESRCH
      const reg = target.rseq.reg;
      return reg ? [reg.area, reg.len, reg.sig] : [0, 0, 0];
    },
  });

// ---- scenarios and how they are run ------------------------------------------------------------

/**
 * A scenario whose first thread returns its facts; the run's outcome is their JSON. Extra threads
 * (a busy thread on the same CPU) get the same context.
 */
export function factsScenario<C>(
  name: string,
  setup: (m: Setup) => C,
  main: (ctx: C) => SimCode<unknown>,
  opts: { cpus?: number; others?: ((ctx: C) => SimCode<unknown>)[]; stepBudget?: number } = {},
): Scenario<C> {
  return {
    name,
    glibc: true,
    cpus: opts.cpus ?? 2,
    stepBudget: opts.stepBudget ?? 5000,
    setup,
    threads: [main, ...(opts.others ?? [])],
    outcome: (_m, _ctx, results) => JSON.stringify(results[0]),
  };
}

/** What one run of a scenario gave: its facts (the outcome), or the verdict it ended in. */
export interface RunFacts {
  readonly facts: unknown;
  readonly verdict: Verdict | null;
  /** The first process's memory after the run (the shared page survives a crash). */
  readonly mem: MemoryView;
}

function runFacts(r: RunResult): RunFacts {
  const mem = new MemoryView(r.kernel!.machine.mem);
  return { facts: r.verdict === null ? JSON.parse(r.outcome!) : null, verdict: r.verdict, mem };
}

export interface RunOptions {
  readonly settings?: Readonly<Record<string, string>>;
  /** DFS: at most this many preemptions per run (default: none, every schedule). */
  readonly preemptionBound?: number;
  /** DFS: fail when the tree has more runs than this (default 5000). */
  readonly maxRuns?: number;
}

/**
 * Every schedule of the scenario, up to equivalence (DPOR until exhausted: one run per
 * Mazurkiewicz trace), each run mapped by `read` to the facts the probe would print. Returns the
 * distinct results with how many runs gave each.
 */
export function everySchedule<R>(s: Scenario, read: (r: RunFacts) => R, opts: RunOptions = {}): Map<string, { value: R; runs: number }> {
  const dfs = new DporStrategy('sc', opts.preemptionBound ?? Infinity);
  const max = opts.maxRuns ?? 5000;
  const out = new Map<string, { value: R; runs: number }>();
  let runs = 0;
  for (let chooser = dfs.nextRun(); chooser !== null; chooser = dfs.nextRun()) {
    assert.ok(runs < max, `${s.name}: more than ${max} schedules; make the scenario smaller`);
    const r = runScenario(s, { memoryModel: 'sc', versions: VERSIONS, settings: opts.settings, observer: dfs }, chooser);
    dfs.endRun();
    runs++;
    const value = read(runFacts(r));
    const key = JSON.stringify(value);
    const seen = out.get(key);
    if (seen) seen.runs++;
    else out.set(key, { value, runs: 1 });
  }
  return out;
}

/** The facts of a run that must not end in a finding. */
export function noFinding(r: RunFacts): unknown {
  assert.equal(r.verdict, null, `the model's run ended in ${r.verdict?.kind}: ${r.verdict?.message}`);
  return r.facts;
}

/** The one result every schedule gave (a fact about every schedule). */
export function same<R>(results: Map<string, { value: R; runs: number }>, what: string): R {
  const keys = [...results.keys()];
  assert.equal(keys.length, 1, `${what}: the facts differ between schedules:\n${keys.join('\n')}`);
  return results.get(keys[0]!)!.value;
}

/** The facts of a scenario that must be the same in every schedule. */
export function everyRun(s: Scenario, opts: RunOptions = {}): unknown {
  return same(everySchedule(s, noFinding, opts), s.name);
}

/** Threads in turn: after thread i, the runnable thread with the next id (wrapping around). */
export class RoundRobin implements Chooser {
  private last = -1;
  schedule(agents: Agents, n: number): number {
    let best = -1;
    let first = -1;
    for (let i = 0; i < n; i++) {
      const id = agents.thread[i]!.id;
      if (first < 0 || id < agents.thread[first]!.id) first = i;
      if (id > this.last && (best < 0 || id < agents.thread[best]!.id)) best = i;
    }
    const k = best >= 0 ? best : first;
    this.last = agents.thread[k]!.id;
    return k;
  }
  data(): number {
    return 0;
  }
}

/** One run under the round-robin schedule. */
export function roundRobin(s: Scenario, opts: RunOptions = {}): RunFacts {
  return runFacts(runScenario(s, { memoryModel: 'sc', versions: VERSIONS, settings: opts.settings }, new RoundRobin()));
}

/** How a run that is the probes' forked child ended: "exit:0" or "signal:SIGSEGV". */
export function childEnd(r: RunFacts): string {
  if (r.verdict === null) return 'exit:0';
  assert.equal(r.verdict.kind, 'crash', `the model's run ended in ${r.verdict.kind}: ${r.verdict.message}`);
  return `signal:${r.verdict.signal}`;
}

/** Memoise a model computation (each scenario is explored once per test run). */
export function once<T>(f: () => T): () => T {
  let done = false;
  let v: T;
  return () => {
    if (!done) {
      v = f();
      done = true;
    }
    return v;
  };
}

/** Store a fact word (the probes' shared results). */
export function* storeWord(addr: number, v: number | boolean): SimCode {
  yield store32(addr, Number(v) >>> 0);
}

// ---- how the test compares a case ------------------------------------------------------------

/** A probe line's fields, as parsed. */
export type Line = Readonly<Record<string, unknown>>;

/** A case the model expresses: its facts, and which of them are compared. */
export interface CasePlan {
  /** The model's facts, named as in the probe's line. */
  readonly model: () => Facts;
  /** Fields compared as they are (deterministic on the machine: see probes/rseq/README.md). */
  readonly fields: readonly string[];
  /**
   * Facts derived the same way from the model's and the machine's fields, for printed values
   * that vary run to run (CPU numbers) but whose relation does not (cpu_id >= 0).
   */
  readonly derived?: Readonly<Record<string, (f: Line) => boolean | number | string>>;
  /**
   * Facts the machine's side derives from its printed fields and the model states directly (a
   * fact over every schedule, where the probe printed what one run saw).
   */
  readonly fromLine?: Readonly<Record<string, (line: Line) => boolean | number | string>>;
  /**
   * The probe's own evidence that this run of it was disturbed by the machine (it gave up
   * retrying, or something it did not cause happened): the reason, and the case is skipped.
   */
  readonly noise?: (line: Line) => string | undefined;
  /** A disagreement the model keeps for now: the case runs as a todo with this explanation. */
  readonly todo?: string;
}

/** A case the model cannot express, and why. */
export interface NotModelled {
  readonly notModelled: string;
}

export type Plan = CasePlan | NotModelled;

/** A case whose facts are one part of a scenario's CaseFacts. */
export const partOf = (facts: () => CaseFacts, name: string): (() => Facts) => () => {
  const f = facts()[name];
  assert.ok(f, `the model scenario produced no case ${name}`);
  return f;
};
