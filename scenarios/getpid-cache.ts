/**
 * glibc's PID cache (2.3.4 .. 2.24) returning a stale PID, from the failure cases in reference
 * fork-pid.md 2.2 (getpid(2) NOTES; glibc commit c579f48 "Remove cached PID/TID in clone"):
 *
 * - raw-fork: a child made by syscall(SYS_fork), bypassing glibc's fork wrapper, keeps the
 *   parent's cached PID, so its getpid() returns the parent's PID.
 * - clone-vm: the clone() wrapper's RESET_PID writes -1 into pid and tid of the descriptor the
 *   child shares with its parent (CLONE_VM, no CLONE_SETTLS), so the parent's cached TID is
 *   wrong afterwards (the posix_spawn breakage, glibc BZ #19957).
 *
 * glibc 2.25 has no cache and gets both right.
 */
import { assert, load32, scenario, store32, type SimCode } from 'hyrum';
import { CLONE_VM, forkLike } from '../src/kernel/clone.ts';
import { SIGCHLD } from '../src/kernel/signal.ts';
import { exitGroup, getpid, gettid, wait4 } from '../src/kernel/syscalls.ts';
import type { Glibc } from '../src/libc/glibc.ts';

interface Ctx {
  readonly libc: Glibc;
  readonly variant: string;
  readonly status: number;
}

function* childBody(): SimCode<number> {
  return 0;
}

function* main(ctx: Ctx): SimCode<number> {
  const libc = ctx.libc;
  const parentPid: number = yield* libc.getpid();
  if (ctx.variant === 'raw-fork') {
    const pid: number = yield* forkLike(SIGCHLD);
    if (pid === 0) {
      const cached: number = yield* libc.getpid();
      const real: number = yield getpid();
      // Report through the exit status: 1 when glibc's answer was stale.
      yield exitGroup(cached === real ? 0 : 1);
      return 0;
    }
    yield wait4(pid, ctx.status, 0);
    const st: number = yield load32(ctx.status);
    assert((st >> 8) === 0, `getpid() in a child made by syscall(SYS_fork) returned the parent's PID ${parentPid}`);
  } else {
    const pid: number = yield* libc.clone(CLONE_VM | SIGCHLD, childBody, 0);
    assert(pid > 0, `clone failed: ${pid}`);
    yield wait4(pid, ctx.status, 0);
    const tid: number = yield gettid();
    const cachedTid: number = yield* libc.cachedTid();
    assert(cachedTid === tid, `after clone(CLONE_VM) the parent's cached TID is ${cachedTid}, its TID is ${tid}`);
    yield store32(ctx.status, 0);
  }
  return 0;
}

export default scenario({
  name: 'getpid-cache',
  description: "glibc 2.24's PID cache goes stale (raw fork, clone with CLONE_VM); 2.25 has none",
  glibc: true,
  versions: { glibc: '2.24' },
  variants: ['raw-fork', 'clone-vm'],
  setup: (m, variant) => ({ libc: m.glibc, variant, status: m.alloc(4) }),
  threads: [main],
  expect: [
    { variant: 'raw-fork', versions: { glibc: '2.24' }, strategy: 'dfs', verdict: 'assertion' },
    { variant: 'raw-fork', versions: { glibc: '2.25' }, strategy: 'dfs', verdict: 'none' },
    { variant: 'clone-vm', versions: { glibc: '2.24' }, strategy: 'dfs', verdict: 'assertion' },
    { variant: 'clone-vm', versions: { glibc: '2.25' }, strategy: 'dfs', verdict: 'none' },
  ],
});
