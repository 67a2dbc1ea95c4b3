/**
 * Process and thread creation (kernel/fork.c kernel_clone, copy_process, dup_mmap) and execve
 * (fs/exec.c). fork is simulated kernel code of several steps: make the child, copy the address
 * space one page per step while the parent's other threads run on (a copied page is
 * write-protected, so a parent thread writing it stalls until fork returns: reference
 * fork-pid.md section 6), then wake the child. The child's thread is the parent's thread re-run
 * on its recorded results (Machine.forkThread), whose fork returns 0.
 */
import { AddressSpace } from '../memory/address-space.ts';
import { CHOICE_DATA } from '../engine/choice.ts';
import { recordEvent } from '../engine/determinism.ts';
import { atomic, type AtomicAction, type SimCode, type SimFunction } from '../engine/ops.ts';
import { DONE, type SimThread } from '../engine/thread.ts';
import { EINVAL } from './errno.ts';
import { SIGCHLD } from './signal.ts';
import { CLONE_NEWPID } from './syscalls.ts';
import { newRseqState, rseqFork } from './rseq.ts';
import { Pid, PidNamespace, Process, Task, taskOf } from './task.ts';

export const CLONE_VM = 0x100;
export const CLONE_FS = 0x200;
export const CLONE_FILES = 0x400;
export const CLONE_SIGHAND = 0x800;
export const CLONE_VFORK = 0x4000;
export const CLONE_PARENT = 0x8000;
export const CLONE_THREAD = 0x10000;
export const CLONE_SYSVSEM = 0x40000;
export const CLONE_SETTLS = 0x80000;
export const CLONE_PARENT_SETTID = 0x100000;
export const CLONE_CHILD_CLEARTID = 0x200000;
export const CLONE_CHILD_SETTID = 0x1000000;
export const CLONE_NEWUSER = 0x10000000;
export { CLONE_NEWPID };

/** The flags glibc's pthread_create passes (sysdeps/unix/sysv/linux/createthread.c). */
export const PTHREAD_CLONE_FLAGS =
  CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SYSVSEM | CLONE_SIGHAND | CLONE_THREAD | CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;

export interface CloneTids {
  /** CLONE_PARENT_SETTID: the child's TID is stored here in the parent's memory. */
  readonly ptid?: number;
  /** CLONE_CHILD_SETTID / CLONE_CHILD_CLEARTID address in the child's memory. */
  readonly ctid?: number;
  /** CLONE_SETTLS: the child's thread pointer. */
  readonly tls?: number;
}


/** copy_process's flag checks, in the kernel's order (reference fork-pid.md 1.4). */
function checkFlags(task: Task, flags: number): number {
  if (flags & CLONE_THREAD && !(flags & CLONE_SIGHAND)) return -EINVAL;
  if (flags & CLONE_SIGHAND && !(flags & CLONE_VM)) return -EINVAL;
  // "If the new process will be in a different pid or user namespace do not allow it to share
  // a thread group" (CLONE_NEWUSER: probes/fork-pid clone_vm flag_errors NEWUSER_with_THREAD).
  if (flags & CLONE_THREAD && (flags & (CLONE_NEWPID | CLONE_NEWUSER) || task.ns !== task.pidNsForChildren)) return -EINVAL;
  if (flags & CLONE_PARENT && task.process.pid.ns.init === task.process) return -EINVAL;
  return 0;
}

/** The namespace and PID of a new task: a new namespace for CLONE_NEWPID. */
function newPid(task: Task, flags: number): Pid | number {
  let ns = task.pidNsForChildren;
  if (flags & CLONE_NEWPID) ns = new PidNamespace(ns);
  return task.kernel.allocPid(ns);
}

/** The child process: parent per CLONE_PARENT, handlers copied or shared (CLONE_SIGHAND). */
function newProcess(task: Task, flags: number, pid: Pid, mm: AddressSpace): Process {
  const parent = flags & CLONE_PARENT ? (task.process.parent ?? task.kernel.init) : task.process;
  const p = new Process(pid, mm, parent);
  if (flags & CLONE_SIGHAND) p.sigactions = task.process.sigactions;
  else p.sigactions = new Map(task.process.sigactions);
  parent.children.add(p);
  if (pid.ns.init === null) pid.ns.init = p;
  return p;
}

/** Stores of CLONE_PARENT_SETTID and CLONE_CHILD_SETTID (kernel/fork.c copy_process). */
function setTids(task: Task, child: Task, flags: number, tids: CloneTids): void {
  if (flags & CLONE_PARENT_SETTID && tids.ptid) task.process.mm.store(tids.ptid, 4, child.pid.in(task.ns));
  if (flags & CLONE_CHILD_SETTID && tids.ctid) child.process.mm.store(tids.ctid, 4, child.pid.in(child.ns));
  if (flags & CLONE_CHILD_CLEARTID && tids.ctid) child.clearChildTid = tids.ctid;
  child.tls = flags & CLONE_SETTLS && tids.tls !== undefined ? tids.tls : task.tls;
}

