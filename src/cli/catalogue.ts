/**
 * The main job (`npm start`): check every catalogue scenario as its expectations say, and
 * print a table of what was expected and what was found.
 */
import path from 'node:path';
import { check, type CheckOptions } from '../explore/explorer.ts';
import type { Expectation, Scenario } from '../scenario/define.ts';
import { catalogueFiles, loadScenario } from './load.ts';

export interface CatalogueRow {
  readonly scenario: string;
  readonly file: string;
  readonly memoryModel: string;
  readonly versions: string;
  readonly strategy: string;
  readonly expected: string;
  readonly found: string;
  readonly runs: number;
  readonly ms: number;
  readonly ok: boolean;
  readonly replay?: string;
  /** Final-state outcomes seen (scenarios that report one). */
  readonly outcomes: readonly string[];
  /** Simulated time and system calls of the first run (scenarios with a kernel). */
  readonly simNs?: number;
  readonly syscalls?: number;
}

/** How an expectation line is checked: its strategy (dfs by default), model, versions and bounds. */
export function expectationOptions(s: Scenario, e: Expectation): CheckOptions {
  return {
    strategy: e.strategy ?? 'dfs',
    memoryModel: e.memoryModel ?? s.memoryModel ?? 'sc',
    versions: e.versions,
    variant: e.variant,
    settings: e.settings,
    perturb: e.perturb,
    runs: e.runs,
    seed: e.seed,
    preemptionBound: e.preemptionBound,
    stateHash: e.stateHash,
  };
}

export async function runCatalogue(json: boolean): Promise<boolean> {
  const rows: CatalogueRow[] = [];
  for (const file of catalogueFiles()) {
    const s = await loadScenario(file);
    for (const e of s.expect ?? []) {
      const opts = expectationOptions(s, e);
      const memoryModel = opts.memoryModel;
      const r = check(s, opts);
      const found = r.finding ? r.finding.verdict.kind : 'none';
      const row: CatalogueRow = {
        scenario: e.variant ? `${s.name}/${e.variant}` : s.name,
        file: path.relative(process.cwd(), file),
        memoryModel,
        versions: [
          ...Object.entries(r.versions).map(([k, v]) => `${k} ${v}`),
          ...Object.entries(e.settings ?? {}).map(([k, v]) => `${k}=${v}`),
          ...(e.perturb ? ['perturbed'] : []),
        ].join(', '),
        strategy: r.strategy,
        expected: e.verdict,
        found,
        runs: r.runs,
        ms: Math.round(r.elapsedMs),
        ok: found === e.verdict,
        replay: r.finding?.replay,
        outcomes: [...r.outcomes.keys()],
        simNs: r.cost?.simNs,
        syscalls: r.cost?.syscalls,
      };
      rows.push(row);
      if (!json) printRow(row);
    }
  }
  const ok = rows.every((r) => r.ok);
  if (json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
  else process.stdout.write(`\n${rows.filter((r) => r.ok).length}/${rows.length} catalogue checks as expected\n`);
  return ok;
}

function printRow(r: CatalogueRow): void {
  const mark = r.ok ? 'ok  ' : 'FAIL';
  process.stdout.write(
    `${mark} ${r.scenario.padEnd(36)} ${r.memoryModel.padEnd(4)} ${r.versions.padEnd(24)} ${r.strategy.padEnd(40)} expected ${r.expected.padEnd(10)} found ${r.found.padEnd(10)} ${String(r.runs).padStart(7)} runs ${String(r.ms).padStart(6)} ms${r.simNs !== undefined ? `  sim ${(r.simNs / 1000).toFixed(1)} us, ${r.syscalls} syscalls` : ''}${r.outcomes.length > 0 && r.outcomes.length <= 2 ? `  [${r.outcomes.join(' | ')}]` : ''}\n`,
  );
}
