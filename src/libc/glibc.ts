/**
 * The glibc model: one object per run holding the profile and the addresses of glibc's
 * globals in the process's memory. All of glibc's mutable state lives in simulated memory (so
 * fork copies it and the explorer can interrupt it store by store); this object only holds
 * addresses and the code registry, both fixed during set-up.
 */
import { atomic, cas32, cover, load32, load8, loadPtr, store32, storePtr, type SimCode, type SimFunction } from '../engine/ops.ts';
import type { SimThread } from '../engine/thread.ts';
import type { StatePart } from '../engine/machine.ts';
import type { Hasher } from '../memory/fingerprint.ts';
import { ProcessAbort } from '../engine/errors.ts';
import { clone, CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_THREAD, CLONE_VFORK, CLONE_VM, forkLike, PTHREAD_CLONE_FLAGS, THREAD_SELF } from '../kernel/clone.ts';
import { EINVAL } from '../kernel/errno.ts';
import { SIGCHLD } from '../kernel/signal.ts';
import { futexWait, getpid as sysGetpid, gettid as sysGettid, mmap, munmap, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, sysExit } from '../kernel/syscalls.ts';
import type { Task } from '../kernel/task.ts';
import type { AddressSpace } from '../memory/address-space.ts';
import { PAGE_SIZE, PROT_EXEC, PROT_READ } from '../memory/page.ts';
import type { Setup } from '../scenario/memory-view.ts';
import { lllLock, lllUnlock } from './lowlevellock.ts';
import { listAdd } from './list.ts';
import type { GlibcProfile } from './profile.ts';
import { PD, StackCache } from './stack-cache.ts';
import { AT_RSEQ_ALIGN, AT_RSEQ_FEATURE_SIZE, auxv, registerAtStartup, RSEQ, RSEQ_CPU_ID_REGISTRATION_FAILED, RSEQ_CPU_ID_UNINITIALIZED, RSEQ_SIG, sysRseq } from '../kernel/rseq.ts';

/** The main program's text, where its functions get addresses (x86-64 non-PIE base). */
export const PROGRAM_TEXT = 0x400000;
/** Where shared libraries load (each gets its own page of text). */
export const LIBRARY_TEXT = 0x7e0000000000;
/** Slots in the atfork table (a dynarray of 48 initially in current glibc). */
const ATFORK_MAX = 48;
const ATFORK_ENTRY = 32;

/** A shared library the scenario can dlopen: its handle (__dso_handle) and function addresses. */
export interface Library {
  readonly name: string;
  readonly handle: number;
  readonly text: number;
  readonly fns: Readonly<Record<string, number>>;
}

export class Glibc implements StatePart {
  private stackCache: StackCache | null = null;
  private globals = 0;
  private readonly code = new Map<number, SimFunction>();
  private nextProgramFn = PROGRAM_TEXT;
  private readonly libraries: Library[] = [];
  private mainPds: number[] = [];
  private layoutDone = false;
  private firstTask: Task | null = null;

  /** glibc.pthread.rseq (GLIBC_TUNABLES): 0 leaves rseq to the application. */
  readonly rseqTunable: boolean;
  /** __rseq_offset, __rseq_size and the registration length, fixed at process start. */
  rseqOffset = 0;
  rseqSize = 0;
  private rseqRegLen = 0;

  /**
   * glibc's JS-side state for a state fingerprint (engine/state-hash.ts): what code has been
   * given an address and which libraries are loaded (all else is in simulated memory).
   */
  hashState(h: Hasher): void {
    h.word(this.code.size);
    h.num(this.nextProgramFn);
    h.word(this.libraries.length);
    h.word(this.mainPds.length);
  }

  constructor(
    readonly profile: GlibcProfile,
    tunables: Readonly<Record<string, string>> = {},
  ) {
    const rseq = tunables['glibc.pthread.rseq'];
    if (rseq !== undefined && rseq !== '0' && rseq !== '1') throw new Error(`glibc.pthread.rseq must be 0 or 1, not '${rseq}'`);
    this.rseqTunable = rseq !== '0';
  }

