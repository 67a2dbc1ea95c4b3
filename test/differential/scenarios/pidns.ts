/**
 * probes/fork-pid/pidns.c: PID namespaces through unshare(CLONE_NEWPID). As in the probe, one
 * process (here the scenario's first) unshares and then runs unshare_caller_not_moved,
 * init_child, later_children, after_unshare and init_death in sequence. Not compared: the
 * /proc/self/ns links (the model has no namespace files). The probe's sleeps become spins on
 * words of the shared page, and the namespace init's pause() a heartbeat loop, so that a signal
 * that should not kill it has steps at which it would.
 */
import { fetchAdd32, load32, type SimCode } from '../../../src/engine/ops.ts';
import { clone, CLONE_NEWPID, CLONE_PARENT } from '../../../src/kernel/clone.ts';
import { SIGCHLD, SIGKILL, SIGUSR1 } from '../../../src/kernel/signal.ts';
import { exitGroup, futexWait, getpid, getppid, kill, unshare, wait4, WNOHANG } from '../../../src/kernel/syscalls.ts';
import type { Scenario } from '../../../src/scenario/define.ts';
import { factsOf, modelFacts, partOf, type ModelCase } from '../model.ts';
import { nsLevel } from './procfs.ts';
import { errName, factsScenario, loadInt, sharedPage, storeInt, waitStatus, type CaseFacts, type Ctx, type Facts } from './common.ts';

/** Words of the shared page F (struct facts of the probe). */
const GO = 0, INIT_DONE = 4, INIT_PID = 8, INIT_PPID = 12, INIT_CACHED = 16, INIT_CLONE_PARENT = 20;
const A_PID = 24, B_PID = 28, ORPHAN_PPID = 32, SECOND_PID = 36, SECOND_PPID = 40, BEAT = 44, PARKED = 48;

function* noop(): SimCode<number> {
  return 0;
}

function* spinUntil(addr: number): SimCode {
  while ((yield load32(addr)) === 0);
}

/** pause(): sleep on a word nobody wakes (a signal's default action still ends the process). */
function* pause(f: number): SimCode {
  for (;;) yield* futexWait(f + PARKED, 0);
}

/** The first child after unshare: PID 1 of the new namespace. */
function* initProcess(ctx: Ctx, f: number): SimCode {
  yield* storeInt(f + INIT_PID, yield* ctx.libc.getpid());
  yield* storeInt(f + INIT_PPID, (yield getppid()) as number);
  yield* storeInt(f + INIT_CACHED, yield* ctx.libc.cachedTid());
  yield* storeInt(f + INIT_CLONE_PARENT, yield* clone(CLONE_PARENT | SIGCHLD, noop, []));
  yield* spinUntil(f + GO);
  const a: number = yield* ctx.libc.fork();
  if (a === 0) {
    const aPid: number = yield getpid();
    yield* storeInt(f + A_PID, aPid);
    if ((yield* ctx.libc.fork()) === 0) {
      yield* storeInt(f + B_PID, (yield getpid()) as number);
      let now: number;
      while ((now = yield getppid()) === aPid);
      yield* storeInt(f + ORPHAN_PPID, now);
      yield exitGroup(0);
    }
    yield exitGroup(0);
  }
  yield wait4(a, 0, 0);
  while (((yield wait4(-1, 0, 0)) as number) > 0);
  yield* storeInt(f + INIT_DONE, 1);
  for (;;) yield fetchAdd32(f + BEAT, 1);
}

/** Whether the init's heartbeat advances over a while after a signal was sent to it. */
function* stillBeating(f: number): SimCode<boolean> {
  const b0: number = yield load32(f + BEAT);
  for (let i = 0; i < 500; i++) if (((yield load32(f + BEAT)) as number) >= b0 + 2) return true;
  return false;
}

