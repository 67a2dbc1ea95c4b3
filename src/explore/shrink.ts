/**
 * Shrinking a failing run (in the spirit of fast-check's shrinking and shuttle's replay): look
 * for a run with the same verdict kind and fewer preemptions and steps, by re-running the
 * scenario under choices derived from the failing one. A derived choice sequence is followed
 * while it fits; past its end, or where a choice no longer fits, the run takes the default
 * choice: keep running the thread that ran last (else the first agent), data choice 0.
 *
 * Passes, repeated while they help, within a budget of runs:
 *  1. truncate: the shortest prefix after which default choices still fail (binary search);
 *  2. drop preemptions: set one non-default schedule choice back to its default, latest first;
 *  3. drop data choices: set one data choice to 0.
 * The result is the choice log of the last failing run, so its replay string reproduces it.
 */
import { type Agents, CHOICE_SCHEDULE, type ChoiceLog, type Chooser } from '../engine/choice.ts';
import type { Verdict } from '../engine/verdict.ts';
import type { Scenario } from '../scenario/define.ts';
import { runScenario, type RunConfig, type RunResult } from '../scenario/run.ts';

/** Follows `choices` while they fit, then defaults; records each choice's default. */
class GuidedChooser implements Chooser {
  private i = 0;
  readonly defaults: number[] = [];
  constructor(private readonly choices: readonly number[]) {}
  private next(n: number, def: number): number {
    const i = this.i++;
    this.defaults.push(def);
    const v = this.choices[i];
    return v !== undefined && v < n ? v : def;
  }
  schedule(agents: Agents, n: number): number {
    return this.next(n, agents.current >= 0 ? agents.current : 0);
  }
  data(n: number): number {
    return this.next(n, 0);
  }
}

export interface Shrunk {
  readonly result: RunResult;
  readonly choices: number[];
  readonly runs: number;
  /** Preemptions (non-default schedule choices) before and after. */
  readonly preemptionsBefore: number;
  readonly preemptionsAfter: number;
}

function preemptions(log: ChoiceLog, defaults: readonly number[]): number {
  let n = 0;
  for (let i = 0; i < log.len; i++) if (log.kind[i] === CHOICE_SCHEDULE && log.value[i] !== defaults[i]) n++;
  return n;
}

export function shrink(s: Scenario, cfg: RunConfig, failing: readonly number[], verdict: Verdict, budget = 400): Shrunk {
  let runs = 0;
  const attempt = (choices: readonly number[]) => {
    runs++;
    const g = new GuidedChooser(choices);
    const r = runScenario(s, cfg, g);
    return { r, defaults: g.defaults, ok: r.verdict !== null && r.verdict.kind === verdict.kind };
  };
  let best = attempt(failing);
  if (!best.ok) return { result: best.r, choices: [...failing], runs, preemptionsBefore: 0, preemptionsAfter: 0 };
  const before = preemptions(best.r.log, best.defaults);
  const better = (c: ReturnType<typeof attempt>) =>
    c.ok &&
    (preemptions(c.r.log, c.defaults) < preemptions(best.r.log, best.defaults) ||
      (preemptions(c.r.log, c.defaults) === preemptions(best.r.log, best.defaults) && c.r.steps < best.r.steps));

  for (let improved = true; improved && runs < budget; ) {
    improved = false;
    // 1. truncate
    const cur = best.r.log.values();
    let lo = 0;
    let hi = cur.length;
    while (lo < hi && runs < budget) {
      const mid = (lo + hi) >> 1;
      const c = attempt(cur.slice(0, mid));
      if (c.ok) hi = mid;
      else lo = mid + 1;
    }
    if (hi < cur.length) {
      const c = attempt(cur.slice(0, hi));
      if (c.ok && (better(c) || c.r.log.len < best.r.log.len)) {
        best = c;
        improved = true;
      }
    }
    // 2 and 3: one choice back to its default, latest first
    const log = best.r.log;
    for (let i = log.len - 1; i >= 0 && runs < budget; i--) {
      const def = log.kind[i] === CHOICE_SCHEDULE ? best.defaults[i]! : 0;
      if (log.value[i] === def) continue;
      const choices = log.values();
      choices[i] = def;
      const c = attempt(choices);
      if (better(c)) {
        best = c;
        improved = true;
        break;
      }
    }
  }
  return { result: best.r, choices: best.r.log.values(), runs, preemptionsBefore: before, preemptionsAfter: preemptions(best.r.log, best.defaults) };
}
