/**
 * The kernel model's core: PID allocation, task and process lifetime (kernel/exit.c), wait,
 * futexes (kernel/futex), signal generation and delivery (kernel/signal.c), and the cost model.
 * System calls are in syscalls.ts (simple ones) and clone.ts (fork, vfork, clone, execve).
 */
import { AddressSpace } from '../memory/address-space.ts';
import type { Hasher } from '../memory/fingerprint.ts';
import type { KernelHooks, Machine, StatePart } from '../engine/machine.ts';
import type { SimFunction } from '../engine/ops.ts';
import type { SimThread } from '../engine/thread.ts';
import { EAGAIN, ENOMEM, ENOSPC } from './errno.ts';
import type { KernelProfile } from './profile.ts';
import { SIGCHLD, SIGKILL, ignoredByDefault, isCrashSignal, signalName, uncatchable } from './signal.ts';
import { rseqReturnToUser } from './rseq.ts';
import { Pid, PidNamespace, Process, Task } from './task.ts';

/** PIDs of the scenario's first process start here, as on a booted system (init is 1). */
const FIRST_USER_PID = 1000;
/** pid_max (proc(5) default): allocation wraps to RESERVED_PIDS (300) past it. */
const PID_MAX = 32768;
const RESERVED_PIDS = 300;
/** Nesting limit of PID namespaces (include/linux/pid_namespace.h MAX_PID_NS_LEVEL). */
export const MAX_PID_NS_LEVEL = 32;

/** Boot-time settings of a kernel (command line, sysctl, debugfs). */
export interface KernelSettings {
  /** rseq debug mode (CONFIG_RSEQ_DEBUG_DEFAULT_ENABLE / rseq_debug=1). */
  readonly rseqDebug?: boolean;
  /**
   * Let the explorer vary incidental behaviour within what is documented: the classic kernel's
   * rewrite of rseq's cpu_id_start after a switch that kept the CPU may be left out.
   */
  readonly perturbIncidental?: boolean;
}

export class Kernel implements KernelHooks, StatePart {
  readonly rseqDebug: boolean;
  readonly perturbIncidental: boolean;
  readonly rootNs = new PidNamespace(null, FIRST_USER_PID);
  /** The root namespace's init (PID 1): not simulated; it reaps every orphan at once. */
  readonly init: Process;
  /** Tasks by their PID in the root namespace. */
  readonly tasks = new Map<number, Task>();
  private readonly futexWaiters = new Map<string, Task[]>();
  /** Per-mm identity for futex keys and mmap placement. */
  private readonly mmIds = new WeakMap<AddressSpace, number>();
  private readonly mmapTop = new WeakMap<AddressSpace, number>();
  private nextMmId = 1;
  /** PIDs allocated by a fork in progress, not yet attached to a task. */
  readonly reserved = new Set<Pid>();

  constructor(
    readonly machine: Machine,
    readonly profile: KernelProfile,
    settings: KernelSettings = {},
  ) {
    this.rseqDebug = settings.rseqDebug ?? false;
    this.perturbIncidental = settings.perturbIncidental ?? false;
    this.init = new Process(new Pid([1], this.rootNs), new AddressSpace(), null);
    this.rootNs.init = this.init;
    machine.kernel = this;
    if (machine.hashing) machine.stateParts.push(this);
  }