/**
 * A child whose code returns without performing an operation has already finished when its task
 * is attached, so the kernel never saw it exit: it exits now. (probes/fork-pid clone_vm settid:
 * a clone child running `return 0` never became a zombie and its parent's wait4 hung.)
 */
function exitIfDone(child: Task): void {
  if (child.thread.state === DONE) child.kernel.threadExited(child.thread);
}

// ---- fork / vfork: the child continues the caller's code -----------------------------------------

class ForkBegin implements AtomicAction<number> {
  readonly name = 'fork: copy_process';
  constructor(
    readonly flags: number,
    readonly tids: CloneTids,
  ) {}
  /** dup_mmap holds mmap_write_lock(oldmm): one fork copies an address space at a time. */
  enabled(t: unknown): boolean {
    return taskOf(t).process.mm.frozen === null;
  }
  run(t: unknown): number {
    const task = taskOf(t);
    const k = task.kernel;
    k.charge(t as SimThread, k.profile.costs.syscallNs + k.profile.costs.cloneNs);
    const err = checkFlags(task, this.flags);
    if (err) return err;
    const pid = newPid(task, this.flags);
    if (typeof pid === 'number') return pid;
    k.reserved.add(pid);
    const shareVm = (this.flags & CLONE_VM) !== 0;
    const mm = shareVm ? task.process.mm : new AddressSpace();
    if (!shareVm) k.inheritMmapTop(task.process.mm, mm);
    const child = newProcess(task, this.flags, pid, mm);
    child.state = 'running';
    const pages = shareVm ? [] : task.process.mm.mappedPages();
    if (!shareVm) task.process.mm.frozen = new Set();
    task.fork = { flags: this.flags, child, pid, pages, tids: this.tids };
    return pages.length;
  }
  describe(): string {
    return `clone(0x${this.flags.toString(16)})`;
  }
}

/**
 * One page of dup_mmap's copy. The order is ascending (dup_mmap walks the VMAs in order) unless
 * the profile asks to explore any order, which is then one choose() among the pages left.
 */
const FORK_COPY_PAGE: AtomicAction<number> = {
  name: 'fork: copy page',
  run(t: unknown): number {
    const task = taskOf(t);
    const f = task.fork!;
    const k = task.kernel;
    const index = k.profile.forkPageOrder === 'any' && f.pages.length > 1 ? k.machine.choose(f.pages.length, CHOICE_DATA) : 0;
    const pn = f.pages.splice(index, 1)[0]!;
    const mm = task.process.mm;
    mm.forkPage(f.child.mm, pn);
    mm.frozen!.add(pn);
    k.charge(t as SimThread, k.profile.costs.forkPageNs);
    (t as SimThread).syscalls--;
    return pn;
  },
};

const FORK_END: AtomicAction<number> = {
  name: 'fork: wake the child',
  run(t: unknown): number {
    const thread = t as SimThread;
    const task = taskOf(t);
    const k = task.kernel;
    const f = task.fork!;
    task.fork = null;
    task.process.mm.frozen = null;
    const childThread = k.machine.forkThread(thread, f.child.mm, null, 0);
    const child = k.attach(new Task(f.pid, f.child, childThread));
    child.pidNsForChildren = f.pid.ns;
    child.sigmask = task.sigmask;
    setTids(task, child, f.flags, f.tids);
    rseqFork(task, child, (f.flags & CLONE_VM) !== 0);
    if (f.flags & CLONE_VFORK) f.child.vforkParent = task;
    exitIfDone(child);
    return f.pid.in(task.ns);
  },
};

const VFORK_WAIT: AtomicAction<number> = {
  name: 'vfork: wait for the child to exec or exit',
  enabled(t: unknown): boolean {
    const task = taskOf(t);
    for (const c of task.process.children) if (c.vforkParent === task) return false;
    return true;
  },
  run(): number {
    return 0;
  },
};

/**
 * clone without a function: the child continues the caller's code (fork, vfork, raw clone).
 * Returns the child's PID in the parent, 0 in the child, -errno on failure.
 */
export function* forkLike(flags: number, tids: CloneTids = {}): SimCode<number> {
  if (flags & CLONE_THREAD) return -EINVAL; // a second thread on the same stack: not modelled
  const pages: number = yield atomic(new ForkBegin(flags, tids));
  if (pages < 0) return pages;
  for (let left = pages; left > 0; left--) yield atomic(FORK_COPY_PAGE);
  const pid: number = yield atomic(FORK_END);
  if (pid > 0 && flags & CLONE_VFORK) yield atomic(VFORK_WAIT);
  return pid;
}

