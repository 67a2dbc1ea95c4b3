/**
 * Seeded random walk: every choice uniform, run i seeded from (seed, i) so that any run can be
 * re-derived alone (and parallel workers can split seed ranges).
 */
import { unsafeUniformIntDistribution, xoroshiro128plus, type RandomGenerator } from 'pure-rand';
import type { Agents, Chooser } from '../engine/choice.ts';
import { runSeed, type Strategy } from './strategy.ts';

export class RandomChooser implements Chooser {
  private readonly rng: RandomGenerator;
  constructor(seed: number) {
    this.rng = xoroshiro128plus(seed);
  }
  schedule(_agents: Agents, n: number): number {
    return unsafeUniformIntDistribution(0, n - 1, this.rng);
  }
  data(n: number): number {
    return unsafeUniformIntDistribution(0, n - 1, this.rng);
  }
}

export class RandomStrategy implements Strategy {
  readonly name = 'random';
  private run = 0;
  constructor(private readonly seed: number) {}
  nextRun(): Chooser {
    return this.chooserFor(this.run++);
  }
  /** The chooser of run i: a function of (seed, i) only, so workers can take any runs. */
  chooserFor(i: number): Chooser {
    return new RandomChooser(runSeed(this.seed, i));
  }
  endRun(): void {}
  describe(): string {
    return `random walk, seed ${this.seed}`;
  }
}
