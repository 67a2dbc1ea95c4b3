/**
 * The lost update's fixed twin: the increment is an atomic fetch-and-add, so no interleaving
 * and no memory model can lose one.
 */
import { assert, fetchAdd32, scenario, type SimCode } from 'hyrum';

function* increment(ctx: { counter: number }): SimCode {
  yield fetchAdd32(ctx.counter, 1);
}

export default scenario({
  name: 'counter-atomic',
  description: 'the lost update fixed with fetch_add: nothing to find under any model',
  setup: (m) => ({ counter: m.alloc(4) }),
  threads: [increment, increment, increment],
  check(m, ctx) {
    assert(m.read32(ctx.counter) === 3, `counter is ${m.read32(ctx.counter)}, expected 3`);
  },
  expect: [
    { strategy: 'dfs', memoryModel: 'sc', verdict: 'none' },
    { strategy: 'dfs', memoryModel: 'tso', verdict: 'none' },
    { strategy: 'dfs', memoryModel: 'pso', verdict: 'none' },
  ],
});
