/**
 * Tasks, thread groups (processes) and PID namespaces (include/linux/sched.h task_struct,
 * signal_struct; include/linux/pid_namespace.h). A task is one simulated thread; a process is
 * the thread group sharing a TGID, an address space and signal handlers.
 */
import type { AddressSpace } from '../memory/address-space.ts';
import type { SimFunction } from '../engine/ops.ts';
import type { SimThread } from '../engine/thread.ts';
import type { Kernel } from './kernel.ts';
import { newRseqState, type RseqTaskState } from './rseq.ts';

/**
 * A PID namespace (kernel/pid_namespace.c). PIDs are allocated per level, cyclically from the
 * cursor (kernel/pid.c alloc_pid). Invariant: once the namespace's init has exited, `adding` is
 * false and every allocation fails with ENOMEM (disable_pid_allocation).
 */
export class PidNamespace {
  /** The next PID to try (ns_last_pid + 1). */
  cursor: number;
  init: Process | null = null;
  adding = true;
  readonly level: number;

  constructor(
    readonly parent: PidNamespace | null,
    firstPid = 1,
  ) {
    this.level = parent ? parent.level + 1 : 0;
    this.cursor = firstPid;
  }
}

/** A PID: one number per namespace level, from the task's own namespace up to the root. */
export class Pid {
  constructor(
    /** numbers[level] is the PID in the namespace at that level. */
    readonly numbers: readonly number[],
    /** The namespace the PID was allocated in (the deepest). */
    readonly ns: PidNamespace,
  ) {}

  /** The number as seen from namespace `ns`, or 0 when not visible there (getppid's 0). */
  in(ns: PidNamespace): number {
    if (ns.level > this.ns.level) return 0;
    let n: PidNamespace | null = this.ns;
    while (n && n.level > ns.level) n = n.parent;
    return n === ns ? this.numbers[ns.level]! : 0;
  }
}

export type SigHandler = SimFunction<[number]> | 'SIG_DFL' | 'SIG_IGN';

/** A thread group: what getpid() names. */
export class Process {
  readonly tasks: Task[] = [];
  readonly children = new Set<Process>();
  state: 'running' | 'zombie' | 'reaped' = 'running';
  /** wait(2) status word once a zombie: (code << 8) or the killing signal. */
  waitStatus = 0;
  /** Signal handlers (shared by CLONE_SIGHAND; copied by fork). */
  sigactions = new Map<number, SigHandler>();
  /** Signals pending for the whole group (kill), as a bit mask of 1 << sig. */
  sharedPending = 0;
  /** The parent task blocked in vfork until this process execs or exits. */
  vforkParent: Task | null = null;
  /** True once the process has exec'd (a vfork child releases its parent then). */
  execed = false;
  /** membarrier(REGISTER_PRIVATE_EXPEDITED_RSEQ) was called. */
  membarrierRseq = false;

  constructor(
    readonly pid: Pid,
    public mm: AddressSpace,
    public parent: Process | null,
  ) {}

  get leader(): Task | undefined {
    return this.tasks[0];
  }
}

export class Task {
  /** CLONE_CHILD_CLEARTID address: at exit the kernel stores 0 there and wakes a futex. */
  clearChildTid = 0;
  /** Signals blocked (sigprocmask), bit mask of 1 << sig. */
  sigmask = 0;
  /** Signals pending for this thread (tgkill), bit mask of 1 << sig. */
  pending = 0;
  exited = false;
  /** The namespace children will be created in (unshare(CLONE_NEWPID) changes it). */
  pidNsForChildren: PidNamespace;
  /** The futex this task waits on, and whether it was woken. */
  futexKey: string | null = null;
  futexWoken = false;
  /** State of a fork in progress (between its steps). */
  fork: ForkState | null = null;
  /** The thread pointer (%fs base): set by CLONE_SETTLS, inherited by fork. */
  tls = 0;
  /** The rseq registration and pending events (kernel/rseq.c). */
  rseq: RseqTaskState = newRseqState();
  /** The kernel this task runs on (set by Kernel.attach). */
  kernel!: Kernel;

  constructor(
    public pid: Pid,
    public process: Process,
    public thread: SimThread,
  ) {
    this.pidNsForChildren = pid.ns;
  }

  /** The namespace the task's PID was allocated in (task_active_pid_ns). */
  get ns(): PidNamespace {
    return this.pid.ns;
  }
}

/** The task of a simulated thread an atomic action runs on; system calls need a kernel. */
export function taskOf(t: unknown): Task {
  const task = (t as SimThread).task as Task | null;
  if (task === null) throw new Error('system calls need a scenario with a kernel (kernel: true or glibc: true)');
  return task;
}

/** A fork between its first and last step: the child made, pages still being copied. */
export interface ForkState {
  readonly flags: number;
  readonly child: Process;
  readonly pid: Pid;
  readonly tids: import('./clone.ts').CloneTids;
  /** Page numbers still to copy, in the order dup_mmap would take them. */
  readonly pages: number[];
}