  /** The stack cache model (its globals' addresses and operations). */
  get stacks(): StackCache {
    if (!this.stackCache) throw new Error('glibc: layOut() has not run');
    return this.stackCache;
  }

  /** Address of the atfork table: count at +0, entries of {prepare, parent, child, dso} after. */
  get atforkTable(): number {
    return this.globals + 0x100;
  }

  private get atforkLock(): number {
    return this.globals + 0xf8;
  }

  /** Place glibc's globals in their own page of the data segment, and the program's text. */
  layOut(m: Setup): void {
    const base = m.alloc(PAGE_SIZE, PAGE_SIZE);
    this.globals = base;
    this.stackCache = new StackCache(
      {
        stackUsed: base,
        stackUser: base + 0x10,
        stackCache: base + 0x20,
        inFlightStack: base + 0x30,
        lock: base + 0x38,
        actsize: base + 0x40,
        nthreads: base + 0x48,
      },
      this.profile,
    );
    for (const head of [base, base + 0x10, base + 0x20]) {
      m.writePtr(head, head);
      m.writePtr(head + 8, head);
    }
    m.write32(base + 0x48, 1);
    // Descriptors of the initial threads (the main thread's lives in static TLS).
    const pds = m.alloc(PAGE_SIZE, PAGE_SIZE);
    // Room below each: 2.41+ puts the rseq area before the TCB, TCMalloc its TLS block further down.
    this.mainPds = [1, 2, 3, 4].map((i) => pds + i * 4 * PD.SIZE);
    m.map(PROGRAM_TEXT, PAGE_SIZE, PROT_READ | PROT_EXEC);
    this.layoutDone = true;
  }

  /**
   * Give the process's initial threads their descriptors on stack_user (user_stack = 1) and
   * their thread pointers, as __libc_setup_tls and __pthread_initialize_minimal do.
   */
  initProcess(mem: AddressSpace, threads: readonly SimThread[]): void {
    this.firstTask = (threads[0]?.task as Task | null) ?? null;
    const su = this.stacks.g.stackUser;
    threads.forEach((t, i) => {
      const pd = this.mainPds[i];
      if (pd === undefined) throw new Error('glibc model: at most 4 initial threads');
      const task = t.task as Task;
      task.tls = pd;
      mem.store(pd + PD.TID, 4, task.pid.in(task.ns));
      if (this.profile.pidCache) mem.store(pd + PD.PID, 4, task.process.pid.in(task.ns));
      mem.store(pd + PD.USER_STACK, 4, 1);
      // list_add(&pd->list, &stack_user) at set-up, when nothing else runs.
      const first = mem.loadPtr(su);
      mem.storePtr(pd, first);
      mem.storePtr(pd + 8, su);
      mem.storePtr(first + 8, pd);
      mem.storePtr(su, pd);
    });
    if (threads.length > 1) mem.store(this.stacks.g.nthreads, 4, threads.length);
    this.initRseq(mem, threads);
  }

  /**
   * rseq at process start (sysdeps/nptl/dl-tls_init_tp.c, rseq-internal.h): the area's place
   * and size by version, the tunable, and the initial threads' registration. Failure or the
   * tunable off leave cpu_id = RSEQ_CPU_ID_REGISTRATION_FAILED and __rseq_size = 0.
   */
  private initRseq(mem: AddressSpace, threads: readonly SimThread[]): void {
    const r = this.profile.rseq;
    if (r === null) return;
    const k = (threads[0]!.task as Task).kernel;
    const feature = Math.max(auxv(k, AT_RSEQ_FEATURE_SIZE), 20);
    const align = Math.max(auxv(k, AT_RSEQ_ALIGN), 32);
    if (r.placement === 'pthread') this.rseqOffset = PD.RSEQ;
    else this.rseqOffset = -Math.ceil(Math.max(feature, 32) / align) * align;
    const size = r.size === 'auxv' ? feature : r.size;
    this.rseqRegLen = r.regLen === 'auxv' ? Math.max(feature, 32) : 32;
    const enabled = this.rseqTunable && k.profile.rseq !== null;
    this.rseqSize = enabled ? size : 0;
    for (const t of threads) {
      const task = t.task as Task;
      const area = task.tls + this.rseqOffset;
      if (enabled) registerAtStartup(t, task, area, this.rseqRegLen, RSEQ_SIG);
      else mem.store(area + RSEQ.CPU_ID, 4, RSEQ_CPU_ID_REGISTRATION_FAILED >>> 0);
    }
  }