  /**
   * The kernel's part of a state fingerprint (engine/state-hash.ts): tasks by PID with their
   * signal, futex, fork-in-progress, TLS and rseq state; processes (lifetime, wait status,
   * handlers, pending signals, vfork, membarrier, which mm, mmap placement, children);
   * namespaces (PID cursors, whether they still add); futex queues in order; reserved PIDs.
   * Processes, namespaces and mms are named by the order they are met in, from the tasks.
   */
  hashState(h: Hasher): void {
    const procs: Process[] = [];
    const nss: PidNamespace[] = [];
    const mms: AddressSpace[] = [];
    const ordinal = <T>(list: T[], x: T): number => {
      const i = list.indexOf(x);
      return i >= 0 ? i : list.push(x) - 1;
    };
    for (const [nr, task] of this.tasks) {
      h.word(nr);
      h.word(task.thread.id);
      h.word(ordinal(procs, task.process));
      h.word(ordinal(nss, task.pidNsForChildren));
      h.num(task.clearChildTid);
      h.word(task.sigmask);
      h.word(task.pending);
      h.bool(task.exited);
      h.value(task.futexKey);
      h.bool(task.futexWoken);
      h.num(task.tls);
      const f = task.fork;
      if (f !== null) {
        h.word(f.flags);
        h.word(f.pid.numbers[0]!);
        h.word(f.pages.length);
      }
      const r = task.rseq;
      if (r.reg !== null) {
        h.num(r.reg.area);
        h.word(r.reg.len);
        h.word(r.reg.sig);
        h.num(r.reg.gen ?? -1);
      }
      h.bool(r.event);
      h.bool(r.idsChanged);
      h.bool(r.ipi);
      h.word(r.cachedCpu);
    }
    for (let i = 0; i < procs.length; i++) {
      const p = procs[i]!;
      h.word(p.pid.numbers[0]!);
      h.str(p.state);
      h.word(p.waitStatus);
      for (const [sig, handler] of p.sigactions) {
        h.word(sig);
        h.value(handler);
      }
      h.word(p.sharedPending);
      h.word(p.vforkParent?.pid.numbers[0] ?? 0);
      h.bool(p.execed);
      h.bool(p.membarrierRseq);
      h.word(ordinal(mms, p.mm));
      h.num(this.mmapTop.get(p.mm) ?? 0);
      h.word(p.parent?.pid.numbers[0] ?? 0);
      h.word(p.children.size);
      for (const c of p.children) h.word(ordinal(procs, c));
      h.word(ordinal(nss, p.pid.ns));
    }
    for (const ns of nss) {
      h.word(ns.level);
      h.word(ns.cursor);
      h.bool(ns.adding);
      h.word(ns.init ? ordinal(procs, ns.init) : -1);
    }
    for (const [key, q] of this.futexWaiters) {
      h.str(key);
      for (const t of q) h.word(t.thread.id);
    }
    h.word(this.reserved.size);
    for (const pid of this.reserved) h.word(pid.numbers[0]!);
    h.word(this.init.children.size);
  }

  // ---- PIDs -------------------------------------------------------------------------------

  /** alloc_pid (kernel/pid.c): one number per level; -ENOMEM once the ns init has died. */
  allocPid(ns: PidNamespace): Pid | number {
    const numbers: number[] = [];
    for (let n: PidNamespace | null = ns; n; n = n.parent) {
      if (!n.adding) return -ENOMEM;
      numbers[n.level] = this.nextFree(n);
      if (numbers[n.level]! < 0) return -EAGAIN;
    }
    return new Pid(numbers, ns);
  }

  private nextFree(ns: PidNamespace): number {
    for (let tries = 0; tries < PID_MAX; tries++) {
      let nr = ns.cursor++;
      if (ns.cursor >= PID_MAX) ns.cursor = RESERVED_PIDS;
      if (!this.pidInUse(ns, nr)) return nr;
      nr = -1;
    }
    return -ENOSPC;
  }

  private pidInUse(ns: PidNamespace, nr: number): boolean {
    for (const t of this.tasks.values()) if (t.pid.in(ns) === nr && t.process.state !== 'reaped') return true;
    for (const p of this.reserved) if (p.in(ns) === nr) return true;
    return false;
  }

  /** The process with PID nr as seen from namespace ns. */
  findProcess(ns: PidNamespace, nr: number): Process | undefined {
    for (const t of this.tasks.values()) {
      if (t.process.pid === t.pid && t.pid.in(ns) === nr && t.process.state !== 'reaped') return t.process;
    }
    return undefined;
  }

  findTask(ns: PidNamespace, nr: number): Task | undefined {
    for (const t of this.tasks.values()) if (!t.exited && t.pid.in(ns) === nr) return t;
    return undefined;
  }

  // ---- processes and tasks -------------------------------------------------------------------

  /** The scenario's first process: its main thread is `thread`, child of init. */
  createFirstProcess(thread: SimThread): Task {
    const pid = this.allocPid(this.rootNs) as Pid;
    const p = new Process(pid, thread.mem, this.init);
    this.init.children.add(p);
    return this.attach(new Task(pid, p, thread));
  }

  /** A new task for `thread` in process p (CLONE_THREAD): same TGID, its own TID. */
  addThread(p: Process, thread: SimThread, pid: Pid): Task {
    return this.attach(new Task(pid, p, thread));
  }

  attach(task: Task): Task {
    task.kernel = this;
    this.reserved.delete(task.pid);
    task.process.tasks.push(task);
    task.thread.task = task;
    this.tasks.set(task.pid.numbers[0]!, task);
    return task;
  }

  taskOf(t: SimThread): Task {
    return t.task as Task;
  }

  /** Charge a system call to the calling thread. */
  charge(t: SimThread, ns = this.profile.costs.syscallNs): void {
    t.syscalls++;
    t.syscallNs += ns;
  }

  /** Charge kernel work that is not a system call of its own (rseq's return-to-user work). */
  chargeTime(t: SimThread, ns: number): void {
    t.syscallNs += ns;
  }

