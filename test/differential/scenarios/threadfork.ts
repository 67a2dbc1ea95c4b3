/**
 * probes/fork-pid/threadfork.c: fork (glibc, or a raw clone) from a secondary thread of a
 * process of six threads (main, three spinners, a mutex holder, the forker), and execve from a
 * secondary thread. Thread counts are read through procfs.ts.
 */
import { atomic, cas32, load32, loadPtr, store32, storePtr, type SimCode } from '../../../src/engine/ops.ts';
import { execve, forkLike } from '../../../src/kernel/clone.ts';
import { EBUSY } from '../../../src/kernel/errno.ts';
import { SIGCHLD } from '../../../src/kernel/signal.ts';
import { exitGroup, getpid, getppid, gettid, wait4 } from '../../../src/kernel/syscalls.ts';
import { lllLock, lllUnlock } from '../../../src/libc/lowlevellock.ts';
import type { Setup } from '../../../src/scenario/memory-view.ts';
import { factsOf, type ModelCase } from '../model.ts';
import { countTasks } from './procfs.ts';
import { errName, factsScenario, loadInt, sharedPage, storeInt, waitStatus, type Ctx, type Facts } from './common.ts';

/** The probe's globals, in the process's private memory. */
interface ThreadCtx extends Ctx {
  readonly g: { spins: number; stop: number; held: number; holding: number; forkerTid: number; forkerHandle: number; threadsAtFork: number };
}

/** Words of the shared page F (struct facts of the probe). */
const TASKS = 0, PID = 4, TID = 8, PPID = 12, CACHED = 16, SELF_EQ = 20, FROZEN = 24, CREATE_OK = 28, TRYLOCK = 32;

function* spin(ctx: ThreadCtx, i: number): SimCode<number> {
  const at = ctx.g.spins + 4 * i;
  while ((yield load32(ctx.g.stop)) === 0) yield store32(at, ((yield load32(at)) as number) + 1);
  return 0;
}

function* hold(ctx: ThreadCtx): SimCode<number> {
  yield* lllLock(ctx.g.held);
  yield store32(ctx.g.holding, 1);
  while ((yield load32(ctx.g.stop)) === 0);
  yield* lllUnlock(ctx.g.held);
  return 0;
}

function* noop(): SimCode<number> {
  return 0;
}

function* childSide(ctx: ThreadCtx, f: number, raw: boolean): SimCode {
  const { libc, g } = ctx;
  yield* storeInt(f + TASKS, (yield countTasks()) as number);
  yield* storeInt(f + PID, yield* libc.getpid());
  yield* storeInt(f + TID, (yield gettid()) as number);
  yield* storeInt(f + PPID, (yield getppid()) as number);
  yield* storeInt(f + CACHED, yield* libc.cachedTid());
  yield* storeInt(f + SELF_EQ, (yield* libc.self()) === (yield loadPtr(g.forkerHandle)));
  const s0: number = yield load32(g.spins);
  for (let i = 0; i < 20; i++) yield load32(g.stop);
  yield* storeInt(f + FROZEN, (yield load32(g.spins)) === s0);
  // pthread_mutex_trylock: a failed compare-and-swap of the lock word is EBUSY.
  yield* storeInt(f + TRYLOCK, (yield cas32(g.held, 0, 1)) === 0 ? 0 : EBUSY);
  if (!raw) {
    const pd: number = yield* libc.pthreadCreate(noop, 0);
    yield* storeInt(f + CREATE_OK, pd > 0 && (yield* libc.pthreadJoin(pd)) === 0);
  }
}

function* forker(ctx: ThreadCtx, f: number, raw: boolean): SimCode<number> {
  const { libc, g } = ctx;
  yield store32(g.forkerTid, (yield gettid()) as number);
  yield storePtr(g.forkerHandle, yield* libc.self());
  yield store32(g.threadsAtFork, (yield countTasks()) as number);
  const r: number = raw ? yield* forkLike(SIGCHLD) : yield* libc.fork();
  if (r === 0) {
    yield* childSide(ctx, f, raw);
    yield exitGroup(0);
  }
  return r;
}

