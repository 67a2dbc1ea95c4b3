/**
 * What a series of runs adds up to: runs, steps, runs pruned, final-state outcomes and coverage points (each
 * counted once per run that reached it).
 */
import type { RunResult } from '../scenario/run.ts';

export class Tally {
  runs = 0;
  steps = 0;
  /** Runs cut short in a state explored before (RunResult.pruned). */
  pruned = 0;
  readonly outcomes = new Map<string, number>();
  readonly coverage = new Map<string, number>();

  add(r: RunResult): void {
    this.runs++;
    this.steps += r.steps;
    if (r.pruned) this.pruned++;
    if (r.outcome !== undefined) this.outcomes.set(r.outcome, (this.outcomes.get(r.outcome) ?? 0) + 1);
    if (r.coverage) for (const p of r.coverage.keys()) this.coverage.set(p, (this.coverage.get(p) ?? 0) + 1);
  }
}
