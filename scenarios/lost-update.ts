/**
 * The classic lost update: two threads increment a shared counter with a plain load and store.
 * An interleaving where both load before either stores loses one increment.
 */
import { assert, load32, scenario, store32, type SimCode } from 'hyrum';

function* increment(ctx: { counter: number }): SimCode {
  const v: number = yield load32(ctx.counter);
  yield store32(ctx.counter, v + 1);
}

export default scenario({
  name: 'lost-update',
  description: 'two threads increment a counter without atomics; one increment can be lost',
  setup: (m) => ({ counter: m.alloc(4) }),
  threads: [increment, increment],
  check(m, ctx) {
    assert(m.read32(ctx.counter) === 2, `counter is ${m.read32(ctx.counter)}, expected 2`);
  },
  outcome: (m, ctx) => `counter=${m.read32(ctx.counter)}`,
  expect: [
    { strategy: 'random', verdict: 'assertion' },
    { strategy: 'pct', verdict: 'assertion' },
    { strategy: 'dfs', verdict: 'assertion' },
  ],
});
