/**
 * Parallel exploration for random walk and PCT: run indices are dealt round-robin to worker
 * processes (worker.ts); the reported finding is the one with the lowest run index, found as in a sequential
 * check (when a worker finds run r, the others finish every index below r and stop), so the
 * findings are the same whatever the worker count. The finding is then replayed, shrunk and
 * traced in the main thread. DFS and DPOR stay sequential.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { monotonicMs } from '../engine/globals.ts';
import { InternalError, UsageError } from '../engine/errors.ts';
import type { Scenario } from '../scenario/define.ts';
import { runScenario } from '../scenario/run.ts';
import { check, checkDeterminism, makeFinding, runConfigOf, type CheckOptions, type CheckResult } from './explorer.ts';
import { PctStrategy } from './pct.ts';
import { RandomStrategy } from './random.ts';
import type { WorkerMessage, WorkerTask } from './worker.ts';

/**
 * `inProcess`: with one worker, run in this process (the default) or in one worker process like
 * the others (for measuring how runs per second scale with workers).
 */
export async function checkParallel(s: Scenario, file: string, opts: CheckOptions, workers: number, inProcess = true): Promise<CheckResult> {
  if ((workers <= 1 && inProcess) || (opts.strategy !== 'random' && opts.strategy !== 'pct')) return check(s, opts);
  const start = monotonicMs();
  const seed = opts.seed ?? 1;
  const cfg = runConfigOf(s, opts);
  checkDeterminism(s, cfg, opts.determinismRuns ?? 12, seed);
  // Run 0 here: it calibrates PCT's k.
  const pct = new PctStrategy(seed, opts.pctDepth ?? 3);
  const first = opts.strategy === 'pct' ? runScenario(s, cfg, pct.nextRun()) : null;
  if (first) pct.endRun(first.log);
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
        strategy: opts.strategy as 'random' | 'pct',
        seed,
        pctDepth: opts.pctDepth ?? 3,
        pctK: pct.k,
        first: (first ? 1 : 0) + w,
        stride: workers,
        maxRuns: lowest === Infinity ? maxRuns : 0,
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
              for (const other of pool) if (other.connected) other.send({ stopAbove: lowest });
            }
          } else if (m.type === 'done') {
            progress.delete(w);
            runs += m.runs;
            steps += m.steps;
            for (const [o, n] of m.outcomes) outcomes.set(o, (outcomes.get(o) ?? 0) + n);
            for (const [p, n] of m.coverage) coverage.set(p, (coverage.get(p) ?? 0) + n);
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
      strategy: `${opts.strategy === 'pct' ? `PCT depth ${opts.pctDepth ?? 3}` : 'random walk'}, seed ${seed}, ${workers} workers`,
      memoryModel: opts.memoryModel,
      versions: cfg.versions ?? {},
      variant: opts.variant,
      cost: first?.cost ?? null,
      runs,
      steps,
      elapsedMs: monotonicMs() - start,
      exhausted: false,
      finding: null,
      findings: 0,
      outcomes,
      coverage,
  };
  if (lowest === Infinity) return result;
  // Repeat the lowest failing run here, where it is shrunk and traced.
  const chooser = opts.strategy === 'pct' ? pct.chooserFor(lowest) : new RandomStrategy(seed).chooserFor(lowest);
  const failing = runScenario(s, cfg, chooser);
  const finding = makeFinding(s, cfg, failing, lowest, opts.shrink !== false);
  return { ...result, finding, findings: 1, elapsedMs: monotonicMs() - start };
}
