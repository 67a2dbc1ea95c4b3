/**
 * probes/fork-pid/fork.c: the identity of a fork(2) child through glibc's fork and through a raw
 * clone(SIGCHLD) system call (kernel forkLike, no glibc around it). Not modelled: child_state
 * (alarm, PDEATHSIG, record locks, sigpending are outside the model).
 */
import { type SimCode } from '../../../src/engine/ops.ts';
import { forkLike } from '../../../src/kernel/clone.ts';
import { SIGCHLD } from '../../../src/kernel/signal.ts';
import { exitGroup, getpid, getppid, gettid } from '../../../src/kernel/syscalls.ts';
import { factsOf, type ModelCase } from '../model.ts';
import { factsScenario, loadInt, sharedPage, storeInt, waitStatus, type Ctx, type Facts } from './common.ts';

/** Words of the shared page the child fills in. */
const GOT_ZERO = 0, PID = 4, PPID = 8, TID = 12, CACHED = 16;

/** The child's view of itself, through glibc's getpid and the TID glibc caches. */
function* childReports(ctx: Ctx, f: number): SimCode {
  yield* storeInt(f + GOT_ZERO, 1);
  yield* storeInt(f + PID, yield* ctx.libc.getpid());
  yield* storeInt(f + PPID, (yield getppid()) as number);
  yield* storeInt(f + TID, (yield gettid()) as number);
  yield* storeInt(f + CACHED, yield* ctx.libc.cachedTid());
}

function* returnValues(ctx: Ctx): SimCode<Facts> {
  const f: number = yield* sharedPage();
  const parent: number = yield getpid();
  const r: number = yield* ctx.libc.fork();
  if (r === 0) {
    yield* childReports(ctx, f);
    yield exitGroup(7);
  }
  const { code } = yield* waitStatus(ctx, r);
  const pid: number = yield* loadInt(f + PID);
  return {
    parent_ret_positive: r > 0,
    child_ret_zero: (yield* loadInt(f + GOT_ZERO)) === 1,
    child_getpid_eq_ret: pid === r,
    child_getppid_eq_parent: (yield* loadInt(f + PPID)) === parent,
    child_gettid_eq_getpid: (yield* loadInt(f + TID)) === pid,
    child_cached_tid_eq_getpid: (yield* loadInt(f + CACHED)) === pid,
    parent_getpid_unchanged: (yield getpid()) === parent,
    parent_cached_tid_eq_gettid: (yield* ctx.libc.cachedTid()) === (yield gettid()),
    wait_exit_code: code,
  };
}

function* rawSyscallFork(ctx: Ctx): SimCode<Facts> {
  const f: number = yield* sharedPage();
  const parent: number = yield getpid();
  const parentTid: number = yield gettid();
  const r: number = yield* forkLike(SIGCHLD);
  if (r === 0) {
    yield* childReports(ctx, f);
    yield exitGroup(0);
  }
  yield* waitStatus(ctx, r);
  const pid: number = yield* loadInt(f + PID);
  const tid: number = yield* loadInt(f + TID);
  const cached: number = yield* loadInt(f + CACHED);
  return {
    child_getpid_eq_ret: pid === r,
    child_getpid_eq_parent: pid === parent,
    child_gettid_eq_getpid: tid === pid,
    child_cached_tid_eq_parent_tid: cached === parentTid,
    child_cached_tid_eq_own_tid: cached === tid,
  };
}

export const forkCases: Record<string, ModelCase> = {
  return_values: factsOf(factsScenario('fork return_values', returnValues)),
  raw_syscall_fork: factsOf(factsScenario('fork raw_syscall_fork', rawSyscallFork)),
};
