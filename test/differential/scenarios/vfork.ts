/**
 * probes/fork-pid/vfork.c: a vfork child shares the parent's memory and TCB, only the calling
 * thread waits until the child has exited, a signal to the parent is handled after that, and
 * NPTL's vfork runs no pthread_atfork handlers. The probe's sleeps become bounded spins. Not
 * modelled: released_by_exec (its facts are timings of a real execve of /bin/sleep).
 */
import { load32, store32, type SimCode } from '../../../src/engine/ops.ts';
import { SIGUSR1 } from '../../../src/kernel/signal.ts';
import { exitGroup, getpid, getppid, gettid, kill, sigaction, wait4, WNOHANG } from '../../../src/kernel/syscalls.ts';
import type { Setup } from '../../../src/scenario/memory-view.ts';
import { factsOf, type ModelCase } from '../model.ts';
import { factsScenario, loadInt, storeInt, waitStatus, type Ctx, type Facts } from './common.ts';

function* increment(addr: number): SimCode {
  yield store32(addr, ((yield load32(addr)) as number) + 1);
}

/** The probe's usleep in a vfork child: a few hundred steps in which others may run. */
function* pauseSteps(addr: number): SimCode {
  for (let i = 0; i < 300; i++) yield load32(addr);
}

interface SharedCtx extends Ctx {
  /** Ordinary private data: the vfork child writes the parent's own memory. */
  readonly v: { pid: number; ppid: number; tid: number; cached: number; written: number };
}

function* sharedMemory(ctx: SharedCtx): SimCode<Facts> {
  const { libc, v } = ctx;
  const me: number = yield getpid();
  const mytid: number = yield gettid();
  const r: number = yield* libc.vfork();
  if (r === 0) {
    yield* storeInt(v.pid, (yield getpid()) as number);
    yield* storeInt(v.ppid, (yield getppid()) as number);
    yield* storeInt(v.tid, (yield gettid()) as number);
    yield* storeInt(v.cached, yield* libc.cachedTid());
    yield* storeInt(v.written, 42);
    yield exitGroup(0);
  }
  // The probe measures the parent's time in vfork; here: the child is a zombie already.
  const exited: number = yield wait4(r, 0, WNOHANG);
  const pid: number = yield* loadInt(v.pid);
  return {
    parent_sees_child_write: (yield* loadInt(v.written)) === 42,
    parent_waited_for_child_exit: exited === r,
    child_getpid_eq_ret: pid === r,
    child_getpid_ne_parent: pid !== me,
    child_getppid_eq_parent: (yield* loadInt(v.ppid)) === me,
    child_gettid_eq_getpid: (yield* loadInt(v.tid)) === pid,
    child_cached_tid_eq_parent_tid: (yield* loadInt(v.cached)) === mytid,
  };
}

function sharedSetup(m: Setup, base: Ctx): SharedCtx {
  return { ...base, v: { pid: m.alloc(4), ppid: m.alloc(4), tid: m.alloc(4), cached: m.alloc(4), written: m.alloc(4) } };
}

interface FlagsCtx extends Ctx {
  readonly counter: number;
  readonly stop: number;
  readonly seenBefore: number;
  readonly seenAfter: number;
}

function* spin(ctx: FlagsCtx): SimCode<number> {
  while ((yield load32(ctx.stop)) === 0) yield* increment(ctx.counter);
  return 0;
}

function* otherThreadsRun(ctx: FlagsCtx): SimCode<Facts> {
  const t: number = yield* ctx.libc.pthreadCreate(() => spin(ctx), 0);
  const r: number = yield* ctx.libc.vfork();
  if (r === 0) {
    yield store32(ctx.seenBefore, (yield load32(ctx.counter)) as number);
    yield* pauseSteps(ctx.counter);
    yield store32(ctx.seenAfter, (yield load32(ctx.counter)) as number);
    yield exitGroup(0);
  }
  yield store32(ctx.stop, 1);
  yield* ctx.libc.pthreadJoin(t);
  yield wait4(r, 0, 0);
  return { sibling_thread_progressed_during_vfork: (yield* loadInt(ctx.seenAfter)) > (yield* loadInt(ctx.seenBefore)) };
}

function* signalDeferred(ctx: FlagsCtx): SimCode<Facts> {
  const seen = ctx.counter;
  yield sigaction(SIGUSR1, function* onUsr1() {
    yield store32(seen, 1);
  });
  const r: number = yield* ctx.libc.vfork();
  if (r === 0) {
    yield kill((yield getppid()) as number, SIGUSR1);
    yield* pauseSteps(seen);
    yield store32(ctx.seenBefore, (yield load32(seen)) as number);
    yield exitGroup(0);
  }
  const after: number = yield load32(seen);
  yield wait4(r, 0, 0);
  return { handler_ran_while_child_alive: (yield* loadInt(ctx.seenBefore)) === 1, handler_ran_after_vfork_returned: after === 1 };
}

function flagsSetup(m: Setup, base: Ctx): FlagsCtx {
  return { ...base, counter: m.alloc(4), stop: m.alloc(4), seenBefore: m.alloc(4), seenAfter: m.alloc(4) };
}

interface AtforkCtx extends Ctx {
  readonly runs: { prepare: number; parent: number; child: number };
  readonly handlers: Record<'prepare' | 'parent' | 'child', number>;
}

function* atforkNotRun(ctx: AtforkCtx): SimCode<Facts> {
  const { libc, runs, handlers: h } = ctx;
  yield* libc.pthreadAtfork(h.prepare, h.parent, h.child);
  let r: number = yield* libc.vfork();
  if (r === 0) yield exitGroup((yield load32(runs.child)) as number);
  const vc = (yield* waitStatus(ctx, r)).code;
  const vp: number = yield load32(runs.prepare);
  const vpa: number = yield load32(runs.parent);
  r = yield* libc.fork();
  if (r === 0) yield exitGroup((yield load32(runs.child)) as number);
  const fc = (yield* waitStatus(ctx, r)).code;
  return {
    vfork_prepare_runs: vp,
    vfork_parent_runs: vpa,
    vfork_child_runs: vc,
    fork_prepare_runs: ((yield load32(runs.prepare)) as number) - vp,
    fork_parent_runs: ((yield load32(runs.parent)) as number) - vpa,
    fork_child_runs: fc,
  };
}

function atforkSetup(m: Setup, base: Ctx): AtforkCtx {
  const runs = { prepare: m.alloc(4), parent: m.alloc(4), child: m.alloc(4) };
  const handlers = base.libc.program({
    prepare: () => increment(runs.prepare),
    parent: () => increment(runs.parent),
    child: () => increment(runs.child),
  }) as AtforkCtx['handlers'];
  return { ...base, runs, handlers };
}

export const vforkCases: Record<string, ModelCase> = {
  shared_memory: factsOf(factsScenario('vfork shared_memory', sharedMemory, sharedSetup)),
  other_threads_run: factsOf(factsScenario('vfork other_threads_run', otherThreadsRun, flagsSetup)),
  signal_deferred: factsOf(factsScenario('vfork signal_deferred', signalDeferred, flagsSetup)),
  atfork_not_run: factsOf(factsScenario('vfork atfork_not_run', atforkNotRun, atforkSetup)),
};
