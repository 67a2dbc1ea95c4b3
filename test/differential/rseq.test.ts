/**
 * Differential test of the rseq model against this machine: probes/rseq (C programs asking the
 * real kernel and glibc, see probes/rseq/README.md) run once, and each case they report is run
 * again in the model (kernel profile 6.18, glibc 2.36: see rseq-scenarios/common.ts), deriving
 * the same named facts. Only fields that are the same run to run on the machine are compared;
 * values that vary (CPU numbers, counts of context switches, timings) are left out, or compared
 * through a relation that does not vary (cpu_id >= 0). A case the probe skipped is skipped with
 * its reason; a case the model cannot express is skipped with why; a known disagreement would be
 * a todo naming where the model falls short.
 *
 * The scenarios, one file per probe, are in rseq-scenarios/; each says which of its facts hold in
 * every schedule (DFS) and which in a fixed schedule.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { root } from '../helpers.ts';
import { abortCases } from './rseq-scenarios/abort.ts';
import type { Line, Plan } from './rseq-scenarios/common.ts';
import { errorsCases } from './rseq-scenarios/errors.ts';
import { inheritCases } from './rseq-scenarios/inherit.ts';
import { rewriteCases } from './rseq-scenarios/rewrite.ts';
import { stateCases, type StateMode } from './rseq-scenarios/state.ts';

/** A JSON line of run.sh: facts, or `skipped`, or (case "run") the error of a probe that failed. */
interface ProbeLine {
  readonly probe: string;
  readonly case: string;
  readonly mode?: string;
  readonly skipped?: string;
  readonly error?: string;
  readonly [fact: string]: unknown;
}

/** state runs twice (mode = its GLIBC_TUNABLES); its cases are planned per mode. */
const MODES: readonly StateMode[] = ['default', 'glibc.pthread.rseq=0'];

interface Planned {
  readonly probe: string;
  readonly case: string;
  readonly mode?: string;
  readonly plan: Plan;
}

const PLANNED: Planned[] = [
  ...MODES.flatMap((mode) => Object.entries(stateCases(mode)).map(([c, plan]) => ({ probe: 'state', case: c, mode, plan }))),
  ...Object.entries({ errors: errorsCases, inherit: inheritCases, rewrite: rewriteCases, abort: abortCases }).flatMap(([probe, cases]) =>
    Object.entries(cases).map(([c, plan]) => ({ probe, case: c, plan })),
  ),
];

const key = (probe: string, name: string, mode?: string) => `${probe}/${name}${mode ? `/${mode}` : ''}`;

const real = new Map<string, ProbeLine>();
let buildDir = '';

before(() => {
  buildDir = mkdtempSync(path.join(tmpdir(), 'hyrum-rseq-'));
  const r = spawnSync('sh', [path.join(root, 'probes/rseq/run.sh'), buildDir], { encoding: 'utf8' });
  assert.equal(r.status, 0, `probes/rseq/run.sh failed:\n${r.stdout}\n${r.stderr}`);
  for (const line of r.stdout.split('\n').filter((l) => l.trim() !== '')) {
    const j = JSON.parse(line) as ProbeLine;
    real.set(key(j.probe, j.case, j.mode), j);
  }
});

after(() => {
  if (buildDir) rmSync(buildDir, { recursive: true, force: true });
});

/** The machine's line of a case: its own, or the probe's "all" skip, or the probe's failure. */
function realLine(p: Planned): ProbeLine {
  const failed = real.get(key(p.probe, 'run'));
  assert.ok(failed === undefined, `probe ${p.probe} failed: ${failed?.error}`);
  const line = real.get(key(p.probe, p.case, p.mode)) ?? real.get(key(p.probe, 'all', p.mode)) ?? real.get(key(p.probe, 'all'));
  assert.ok(line, `probe ${p.probe} reported no case ${p.case}${p.mode ? ` (mode ${p.mode})` : ''}`);
  return line;
}

type Modelled = Exclude<Plan, { notModelled: string }>;

/**
 * The compared facts of one side: the listed fields as they are, the relations derived alike
 * from both sides, and the facts the model states and the machine derives from its line.
 */
function compared(plan: Modelled, f: Line, side: 'model' | 'probe'): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of plan.fields) {
    assert.ok(k in f, `the ${side} reports no fact ${k}`);
    out[k] = f[k];
  }
  for (const [k, derive] of Object.entries(plan.derived ?? {})) out[k] = derive(f);
  for (const [k, derive] of Object.entries(plan.fromLine ?? {})) {
    if (side === 'probe') out[k] = derive(f);
    else {
      assert.ok(k in f, `the model reports no fact ${k}`);
      out[k] = f[k];
    }
  }
  return out;
}

for (const probe of ['state', 'errors', 'inherit', 'rewrite', 'abort']) {
  describe(`probe ${probe}`, () => {
    for (const p of PLANNED.filter((x) => x.probe === probe)) {
      it(p.mode ? `${p.case} [${p.mode}]` : p.case, (t) => {
        const plan = p.plan;
        if ('notModelled' in plan) return t.skip(`not modelled: ${plan.notModelled}`);
        const line = realLine(p);
        if (line.skipped !== undefined) return t.skip(`the probe skipped it: ${line.skipped}`);
        const noise = plan.noise?.(line);
        if (noise !== undefined) return t.skip(`machine noise in this run of the probe: ${noise}`);
        if (plan.todo) t.todo(plan.todo);
        const model = plan.model();
        const ignored = Object.keys(line).filter((k) => !plan.fields.includes(k) && !['probe', 'case', 'mode', 'ok'].includes(k));
        if (ignored.length > 0) t.diagnostic(`not compared as printed: ${ignored.join(', ')}`);
        assert.deepEqual(compared(plan, model, 'model'), compared(plan, line, 'probe'), `the machine's line: ${JSON.stringify(line)}`);
      });
    }
  });
}

it('every case the probes report is planned', () => {
  const planned = new Set(PLANNED.map((p) => key(p.probe, p.case, p.mode)));
  const unplanned = [...real.values()].filter((l) => l.case !== 'all' && !planned.has(key(l.probe, l.case, l.mode)));
  assert.deepEqual(
    unplanned.map((l) => key(l.probe, l.case, l.mode)),
    [],
  );
});
