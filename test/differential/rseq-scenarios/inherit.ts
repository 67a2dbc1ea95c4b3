/**
 * probes/rseq/inherit.c: a registration across fork, pthread_create, thread exit, vfork,
 * clone(CLONE_VM) and execve, with glibc's registration off. A registration is detected as the
 * probe does: rseq(same ptr, len, sig) gives EBUSY when registered, OK when not.
 *
 * Every schedule (DFS): parent and children interleave as they may; the facts compared are the
 * same in each (fork_parent_after.ids_rewritten_by_fork_return is not: it depends on whether
 * the parent lost its CPU to the child).
 */
import { atomic, load32, store32, type SimCode } from '../../../src/engine/ops.ts';
import { CLONE_VM, execve, forkLike } from '../../../src/kernel/clone.ts';
import { RSEQ, sysRseq } from '../../../src/kernel/rseq.ts';
import { SIGCHLD } from '../../../src/kernel/signal.ts';
import { exitGroup, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, mmap, PROT_READ, PROT_WRITE } from '../../../src/kernel/syscalls.ts';
import type { Glibc } from '../../../src/libc/glibc.ts';
import { PAGE_SIZE } from '../../../src/memory/page.ts';
import {
  everySchedule, F_UNREG, factsScenario, GLIBC_RSEQ_OFF, loadInt, mapShared, NONE, noFinding, once, partOf, resultName, rs, same, SENT, SHARED,
  SIG, storeWord, waitChild, type CaseFacts, type Plan,
} from './common.ts';

interface Ctx {
  readonly libc: Glibc;
  /** `static __thread struct hrseq T`: the main thread's area (page-aligned: exec maps it again). */
  readonly T: number;
  /** The first pthread's own T. */
  readonly T2: number;
  /** `heap_area = aligned_alloc(32, 32)`. */
  readonly heap: number;
  readonly status: number;
}

/** Shared-page words: results of children and threads. */
const W = { A: SHARED, B: SHARED + 4, C: SHARED + 8, D: SHARED + 12 } as const;

function* clearShared(): SimCode {
  for (const a of Object.values(W)) yield* storeWord(a, NONE);
}

/** thr_fresh: the parent's area is not this thread's registration; its own area registers. */
function thrFresh(ctx: Ctx) {
  return function* (): SimCode<number> {
    yield* storeWord(W.A, (yield sysRseq(ctx.T, 32, F_UNREG, SIG)) as number);
    yield* storeWord(W.B, (yield sysRseq(ctx.T2, 32, 0, SIG)) as number);
    return 0;
  };
}

/** thr_exit: register heap_area, then exit without unregistering. */
function thrExit(ctx: Ctx) {
  return function* (): SimCode<number> {
    yield store32(ctx.heap + RSEQ.CPU_ID, SENT);
    yield sysRseq(ctx.heap, 32, 0, SIG);
    return 0;
  };
}

/** clone_fn: CLONE_VM child, registering the parent's exact arguments (then undoing it). */
function cloneFn(ctx: Ctx) {
  return function* (): SimCode<number> {
    const r: number = yield sysRseq(ctx.T, 32, 0, SIG);
    yield* storeWord(W.A, r);
    if (r === 0) yield sysRseq(ctx.T, 32, F_UNREG, SIG);
    return 0;
  };
}

