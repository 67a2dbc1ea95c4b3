/**
 * glibc's low-level lock (nptl/lowlevellock.c, sysdeps/nptl/lowlevellock.h): 0 free, 1 taken,
 * 2 taken with waiters; lll_lock spins on a futex, lll_unlock wakes one waiter when it was 2.
 */
import { cas32, xchg32, type SimCode } from '../engine/ops.ts';
import { futexWait, futexWake } from '../kernel/syscalls.ts';

export function* lllLock(lock: number): SimCode {
  const old: number = yield cas32(lock, 0, 1);
  if (old === 0) return;
  // __lll_lock_wait: mark contended, sleep while it stays taken.
  while ((yield xchg32(lock, 2)) !== 0) yield* futexWait(lock, 2);
}

export function* lllUnlock(lock: number): SimCode {
  const old: number = yield xchg32(lock, 0);
  if (old > 1) yield futexWake(lock, 1);
}
