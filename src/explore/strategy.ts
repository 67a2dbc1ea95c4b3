/**
 * The explorer's side of a strategy: hand out a chooser for each run and learn how it went.
 * One small file per strategy (random.ts, pct.ts, dfs.ts, replay.ts), as in shuttle.
 */
import type { ChoiceLog, Chooser } from '../engine/choice.ts';

export interface Strategy {
  readonly name: string;
  /** The chooser for the next run, or null when the strategy has explored everything. */
  nextRun(): Chooser | null;
  /** The finished run's choices and length. */
  endRun(log: ChoiceLog, steps: number): void;
  /** Strategy-specific settings, for reports. */
  describe(): string;
}

/** A 32-bit mix of a seed and a run index (splitmix-style), so runs are independent streams. */
export function runSeed(seed: number, run: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(run + 1, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  return h | 0;
}
