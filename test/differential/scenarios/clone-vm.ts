/**
 * probes/fork-pid/clone_vm.c: glibc's clone() wrapper with and without CLONE_VM / CLONE_VFORK,
 * the SETTID/CLEARTID stores, CLONE_PARENT, and the flag combinations copy_process rejects.
 * Not modelled: sigaltstack (child_sigaltstack_disabled), CLONE_PIDFD (PIDFD_with_THREAD).
 */
import { type SimCode } from '../../../src/engine/ops.ts';
import {
  clone, CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_NEWPID, CLONE_NEWUSER, CLONE_PARENT,
  CLONE_PARENT_SETTID, CLONE_SIGHAND, CLONE_THREAD, CLONE_VFORK, CLONE_VM,
} from '../../../src/kernel/clone.ts';
import { SIGCHLD } from '../../../src/kernel/signal.ts';
import { exitGroup, getpid, getppid, gettid, wait4 } from '../../../src/kernel/syscalls.ts';
import type { Setup } from '../../../src/scenario/memory-view.ts';
import { factsOf, type ModelCase } from '../model.ts';
import { errName, factsScenario, loadInt, sharedPage, storeInt, waitStatus, type Ctx, type Facts } from './common.ts';

interface CloneCtx extends Ctx {
  /** The probe's g_written: private data, seen by the parent only with CLONE_VM. */
  readonly written: number;
}

/** Words of the shared page F. */
const PID = 0, PPID = 4, TID = 8, CACHED = 12, GPID = 64, WAIT_ERRNO = 68;

/** The probe's child_fn: report identity into F, write g_written, return 3. */
function childFn(ctx: CloneCtx) {
  return function* child(f: number): SimCode<number> {
    yield* storeInt(f + PID, yield* ctx.libc.getpid());
    yield* storeInt(f + PPID, (yield getppid()) as number);
    yield* storeInt(f + TID, (yield gettid()) as number);
    yield* storeInt(f + CACHED, yield* ctx.libc.cachedTid());
    yield* storeInt(ctx.written, 42);
    return 3;
  };
}

function* noop(): SimCode<number> {
  return 0;
}

/** The probe's run(cas, flags). */
function cloneRun(flags: number) {
  return function* run(ctx: CloneCtx): SimCode<Facts> {
    const f: number = yield* sharedPage();
    const me: number = yield getpid();
    const mytid: number = yield gettid();
    const r: number = yield* ctx.libc.clone(flags, childFn(ctx), f);
    const { code } = yield* waitStatus(ctx, r);
    const pid: number = yield* loadInt(f + PID);
    return {
      parent_sees_child_write: (yield* loadInt(ctx.written)) === 42,
      child_getpid_eq_ret: pid === r,
      child_gettid_eq_getpid: (yield* loadInt(f + TID)) === pid,
      child_getppid_eq_parent: (yield* loadInt(f + PPID)) === me,
      child_cached_tid_eq_parent_tid: (yield* loadInt(f + CACHED)) === mytid,
      wait_exit_code: code,
    };
  };
}

/** glibc's clone() passes ptid and ctid through: the kernel's clone with tids stands for it. */
function* settid(ctx: CloneCtx): SimCode<Facts> {
  const ptid = ctx.written, ctidSet = ctx.written + 4, ctidClear = ctx.written + 8;
  const r1: number = yield* clone(CLONE_VM | CLONE_PARENT_SETTID | CLONE_CHILD_SETTID | SIGCHLD, noop, [], {
    ptid,
    ctid: ctidSet,
  });
  const ptidAtReturn: number = yield* loadInt(ptid);
  yield* waitStatus(ctx, r1);
  const r2: number = yield* clone(CLONE_VM | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD, noop, [], { ctid: ctidClear });
  yield* waitStatus(ctx, r2);
  return {
    parent_settid_eq_ret_at_return: ptidAtReturn === r1,
    child_settid_eq_child_pid: (yield* loadInt(ctidSet)) === r1,
    child_cleartid_after_exit: yield* loadInt(ctidClear),
  };
}

function* cloneParent(ctx: CloneCtx): SimCode<Facts> {
  const f: number = yield* sharedPage();
  const me: number = yield getpid();
  const i: number = yield* ctx.libc.fork();
  if (i === 0) {
    const g: number = yield* ctx.libc.clone(CLONE_PARENT | SIGCHLD, childFn(ctx), f);
    yield* storeInt(f + GPID, g);
    yield* storeInt(f + WAIT_ERRNO, (yield wait4(g, 0, 0)) as number);
    yield exitGroup(0);
  }
  yield* waitStatus(ctx, i);
  const g: number = yield* loadInt(f + GPID);
  const reaped: number = g > 0 ? ((yield wait4(g, 0, 0)) as number) : -1;
  const waitErr: number = yield* loadInt(f + WAIT_ERRNO);
  return {
    grandchild_getppid_eq_probe: (yield* loadInt(f + PPID)) === me,
    caller_waitpid_errno: errName(waitErr),
    probe_reaped_grandchild: reaped === g,
  };
}

const EINVAL_CASES: Record<string, number> = {
  THREAD_without_SIGHAND: CLONE_THREAD | CLONE_VM,
  SIGHAND_without_VM: CLONE_SIGHAND,
  NEWPID_with_THREAD: CLONE_NEWPID | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM,
  NEWUSER_with_THREAD: CLONE_NEWUSER | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM,
};

function* flagErrors(ctx: CloneCtx): SimCode<Facts> {
  const facts: Facts = {};
  for (const [k, flags] of Object.entries(EINVAL_CASES)) {
    const r: number = yield* ctx.libc.clone(flags | SIGCHLD, noop, 0);
    if (r > 0 && !(flags & CLONE_THREAD)) yield wait4(r, 0, 0);
    facts[k] = errName(r);
  }
  facts.glibc_fn_NULL = errName(yield* ctx.libc.clone(SIGCHLD, null, 0));
  facts.glibc_stack_NULL = errName(yield* ctx.libc.clone(SIGCHLD, noop, 0, 0));
  return facts;
}

const withWritten = (m: Setup, base: Ctx): CloneCtx => ({ ...base, written: m.alloc(16) });
const cloneCase = (name: string, main: (ctx: CloneCtx) => SimCode<Facts>) =>
  factsOf(factsScenario(`clone_vm ${name}`, main, withWritten));

export const cloneVmCases: Record<string, ModelCase> = {
  clone_vm: cloneCase('clone_vm', cloneRun(CLONE_VM | SIGCHLD)),
  clone_no_vm: cloneCase('clone_no_vm', cloneRun(SIGCHLD)),
  clone_vm_vfork: cloneCase('clone_vm_vfork', cloneRun(CLONE_VM | CLONE_VFORK | SIGCHLD)),
  settid: cloneCase('settid', settid),
  clone_parent: cloneCase('clone_parent', cloneParent),
  flag_errors: cloneCase('flag_errors', flagErrors),
};