  /**
   * start_thread's registration (nptl/pthread_create.c): a new thread registers iff its creator
   * is registered (cpu_id >= 0); otherwise its cpu_id says REGISTRATION_FAILED. A failure after a
   * registered creator is fatal ("Fatal glibc error: rseq registration failed").
   */
  *registerThreadRseq(pd: number, creatorRegistered: boolean): SimCode {
    if (this.profile.rseq === null) return;
    const area = pd + this.rseqOffset;
    if (!creatorRegistered) {
      yield store32(area + RSEQ.CPU_ID, RSEQ_CPU_ID_REGISTRATION_FAILED >>> 0);
      return;
    }
    yield store32(area + RSEQ.CPU_ID, RSEQ_CPU_ID_UNINITIALIZED >>> 0);
    const r: number = yield sysRseq(area, this.rseqRegLen, 0, RSEQ_SIG);
    if (r !== 0) throw new GlibcFatal('Fatal glibc error: rseq registration failed');
  }

  /** Whether the calling thread's glibc rseq area is registered (cpu_id >= 0). */
  *rseqRegistered(): SimCode<boolean> {
    if (this.profile.rseq === null) return false;
    const self: number = yield* this.self();
    const cpuId: number = yield load32(self + this.rseqOffset + RSEQ.CPU_ID);
    return (cpuId | 0) >= 0;
  }

  /** The thread pointer (descriptor) of initial thread i, known at set-up. */
  mainThreadPointer(i: number): number {
    const pd = this.mainPds[i];
    if (pd === undefined) throw new Error(`glibc model: no initial thread ${i}`);
    return pd;
  }

  /** The first process's main task, for reports (null before the process exists). */
  mainTask(): Task | null {
    return this.firstTask;
  }

  // ---- code: function pointers ---------------------------------------------------------------

  /** Give the main program's functions addresses in its text (callable through pointers). */
  program(fns: Record<string, SimFunction>): Record<string, number> {
    if (!this.layoutDone) throw new Error('glibc: program() belongs in setup');
    const out: Record<string, number> = {};
    for (const [name, fn] of Object.entries(fns)) {
      const addr = this.nextProgramFn;
      this.nextProgramFn += 16;
      this.code.set(addr, fn);
      out[name] = addr;
    }
    return out;
  }

  /** Declare a shared library the scenario may dlopen: its text page and functions. */
  library(name: string, fns: Record<string, SimFunction>): Library {
    const text = LIBRARY_TEXT + this.libraries.length * 0x10000;
    const out: Record<string, number> = {};
    Object.entries(fns).forEach(([fname, fn], i) => {
      this.code.set(text + 16 * i, fn);
      out[fname] = text + 16 * i;
    });
    const lib: Library = { name, handle: text + PAGE_SIZE - 8, text, fns: out };
    this.libraries.push(lib);
    return lib;
  }

  /**
   * Call a function pointer: fetching its first instruction faults (SIGSEGV) when the code is
   * no longer mapped, e.g. a handler of a dlclose'd library.
   */
  *call(addr: number, ...args: unknown[]): SimCode<unknown> {
    yield load8(addr);
    const fn = this.code.get(addr);
    if (!fn) throw new Error(`glibc model: no function at 0x${addr.toString(16)}`);
    return yield* fn(...args);
  }

