/**
 * Hyrum against SPIN (issue "Benchmark against SPIN"): the same problems, checked by both in
 * one run. The Promela models in bench/spin/ are hand-written to the abstraction of the Hyrum
 * scenarios (each part says which Hyrum file and function it mirrors):
 *
 * - reclaim-stacks: fork while a thread creates and joins threads through glibc's stack cache;
 *   buggy glibc 2.9 (legacy list_add, no in_flight_stack), fixed 2.10, under PSO; the property
 *   is that the child's walks of stack_used and stack_cache end;
 * - rseq-registration: seed 001's `handled` protocol (buggy) and `refcount` (fixed) on glibc
 *   2.34; the property is that the library that relies on __rseq_abi finds it registered.
 *
 * SPIN's times include `spin -a` and `gcc`; Hyrum's include its determinism pre-check and the
 * traced replay of its finding (both are part of check()), not the shrinking of the finding
 * (turned off: pan does not shorten its trail either, without -i). SPIN is Debian's package,
 * installed here when missing (apt-get, as root).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monotonicMs } from '../src/engine/globals.ts';
import { check, type CheckOptions, type CheckResult } from '../src/explore/explorer.ts';
import type { Scenario } from '../src/scenario/define.ts';
import reclaimStacks from '../scenarios/reclaim-stacks.ts';
import rseqRegistration from '../scenarios/rseq-registration.ts';

/** What pan reported, and how long each stage took. */
export interface SpinRun {
  readonly ms: number;
  readonly spinMs: number;
  readonly gccMs: number;
  readonly panMs: number;
  readonly states: number;
  readonly errors: number;
  /** The text of the first failed assertion, if any. */
  readonly violated: string | null;
  /** pan ran out of search depth (-m): the search was not exhaustive. */
  readonly depthLimited: boolean;
  readonly timedOut: boolean;
}

export interface HyrumRun {
  readonly ms: number;
  readonly result: CheckResult;
}

export interface Problem {
  readonly name: string;
  readonly model: string;
  /** spin -D flags of the buggy and the fixed variant. */
  readonly buggyDefines: readonly string[];
  readonly fixedDefines: readonly string[];
  readonly scenario: Scenario;
  readonly hyrumBuggy: CheckOptions;
  /** Hyrum's full checks of the fixed variant, from the cheapest bound up (each is a row). */
  readonly hyrumFixed: readonly CheckOptions[];
  /** What the two variants are, for the table. */
  readonly variants: string;
}

export interface ProblemResult {
  readonly problem: Problem;
  readonly spinBuggy: SpinRun;
  readonly spinFixed: SpinRun;
  readonly hyrumBuggy: HyrumRun;
  readonly hyrumFixed: readonly HyrumRun[];
}

/** pan's search depth limit: well above the models' depths (about 170), so never reached. */
const PAN_DEPTH = 100_000;
/** Each SPIN stage gets this long (the whole SPIN part takes a few seconds here). */
const STAGE_TIMEOUT_MS = 60_000;
const PCT_RUNS = 20_000;
/** Hyrum's search without a preemption bound gets this long. */
const UNBOUNDED_MS = 60_000;

export const PROBLEMS: readonly Problem[] = [
  {
    name: 'reclaim-stacks (seed 002)',
    model: 'reclaim-stacks.pml',
    buggyDefines: [],
    fixedDefines: ['-DGLIBC_2_10'],
    scenario: reclaimStacks as Scenario,
    variants: 'glibc 2.9 / 2.10, PSO',
    hyrumBuggy: { strategy: 'pct', memoryModel: 'pso', versions: { glibc: '2.9' }, runs: PCT_RUNS, shrink: false },
    hyrumFixed: [
      { strategy: 'dfs', memoryModel: 'pso', versions: { glibc: '2.10' }, preemptionBound: 0 },
      { strategy: 'dpor', memoryModel: 'pso', versions: { glibc: '2.10' }, preemptionBound: 1 },
      // No bound, states cached: SPIN's scope; stopped at the time limit (see the closing lines).
      { strategy: 'dfs', memoryModel: 'pso', versions: { glibc: '2.10' }, timeMs: UNBOUNDED_MS },
    ],
  },
  {
    name: 'rseq-registration (seed 001)',
    model: 'rseq-registration.pml',
    buggyDefines: ['-DHANDLED'],
    fixedDefines: [],
    scenario: rseqRegistration as Scenario,
    variants: 'handled / refcount, glibc 2.34, SC',
    hyrumBuggy: { strategy: 'dfs', memoryModel: 'sc', versions: { glibc: '2.34' }, variant: 'handled', shrink: false },
    hyrumFixed: [{ strategy: 'dfs', memoryModel: 'sc', versions: { glibc: '2.34' }, variant: 'refcount' }],
  },
];

const MODELS_DIR = fileURLToPath(new URL('./spin/', import.meta.url));

