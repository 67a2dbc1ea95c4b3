/**
 * Replays a recorded sequence of choices. A choice out of range or past the end means the
 * scenario does not behave as it did when the string was made.
 */
import type { Agents, Chooser } from '../engine/choice.ts';
import { NondeterminismError } from '../engine/errors.ts';

export class ReplayChooser implements Chooser {
  private i = 0;
  constructor(private readonly choices: readonly number[]) {}

  private next(n: number): number {
    if (this.i >= this.choices.length) {
      throw new NondeterminismError(
        `the replay ran out of choices after ${this.i}: the scenario does not behave as it did when the replay string was made (different file, options or nondeterministic code)`,
      );
    }
    const v = this.choices[this.i++]!;
    if (v >= n) {
      throw new NondeterminismError(
        `replay choice ${this.i - 1} is ${v} but only ${n} options exist here: the scenario does not behave as it did when the replay string was made`,
      );
    }
    return v;
  }
  schedule(_agents: Agents, n: number): number {
    return this.next(n);
  }
  data(n: number): number {
    return this.next(n);
  }
  /** Choices not consumed (a complete replay consumes all of them). */
  get remaining(): number {
    return this.choices.length - this.i;
  }
}