/** The thread pointer of the calling thread (reading %fs: no system call). */
export const THREAD_SELF: AtomicAction<number> = {
  name: 'thread pointer',
  footprint: 'local',
  run: (t: unknown) => taskOf(t).tls,
};

/** fork(2): clone(SIGCHLD). */
export function fork(): SimCode<number> {
  return forkLike(SIGCHLD);
}

/** vfork(2): clone(CLONE_VM | CLONE_VFORK | SIGCHLD); the caller waits for exec or exit. */
export function vfork(): SimCode<number> {
  return forkLike(CLONE_VM | CLONE_VFORK | SIGCHLD);
}

// ---- clone with a function: threads and CLONE_VM children --------------------------------------

class CloneFn implements AtomicAction<number> {
  readonly name = 'clone';
  constructor(
    readonly flags: number,
    readonly fn: SimFunction,
    readonly args: unknown[],
    readonly tids: CloneTids,
  ) {}
  run(t: unknown): number {
    const thread = t as SimThread;
    const task = taskOf(t);
    const k = task.kernel;
    k.charge(thread, k.profile.costs.syscallNs + k.profile.costs.cloneNs);
    const err = checkFlags(task, this.flags);
    if (err) return err;
    const pid = newPid(task, this.flags);
    if (typeof pid === 'number') return pid;
    let process: Process;
    let mm: AddressSpace;
    if (this.flags & CLONE_THREAD) {
      process = task.process;
      mm = process.mm;
    } else {
      mm = this.flags & CLONE_VM ? task.process.mm : task.process.mm.fork();
      process = newProcess(task, this.flags, pid, mm);
    }
    k.reserved.add(pid);
    const childThread = k.machine.spawnTask(this.fn, this.args, thread, mm, null);
    const child = k.attach(new Task(pid, process, childThread));
    child.pidNsForChildren = this.flags & CLONE_THREAD ? task.pidNsForChildren : pid.ns;
    child.sigmask = task.sigmask;
    setTids(task, child, this.flags, this.tids);
    rseqFork(task, child, (this.flags & CLONE_VM) !== 0);
    if (this.flags & CLONE_VFORK && process !== task.process) process.vforkParent = task;
    exitIfDone(child);
    return pid.in(task.ns);
  }
  describe(): string {
    return `clone(0x${this.flags.toString(16)}, ${this.fn.name || 'fn'})`;
  }
}

/**
 * clone(fn, stack, flags, arg) as glibc's wrapper: the child runs fn(...args). CLONE_THREAD
 * makes a thread of the caller's process; otherwise a new process (sharing memory with
 * CLONE_VM, a copy-on-write copy without it, taken in one step).
 */
export function* clone(flags: number, fn: SimFunction, args: unknown[], tids: CloneTids = {}): SimCode<number> {
  const pid: number = yield atomic(new CloneFn(flags, fn, args, tids));
  if (pid > 0 && flags & CLONE_VFORK) yield atomic(VFORK_WAIT);
  return pid;
}

/** The determinism history's mark of an execve (any constant not used by the engine's own). */
const EXECVE_EVENT = 0xe8ec;

// ---- execve --------------------------------------------------------------------------------------

/**
 * execve(2), simplified: the process gets a fresh address space and runs fn(...args) as its
 * only thread (de_thread kills the others, and a non-leader caller takes the leader's PID);
 * caught signals return to SIG_DFL; a vfork parent is released.
 */
export function execve(fn: SimFunction, args: unknown[]): AtomicAction<number> {
  return {
    name: 'execve',
    run(t: unknown): number {
      const thread = t as SimThread;
      const task = taskOf(t);
      const k = task.kernel;
      const p = task.process;
      k.charge(thread);
      const leader = p.tasks[0]!;
      for (const o of p.tasks) if (o !== task && !o.exited) k.exitTask(o, 0);
      if (leader !== task) {
        const pid = leader.pid;
        leader.pid = task.pid;
        task.pid = pid;
        p.tasks.splice(p.tasks.indexOf(task), 1);
        p.tasks.unshift(task);
      }
      const mm = new AddressSpace();
      p.mm = mm;
      thread.mem = mm;
      for (const [sig, h] of p.sigactions) if (typeof h === 'function') p.sigactions.set(sig, 'SIG_DFL');
      p.execed = true;
      p.vforkParent = null;
      task.clearChildTid = 0;
      task.rseq = newRseqState(); // rseq_execve
      thread.frames.length = 0;
      thread.gen = fn(...args);
      thread.startFn = fn;
      thread.startArgs = args;
      if (thread.history !== null) thread.history = [];
      thread.opPending = false; // the new program starts afresh: nothing to record or replay
      // ... but its operations must not be keyed like the old program's next ones in the
      // determinism check (probes/fork-pid threadfork exec_from_secondary_thread).
      recordEvent(thread, EXECVE_EVENT);
      return 0;
    },
    describe: () => `execve(${fn.name || 'program'})`,
  };
}
