/**
 * Parallel exploration on worker processes (worker.ts). Random walk and PCT: run indices are
 * dealt round-robin; DFS: the subtrees under the first choice are (by their position in DFS
 * order). The reported finding is the one a sequential check meets first: the lowest run index,
 * or the lowest subtree (when a worker finds one, the others finish everything before it and
 * stop), so findings do not depend on the worker count. The finding is then replayed, shrunk and
 * traced here. DPOR stays sequential: its backtrack sets span subtrees.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { monotonicMs } from '../engine/globals.ts';
import { InternalError, UsageError } from '../engine/errors.ts';
import type { Scenario } from '../scenario/define.ts';
import { runScenario } from '../scenario/run.ts';
import { check, checkDeterminism, makeFinding, runConfigOf, type CheckOptions, type CheckResult } from './explorer.ts';
import { DfsStrategy } from './dfs.ts';
import { PctStrategy } from './pct.ts';
import { RandomStrategy } from './random.ts';
import { ReplayChooser } from './replay.ts';
import type { WorkerMessage, WorkerTask } from './worker.ts';

/**
 * `inProcess`: with one worker, run in this process (the default) or in one worker process like
 * the others (for measuring how runs per second scale with workers).
 */
export async function checkParallel(s: Scenario, file: string, opts: CheckOptions, workers: number, inProcess = true): Promise<CheckResult> {
  if ((workers <= 1 && inProcess) || opts.strategy === 'dpor') return check(s, opts);
  const start = monotonicMs();
  const seed = opts.seed ?? 1;
  const cfg = runConfigOf(s, opts);
  checkDeterminism(s, cfg, opts.determinismRuns ?? 12, seed);
  const dfs = opts.strategy === 'dfs';
  if (dfs) {
    // The root choice's arity bounds how many workers can share the tree.
    const probe = runScenario(s, cfg, new DfsStrategy(opts.preemptionBound ?? Infinity).nextRun()!);
    if (probe.log.len === 0) return check(s, opts);
    workers = Math.min(workers, probe.log.arity[0]!);
  }
  // Run 0 here: it calibrates PCT's k.
  const pct = new PctStrategy(seed, opts.pctDepth ?? 3);
  const first = opts.strategy === 'pct' ? runScenario(s, cfg, pct.nextRun()) : null;
  if (first) pct.endRun(first.log);
  let findingChoices: number[] | null = null;
  let allExhausted = dfs;
  const maxRuns = opts.runs ?? 1000;
  const deadline = opts.timeMs === undefined ? Number.MAX_SAFE_INTEGER : performance.timeOrigin + performance.now() + opts.timeMs;
  let lowest = first?.verdict ? 0 : Infinity;
  let runs = first ? 1 : 0;
  let steps = first?.steps ?? 0;
  const outcomes = new Map<string, number>();
  const coverage = new Map<string, number>(first?.coverage ? [...first.coverage.keys()].map((k) => [k, 1]) : []);
  if (first?.outcome !== undefined) outcomes.set(first.outcome, 1);
  const pool: ChildProcess[] = [];
  const errors: Extract<WorkerMessage, { type: 'error' }>[] = [];
  const progress = new Map<number, { runs: number; steps: number }>();
  await Promise.all(
    Array.from({ length: workers }, (_, w) => {
      const task: WorkerTask = {
        file,
        cfg,
        strategy: opts.strategy as 'random' | 'pct' | 'dfs',
        bound: opts.preemptionBound ?? null,
        seed,
        pctDepth: opts.pctDepth ?? 3,
        pctK: pct.k,
        first: (first ? 1 : 0) + w,
        stride: workers,
        maxRuns: lowest === Infinity ? (dfs ? Infinity : maxRuns) : 0,
        deadline,
      };
      return new Promise<void>((resolve, reject) => {
        const worker = fork(fileURLToPath(new URL('./worker.ts', import.meta.url)), [], {
          execArgv: ['--import', 'tsx'],
          stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
        });
        pool.push(worker);
        worker.send(task);
        worker.on('message', (msg) => {
          const m = msg as WorkerMessage;
          if (m.type === 'progress') {
            progress.set(w, m);
            let r = runs;
            let st = steps;
            for (const p of progress.values()) {
              r += p.runs;
              st += p.steps;
            }
            opts.onProgress?.({ runs: r, steps: st, elapsedMs: monotonicMs() - start, findings: lowest === Infinity ? 0 : 1 });
          } else if (m.type === 'finding') {
            if (m.run < lowest) {
              lowest = m.run;
              findingChoices = m.choices ?? null;
              for (const other of pool) if (other.connected) other.send({ stopAbove: lowest });
            }
          } else if (m.type === 'done') {
            progress.delete(w);
            runs += m.runs;
            steps += m.steps;
            for (const [o, n] of m.outcomes) outcomes.set(o, (outcomes.get(o) ?? 0) + n);
            for (const [p, n] of m.coverage) coverage.set(p, (coverage.get(p) ?? 0) + n);
            if (!m.exhausted) allExhausted = false;
            worker.kill();
            resolve();
          } else {
            // An error in a run past the lowest finding is one a sequential check never meets.
            worker.kill();
            if (m.run >= 0) errors.push(m);
            else reject(new InternalError(`worker ${w}: ${m.message}`));
            resolve();
          }
        });
        worker.on('error', reject);
      });
    }),
  );
  const error = errors.filter((e) => e.run < lowest).sort((a, b) => a.run - b.run)[0];
  if (error) {
    if (error.usage) throw new UsageError(error.message);
    throw new InternalError(`run ${error.run}: ${error.message}`);
  }
  const result: CheckResult = {
    scenario: s.name,
      strategy: `${
        dfs
          ? `exhaustive DFS, ${opts.preemptionBound === undefined ? 'no preemption bound' : `preemption bound ${opts.preemptionBound}`}`
          : `${opts.strategy === 'pct' ? `PCT depth ${opts.pctDepth ?? 3}` : 'random walk'}, seed ${seed}`
      }, ${workers} workers`,
      memoryModel: opts.memoryModel,
      versions: cfg.versions ?? {},
      variant: opts.variant,
      cost: first?.cost ?? null,
      runs,
      steps,
      elapsedMs: monotonicMs() - start,
      exhausted: allExhausted && lowest === Infinity,
      finding: null,
      findings: 0,
      outcomes,
      coverage,
  };
  if (lowest === Infinity) return result;
  // Repeat the lowest failing run here, where it is shrunk and traced.
  const chooser =
    findingChoices !== null
      ? new ReplayChooser(findingChoices)
      : opts.strategy === 'pct'
        ? pct.chooserFor(lowest)
        : new RandomStrategy(seed).chooserFor(lowest);
  const failing = runScenario(s, cfg, chooser);
  const finding = makeFinding(s, cfg, failing, lowest, opts.shrink !== false);
  return { ...result, finding, findings: 1, elapsedMs: monotonicMs() - start };
}
