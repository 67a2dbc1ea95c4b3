/**
 * Spin-waiting, the shape of glibc's and TCMalloc's retry loops: a thread loads a flag until
 * another thread sets it. With state hashing on (the default for dfs and dpor, `--state-hash`
 * for random and pct), a loop head (loopHead) lets Hyrum see that a spin which changed nothing
 * brought the run back to a state it was in before:
 *
 * - `handoff`: T1 sets the flag. Spinning while T1 has not run is an unfair cycle, not a bug: the
 *   spinner is parked until another thread moves, so no strategy reports a false `hang` (without
 *   state hashing, DFS and PCT keep the spinner running until its step budget runs out).
 * - `each-waits`: T0 waits for T1's flag and T1 for T0's before setting their own: every thread
 *   that can move keeps moving and the state repeats, which is a `livelock` (a weakly fair cycle).
 */
import { scenario, load32, loopEntry, loopHead, store32, type SimCode } from 'hyrum';

interface Ctx {
  readonly flags: number;
  readonly variant: string;
}

/** while (!flag) ; — the loop head names no values: the load's result is all that changes. */
function* spinUntil(flag: number): SimCode {
  const head = loopEntry();
  for (;;) {
    loopHead(head);
    if ((yield load32(flag)) !== 0) return;
  }
}

function* t0(ctx: Ctx): SimCode<number> {
  if (ctx.variant === 'handoff') {
    yield* spinUntil(ctx.flags);
    return 0;
  }
  yield* spinUntil(ctx.flags + 4);
  yield store32(ctx.flags, 1);
  return 0;
}

function* t1(ctx: Ctx): SimCode<number> {
  if (ctx.variant === 'handoff') {
    yield store32(ctx.flags + 8, 1);
    yield store32(ctx.flags, 1);
    return 0;
  }
  yield* spinUntil(ctx.flags);
  yield store32(ctx.flags + 4, 1);
  return 0;
}

export default scenario({
  name: 'spin-wait',
  description: 'a spin-wait is no hang when another thread can end it, and a livelock when none will (state hashing)',
  variants: ['handoff', 'each-waits'],
  stepBudget: 500,
  setup: (m, variant) => ({ flags: m.alloc(16), variant }),
  threads: [t0, t1],
  expect: [
    { variant: 'handoff', strategy: 'dfs', verdict: 'none' },
    { variant: 'handoff', strategy: 'dpor', memoryModel: 'tso', verdict: 'none' },
    { variant: 'handoff', strategy: 'pct', runs: 2000, stateHash: true, verdict: 'none' },
    { variant: 'handoff', strategy: 'pct', runs: 2000, stateHash: false, verdict: 'hang' },
    { variant: 'each-waits', strategy: 'dfs', verdict: 'livelock' },
    { variant: 'each-waits', strategy: 'dpor', memoryModel: 'pso', verdict: 'livelock' },
    { variant: 'each-waits', strategy: 'random', runs: 2000, stateHash: true, verdict: 'livelock' },
    { variant: 'each-waits', strategy: 'random', runs: 2000, stateHash: false, verdict: 'hang' },
  ],
});
