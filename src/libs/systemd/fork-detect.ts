/**
 * Fork detection as libsystemd needs it (seed 000: sd-bus and sd-event refuse to be used after
 * fork), in the four ways the seed's thread discusses. Each keeps its state in simulated memory
 * and answers "what is my PID?"; a detector is right when that answer is the caller's real PID.
 *
 * - getpid: ask getpid() on every call (libsystemd's check before systemd PR #6413).
 * - atfork-reset: systemd's getpid_cached() (src/basic/process-util.c): a cached PID with
 *   UNSET/BUSY states, reset by an atfork child handler registered with the library's
 *   __dso_handle (so dlclose unregisters it).
 * - wipeonfork: the PID in a MADV_WIPEONFORK page (Linux 4.14); a child sees 0 and asks again.
 * - proposal: Lennart Poettering's proposal (seed 000): glibc keeps a process-wide PID cache and
 *   switches it off for good at the first clone() or unshare() through glibc; glibc's fork resets
 *   it in the child. Never implemented in glibc: modelled here as the wrappers it would need.
 */
import { cas32, load32, loadPtr, store32, storePtr, type SimCode, type SimFunction } from '../../engine/ops.ts';
import { getpid as rawGetpid, madvise, MADV_WIPEONFORK, MAP_ANONYMOUS, MAP_PRIVATE, mmap, unshare as sysUnshare } from '../../kernel/syscalls.ts';
import type { Glibc } from '../../libc/glibc.ts';
import { PAGE_SIZE, PROT_READ, PROT_WRITE } from '../../memory/page.ts';

export type Strategy = 'getpid' | 'atfork-reset' | 'wipeonfork' | 'proposal';
export const STRATEGIES: readonly Strategy[] = ['getpid', 'atfork-reset', 'wipeonfork', 'proposal'];

const UNSET = 0;
const BUSY = 0xffffffff; // -1

/** Addresses of a detector's state (allocated by the scenario's set-up). */
export interface DetectorState {
  /** cached_pid (atfork-reset), a pointer to the WIPEONFORK page (wipeonfork: 8 bytes), or the proposal's cache. */
  readonly cell: number;
  /** atfork-reset: whether the atfork handler is installed. */
  readonly installed: number;
  /** proposal: set once a clone() or unshare() went through glibc. */
  readonly disabled: number;
}

export class ForkDetector {
  constructor(
    readonly strategy: Strategy,
    readonly libc: Glibc,
    readonly state: DetectorState,
    /** Address of the atfork child handler (reset) and the __dso_handle it is registered with. */
    readonly resetHandler: number,
    readonly dso: number,
  ) {}

  /** Set-up work a library does at load (wipeonfork maps its page). */
  *init(): SimCode {
    if (this.strategy !== 'wipeonfork') return;
    const page: number = yield mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    yield madvise(page, PAGE_SIZE, MADV_WIPEONFORK);
    yield storePtr(this.state.cell, page);
  }

  /** The PID as the detector believes it. */
  *getpid(): SimCode<number> {
    switch (this.strategy) {
      case 'getpid':
        return yield* this.libc.getpid();
      case 'atfork-reset':
        return yield* this.getpidCached();
      case 'wipeonfork': {
        const page: number = yield loadPtr(this.state.cell);
        const v: number = yield load32(page);
        if (v !== 0) return v;
        const p: number = yield rawGetpid();
        yield store32(page, p);
        return p;
      }
      case 'proposal': {
        if ((yield load32(this.state.disabled)) !== 0) return (yield rawGetpid()) as number;
        const v: number = yield load32(this.state.cell);
        if (v !== 0) return v;
        const p: number = yield rawGetpid();
        yield store32(this.state.cell, p);
        return p;
      }
    }
  }

  /** systemd's getpid_cached(). */
  private *getpidCached(): SimCode<number> {
    const cur: number = yield cas32(this.state.cell, UNSET, BUSY);
    if (cur === UNSET) {
      const p: number = yield rawGetpid();
      if ((yield load32(this.state.installed)) === 0) {
        const r: number = yield* this.libc.registerAtfork(0, 0, this.resetHandler, this.dso);
        if (r !== 0) {
          yield store32(this.state.cell, UNSET);
          return p;
        }
        yield store32(this.state.installed, 1);
      }
      yield store32(this.state.cell, p);
      return p;
    }
    if (cur === BUSY) return (yield rawGetpid()) as number;
    return cur;
  }

  // ---- the proposal's glibc wrappers --------------------------------------------------------

  /** fork through glibc: the proposal resets the process-wide cache in the child. */
  *fork(): SimCode<number> {
    const pid: number = yield* this.libc.fork();
    if (pid === 0 && this.strategy === 'proposal') yield store32(this.state.cell, 0);
    return pid;
  }

  /** clone() through glibc: the proposal switches the cache off first. */
  *clone(flags: number, fn: SimFunction<[number], unknown>, arg: number): SimCode<number> {
    if (this.strategy === 'proposal') yield store32(this.state.disabled, 1);
    return yield* this.libc.clone(flags, fn, arg);
  }

  /** unshare() through glibc: the proposal switches the cache off first. */
  *unshare(flags: number): SimCode<number> {
    if (this.strategy === 'proposal') yield store32(this.state.disabled, 1);
    return (yield sysUnshare(flags)) as number;
  }
}

/** systemd's reset_cached_pid(): "Invoked in the child after a fork()". */
export function resetCachedPid(cell: number): () => SimCode {
  return function* reset_cached_pid(): SimCode {
    yield store32(cell, UNSET);
  };
}