function run(raw: boolean) {
  return function* main(ctx: ThreadCtx): SimCode<Facts> {
    const { libc, g } = ctx;
    const f: number = yield* sharedPage();
    const parentPid: number = yield getpid();
    const threads: number[] = [];
    for (let i = 0; i < 3; i++) threads.push(yield* libc.pthreadCreate(() => spin(ctx, i), 0));
    threads.push(yield* libc.pthreadCreate(() => hold(ctx), 0));
    while ((yield load32(g.holding)) === 0);
    const fk: number = yield* libc.pthreadCreate(() => forker(ctx, f, raw), 0);
    const child: number = yield* libc.pthreadJoin(fk);
    const w: number = yield wait4(child, 0, 0);
    yield store32(g.stop, 1);
    for (const pd of threads) yield* libc.pthreadJoin(pd);
    const pid: number = yield* loadInt(f + PID);
    const tid: number = yield* loadInt(f + TID);
    const cached: number = yield* loadInt(f + CACHED);
    const forkerTid: number = yield* loadInt(g.forkerTid);
    const facts: Facts = {
      parent_threads_at_fork: yield* loadInt(g.threadsAtFork),
      forker_tid_ne_pid: forkerTid !== parentPid,
      child_threads: yield* loadInt(f + TASKS),
      child_getpid_eq_ret: pid === child,
      child_getpid_eq_gettid: pid === tid,
      child_getppid_eq_parent_tgid: (yield* loadInt(f + PPID)) === parentPid,
      child_cached_tid_eq_gettid: cached === tid,
      child_cached_tid_eq_forker_tid: cached === forkerTid,
      child_pthread_self_eq_forker_handle: (yield* loadInt(f + SELF_EQ)) === 1,
      child_other_threads_stopped: (yield* loadInt(f + FROZEN)) === 1,
      child_trylock_mutex_held_by_other_thread: errName(-(yield* loadInt(f + TRYLOCK))),
    };
    if (!raw) facts.child_pthread_create_ok = (yield* loadInt(f + CREATE_OK)) === 1;
    facts.waitpid_from_main_thread = errName(w < 0 ? w : 0);
    return facts;
  };
}

/** The program exec'd by a non-leader thread: its facts as bits of the exit status. */
function* execCheck(pidBefore: number): SimCode {
  const pid: number = yield getpid();
  const tid: number = yield gettid();
  const tasks: number = yield countTasks();
  yield exitGroup(8 | (pid === pidBefore ? 1 : 0) | (pid === tid ? 2 : 0) | (tasks << 4));
}

function* execSelf(pid: number): SimCode<number> {
  yield atomic(execve(execCheck, [pid]));
  return 1;
}

function* execFromThread(ctx: ThreadCtx): SimCode<Facts> {
  const { libc, g } = ctx;
  const c: number = yield* libc.fork();
  if (c === 0) {
    const pid: number = yield getpid();
    yield* libc.pthreadCreate(() => spin(ctx, 0), 0);
    yield* libc.pthreadJoin(yield* libc.pthreadCreate(execSelf, pid));
    yield exitGroup(1);
  }
  const { code } = yield* waitStatus(ctx, c);
  if (!(code & 8)) throw new Error(`execve from a secondary thread did not run the program (exit ${code})`);
  return { getpid_unchanged: (code & 1) !== 0, getpid_eq_gettid: (code & 2) !== 0, threads_after_exec: code >> 4 };
}

function setup(m: Setup, base: Ctx): ThreadCtx {
  const w = () => m.alloc(8);
  return {
    ...base,
    g: { spins: m.alloc(12), stop: w(), held: w(), holding: w(), forkerTid: w(), forkerHandle: w(), threadsAtFork: w() },
  };
}

export const threadforkCases: Record<string, ModelCase> = {
  fork_from_secondary_thread: factsOf(factsScenario('threadfork fork', run(false), setup)),
  raw_clone_from_secondary_thread: factsOf(factsScenario('threadfork raw clone', run(true), setup)),
  exec_from_secondary_thread: factsOf(factsScenario('threadfork exec', execFromThread, setup)),
};