function sh(cmd: string): boolean {
  return spawnSync('sh', ['-c', cmd], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status === 0;
}

/**
 * SPIN and gcc, installed from Debian's packages when missing (`command -v spin || apt-get
 * install -y spin`; the package lists are fetched first if the install fails without them).
 * Returns SPIN's version line, or why it cannot run.
 */
export function ensureSpin(log: (line: string) => void = console.log): { ok: true; version: string } | { ok: false; why: string } {
  for (const [tool, pkg] of [
    ['spin', 'spin'],
    ['gcc', 'gcc'],
  ] as const) {
    if (sh(`command -v ${tool}`)) continue;
    log(`  ${tool} is not installed: apt-get install -y ${pkg} ...`);
    if (!sh(`apt-get install -y ${pkg}`) && !sh(`apt-get update && apt-get install -y ${pkg}`)) {
      return { ok: false, why: `${tool} is not installed and 'apt-get install -y ${pkg}' failed (it needs root and Debian's package lists)` };
    }
  }
  const v = spawnSync('spin', ['-V'], { encoding: 'utf8' });
  if (v.status !== 0) return { ok: false, why: `'spin -V' failed: ${v.stderr || v.error?.message}` };
  return { ok: true, version: v.stdout.trim() };
}

function timed(cmd: string, args: readonly string[], cwd: string): { ms: number; out: string; timedOut: boolean } {
  const t0 = monotonicMs();
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: STAGE_TIMEOUT_MS, maxBuffer: 64 << 20 });
  const ms = monotonicMs() - t0;
  const timedOut = r.error !== undefined && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT';
  if (r.error && !timedOut) throw new Error(`${cmd}: ${r.error.message}`);
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  // pan exits non-zero when it found an error; spin and gcc must succeed.
  if (!timedOut && cmd !== './pan' && r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${out}`);
  return { ms, out, timedOut };
}

/**
 * One SPIN check from scratch: spin -a, gcc, pan (which stops at the first error, -c1 being its
 * default). The time counts all three.
 */
export function runSpin(model: string, defines: readonly string[]): SpinRun {
  const dir = mkdtempSync(join(tmpdir(), 'hyrum-spin-'));
  try {
    copyFileSync(join(MODELS_DIR, model), join(dir, model));
    const spin = timed('spin', [...defines, '-a', model], dir);
    const gcc = timed('gcc', ['-O2', '-DSAFETY', '-o', 'pan', 'pan.c'], dir);
    const pan = timed('./pan', ['-n', `-m${PAN_DEPTH}`], dir);
    const num = (re: RegExp) => Number(re.exec(pan.out)?.[1] ?? NaN);
    return {
      ms: spin.ms + gcc.ms + pan.ms,
      spinMs: spin.ms,
      gccMs: gcc.ms,
      panMs: pan.ms,
      states: num(/(\d+) states, stored/),
      errors: num(/errors: (\d+)/),
      violated: /assertion violated\s+(.*?) \(at depth/.exec(pan.out)?.[1] ?? null,
      depthLimited: /max search depth too small/.test(pan.out),
      timedOut: pan.timedOut,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function runHyrum(s: Scenario, opts: CheckOptions): HyrumRun {
  const t0 = monotonicMs();
  const result = check(s, opts);
  return { ms: monotonicMs() - t0, result };
}

export function runProblem(p: Problem): ProblemResult {
  return {
    problem: p,
    spinBuggy: runSpin(p.model, p.buggyDefines),
    spinFixed: runSpin(p.model, p.fixedDefines),
    hyrumBuggy: runHyrum(p.scenario, p.hyrumBuggy),
    hyrumFixed: p.hyrumFixed.map((o) => runHyrum(p.scenario, o)),
  };
}

// ---- the table ------------------------------------------------------------------------------

const ms = (n: number) => `${Math.round(n)}`;
const ratio = (a: number, b: number) => (b > 0 ? `${Number((a / b).toPrecision(2))}x` : '-');

function spinFound(r: SpinRun): string {
  if (r.timedOut) return 'timed out';
  if (r.violated === null) return 'none';
  if (r.violated.includes('hang')) return 'hang';
  if (r.violated.includes('segv')) return 'crash';
  return 'assertion';
}

function spinScope(r: SpinRun): string {
  if (r.timedOut) return `stopped after ${STAGE_TIMEOUT_MS / 1000} s`;
  if (r.depthLimited) return `bounded: search depth -m${PAN_DEPTH}`;
  return 'exhaustive: every interleaving and drain order (partial-order reduction)';
}

function hyrumScope(r: CheckResult): string {
  return `${r.strategy}${r.exhausted ? ', exhausted' : `, stopped after ${Math.round(r.elapsedMs / 1000)} s, not exhausted`}`;
}

const runsOf = (r: CheckResult) => `${r.runs} runs (${r.steps} steps${r.states !== undefined ? `, ${r.states} states` : ''})`;

/** Print the comparison; returns the results (null when SPIN cannot run here). */
export function benchAgainstSpin(log: (line: string) => void = console.log): ProblemResult[] | null {
  const spin = ensureSpin(log);
  if (!spin.ok) {
    log(`  SPIN comparison skipped: ${spin.why}.`);
    return null;
  }
  log(`  ${spin.version}; SPIN: spin -a, gcc -O2 -DSAFETY, ./pan -n -m${PAN_DEPTH} (stops at the first error); models in bench/spin/`);
  log(`  Times in ms, from scratch: SPIN's include spin -a and gcc, Hyrum's its determinism pre-check and the traced replay of a finding (not shrunk, as pan's trail is not).`);
  const results = PROBLEMS.map(runProblem);
  const header = ['problem', 'tool', 'first cex ms', 'found', 'explored to first cex', 'full check ms', 'explored in full check', 'full check of the fixed variant'];
  const rows: string[][] = [];
  for (const r of results) {
    const hb = r.hyrumBuggy.result;
    rows.push([
      r.problem.name,
      'SPIN',
      ms(r.spinBuggy.ms),
      spinFound(r.spinBuggy),
      `${r.spinBuggy.states} states`,
      ms(r.spinFixed.ms),
      `${r.spinFixed.states} states`,
      `${spinScope(r.spinFixed)}; found ${spinFound(r.spinFixed)}`,
    ]);
    r.hyrumFixed.forEach((fixed, i) => {
      const hf = fixed.result;
      const first = i === 0;
      rows.push([
        first ? r.problem.variants : '',
        'Hyrum',
        first ? ms(r.hyrumBuggy.ms) : '',
        first ? (hb.finding?.verdict.kind ?? 'none') : '',
        first ? runsOf(hb) : '',
        ms(fixed.ms),
        runsOf(hf),
        `${hyrumScope(hf)}; found ${hf.finding?.verdict.kind ?? 'none'}`,
      ]);
      rows.push(['', 'Hyrum/SPIN', first ? ratio(r.hyrumBuggy.ms, r.spinBuggy.ms) : '', '', '', ratio(fixed.ms, r.spinFixed.ms), '', 'SPIN timed with spin -a and gcc']);
      if (first) rows.push(['', 'Hyrum/pan', ratio(r.hyrumBuggy.ms, r.spinBuggy.panMs), '', '', ratio(fixed.ms, r.spinFixed.panMs), '', 'SPIN timed without them (./pan alone)']);
    });
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]) => `  ${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}`.trimEnd();
  log(line(header));
  for (const row of rows) log(line(row));
  log('');
  for (const r of results) {
    const b = r.spinBuggy;
    const f = r.spinFixed;
    log(
      `  ${r.problem.name}: SPIN stages (spin -a + gcc + pan) ${ms(b.spinMs)} + ${ms(b.gccMs)} + ${ms(b.panMs)} ms to the first counterexample (${b.violated ?? 'no violation'}), ` +
        `${ms(f.spinMs)} + ${ms(f.gccMs)} + ${ms(f.panMs)} ms for the full check (${f.errors} errors).`,
    );
    const hb = r.hyrumBuggy.result;
    log(`    Hyrum to the first counterexample: ${hb.strategy}, ${r.problem.hyrumBuggy.memoryModel}, ${JSON.stringify(hb.versions)}${hb.variant ? `, variant ${hb.variant}` : ''}${hb.finding ? `, found at run ${hb.finding.run + 1}` : ', nothing found'}.`);
  }
  const reclaim = results.find((r) => r.problem.model === 'reclaim-stacks.pml');
  if (reclaim) {
    log(
      `  Bounds: Hyrum's full checks of reclaim-stacks on glibc 2.10 are exhaustive within a preemption bound (0: no switch away from a thread that could go on and no ` +
        `store-buffer drain while it could go on; 1: one such switch or drain anywhere), and a stateful DFS without a bound that does not finish in ${UNBOUNDED_MS / 1000} s: ` +
        `each new transition costs a re-execution of the run's prefix (about 190 steps of the kernel and glibc models; generators cannot be copied), where pan restores a state ` +
        `from its stack. SPIN's check is ${spinScope(reclaim.spinFixed)}, of a model cut down to the list cells. The rseq problem has one thread and no choices: both searches are complete.`,
    );
  }
  for (const r of results) {
    const problems: string[] = [];
    if (r.spinBuggy.violated === null) problems.push('SPIN found no counterexample in the buggy variant');
    if (r.spinFixed.errors !== 0) problems.push('SPIN found an error in the fixed variant');
    if (r.hyrumBuggy.result.finding === null) problems.push('Hyrum found nothing in the buggy variant');
    if (r.hyrumFixed.some((f) => f.result.finding !== null)) problems.push('Hyrum found something in the fixed variant');
    if (problems.length > 0) log(`  WARNING ${r.problem.name}: ${problems.join('; ')}.`);
  }
  return results;
}
