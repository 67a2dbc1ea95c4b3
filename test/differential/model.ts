/**
 * The model's side of the differential test: run a scenario under several random schedules
 * (kernel and glibc profiles of this machine) and return the facts its first thread derived.
 * The facts must be the same in every schedule, and no run may end in a finding.
 */
import assert from 'node:assert/strict';
import { check } from '../../src/explore/explorer.ts';
import type { Verdict } from '../../src/engine/verdict.ts';
import type { Scenario } from '../../src/scenario/define.ts';
import type { CaseFacts, Facts } from './scenarios/common.ts';

/** The profiles matching this machine (Linux 6.18, Debian glibc 2.36). */
export const VERSIONS = { kernel: '6.18', glibc: '2.36' } as const;
const RUNS = 10;

/**
 * How a probe case is computed in the model, given the real line for the few cases whose
 * starting conditions depend on the machine (the PID namespace level the probes start in).
 */
export type ModelCase = (real: Readonly<Record<string, unknown>>) => Facts;

const memo = new WeakMap<Scenario, unknown>();

function explore(s: Scenario) {
  return check(s, { strategy: 'random', memoryModel: 'sc', versions: VERSIONS, runs: RUNS, keepGoing: true, seed: 1 });
}

/** The facts of a scenario, identical over RUNS schedules. */
export function modelFacts(s: Scenario): Facts | CaseFacts {
  if (memo.has(s)) return memo.get(s) as Facts | CaseFacts;
  const r = explore(s);
  assert.equal(r.finding, null, `${s.name}: the model run ended in ${r.finding?.verdict.kind}: ${r.finding?.verdict.message}`);
  const outcomes = [...r.outcomes.keys()];
  assert.equal(outcomes.length, 1, `${s.name}: the facts differ between schedules:\n${outcomes.join('\n')}`);
  const facts = JSON.parse(outcomes[0]!) as Facts | CaseFacts;
  memo.set(s, facts);
  return facts;
}

/** The verdict every run of a scenario ends in (a child killed by a fault, for instance). */
export function modelVerdict(s: Scenario): Verdict {
  const r = explore(s);
  assert.equal(r.findings, r.runs, `${s.name}: only ${r.findings} of ${r.runs} runs ended in a finding`);
  return r.finding!.verdict;
}

/** A case whose facts are the scenario's. */
export const factsOf = (s: Scenario): ModelCase => () => modelFacts(s) as Facts;

/** A case whose facts are one part of a scenario that runs several cases in sequence. */
export const partOf = (s: Scenario, name: string): ModelCase => () => (modelFacts(s) as CaseFacts)[name]!;
