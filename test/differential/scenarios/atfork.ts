/**
 * probes/fork-pid/atfork.c: pthread_atfork ordering and scope, run in sequence in one process
 * as the probe does. Handlers a, b, c log prepare in lower case, parent in upper case and child
 * as digits, each side into its own log of the shared page. Not compared: _Fork, posix_spawn,
 * popen and system (not in the glibc model).
 */
import { load32, load8, loadPtr, store32, store8, storePtr, type SimCode } from '../../../src/engine/ops.ts';
import { forkLike } from '../../../src/kernel/clone.ts';
import { SIGCHLD } from '../../../src/kernel/signal.ts';
import { exitGroup, getpid, gettid, wait4 } from '../../../src/kernel/syscalls.ts';
import type { Glibc, Library } from '../../../src/libc/glibc.ts';
import type { Setup } from '../../../src/scenario/memory-view.ts';
import { partOf, type ModelCase } from '../model.ts';
import { factsScenario, loadInt, sharedPage, storeInt, waitStatus, type CaseFacts, type Ctx, type Facts } from './common.ts';

/** struct shared of the probe, as offsets in the shared page S. */
const PLOG = 0, CLOG = 32, PLEN = 64, CLEN = 68, MAIN_PID = 72, ENABLED = 76, LATE_RUNS = 80, PREPARE_TID = 84;
const DSO = [88, 92, 96] as const;

/** The probe's globals: S (the shared page's address, set by main) and registered_late. */
interface Globals {
  readonly libc: Glibc;
  readonly sAddr: number;
  readonly registeredLate: number;
  /** The handlers' addresses (filled in during set-up). */
  readonly fns: Record<string, number>;
}

interface AtforkCtx extends Ctx {
  readonly g: Globals;
  readonly dso: Library;
}

function* increment(addr: number): SimCode {
  yield store32(addr, ((yield load32(addr)) as number) + 1);
}

function* incrementInS(g: Globals, off: number): SimCode {
  yield* increment(((yield loadPtr(g.sAddr)) as number) + off);
}

/** note(c): append c to the parent's or the child's log. */
function* note(g: Globals, c: string): SimCode {
  const s: number = yield loadPtr(g.sAddr);
  if ((yield load32(s + ENABLED)) === 0) return;
  const inParent = (yield* g.libc.getpid()) === (yield load32(s + MAIN_PID));
  const [log, len] = inParent ? [s + PLOG, s + PLEN] : [s + CLOG, s + CLEN];
  const n: number = yield load32(len);
  if (n < 31) {
    yield store8(log + n, c.charCodeAt(0));
    yield store32(len, n + 1);
  }
}

function* prepA(g: Globals): SimCode {
  yield* note(g, 'a');
  yield store32(((yield loadPtr(g.sAddr)) as number) + PREPARE_TID, (yield gettid()) as number);
}

/** A prepare handler that registers `late` during the first fork with S->enabled == 2. */
function* prepRegisters(g: Globals): SimCode {
  const s: number = yield loadPtr(g.sAddr);
  if ((yield load32(s + ENABLED)) !== 2 || (yield load32(g.registeredLate)) !== 0) return;
  yield store32(g.registeredLate, 1);
  yield* g.libc.pthreadAtfork(g.fns.late!, g.fns.late!, g.fns.late!);
}

function setup(m: Setup, base: Ctx): AtforkCtx {
  const g: Globals = { libc: base.libc, sAddr: m.alloc(8), registeredLate: m.alloc(4), fns: {} };
  const logs = (c: string) => () => note(g, c);
  Object.assign(
    g.fns,
    base.libc.program({
      prepA: () => prepA(g), prepB: logs('b'), prepC: logs('c'),
      parA: logs('A'), parB: logs('B'), parC: logs('C'),
      chiA: logs('1'), chiB: logs('2'), chiC: logs('3'),
      late: () => incrementInS(g, LATE_RUNS),
      prepRegisters: () => prepRegisters(g),
    }),
  );
  // atfork_dso.so: its handlers count into S->dso (the probe passes &S->dso to dso_register).
  const counter = (i: number) => () => incrementInS(g, DSO[i]!);
  const dso = base.libc.library('atfork_dso.so', { prepare: counter(0), parent: counter(1), child: counter(2) });
  return { ...base, g, dso };
}

function* forkAndWait(ctx: Ctx): SimCode {
  const r: number = yield* ctx.libc.fork();
  if (r === 0) yield exitGroup(0);
  yield wait4(r, 0, 0);
}

function* reset(s: number, enabled: number): SimCode {
  for (let i = 0; i < 72; i += 4) yield store32(s + i, 0);
  yield store32(s + ENABLED, enabled);
}