/** The new image after a successful execve (`--after-exec`): T at the same address, fresh. */
function* afterExec(before: CaseFacts, T: number): SimCode<CaseFacts> {
  const page = T - (T % PAGE_SIZE);
  yield mmap(page, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
  const cpu0 = yield* loadInt(T + RSEQ.CPU_ID);
  const u = yield* rs(T, 32, F_UNREG, SIG);
  const r = yield* rs(T, 32, 0, SIG);
  return { ...before, exec_clears: { unregister_old_address: u, register_fresh: r, cpu_id_before_register: cpu0 } };
}

function* main(ctx: Ctx): SimCode<CaseFacts> {
  const out: CaseFacts = {};
  const { T } = ctx;
  yield* mapShared();
  out.register_parent = { result: yield* rs(T, 32, 0, SIG) };

  // fork: the child keeps the registration (its copy of T). A raw fork: glibc's runs no rseq code.
  yield store32(T + RSEQ.CPU_ID_START, SENT);
  yield store32(T + RSEQ.CPU_ID, SENT);
  yield* clearShared();
  const pid: number = yield* forkLike(SIGCHLD);
  if (pid === 0) {
    const rewritten = ((yield load32(T + RSEQ.CPU_ID_START)) as number) !== SENT;
    const cpu = yield* loadInt(T + RSEQ.CPU_ID);
    yield* storeWord(W.A, rewritten);
    yield* storeWord(W.B, cpu >= 0 && cpu < 2);
    yield* storeWord(W.C, (yield sysRseq(T, 32, 0, SIG)) as number);
    yield* storeWord(W.D, (yield sysRseq(T, 32, F_UNREG, SIG)) as number);
    yield exitGroup(0);
  }
  const parentRewritten = ((yield load32(T + RSEQ.CPU_ID_START)) as number) !== SENT;
  const child = yield* waitChild(pid, ctx.status);
  out.fork_child = {
    ids_rewritten_on_first_return: (yield* loadInt(W.A)) === 1,
    cpu_id_valid: (yield* loadInt(W.B)) === 1,
    reregister_same_args: resultName(yield* loadInt(W.C)),
    unregister: resultName(yield* loadInt(W.D)),
    child,
  };
  out.fork_parent_after = { ids_rewritten_by_fork_return: parentRewritten, still_registered: yield* rs(T, 32, 0, SIG) };

  // pthread_create: CLONE_VM|CLONE_THREAD, the new thread starts unregistered
  yield* clearShared();
  let pd: number = yield* ctx.libc.pthreadCreate(thrFresh(ctx), 0);
  yield* ctx.libc.pthreadJoin(pd);
  out.pthread_child = { unregister_parent_area: resultName(yield* loadInt(W.A)), register_own: resultName(yield* loadInt(W.B)) };

  // thread exit: nothing written (cpu_id keeps the last CPU)
  pd = yield* ctx.libc.pthreadCreate(thrExit(ctx), 0);
  yield* ctx.libc.pthreadJoin(pd);
  const cpuAfter = yield* loadInt(ctx.heap + RSEQ.CPU_ID);
  out.thread_exit_leaves_area = { cpu_id_after_exit: cpuAfter, cpu_id_is_valid_cpu: cpuAfter >= 0 && cpuAfter < 2 };

  // vfork: the child shares memory and starts unregistered
  yield* clearShared();
  const vpid: number = yield* ctx.libc.vfork();
  if (vpid === 0) {
    const r: number = yield sysRseq(T, 32, 0, SIG);
    if (r === 0) yield sysRseq(T, 32, F_UNREG, SIG);
    yield* storeWord(W.A, r);
    yield exitGroup(0);
  }
  const vchild = yield* waitChild(vpid, ctx.status);
  out.vfork_child = { register_same_args: resultName(yield* loadInt(W.A)), child: vchild };

  // clone(CLONE_VM | SIGCHLD) without CLONE_THREAD
  yield* clearShared();
  const cpid: number = yield* ctx.libc.clone(CLONE_VM | SIGCHLD, cloneFn(ctx), 0, 1);
  const cchild = yield* waitChild(cpid, ctx.status);
  out.clone_vm_child = { register_same_args: resultName(yield* loadInt(W.A)), child: cchild };
  out.parent_still_registered = { reregister_same_args: yield* rs(T, 32, 0, SIG) };

  // a successful execve resets the registration; the new image reports exec_clears
  yield atomic(execve(afterExec, [out, T]));
  throw new Error('execve returned');
}

const scenario = factsScenario<Ctx>(
  'rseq inherit',
  (m) => ({ libc: m.glibc, T: m.alloc(PAGE_SIZE, PAGE_SIZE), T2: m.alloc(32, 32), heap: m.alloc(32, 32), status: m.alloc(4) }),
  main,
);
/** Facts of every schedule, less the one that depends on the schedule (whether the parent was switched out during fork). */
const facts = once(
  () =>
    same(
      everySchedule(
        scenario,
        (r) => {
          const f = structuredClone(noFinding(r)) as CaseFacts;
          delete (f.fork_parent_after as Record<string, unknown> | undefined)?.ids_rewritten_by_fork_return;
          return f;
        },
        { settings: GLIBC_RSEQ_OFF, maxRuns: 40000 },
      ),
      scenario.name,
    ) as CaseFacts,
);

const plan = (name: string, fields: string[]): Plan => ({ model: partOf(facts, name), fields });

export const inheritCases: Record<string, Plan> = {
  register_parent: plan('register_parent', ['result']),
  fork_child: plan('fork_child', ['ids_rewritten_on_first_return', 'cpu_id_valid', 'reregister_same_args', 'unregister', 'child']),
  // ids_rewritten_by_fork_return: only when the parent was switched out during fork (README).
  fork_parent_after: plan('fork_parent_after', ['still_registered']),
  pthread_child: plan('pthread_child', ['unregister_parent_area', 'register_own']),
  // cpu_id_after_exit is the CPU the thread last ran on.
  thread_exit_leaves_area: plan('thread_exit_leaves_area', ['cpu_id_is_valid_cpu']),
  vfork_child: plan('vfork_child', ['register_same_args', 'child']),
  clone_vm_child: plan('clone_vm_child', ['register_same_args', 'child']),
  parent_still_registered: plan('parent_still_registered', ['reregister_same_args']),
  failed_exec_keeps: {
    notModelled: 'the execve model runs a program function and cannot fail (no path lookup, so no ENOENT)',
  },
  exec_clears: plan('exec_clears', ['unregister_old_address', 'register_fresh', 'cpu_id_before_register']),
};
