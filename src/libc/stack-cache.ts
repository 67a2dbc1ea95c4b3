/**
 * glibc's thread-stack cache (nptl/allocatestack.c up to 2.33, nptl/nptl-stack.c after) as
 * simulated code over simulated memory: the lists stack_used, stack_user and stack_cache, the
 * in_flight_stack record (2.10+), and reclaim_stacks in the fork child in both versions (the
 * 2.9 walk; the 2.10 repair of an interrupted add or delete, reference fork-pid.md 5.3-5.5).
 * Left out: TLS/DTV set-up, guard pages, free_stacks (the 40 MiB limit is never reached here),
 * thread-specific data clearing.
 */
import { cover, fence, load32, load64, loadPtr, loopEntry, loopHead, store32, store64, storePtr, type SimCode } from '../engine/ops.ts';
import { MAP_ANONYMOUS, MAP_PRIVATE, mmap } from '../kernel/syscalls.ts';
import { PROT_READ, PROT_WRITE, PAGE_SIZE } from '../memory/page.ts';
import { initListHead, listAdd, listDel, listSplice, NEXT } from './list.ts';
import { lllLock, lllUnlock } from './lowlevellock.ts';
import type { GlibcProfile } from './profile.ts';

/** struct pthread, reduced to what the model reads (offsets are the model's own). */
export const PD = {
  LIST: 0,
  TID: 16,
  /** The PID cache (<= 2.24; 'pid_ununsed' later). */
  PID: 20,
  STACKBLOCK: 24,
  STACKBLOCK_SIZE: 32,
  USER_STACK: 40,
  RESULT: 48,
  /** joinid == pd when detached (IS_DETACHED); the model keeps a flag word. */
  DETACHED: 56,
  /** struct rseq rseq_area (2.35-2.40: inside struct pthread, 32 bytes, aligned 32). */
  RSEQ: 64,
  SIZE: 128,
} as const;

/** Thread stacks in the model: two pages, the descriptor at the top (TLS_TCB_AT_TP). */
export const STACK_SIZE = 2 * PAGE_SIZE;

/** Addresses of the stack cache's globals in a process's memory. */
export interface StackGlobals {
  readonly stackUsed: number;
  readonly stackUser: number;
  readonly stackCache: number;
  readonly inFlightStack: number;
  readonly lock: number;
  readonly actsize: number;
  readonly nthreads: number;
}

const FREE_P = (tid: number) => (tid | 0) <= 0;

export class StackCache {
  constructor(
    readonly g: StackGlobals,
    readonly profile: GlibcProfile,
  ) {}

  /** stack_list_del (2.10+): record elem in in_flight_stack around the list_del. */
  *stackListDel(elem: number): SimCode {
    if (!this.profile.inFlightStack) return yield* listDel(elem);
    yield storePtr(this.g.inFlightStack, elem);
    yield fence();
    yield* listDel(elem);
    yield fence();
    yield storePtr(this.g.inFlightStack, 0);
  }

  /** stack_list_add (2.10+): record elem | 1 in in_flight_stack around the list_add. */
  *stackListAdd(elem: number, list: number): SimCode {
    if (!this.profile.inFlightStack) return yield* listAdd(elem, list, this.profile.listAdd);
    yield storePtr(this.g.inFlightStack, elem + 1);
    yield fence();
    yield* listAdd(elem, list, this.profile.listAdd);
    yield fence();
    yield storePtr(this.g.inFlightStack, 0);
  }

  /** get_cached_stack: the smallest free cached stack of at least `size` (exact match wins). */
  *getCachedStack(size: number): SimCode<number> {
    const g = this.g;
    yield* lllLock(g.lock);
    let result = 0;
    let resultSize = 0;
    const walk = loopEntry();
    for (let entry: number = yield loadPtr(g.stackCache + NEXT); entry !== g.stackCache; entry = yield loadPtr(entry + NEXT)) {
      loopHead(walk, entry, result, resultSize);
      const tid: number = yield load32(entry + PD.TID);
      const sz: number = yield loadPtr(entry + PD.STACKBLOCK_SIZE);
      if (FREE_P(tid) && sz >= size) {
        if (sz === size) {
          result = entry;
          resultSize = sz;
          break;
        }
        if (result === 0 || resultSize > sz) {
          result = entry;
          resultSize = sz;
        }
      }
    }
    cover(result === 0 ? 'glibc get_cached_stack: miss' : 'glibc get_cached_stack: hit');
    if (result === 0 || resultSize > 4 * size) {
      yield* this.unlock();
      return 0;
    }
    yield* this.stackListDel(result);
    yield* this.stackListAdd(result, g.stackUsed);
    yield* this.addActsize(-resultSize);
    yield* this.unlock();
    return result;
  }

