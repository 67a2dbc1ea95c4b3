/**
 * Built-ins captured at import, before any scenario code runs (the idea of fast-check's
 * src/utils/globals.ts): Hyrum's own timing uses these, while simulated code finds the
 * nondeterministic ones replaced by traps for the duration of a run.
 */
import { NondeterminismError } from './errors.ts';
import { callerSite } from './source.ts';

export const wallClockMs: () => number = Date.now;
const realMathRandom = Math.random;
const realDateNow = Date.now;
const realPerformanceNow = performance.now.bind(performance);
const RealDate = Date;

function trap(api: string): () => never {
  return () => {
    const site = callerSite(2);
    throw new NondeterminismError(
      `${api} is nondeterministic and cannot be used in simulated code; use choose(n) instead`,
      site,
    );
  };
}

const trappedRandom = trap('Math.random()');
const trappedNow = trap('Date.now()');
const trappedPerfNow = trap('performance.now()');
const TrappedDate = new Proxy(RealDate, {
  construct(target, args) {
    if (args.length === 0) trap('new Date()')();
    return Reflect.construct(target, args);
  },
  apply() {
    return trap('Date()')();
  },
});

let depth = 0;

/** Replace the nondeterministic built-ins while simulated code may run. Nestable. */
export function installTraps(): void {
  if (depth++ > 0) return;
  Math.random = trappedRandom;
  Date.now = trappedNow;
  performance.now = trappedPerfNow;
  (globalThis as { Date: DateConstructor }).Date = TrappedDate as DateConstructor;
}

/** Undo {@link installTraps}. */
export function removeTraps(): void {
  if (--depth > 0) return;
  Math.random = realMathRandom;
  Date.now = realDateNow;
  performance.now = realPerformanceNow;
  (globalThis as { Date: DateConstructor }).Date = RealDate;
}

/** Monotonic milliseconds for Hyrum's own budgets and benchmarks (never for simulated behaviour). */
export function monotonicMs(): number {
  return realPerformanceNow();
}
