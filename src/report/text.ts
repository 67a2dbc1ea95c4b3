/**
 * Terminal reports: findings with their replay string and trace, summaries of clean checks.
 */
import { formatSite } from '../engine/source.ts';
import { errnoName } from '../kernel/errno.ts';
import type { TraceStep } from '../engine/trace.ts';
import type { Verdict } from '../engine/verdict.ts';
import type { CheckResult } from '../explore/explorer.ts';
import type { MatrixCell } from '../explore/matrix.ts';

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

const stepKey = (t: TraceStep) => `${t.thread}|${t.op}|${t.effect}`;

/**
 * Collapse a block of steps that repeats back to back (an endless loop's body) into its first
 * occurrence and a note; returns the steps to show, with null where a note goes.
 */
function collapseRepeats(trace: readonly TraceStep[]): (TraceStep | { repeated: number; period: number; count: number })[] {
  const out: (TraceStep | { repeated: number; period: number; count: number })[] = [];
  const keys = trace.map(stepKey);
  let i = 0;
  while (i < trace.length) {
    let done = false;
    for (let p = 1; p <= 32 && !done; p++) {
      let reps = 1;
      while (i + (reps + 1) * p <= trace.length && keys.slice(i + reps * p, i + (reps + 1) * p).every((k, j) => k === keys[i + j])) reps++;
      if (reps >= 4) {
        out.push(...trace.slice(i, i + p), { repeated: (reps - 1) * p, period: p, count: reps - 1 });
        i += reps * p;
        done = true;
      }
    }
    if (!done) out.push(trace[i++]!);
  }
  return out;
}

/** A trace as an aligned table: step, CPU, thread, operation, memory effect, source line. */
export function formatTrace(trace: readonly TraceStep[]): string {
  const opW = Math.min(44, Math.max(9, ...trace.map((t) => t.op.length)));
  const effW = Math.min(40, Math.max(6, ...trace.map((t) => t.effect.length)));
  const lines = [`  ${pad('step', 6)}${pad('cpu', 5)}${pad('thread', 8)}${pad('operation', opW + 2)}${pad('effect', effW + 2)}source`];
  const collapsed = collapseRepeats(trace);
  const shown = collapsed.length > 240 ? [...collapsed.slice(0, 40), null, ...collapsed.slice(-160)] : collapsed;
  for (const t of shown) {
    if (t === null) {
      lines.push(`  ... ${collapsed.length - 200} lines not shown (--json prints every step) ...`);
      continue;
    }
    if ('repeated' in t) {
      lines.push(`  ... the ${t.period} step${t.period > 1 ? 's' : ''} above repeat ${t.count} more times (${t.repeated} steps) ...`);
      continue;
    }
    const src = t.sites.map(formatSite).join(' <- ');
    lines.push(`  ${pad(`#${t.step}`, 6)}${pad(String(t.cpu), 5)}${pad(t.thread, 8)}${pad(t.op, opW + 2)}${pad(t.effect, effW + 2)}${src}`);
  }
  return lines.join('\n');
}

export function formatVerdict(v: Verdict): string {
  const where = v.sites && v.sites.length > 0 ? `\n  at ${v.sites.map(formatSite).join(' <- ')}` : '';
  return `${v.kind}: ${v.message}${where}`;
}

const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

export function formatCheck(r: CheckResult, file: string): string {
  const versions = Object.entries(r.versions)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const head = `${r.scenario} (${file}), memory model ${r.memoryModel}${versions ? `, ${versions}` : ''}, ${r.strategy}`;
  const states = r.states !== undefined ? `, ${r.states} distinct states${r.pruned ? ` (${r.pruned} runs ended at a state seen before)` : ''}` : '';
  const stats = `${r.runs} runs, ${r.steps} steps${states}, ${secs(r.elapsedMs)}${r.exhausted ? ', search space exhausted' : ''}`;
  const coverage = r.coverage.size > 0 ? `\n  coverage: ${formatCoverage(r.coverage)}` : '';
  if (r.finding === null) {
    const outcomes = r.outcomes.size > 0 ? `\n  outcomes: ${[...r.outcomes].map(([o, n]) => `${o} (${n})`).join(', ')}` : '';
    return `OK   ${head}\n  nothing found in ${stats}${outcomes}${coverage}`;
  }
  const f = r.finding;
  return [
    `FOUND ${formatVerdict(f.verdict)}`,
    `  in ${head}`,
    `  at run ${f.run + 1} of ${stats}`,
    ...(f.failsWith ? [`  the same schedule fails under: ${formatVersionSet(f.failsWith)}`] : []),
    ...(f.shrink
      ? [`  shrunk from ${f.shrink.stepsBefore} steps and ${f.shrink.preemptionsBefore} preemptions to ${f.steps} steps and ${f.shrink.preemptionsAfter} (${f.shrink.runs} re-runs)`]
      : []),
    `  replay: hyrum replay ${file} ${f.replay}`,
    ...(coverage ? [coverage.slice(1)] : []),
    '',
    formatTrace(f.trace),
  ].join('\n');
}

/** A matrix as a table: one row per cell, its verdict, and the replay string of a finding. */
export function formatMatrix(cells: readonly MatrixCell[], file: string): string {
  const label = (c: MatrixCell) =>
    [c.kernel && `kernel ${c.kernel}`, c.glibc && `glibc ${c.glibc}`, ...Object.entries(c.settings).map(([k, v]) => `${k}=${v}`)]
      .filter(Boolean)
      .join(', ');
  const w = Math.max(10, ...cells.map((c) => label(c).length));
  const lines = [`${pad('versions', w + 2)}${pad('verdict', 12)}${pad('runs', 8)}replay`];
  for (const c of cells) {
    const f = c.result.finding;
    lines.push(
      `${pad(label(c), w + 2)}${pad(f ? f.verdict.kind : 'none', 12)}${pad(String(c.result.runs), 8)}${f ? `hyrum replay ${file} ${f.replay}` : ''}`,
    );
  }
  const first = cells[0]?.result;
  return `${first?.scenario ?? ''}: ${first?.strategy ?? ''}, memory model ${first?.memoryModel ?? ''}\n${lines.join('\n')}`;
}

/** Coverage points, system-call results with errno names: "futex_wait -> EAGAIN (12 runs)". */
export function formatCoverage(coverage: ReadonlyMap<string, number>): string {
  const named = [...coverage].map(([p, n]) => [p.replace(/-> E(\d+)$/, (_m, e: string) => `-> ${errnoName(Number(e))}`), n] as const);
  return `${named.length} points: ${named
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([p, n]) => `${p} (${n})`)
    .join('; ')}`;
}

/** A set of versions, grouped by kernel: "kernel 6.19 with glibc 2.34, 2.35; kernel 7.1 with ...". */
export function formatVersionSet(set: readonly { kernel?: string; glibc?: string }[]): string {
  if (set.length === 0) return 'no profile (not even its own: the replay ran under changed settings)';
  const byKernel = new Map<string, string[]>();
  for (const v of set) byKernel.set(v.kernel ?? '-', [...(byKernel.get(v.kernel ?? '-') ?? []), ...(v.glibc ? [v.glibc] : [])]);
  return [...byKernel]
    .map(([k, g]) => (k === '-' ? `glibc ${g.join(', ')}` : g.length > 0 ? `kernel ${k} with glibc ${g.join(', ')}` : `kernel ${k}`))
    .join('; ');
}