  /** allocate_stack for a glibc-allocated stack: from the cache, else a fresh mmap. */
  *allocateStack(selfPid: number): SimCode<number> {
    let pd: number = yield* this.getCachedStack(STACK_SIZE);
    if (pd === 0) {
      const mem: number = yield mmap(0, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      if (mem < 0) return mem;
      pd = mem + STACK_SIZE - PD.SIZE;
      yield storePtr(pd + PD.STACKBLOCK, mem);
      yield storePtr(pd + PD.STACKBLOCK_SIZE, STACK_SIZE);
      yield store32(pd + PD.PID, selfPid);
      yield* lllLock(this.g.lock);
      yield* this.stackListAdd(pd, this.g.stackUsed);
      yield* this.unlock();
    } else {
      yield store32(pd + PD.PID, selfPid);
    }
    return pd;
  }

  /** __deallocate_stack: off its list and, unless user-supplied, onto the cache (queue_stack). */
  *deallocateStack(pd: number): SimCode {
    yield* lllLock(this.g.lock);
    yield* this.stackListDel(pd);
    const user: number = yield load32(pd + PD.USER_STACK);
    if (user === 0) {
      yield* this.stackListAdd(pd, this.g.stackCache);
      const size: bigint = yield load64(pd + PD.STACKBLOCK_SIZE);
      yield* this.addActsize(size);
    }
    yield* this.unlock();
  }

  /** stack_cache_actsize += delta (size_t arithmetic). */
  private *addActsize(delta: number | bigint): SimCode {
    const act: bigint = yield load64(this.g.actsize);
    yield store64(this.g.actsize, BigInt.asUintN(64, act + BigInt(delta)));
  }

  private *unlock(): SimCode {
    yield* lllUnlock(this.g.lock);
  }

  /**
   * reclaim_stacks / __reclaim_stacks in the fork child (single-threaded): repair an
   * interrupted list operation (2.10+), mark every other used stack free, move them to the
   * cache, and put the forking thread back on its list.
   */
  *reclaimStacks(self: number, selfPid: number): SimCode {
    const g = this.g;
    cover(this.profile.inFlightStack ? 'glibc reclaim_stacks (2.10 repair)' : 'glibc __reclaim_stacks (2.9 walk)');
    if (this.profile.inFlightStack) yield* this.repairInFlight();
    // Mark all stacks except the still running one as free.
    const used = loopEntry();
    for (let runp: number = yield loadPtr(g.stackUsed + NEXT); runp !== g.stackUsed; runp = yield loadPtr(runp + NEXT)) {
      // A walk that never ends still changes actsize each time round: a hang, not a repeated state.
      loopHead(used, runp);
      if (runp === self) continue;
      yield store32(runp + PD.TID, 0);
      if (this.profile.pidCache) yield store32(runp + PD.PID, selfPid);
      // A corrupted list hands us non-descriptors: sizes are whatever is there, added mod 2^64.
      const size: bigint = yield load64(runp + PD.STACKBLOCK_SIZE);
      yield* this.addActsize(size);
    }
    // "Reset the PIDs in any cached stacks." (until the PID cache went, 2.25)
    if (this.profile.pidCache) {
      const cached = loopEntry();
      for (let runp: number = yield loadPtr(g.stackCache + NEXT); runp !== g.stackCache; runp = yield loadPtr(runp + NEXT)) {
        loopHead(cached, runp);
        yield store32(runp + PD.PID, selfPid);
      }
    }
    yield* listSplice(g.stackUsed, g.stackCache);
    yield* listDel(self);
    yield* initListHead(g.stackUsed);
    yield* initListHead(g.stackUser);
    const user: number = yield load32(self + PD.USER_STACK);
    yield* listAdd(self, user ? g.stackUser : g.stackUsed, this.profile.listAdd);
    yield store32(g.nthreads, 1);
    yield store32(g.lock, 0);
  }

  /** The 2.10 repair (sysdeps/nptl/fork.h reclaim_stacks, reference fork-pid.md 5.4). */
  private *repairInFlight(): SimCode {
    const g = this.g;
    const inFlight: number = yield loadPtr(g.inFlightStack);
    if (inFlight === 0) return;
    const addP = inFlight % 2 === 1;
    cover(addP ? 'glibc reclaim_stacks: repair an interrupted add' : 'glibc reclaim_stacks: repair an interrupted delete');
    const elem = inFlight - (addP ? 1 : 0);
    if (addP) {
      // Adds always go to the head of a list: find the list whose first element's back link
      // was already redirected to elem, and finish the add.
      let l = 0;
      const usedFirst: number = yield loadPtr(g.stackUsed + NEXT);
      const cacheFirst: number = yield loadPtr(g.stackCache + NEXT);
      if ((yield loadPtr(usedFirst + 8)) !== g.stackUsed) l = g.stackUsed;
      else if ((yield loadPtr(cacheFirst + 8)) !== g.stackCache) l = g.stackCache;
      if (l !== 0) {
        const first: number = yield loadPtr(l + NEXT);
        yield storePtr(elem + NEXT, first);
        yield storePtr(elem + 8, l);
        yield storePtr(l + NEXT, elem);
      }
    } else {
      // Replaying a delete is idempotent.
      const next: number = yield loadPtr(elem + NEXT);
      const prev: number = yield loadPtr(elem + 8);
      yield storePtr(next + 8, prev);
      yield storePtr(prev + NEXT, next);
    }
    yield storePtr(g.inFlightStack, 0);
  }
}
