/**
 * Probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi, Nagarakatte, "A Randomized
 * Scheduler with Probabilistic Guarantees of Finding Bugs", ASPLOS 2010, Algorithm 1): each agent
 * gets a random priority d + rank; the highest-priority enabled agent runs; at d - 1 random steps
 * (chosen in [1, k]) the running agent's priority drops to the
 * change point's index. A bug of depth d is found with probability at least 1 / (n k^(d-1)).
 *
 * Agents are threads and, under TSO/PSO, each thread's store buffer (draining is scheduled like a
 * thread, as in PCTWM, Gao et al., OOPSLA 2023); data choices are uniform.
 */
import { unsafeUniformIntDistribution, xoroshiro128plus, type RandomGenerator } from 'pure-rand';
import { AGENT_DRAIN, type Agents, type ChoiceLog, type Chooser } from '../engine/choice.ts';
import { runSeed, type Strategy } from './strategy.ts';

class PctChooser implements Chooser {
  private readonly priority = new Map<number, number>();
  private step = 0;
  private readonly changeAt: number[] = [];

  constructor(
    private readonly rng: RandomGenerator,
    private readonly depth: number,
    k: number,
  ) {
    for (let i = 0; i < depth - 1; i++) this.changeAt.push(1 + unsafeUniformIntDistribution(0, Math.max(k, 1) - 1, rng));
  }

  private priorityOf(key: number): number {
    let p = this.priority.get(key);
    if (p === undefined) {
      // Random priorities above every change-point priority (ties go to the lower index).
      p = this.depth + unsafeUniformIntDistribution(0, 0x3fffffff, this.rng);
      this.priority.set(key, p);
    }
    return p;
  }

  schedule(agents: Agents, n: number): number {
    this.step++;
    let best = this.highest(agents, n);
    const cp = this.changeAt.indexOf(this.step);
    if (cp >= 0) {
      this.priority.set(this.keyOf(agents, best), cp);
      best = this.highest(agents, n);
    }
    if (agents.kind[best] === AGENT_DRAIN) {
      // PSO: several entries of one buffer may be drainable; pick among them uniformly.
      const key = this.keyOf(agents, best);
      let count = 0;
      for (let i = 0; i < n; i++) if (this.keyOf(agents, i) === key) count++;
      if (count > 1) {
        let r = unsafeUniformIntDistribution(0, count - 1, this.rng);
        for (let i = 0; i < n; i++) if (this.keyOf(agents, i) === key && r-- === 0) return i;
      }
    }
    return best;
  }

  private keyOf(agents: Agents, i: number): number {
    return agents.thread[i]!.id * 2 + agents.kind[i]!;
  }

  private highest(agents: Agents, n: number): number {
    let best = 0;
    let bestP = -1;
    for (let i = 0; i < n; i++) {
      const p = this.priorityOf(this.keyOf(agents, i));
      if (p > bestP) {
        bestP = p;
        best = i;
      }
    }
    return best;
  }

  data(n: number): number {
    return unsafeUniformIntDistribution(0, n - 1, this.rng);
  }
}

/**
 * k, the run length PCT spreads its change points over, is set once from run 0 (twice its number
 * of choices, at least 32), so that run i's schedule depends only on (seed, i, k): runs can be
 * handed to parallel workers in any split and give the same findings.
 */
export class PctStrategy implements Strategy {
  readonly name = 'pct';
  private run = 0;
  k = 32;

  constructor(
    private readonly seed: number,
    private readonly depth: number,
  ) {}

  nextRun(): Chooser {
    return this.chooserFor(this.run++);
  }

  /** The chooser of run i (runs after the first need k calibrated). */
  chooserFor(i: number): Chooser {
    return new PctChooser(xoroshiro128plus(runSeed(this.seed, i)), this.depth, this.k);
  }

  endRun(log: ChoiceLog): void {
    if (this.run === 1) this.k = Math.max(32, 2 * log.len);
  }

  describe(): string {
    return `PCT depth ${this.depth}, seed ${this.seed}`;
  }
}