  /** dlopen: map the library's text (its constructors are the scenario's business). */
  *dlopen(lib: Library): SimCode<number> {
    const r: number = yield mmap(lib.text, PAGE_SIZE, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
    return r < 0 ? r : lib.handle;
  }

  /**
   * dlclose: the library's fini calls __cxa_finalize(__dso_handle), which unregisters its
   * atfork handlers (stdlib/cxa_finalize.c UNREGISTER_ATFORK), then its text is unmapped.
   * With RTLD_NODELETE nothing happens.
   */
  *dlclose(lib: Library, nodelete = false): SimCode<number> {
    if (nodelete) return 0;
    yield* this.unregisterAtfork(lib.handle);
    return (yield munmap(lib.text, PAGE_SIZE)) as number;
  }

  // ---- pthread_atfork (posix/register-atfork.c) ---------------------------------------------

  /**
   * __register_atfork(prepare, parent, child, dso_handle): append to the table (0 = no handler).
   * pthread_atfork passes the caller's __dso_handle.
   */
  *registerAtfork(prepare: number, parent: number, child: number, dso: number): SimCode<number> {
    const t = this.atforkTable;
    yield* lllLock(this.atforkLock);
    const n: number = yield load32(t);
    if (n >= ATFORK_MAX) {
      yield* lllUnlock(this.atforkLock);
      return 12; // ENOMEM
    }
    const e = t + 8 + n * ATFORK_ENTRY;
    yield storePtr(e, prepare);
    yield storePtr(e + 8, parent);
    yield storePtr(e + 16, child);
    yield storePtr(e + 24, dso);
    yield store32(t, n + 1);
    yield* lllUnlock(this.atforkLock);
    return 0;
  }

  /** pthread_atfork from the main program. */
  pthreadAtfork(prepare: number, parent: number, child: number): SimCode<number> {
    return this.registerAtfork(prepare, parent, child, PROGRAM_TEXT);
  }

  /** __unregister_atfork(dso): remove every entry of that library, keeping the others' order. */
  *unregisterAtfork(dso: number): SimCode {
    const t = this.atforkTable;
    yield* lllLock(this.atforkLock);
    const n: number = yield load32(t);
    let kept = 0;
    for (let i = 0; i < n; i++) {
      const e = t + 8 + i * ATFORK_ENTRY;
      const d: number = yield loadPtr(e + 24);
      if (d === dso && dso !== 0) continue;
      if (kept !== i) {
        const to = t + 8 + kept * ATFORK_ENTRY;
        for (let w = 0; w < 32; w += 8) yield storePtr(to + w, (yield loadPtr(e + w)) as number);
      }
      kept++;
    }
    yield store32(t, kept);
    yield* lllUnlock(this.atforkLock);
  }

  /** Run one kind of handler: slot 0 prepare (reverse order), 1 parent, 2 child (in order). */
  private *runAtfork(slot: 0 | 1 | 2, count: number): SimCode {
    const t = this.atforkTable;
    for (let k = 0; k < count; k++) {
      const i = slot === 0 ? count - 1 - k : k;
      const fn: number = yield loadPtr(t + 8 + i * ATFORK_ENTRY + slot * 8);
      if (fn !== 0) {
        cover(`glibc fork: ${['prepare', 'parent', 'child'][slot]} handler`);
        yield* this.call(fn);
      }
    }
  }

  // ---- threads --------------------------------------------------------------------------------

  /** THREAD_SELF: the calling thread's descriptor. */
  *self(): SimCode<number> {
    return (yield atomic(THREAD_SELF)) as number;
  }

  /** pthread_create: a stack from the cache or mmap, then clone with glibc's flags. */
  *pthreadCreate(fn: SimFunction<[number], unknown>, arg: number): SimCode<number> {
    const self: number = yield* this.self();
    const selfPid: number = this.profile.pidCache ? yield load32(self + PD.PID) : 0;
    const pd: number = yield* this.stacks.allocateStack(selfPid);
    if (pd < 0) return pd;
    const registered: boolean = yield* this.rseqRegistered();
    const tid: number = yield* clone(PTHREAD_CLONE_FLAGS, startThread, [this, pd, fn, arg, registered], { ptid: pd + PD.TID, ctid: pd + PD.TID, tls: pd });
    if (tid < 0) {
      yield* this.stacks.deallocateStack(pd);
      return tid;
    }
    return pd;
  }

  /**
   * pthread_create with pthread_attr_setstack (allocate_stack's ATTR_FLAG_STACKADDR path): the
   * descriptor, its TLS and (2.35-2.40) its rseq area go at the top of the caller's memory,
   * which glibc will neither cache nor free (user_stack); the thread is put on stack_user.
   */
  *pthreadCreateOnStack(fn: SimFunction<[number], unknown>, arg: number, stackAddr: number, stackSize: number): SimCode<number> {
    const self: number = yield* this.self();
    const pd = stackAddr + stackSize - PD.SIZE;
    yield storePtr(pd + PD.STACKBLOCK, stackAddr);
    yield storePtr(pd + PD.STACKBLOCK_SIZE, stackSize);
    yield store32(pd + PD.USER_STACK, 1);
    if (this.profile.pidCache) yield store32(pd + PD.PID, (yield load32(self + PD.PID)) as number);
    yield* lllLock(this.stacks.g.lock);
    yield* listAdd(pd, this.stacks.g.stackUser, this.profile.listAdd);
    yield* lllUnlock(this.stacks.g.lock);
    const registered: boolean = yield* this.rseqRegistered();
    const tid: number = yield* clone(PTHREAD_CLONE_FLAGS, startThread, [this, pd, fn, arg, registered], { ptid: pd + PD.TID, ctid: pd + PD.TID, tls: pd });
    return tid < 0 ? tid : pd;
  }

  /**
   * pthread_detach (nptl/pthread_detach.c): mark the thread detached; if it has already
   * finished (its exit saw no detach), free its stack here as a join would.
   */
  *pthreadDetach(pd: number): SimCode<number> {
    const old: number = yield cas32(pd + PD.DETACHED, 0, 1);
    if (old === 0) return 0;
    if (old === 3) {
      // Already finished: free it as a join would (__free_tcb).
      yield store32(pd + PD.DETACHED, 2);
      yield* this.stacks.deallocateStack(pd);
      return 0;
    }
    return 22; // EINVAL: already detached
  }

  /** pthread_join: wait for the kernel to clear the TID (CLONE_CHILD_CLEARTID), then free the stack. */
  *pthreadJoin(pd: number): SimCode<number> {
    for (;;) {
      const tid: number = yield load32(pd + PD.TID);
      if (tid === 0) break;
      yield* futexWait(pd + PD.TID, tid);
    }
    const result: number = yield loadPtr(pd + PD.RESULT);
    yield* this.stacks.deallocateStack(pd);
    return result;
  }

  // ---- fork ------------------------------------------------------------------------------------

  /**
   * fork (nptl/sysdeps/unix/sysv/linux/fork.c before 2.34, posix/fork.c after): prepare
   * handlers, the PID-cache dance (<= 2.24), the clone, then in the child the stack reclaim and
   * child handlers, in the parent the parent handlers. No lock is taken around it: fork may be
   * called from a signal handler.
   */
  *fork(): SimCode<number> {
    const count: number = yield load32(this.atforkTable);
    yield* this.runAtfork(0, count);
    const self: number = yield* this.self();
    let parentPid = 0;
    if (this.profile.pidCache) {
      parentPid = yield load32(self + PD.PID);
      yield store32(self + PD.PID, -parentPid);
    }
    const pid: number = yield* forkLike(CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD, { ctid: self + PD.TID });
    if (pid === 0) {
      let tid = 0;
      if (this.profile.pidCache) {
        tid = yield load32(self + PD.TID);
        yield store32(self + PD.PID, tid);
      }
      yield* this.stacks.reclaimStacks(self, tid);
      yield* this.runAtfork(2, count);
    } else {
      if (this.profile.pidCache) yield store32(self + PD.PID, parentPid);
      yield* this.runAtfork(1, count);
    }
    return pid;
  }

  /**
   * vfork (sysdeps/unix/sysv/linux/x86_64/vfork.S): with the PID cache, SAVE_PID stores -pid
   * (0x80000000 for 0) and RESTORE_PID puts it back in the parent only; no atfork handlers.
   */
  *vfork(): SimCode<number> {
    const self: number = yield* this.self();
    let saved = 0;
    if (this.profile.pidCache) {
      saved = yield load32(self + PD.PID);
      yield store32(self + PD.PID, saved === 0 ? 0x80000000 : -saved);
    }
    const pid: number = yield* forkLike(CLONE_VM | CLONE_VFORK | SIGCHLD);
    if (pid !== 0 && this.profile.pidCache) yield store32(self + PD.PID, saved);
    return pid;
  }

  /**
   * The clone() wrapper (sysdeps/unix/sysv/linux/x86_64/clone.S). With the PID cache
   * (RESET_PID, <= 2.24) the child of a non-thread clone resets pid and tid: to -1 with
   * CLONE_VM, else to getpid(). Since 2.25 it does nothing, so the child's cached TID is stale.
   * A NULL fn or a NULL (0) stack fails with EINVAL before the system call (clone.S's "Sanity
   * check arguments"; probes/fork-pid clone_vm flag_errors). The child runs on its own simulated
   * stack, so `stack` matters only as NULL or not.
   */
  *clone(flags: number, fn: SimFunction<[number], unknown> | null, arg: number, stack?: number): SimCode<number> {
    if (fn === null || stack === 0) return -EINVAL;
    const reset = this.profile.pidCache && !(flags & CLONE_THREAD);
    return yield* clone(flags, cloneChild, [this, reset, flags, fn, arg]);
  }

  /** getpid: the cached PID (<= 2.24; really_getpid when it is not positive), else the syscall. */
  *getpid(): SimCode<number> {
    if (!this.profile.pidCache) return (yield sysGetpid()) as number;
    const self: number = yield* this.self();
    const r: number = (yield load32(self + PD.PID)) | 0;
    cover(r > 0 ? 'glibc getpid: cached' : 'glibc getpid: really_getpid');
    if (r > 0) return r;
    if (r === 0) {
      const t: number = (yield load32(self + PD.TID)) | 0;
      if (t !== 0) return t;
    }
    const pid: number = yield sysGetpid();
    // "We do not set the PID field in the TID here since we might be called from a signal
    // handler while the thread executes fork."
    if (r === 0) yield store32(self + PD.TID, pid);
    return pid;
  }

  /** The TID cached in struct pthread (what pthread_self()->tid, and so gettid-free code, see). */
  *cachedTid(): SimCode<number> {
    const self: number = yield* this.self();
    return ((yield load32(self + PD.TID)) as number) | 0;
  }
}

/** A __libc_fatal: glibc prints the message and aborts the process. */
export class GlibcFatal extends ProcessAbort {
  constructor(message: string) {
    super(message);
    this.name = 'GlibcFatal';
  }
}

/**
 * start_thread (nptl/pthread_create.c): register rseq as the creator was, run the function,
 * keep its result, exit the thread. A detached thread frees its own stack first (__free_tcb ->
 * __deallocate_stack while it still runs on it: the cache entry keeps tid > 0 until the kernel
 * clears it at exit, reference fork-pid.md 5.4). glibc never unregisters rseq: the kernel
 * stops at thread exit.
 */
function* startThread(libc: Glibc, pd: number, fn: SimFunction<[number], unknown>, arg: number, registered: boolean): SimCode {
  yield* libc.registerThreadRseq(pd, registered);
  const r = yield* fn(arg);
  yield storePtr(pd + PD.RESULT, typeof r === 'number' ? r : 0);
  // pthread_detach and this exit race on the word (glibc: a CAS on joinid and the TERMINATED
  // bit): 0 joinable, 1 detached, 2 detached and freed, 3 exited while joinable.
  if ((yield cas32(pd + PD.DETACHED, 0, 3)) === 1) {
    yield store32(pd + PD.DETACHED, 2);
    yield* libc.stacks.deallocateStack(pd);
  }
  yield sysExit(0);
}

function* cloneChild(libc: Glibc, reset: boolean, flags: number, fn: SimFunction<[number], unknown>, arg: number): SimCode {
  if (reset) {
    const self: number = yield* libc.self();
    const v: number = flags & CLONE_VM ? -1 : ((yield sysGetpid()) as number);
    yield store32(self + PD.PID, v);
    yield store32(self + PD.TID, v);
  }
  const r = yield* fn(arg);
  yield sysExit(typeof r === 'number' ? r : 0);
}

export { sysGettid };
