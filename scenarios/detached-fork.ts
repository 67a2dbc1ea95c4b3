/**
 * Reference fork-pid.md 5.4 (an inference the model lets us check): a detached thread queues its
 * own stack on stack_cache while it still runs on it; the kernel clears its TID only at exit. A
 * fork in that window leaves the child a cache entry with tid > 0 that never becomes free, so
 * the child cannot reuse that stack: its pthread_create maps a fresh one. Nothing breaks; the
 * invariant checked is that the child never reuses a stack whose TID is still set.
 */
import { assert, load32, scenario, type SimCode } from 'hyrum';
import { exitGroup, wait4 } from '../src/kernel/syscalls.ts';
import type { Glibc } from '../src/libc/glibc.ts';
import { PD } from '../src/libc/stack-cache.ts';

interface Ctx {
  readonly libc: Glibc;
  readonly status: number;
}

function* noop(): SimCode<number> {
  return 0;
}

function* main(ctx: Ctx): SimCode<number> {
  const libc = ctx.libc;
  const t: number = yield* libc.pthreadCreate(noop, 0);
  assert((yield* libc.pthreadDetach(t)) === 0, 'pthread_detach failed');
  const pid: number = yield* libc.fork();
  if (pid === 0) {
    // In the child: a new thread gets a stack whose descriptor's TID is 0 (free), never a live one.
    const tidBefore: number = yield load32(t + PD.TID);
    const u: number = yield* libc.pthreadCreate(noop, 0);
    yield exitGroup(u === t && tidBefore !== 0 ? 1 : 0);
    return 0;
  }
  yield wait4(pid, ctx.status, 0);
  assert(((yield load32(ctx.status)) as number) >> 8 === 0, 'the child reused a stack still marked in use');
  return 0;
}

export default scenario({
  name: 'detached-fork',
  description: "a detached thread's stack on stack_cache with tid > 0 at fork: the child must not reuse it",
  glibc: true,
  versions: { glibc: '2.36' },
  setup: (m) => ({ libc: m.glibc, status: m.alloc(4) }),
  threads: [main],
  expect: [{ strategy: 'dpor', preemptionBound: 2, verdict: 'none' }],
});
