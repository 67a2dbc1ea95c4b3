/**
 * Seed 000: glibc 2.25 dropped the PID cache, so a library that calls getpid() on every call
 * to notice a fork (sd-bus, sd-event) pays a system call each time; systemd measured a 20-30%
 * slowdown (Fedora bz 1469670 comment 2).
 *
 * The loop: ITERATIONS calls, each a getpid() check plus OTHER_WORK memory operations standing
 * for the rest of the call (about 600 ns at 1 ns per cached memory operation). A getpid()
 * system call costs 160 ns, a cached read about 1 ns (probes/fork-pid/getpid_cost.c on this
 * machine: 162 ns and 0.7 ns). The simulated-time ratio 2.25 / 2.24 is the slowdown.
 */
import { assert, load32, scenario, store32, type SimCode } from 'hyrum';
import type { Glibc } from '../src/libc/glibc.ts';

export const ITERATIONS = 200;
export const OTHER_WORK = 600;

interface Ctx {
  readonly libc: Glibc;
  readonly originalPid: number;
  readonly buffer: number;
}

function* busCall(ctx: Ctx): SimCode {
  // bus_pid_changed(): "if (bus->original_pid != getpid()) return -ECHILD" (sd-bus).
  const pid: number = yield* ctx.libc.getpid();
  const original: number = yield load32(ctx.originalPid);
  assert(pid === original, 'the bus was used after fork');
  for (let i = 0; i < OTHER_WORK / 2; i++) {
    const v: number = yield load32(ctx.buffer + 4 * (i & 63));
    yield store32(ctx.buffer + 4 * (i & 63), v + 1);
  }
}

function* main(ctx: Ctx): SimCode<number> {
  yield store32(ctx.originalPid, yield* ctx.libc.getpid());
  for (let i = 0; i < ITERATIONS; i++) yield* busCall(ctx);
  return 0;
}

export default scenario({
  name: 'getpid-cost',
  description: 'seed 000: a getpid() check per call costs 20-30% more simulated time on glibc 2.25 than on 2.24',
  glibc: true,
  stepBudget: 1_000_000,
  versions: { glibc: '2.24' },
  setup: (m) => ({ libc: m.glibc, originalPid: m.alloc(4), buffer: m.alloc(256, 64) }),
  threads: [main],
  expect: [
    { versions: { glibc: '2.24' }, strategy: 'dfs', verdict: 'none' },
    { versions: { glibc: '2.25' }, strategy: 'dfs', verdict: 'none' },
  ],
});
