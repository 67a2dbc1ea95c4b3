/**
 * JSON reports (--json): plain data, stable field names, source sites as "file:line".
 */
import { formatSite } from '../engine/source.ts';
import { errnoName } from '../kernel/errno.ts';
import type { TraceStep } from '../engine/trace.ts';
import type { Verdict } from '../engine/verdict.ts';
import type { CheckResult } from '../explore/explorer.ts';
import type { MatrixCell } from '../explore/matrix.ts';
import type { Scenario } from '../scenario/define.ts';
import type { RunResult } from '../scenario/run.ts';

function verdictJson(v: Verdict | null) {
  if (v === null) return null;
  return { ...v, sites: v.sites?.map(formatSite) };
}

function traceJson(t: readonly TraceStep[] | null) {
  return (t ?? []).map((s) => ({ ...s, sites: s.sites.map(formatSite) }));
}

export function checkToJson(r: CheckResult) {
  return {
    scenario: r.scenario,
    strategy: r.strategy,
    memoryModel: r.memoryModel,
    versions: r.versions,
    runs: r.runs,
    steps: r.steps,
    states: r.states ?? null,
    pruned: r.pruned ?? 0,
    elapsedMs: Math.round(r.elapsedMs),
    exhausted: r.exhausted,
    findings: r.findings,
    outcomes: Object.fromEntries(r.outcomes),
    coverage: Object.fromEntries([...r.coverage].map(([p, n]) => [p.replace(/-> E(\d+)$/, (_m, e: string) => `-> ${errnoName(Number(e))}`), n])),
    finding: r.finding && {
      verdict: verdictJson(r.finding.verdict),
      replay: r.finding.replay,
      run: r.finding.run,
      steps: r.finding.steps,
      shrink: r.finding.shrink,
      failsWith: r.finding.failsWith,
      trace: traceJson(r.finding.trace),
    },
  };
}

export function runToJson(s: Scenario, r: RunResult, replay: string) {
  return { scenario: s.name, verdict: verdictJson(r.verdict), steps: r.steps, outcome: r.outcome, replay, trace: traceJson(r.trace) };
}

export function matrixToJson(cells: readonly MatrixCell[]) {
  return cells.map((c) => ({ kernel: c.kernel, glibc: c.glibc, settings: c.settings, ...checkToJson(c.result) }));
}
