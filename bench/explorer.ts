/**
 * Explorer throughput: complete runs per second of small scenarios under each strategy.
 */
import { check } from '../src/explore/explorer.ts';
import type { StrategyName } from '../src/scenario/define.ts';
import type { Scenario } from '../src/scenario/define.ts';

export function runsPerSecond(s: Scenario, strategy: StrategyName, runs: number): { runs: number; perSec: number } {
  check(s, { strategy, memoryModel: 'tso', runs: Math.min(runs, 200), keepGoing: true, determinismRuns: 0 });
  const r = check(s, { strategy, memoryModel: 'tso', runs, keepGoing: true, determinismRuns: 0 });
  return { runs: r.runs, perSec: (r.runs / r.elapsedMs) * 1000 };
}
