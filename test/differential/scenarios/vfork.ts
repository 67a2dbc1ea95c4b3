/**
 * probes/fork-pid/vfork.c: a vfork child shares the parent's memory and TCB, the parent resumes
 * only once the child has exited, and NPTL's vfork runs no pthread_atfork handlers. Not
 * modelled: released_by_exec and other_threads_run (their probe facts are timings),
 * signal_deferred.
 */
import { load32, store32, type SimCode } from '../../../src/engine/ops.ts';
import { exitGroup, getpid, getppid, gettid, wait4, WNOHANG } from '../../../src/kernel/syscalls.ts';
import type { Setup } from '../../../src/scenario/memory-view.ts';
import { factsOf, type ModelCase } from '../model.ts';
import { factsScenario, loadInt, storeInt, waitStatus, type Ctx, type Facts } from './common.ts';

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

interface AtforkCtx extends Ctx {
  readonly runs: { prepare: number; parent: number; child: number };
  readonly handlers: Record<'prepare' | 'parent' | 'child', number>;
}

function* increment(addr: number): SimCode {
  yield store32(addr, ((yield load32(addr)) as number) + 1);
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

function sharedSetup(m: Setup, base: Ctx): SharedCtx {
  return { ...base, v: { pid: m.alloc(4), ppid: m.alloc(4), tid: m.alloc(4), cached: m.alloc(4), written: m.alloc(4) } };
}

export const vforkCases: Record<string, ModelCase> = {
  shared_memory: factsOf(factsScenario('vfork shared_memory', sharedMemory, sharedSetup)),
  atfork_not_run: factsOf(factsScenario('vfork atfork_not_run', atforkNotRun, atforkSetup)),
};