  /** KernelHooks: the thread's code returned; the task exits with status 0. */
  threadExited(t: SimThread): void {
    const task = t.task as Task | null;
    if (task && !task.exited) this.exitTask(task, 0);
  }

  /**
   * do_exit (kernel/exit.c): CLONE_CHILD_CLEARTID store and futex wake (mm_release), then, for
   * the last task of the group, the process becomes a zombie for its parent.
   */
  exitTask(task: Task, code: number, signal = 0): void {
    if (task.exited) return;
    task.exited = true;
    this.machine.kill(task.thread);
    this.cancelFutexWait(task);
    const p = task.process;
    if (task.clearChildTid !== 0 && this.mmHasOtherUsers(task)) {
      // mm_release: put_user(0, tidptr); futex wake, when mm_users > 1 (kernel/fork.c).
      const mm = p.mm;
      if (mm.protectionAt(task.clearChildTid) !== undefined) {
        mm.store(task.clearChildTid, 4, 0);
        this.futexWake(mm, task.clearChildTid, 1);
      }
    }
    if (p.tasks.every((o) => o.exited)) this.exitProcess(p, signal ? signal : (code & 0xff) << 8);
  }

  /**
   * mm_users > 1: a live task other than `task` uses its address space, in its own thread group
   * or in another process made with CLONE_VM (probes/fork-pid clone_vm settid: a CLONE_VM
   * child's CLONE_CHILD_CLEARTID word reads 0 in the parent after the child exits).
   */
  private mmHasOtherUsers(task: Task): boolean {
    const mm = task.process.mm;
    for (const o of this.tasks.values()) if (o !== task && !o.exited && o.process.mm === mm) return true;
    return false;
  }

  /** exit_group / fatal signal: every task of the group exits. */
  exitGroup(p: Process, status: number): void {
    if (p.state !== 'running') return;
    for (const o of p.tasks) {
      if (!o.exited) {
        o.exited = true;
        this.machine.kill(o.thread);
        this.cancelFutexWait(o);
      }
    }
    this.exitProcess(p, status);
  }

  private exitProcess(p: Process, status: number): void {
    if (p.state !== 'running') return;
    p.state = 'zombie';
    p.waitStatus = status;
    this.releaseVfork(p);
    // forget_original_parent: children go to the namespace's init (kernel/exit.c find_new_reaper).
    const ns = p.pid.ns;
    if (ns.init === p) {
      // zap_pid_ns_processes: the namespace dies with its init.
      ns.adding = false;
      for (const t of [...this.tasks.values()]) {
        if (t.process !== p && t.pid.ns.level >= ns.level && t.pid.in(ns) !== 0 && t.process.state === 'running') {
          this.exitGroup(t.process, SIGKILL);
        }
      }
    }
    for (const c of p.children) {
      const reaper = ns.init && ns.init !== p && ns.init.state === 'running' ? ns.init : this.init;
      c.parent = reaper;
      reaper.children.add(c);
      if (reaper === this.init && c.state === 'zombie') this.reap(c);
    }
    p.children.clear();
    if (p.parent === this.init || p.parent === null) this.reap(p);
  }

  /**
   * A zombie wait4 may reap. A namespace init is not one while another process of its namespace
   * is unreaped: the dying init waits in zap_pid_ns_processes until only its own PID is left
   * before exit_notify makes it a zombie (kernel/pid_namespace.c; probes/fork-pid pidns
   * init_death: init_reapable_before_other_ns_members_reaped is false).
   */
  reapable(p: Process): boolean {
    if (p.state !== 'zombie') return false;
    const ns = p.pid.ns;
    if (ns.init !== p) return true;
    for (const t of this.tasks.values()) if (t.process !== p && t.pid.in(ns) !== 0 && t.process.state !== 'reaped') return false;
    return true;
  }

  /** Remove a zombie (release_task). */
  reap(p: Process): void {
    p.state = 'reaped';
    p.parent?.children.delete(p);
    for (const t of p.tasks) this.tasks.delete(t.pid.numbers[0]!);
  }

  releaseVfork(p: Process): void {
    p.vforkParent = null;
  }

  // ---- futexes ----------------------------------------------------------------------------

  private mmId(mm: AddressSpace): number {
    let id = this.mmIds.get(mm);
    if (id === undefined) this.mmIds.set(mm, (id = this.nextMmId++));
    return id;
  }

  futexKey(mm: AddressSpace, addr: number): string {
    return `${this.mmId(mm)}:${addr}`;
  }

  futexWait(task: Task, addr: number): void {
    const key = this.futexKey(task.process.mm, addr);
    task.futexKey = key;
    task.futexWoken = false;
    const q = this.futexWaiters.get(key);
    if (q) q.push(task);
    else this.futexWaiters.set(key, [task]);
  }