function* readLog(addr: number): SimCode<string> {
  let out = '';
  for (let c: number; (c = yield load8(addr + out.length)) !== 0; ) out += String.fromCharCode(c);
  return out;
}

/** count_runs: handler calls (both logs) when a child is made by `make`. */
function* countRuns(s: number, make: () => SimCode<number>): SimCode<number> {
  yield* reset(s, 1);
  const r: number = yield* make();
  if (r === 0) yield exitGroup(0);
  yield wait4(r, 0, 0);
  yield store32(s + ENABLED, 0);
  return ((yield load32(s + PLEN)) as number) + ((yield load32(s + CLEN)) as number);
}

function* forkThread(ctx: Ctx): SimCode<number> {
  yield* forkAndWait(ctx);
  return (yield gettid()) as number;
}

function* dsoCase(ctx: AtforkCtx, s: number): SimCode<Facts> {
  const { libc, dso } = ctx;
  yield* libc.dlopen(dso);
  // dso_register: pthread_atfork from the DSO passes its __dso_handle.
  yield* libc.registerAtfork(dso.fns.prepare!, dso.fns.parent!, dso.fns.child!, dso.handle);
  yield* forkAndWait(ctx);
  const before: number[] = [];
  for (const off of DSO) before.push(yield* loadInt(s + off));
  const rc: number = yield* libc.dlclose(dso);
  const r: number = yield* libc.fork();
  if (r === 0) yield exitGroup(0);
  const { signal } = yield* waitStatus(ctx, r);
  let after = 0;
  for (const off of DSO) after += yield* loadInt(s + off);
  return {
    dso_prepare_runs_while_loaded: before[0]!,
    dso_parent_runs_while_loaded: before[1]!,
    dso_child_runs_while_loaded: before[2]!,
    dlclose_rc: rc,
    dso_runs_after_dlclose: after - before[0]! - before[1]! - before[2]!,
    fork_after_dlclose_child_signal: signal,
  };
}

function* main(ctx: AtforkCtx): SimCode<CaseFacts> {
  const { libc, g: { fns } } = ctx;
  const s: number = yield* sharedPage();
  yield storePtr(ctx.g.sAddr, s);
  yield* storeInt(s + MAIN_PID, (yield getpid()) as number);
  yield* libc.pthreadAtfork(fns.prepA!, fns.parA!, fns.chiA!);
  yield* libc.pthreadAtfork(fns.prepB!, fns.parB!, fns.chiB!);
  yield* libc.pthreadAtfork(fns.prepC!, fns.parC!, fns.chiC!);
  yield* libc.pthreadAtfork(fns.prepRegisters!, 0, 0);

  yield* reset(s, 1);
  yield* forkAndWait(ctx);
  yield store32(s + ENABLED, 0);
  const order = { parent_log: yield* readLog(s + PLOG), child_log: yield* readLog(s + CLOG) };

  yield* reset(s, 2);
  yield* forkAndWait(ctx);
  const first: number = yield* loadInt(s + LATE_RUNS);
  yield* forkAndWait(ctx);
  yield store32(s + ENABLED, 0);
  const registered_during_prepare = { late_runs_same_fork: first, late_runs_next_fork: (yield* loadInt(s + LATE_RUNS)) - first };

  yield* reset(s, 1);
  const pd: number = yield* libc.pthreadCreate(() => forkThread(ctx), 0);
  const tid: number = yield* libc.pthreadJoin(pd);
  yield store32(s + ENABLED, 0);
  const prepareTid: number = yield* loadInt(s + PREPARE_TID);
  const handlers_run_in_forking_thread = {
    prepare_tid_eq_forking_thread: prepareTid === tid,
    prepare_tid_ne_main: prepareTid !== (yield getpid()),
  };

  const handler_calls_per_creation_api = {
    fork: yield* countRuns(s, () => libc.fork()),
    vfork: yield* countRuns(s, () => libc.vfork()),
    raw_clone: yield* countRuns(s, () => forkLike(SIGCHLD)),
  };
  const dlclose_unregisters = yield* dsoCase(ctx, s);
  return { order, registered_during_prepare, handlers_run_in_forking_thread, handler_calls_per_creation_api, dlclose_unregisters };
}

const sequence = factsScenario('atfork', main, setup);

export const atforkCases: Record<string, ModelCase> = Object.fromEntries(
  ['order', 'registered_during_prepare', 'handlers_run_in_forking_thread', 'handler_calls_per_creation_api', 'dlclose_unregisters'].map(
    (c) => [c, partOf(sequence, c)],
  ),
);
