/**
 * A progress bar on stderr for long checks (cli-progress), shown only on a terminal so that
 * --json and piped output stay clean.
 */
import cliProgress from 'cli-progress';
import type { Progress } from '../explore/explorer.ts';

export interface ProgressHandle {
  update: (p: Progress) => void;
  stop: () => void;
}

export function startProgress(): ProgressHandle | null {
  if (!process.stderr.isTTY) return null;
  const bar = new cliProgress.SingleBar(
    {
      format: 'runs {runs} | {rate} runs/s | steps {steps} | states {states} | findings {findings} | {elapsed}s',
      stream: process.stderr,
      clearOnComplete: true,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(p) {
      const payload = {
        runs: p.runs,
        steps: p.steps,
        states: p.states ?? '-',
        findings: p.findings,
        rate: Math.round((p.runs * 1000) / Math.max(1, p.elapsedMs)),
        elapsed: (p.elapsedMs / 1000).toFixed(1),
      };
      if (!started) {
        bar.start(0, 0, payload);
        started = true;
      } else bar.update(0, payload);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