  futexWake(mm: AddressSpace, addr: number, n: number): number {
    const key = this.futexKey(mm, addr);
    const q = this.futexWaiters.get(key);
    if (!q) return 0;
    let woken = 0;
    while (q.length > 0 && woken < n) {
      const t = q.shift()!;
      t.futexWoken = true;
      t.futexKey = null;
      woken++;
    }
    if (q.length === 0) this.futexWaiters.delete(key);
    return woken;
  }

  private cancelFutexWait(task: Task): void {
    if (task.futexKey === null) return;
    const q = this.futexWaiters.get(task.futexKey);
    if (q) {
      const i = q.indexOf(task);
      if (i >= 0) q.splice(i, 1);
    }
    task.futexKey = null;
  }

  // ---- mmap placement ---------------------------------------------------------------------

  /** Top-down placement of mappings without an address (mm/mmap.c, arch_get_unmapped_area_topdown). */
  placeMapping(mm: AddressSpace, len: number): number {
    const top = this.mmapTop.get(mm) ?? 0x7f00_0000_0000;
    const addr = top - len;
    this.mmapTop.set(mm, addr - 4096);
    return addr;
  }

  inheritMmapTop(from: AddressSpace, to: AddressSpace): void {
    const top = this.mmapTop.get(from);
    if (top !== undefined) this.mmapTop.set(to, top);
  }

  // ---- signals ------------------------------------------------------------------------------

  /** send_signal + complete_signal: queue for the group (or a thread) and pick a thread to wake. */
  sendSignal(p: Process, sig: number, target: Task | null): void {
    if (p.state !== 'running') return;
    const action = p.sigactions.get(sig) ?? 'SIG_DFL';
    // sig_ignored: an ignored signal is dropped at generation (kernel/signal.c).
    if (!uncatchable(sig) && (action === 'SIG_IGN' || (action === 'SIG_DFL' && ignoredByDefault(sig)))) return;
    // A namespace init gets only signals it handles from inside its namespace (sig_task_ignored).
    if (p.pid.ns.init === p && action === 'SIG_DFL' && !uncatchable(sig)) return;
    if (sig === SIGKILL) {
      this.exitGroup(p, SIGKILL);
      return;
    }
    const bit = 1 << sig;
    if (target) target.pending |= bit;
    else p.sharedPending |= bit;
    const chosen = target ?? p.tasks.find((t) => !t.exited && !(t.sigmask & bit));
    if (chosen) chosen.thread.interrupt = true;
  }

  /** KernelHooks: t returns to user space after a context switch (rseq's notify-resume work). */
  beforeStep(t: SimThread): void {
    if (!t.switchedOut) return;
    t.switchedOut = false;
    rseqReturnToUser(this, t, 'switch');
  }

  /** KernelHooks: deliver a membarrier IPI's rseq event and pending signals (do_signal). */
  interrupted(t: SimThread): void {
    const task = t.task as Task | null;
    if (!task || task.exited) return;
    if (task.rseq.ipi) {
      task.rseq.ipi = false;
      rseqReturnToUser(this, t, 'ipi');
      if (task.exited || t.state !== 0) return;
    }
    const p = task.process;
    for (let sig = 1; sig < 32; sig++) {
      const bit = 1 << sig;
      if (task.sigmask & bit && !uncatchable(sig)) continue;
      const own = (task.pending & bit) !== 0;
      if (!own && !(p.sharedPending & bit)) continue;
      if (own) task.pending &= ~bit;
      else p.sharedPending &= ~bit;
      const action = p.sigactions.get(sig) ?? 'SIG_DFL';
      if (action === 'SIG_IGN') continue;
      if (action === 'SIG_DFL') {
        if (ignoredByDefault(sig)) continue;
        if (isCrashSignal(sig)) {
          this.machine.setVerdict({
            kind: 'crash',
            message: `process ${p.pid.numbers[0]} killed by ${signalName(sig)}`,
            thread: t.name,
            signal: signalName(sig),
          });
        }
        this.exitGroup(p, sig);
        return;
      }
      if (this.hasMorePending(task)) t.interrupt = true;
      // rseq_signal_deliver: the section is aborted before the handler runs.
      rseqReturnToUser(this, t, 'signal');
      if (task.exited || t.state !== 0) return;
      this.machine.pushFrame(t, action as SimFunction, [sig]);
      return;
    }
  }

  private hasMorePending(task: Task): boolean {
    const pend = (task.pending | task.process.sharedPending) & ~task.sigmask;
    return pend !== 0;
  }

  /** Processes that are still running, for reports. */
  liveProcesses(): Process[] {
    const out = new Set<Process>();
    for (const t of this.tasks.values()) if (t.process.state === 'running') out.add(t.process);
    return [...out];
  }
}