function* unshareHelper(ctx: Ctx): SimCode<CaseFacts> {
  const f: number = yield* sharedPage();
  const before: number = yield getpid();
  const u: number = yield unshare(CLONE_NEWPID);
  if (u < 0) throw new Error(`unshare(CLONE_NEWPID) failed: ${errName(u)}`);
  const unshare_caller_not_moved = { getpid_unchanged: (yield getpid()) === before };

  const init: number = yield* ctx.libc.fork();
  if (init === 0) yield* initProcess(ctx, f);
  const second: number = yield* ctx.libc.fork();
  if (second === 0) {
    yield* storeInt(f + SECOND_PID, (yield getpid()) as number);
    yield* storeInt(f + SECOND_PPID, (yield getppid()) as number);
    yield* pause(f);
  }
  yield* storeInt(f + GO, 1);
  yield* spinUntil(f + INIT_DONE);
  const init_child: Facts = {
    init_getpid: yield* loadInt(f + INIT_PID),
    init_getppid: yield* loadInt(f + INIT_PPID),
    init_cached_tid: yield* loadInt(f + INIT_CACHED),
    fork_ret_in_parent_gt_1: init > 1,
    init_clone_parent_errno: errName(yield* loadInt(f + INIT_CLONE_PARENT)),
  };
  const later_children: Facts = {
    second_child_getpid: yield* loadInt(f + SECOND_PID),
    second_child_getppid: yield* loadInt(f + SECOND_PPID),
    init_child_a_getpid: yield* loadInt(f + A_PID),
    init_grandchild_b_getpid: yield* loadInt(f + B_PID),
    orphan_getppid_after_parent_exit: yield* loadInt(f + ORPHAN_PPID),
  };

  const r2: number = yield unshare(CLONE_NEWPID);
  const pd: number = yield* ctx.libc.pthreadCreate(noop, 0);
  if (pd > 0) yield* ctx.libc.pthreadJoin(pd);
  const after_unshare = { second_unshare_newpid: errName(r2), pthread_create: errName(pd) };

  yield kill(init, SIGUSR1);
  const alive: boolean = yield* stillBeating(f);
  yield kill(init, SIGKILL);
  const early = ((yield wait4(init, 0, WNOHANG)) as number) === init;
  const secondEnd = yield* waitStatus(ctx, second);
  const initEnd = early ? { signal: 'SIGKILL' } : yield* waitStatus(ctx, init);
  const late: number = yield* ctx.libc.fork();
  if (late === 0) yield exitGroup(0);
  if (late > 0) yield wait4(late, 0, 0);
  const init_death = {
    init_survives_dfl_sigusr1_from_parent_ns: alive,
    init_killed_by: initEnd.signal,
    init_reapable_before_other_ns_members_reaped: early,
    second_child_killed_by: secondEnd.signal,
    fork_after_init_death: errName(late),
  };
  return { unshare_caller_not_moved, init_child, later_children, after_unshare, init_death };
}

/** A thread parked while the process unshares (the probe's park, ended by a flag here). */
function* parked(flag: number): SimCode<number> {
  yield* spinUntil(flag);
  return 0;
}

function* multithreadedUnshare(ctx: Ctx): SimCode<Facts> {
  const f: number = yield* sharedPage();
  const pd: number = yield* ctx.libc.pthreadCreate(parked, f + GO);
  const r: number = yield unshare(CLONE_NEWPID);
  yield* storeInt(f + GO, 1);
  yield* ctx.libc.pthreadJoin(pd);
  return { unshare_newpid_with_2_threads: errName(r) };
}

function* cloneNewpidParent(): SimCode<Facts> {
  const r: number = yield* clone(CLONE_NEWPID | CLONE_PARENT | SIGCHLD, noop, []);
  return { clone_newpid_with_parent: errName(r) };
}

/** Words of the shared page for nest0. */
const START_LEVEL = 0, DEPTH = 4, ERRNO = 8, DEEPEST = 12;

/**
 * nest0: unshare and fork until unshare fails; the deepest child reports. The probe starts at
 * the machine's PID namespace level (a container's is 1 or more), so the model's process first
 * descends to that level the same way and starts counting there.
 */
function nestingLimit(startLevel: number) {
  return function* nest0(ctx: Ctx): SimCode<Facts> {
    const f: number = yield* sharedPage();
    for (let level = 0; ; level++) {
      if (level === startLevel) yield* storeInt(f + START_LEVEL, (yield nsLevel()) as number);
      const u: number = yield unshare(CLONE_NEWPID);
      if (u < 0) {
        yield* storeInt(f + DEPTH, level - startLevel);
        yield* storeInt(f + ERRNO, u);
        yield* storeInt(f + DEEPEST, (yield nsLevel()) as number);
        if (level === 0) break;
        yield exitGroup(0);
      }
      const c: number = yield* ctx.libc.fork();
      if (c < 0) throw new Error(`fork at level ${level}: ${errName(c)}`);
      if (c > 0) {
        yield wait4(c, 0, 0);
        if (level === 0) break;
        yield exitGroup(0);
      }
    }
    return {
      start_level: yield* loadInt(f + START_LEVEL),
      new_levels_created: yield* loadInt(f + DEPTH),
      deepest_level: yield* loadInt(f + DEEPEST),
      next_unshare_errno: errName(yield* loadInt(f + ERRNO)),
    };
  };
}

const sequence = factsScenario('pidns unshare_helper', unshareHelper);
const nestings = new Map<number, Scenario>();
function nesting(startLevel: number): Scenario {
  let s = nestings.get(startLevel);
  if (!s) nestings.set(startLevel, (s = factsScenario(`pidns nesting_limit from level ${startLevel}`, nestingLimit(startLevel))));
  return s;
}

export const pidnsCases: Record<string, ModelCase> = {
  unshare_caller_not_moved: partOf(sequence, 'unshare_caller_not_moved'),
  init_child: partOf(sequence, 'init_child'),
  later_children: partOf(sequence, 'later_children'),
  after_unshare: partOf(sequence, 'after_unshare'),
  init_death: partOf(sequence, 'init_death'),
  multithreaded_unshare: factsOf(factsScenario('pidns multithreaded_unshare', multithreadedUnshare)),
  clone_newpid_parent: factsOf(factsScenario('pidns clone_newpid_parent', cloneNewpidParent)),
  nesting_limit: (real) => modelFacts(nesting(Number(real.start_level ?? 0))) as Facts,
};
