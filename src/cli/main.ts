/**
 * The `hyrum` command. Exit codes: 0 nothing found, 1 a finding, 2 bad input or an internal
 * error of Hyrum (the message says which; an internal error is never presented as a finding).
 */
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { InternalError, UsageError } from '../engine/errors.ts';
import { check, replayRun, tracedRun, type CheckOptions, type CheckResult } from '../explore/explorer.ts';
import { parseMemoryModel, type MemoryModel } from '../memory/model.ts';
import { formatCheck, formatMatrix, formatTrace, formatVerdict } from '../report/text.ts';
import { checkToJson, matrixToJson, runToJson } from '../report/json.ts';
import { runMatrix } from '../explore/matrix.ts';
import { checkParallel } from '../explore/parallel.ts';
import type { Scenario, StrategyName, Versions } from '../scenario/define.ts';
import { KERNEL_PROFILES } from '../kernel/profile.ts';
import { GLIBC_PROFILES } from '../libc/profile.ts';
import { catalogueFiles, loadScenario } from './load.ts';
import { runCatalogue } from './catalogue.ts';
import { startProgress } from './progress.ts';

export const EXIT_OK = 0;
export const EXIT_FINDING = 1;
export const EXIT_ERROR = 2;

function intArg(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}

/** "30s", "2m", "500ms", "1h" or a number of seconds, to milliseconds. */
export function parseDuration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError('expected a duration such as 30s, 2m, 500ms');
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return n * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000);
}

function modelArg(v: string): MemoryModel {
  try {
    return parseMemoryModel(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

const rel = (f: string) => path.relative(process.cwd(), path.resolve(f)) || f;

function print(json: boolean, obj: unknown, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(obj, null, 2)}\n` : `${text}\n`);
}

function memoryModelOf(s: Scenario, given?: MemoryModel): MemoryModel {
  return given ?? s.memoryModel ?? 'sc';
}

export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('hyrum')
    .description('explore a scenario of simulated threads over a model of Linux and glibc')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('run')
    .description('run a scenario once and print the full trace')
    .argument('<file>', 'scenario file (.ts)')
    .option('--replay <string>', 'replay string of the run to reproduce')
    .option('--seed <n>', 'seed of the random schedule when no replay string is given', intArg('seed', 0), 1)
    .addOption(new Option('--memory-model <m>', 'sc, tso or pso').argParser(modelArg))
    .option('--kernel <version>', 'kernel profile (e.g. 6.18)')
    .option('--glibc <version>', 'glibc profile (e.g. 2.9, 2.10, 2.24, 2.25, 2.36)')
    .option('--variant <name>', "one of the scenario's variants")
    .option('--set <name=value>', 'a tunable or kernel setting (repeatable): glibc.pthread.rseq=0, rseq_debug=1', collectSetting, {})
    .option('--perturb', 'vary incidental kernel behaviour within the documented ABI')
    .option('--json', 'print JSON')
    .action(async (file: string, o: CliRun) => {
      const s = await loadScenario(file);
      const { result, replay } = o.replay
        ? { result: replayRun(s, o.replay), replay: o.replay }
        : tracedRun(s, memoryModelOf(s, o.memoryModel), o.seed, versionsOf(o), o.variant, o.set, o.perturb);
      const text = [
        result.verdict ? `FOUND ${formatVerdict(result.verdict)}` : 'OK   the run ended with no finding',
        `  ${result.steps} steps; replay: hyrum replay ${rel(file)} ${replay}`,
        result.outcome !== undefined ? `  outcome: ${result.outcome}` : '',
        '',
        formatTrace(result.trace ?? []),
      ]
        .filter((l, i) => l !== '' || i === 3)
        .join('\n');
      print(!!o.json, runToJson(s, result, replay), text);
      setExit(result.verdict ? EXIT_FINDING : EXIT_OK);
    });

  program
    .command('check')
    .description('explore a scenario under a strategy until a finding or the budget is spent')
    .argument('<file>', 'scenario file (.ts)')
    .addOption(new Option('--strategy <s>', 'exploration strategy').choices(['random', 'pct', 'dfs', 'dpor']).default('random'))
    .option('--runs <n>', 'at most this many runs', intArg('runs', 1))
    .option('--time <t>', 'at most this much time (30s, 2m, ...)', parseDuration)
    .option('--seed <n>', 'seed for random and pct', intArg('seed', 0), 1)
    .addOption(new Option('--memory-model <m>', 'sc, tso or pso').argParser(modelArg))
    .option('--kernel <version>', 'kernel profile (e.g. 6.18)')
    .option('--glibc <version>', 'glibc profile (e.g. 2.9, 2.10, 2.24, 2.25, 2.36)')
    .option('--variant <name>', "one of the scenario's variants")
    .option('--set <name=value>', 'a tunable or kernel setting (repeatable): glibc.pthread.rseq=0, rseq_debug=1', collectSetting, {})
    .option('--perturb', 'vary incidental kernel behaviour within the documented ABI')
    .option('--pct-depth <d>', 'PCT bug depth', intArg('pct-depth', 1), 3)
    .option('--preemption-bound <b>', 'dfs, dpor: at most this many preemptions per run', intArg('preemption-bound', 0))
    .option('--keep-going', 'do not stop at the first finding')
    .option('--workers <n>', 'worker processes for random, pct, dfs and dpor (same findings for any count; dpor then splits its tree)', intArg('workers', 1), 1)
    .option('--no-shrink', 'report the finding as found, without shrinking it')
    .option('--state-hash', 'fingerprint states: livelocks as repeated states, distinct-state counts (default for dfs and dpor; dfs prunes states seen)')
    .option('--no-state-hash', 'do not fingerprint states (livelocks then show only as hangs, by the step budget)')
    .option('--json', 'print JSON')
    .action(async (file: string, o: CliCheck) => {
      const s = await loadScenario(file);
      const progress = o.json ? null : startProgress();
      let r: CheckResult;
      try {
        r = await checkParallel(s, path.resolve(file), {
          strategy: o.strategy,
          memoryModel: memoryModelOf(s, o.memoryModel),
          versions: versionsOf(o),
          variant: o.variant,
          settings: o.set,
          perturb: o.perturb,
          runs: o.runs,
          timeMs: o.time,
          seed: o.seed,
          pctDepth: o.pctDepth,
          preemptionBound: o.preemptionBound,
          keepGoing: o.keepGoing,
          shrink: o.shrink,
          stateHash: o.stateHash,
          onProgress: progress?.update,
        } satisfies CheckOptions, o.workers);
      } finally {
        progress?.stop();
      }
      print(!!o.json, checkToJson(r), formatCheck(r, rel(file)));
      setExit(r.finding ? EXIT_FINDING : EXIT_OK);
    });

  program
    .command('replay')
    .description('reproduce a run from its replay string, with the full trace')
    .argument('<file>', 'scenario file (.ts)')
    .argument('<string>', 'replay string')
    .option('--json', 'print JSON')
    .action(async (file: string, replay: string, o: { json?: boolean }) => {
      const s = await loadScenario(file);
      const result = replayRun(s, replay);
      const text = [
        result.verdict ? `FOUND ${formatVerdict(result.verdict)}` : 'OK   the replayed run ended with no finding',
        `  ${result.steps} steps`,
        '',
        formatTrace(result.trace ?? []),
      ].join('\n');
      print(!!o.json, runToJson(s, result, replay), text);
      setExit(result.verdict ? EXIT_FINDING : EXIT_OK);
    });

  program
    .command('matrix')
    .description('check a scenario over the product of kernel, glibc and settings values')
    .argument('<file>', 'scenario file (.ts)')
    .option('--kernel <versions>', 'kernel profiles, comma-separated (e.g. 6.18,6.19,7.1)')
    .option('--glibc <versions>', 'glibc profiles, comma-separated (e.g. 2.34,2.35,2.41)')
    .option('--set <name=values>', 'a setting and its values, comma-separated (repeatable): glibc.pthread.rseq=0,1', collectSetting, {})
    .addOption(new Option('--strategy <s>', 'exploration strategy').choices(['random', 'pct', 'dfs', 'dpor']).default('pct'))
    .option('--runs <n>', 'at most this many runs per cell', intArg('runs', 1), 2000)
    .option('--seed <n>', 'seed for random and pct', intArg('seed', 0), 1)
    .addOption(new Option('--memory-model <m>', 'sc, tso or pso').argParser(modelArg))
    .option('--variant <name>', "one of the scenario's variants")
    .option('--preemption-bound <b>', 'dfs, dpor: at most this many preemptions per run', intArg('preemption-bound', 0))
    .option('--perturb', 'vary incidental kernel behaviour within the documented ABI')
    .option('--json', 'print JSON')
    .action(async (file: string, o: CliMatrix) => {
      const s = await loadScenario(file);
      const list = (v?: string) => (v === undefined ? undefined : v.split(',').map((x) => x.trim()).filter(Boolean));
      const kernel = list(o.kernel);
      const glibc = list(o.glibc);
      versionsOf({ kernel: kernel?.[0], glibc: glibc?.[0] });
      for (const k of kernel ?? []) versionsOf({ kernel: k });
      for (const g of glibc ?? []) versionsOf({ glibc: g });
      const settings = Object.fromEntries(Object.entries(o.set).map(([k, v]) => [k, list(v) ?? []]));
      const cells = runMatrix(
        s,
        { kernel, glibc, settings },
        {
          strategy: o.strategy,
          memoryModel: memoryModelOf(s, o.memoryModel),
          runs: o.runs,
          seed: o.seed,
          variant: o.variant,
          preemptionBound: o.preemptionBound,
          perturb: o.perturb,
        },
      );
      print(!!o.json, matrixToJson(cells), formatMatrix(cells, rel(file)));
      setExit(cells.some((c) => c.result.finding) ? EXIT_FINDING : EXIT_OK);
    });

  program
    .command('list')
    .description("list the scenario catalogue")
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const rows = [];
      for (const f of catalogueFiles()) {
        const s = await loadScenario(f);
        rows.push({ name: s.name, file: rel(f), description: s.description ?? '' });
      }
      const w = Math.max(...rows.map((r) => r.name.length));
      print(!!o.json, rows, rows.map((r) => `${r.name.padEnd(w)}  ${r.file}\n${' '.repeat(w + 2)}${r.description}`).join('\n'));
    });

  program
    .command('catalogue')
    .description("check every catalogue scenario against its expectations (the project's main job)")
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const ok = await runCatalogue(!!o.json);
      setExit(ok ? EXIT_OK : EXIT_FINDING);
    });

  return program;
}

function versionsOf(o: { kernel?: string; glibc?: string }): Versions {
  for (const [what, v, known] of [
    ['kernel', o.kernel, KERNEL_PROFILES],
    ['glibc', o.glibc, GLIBC_PROFILES],
  ] as const) {
    if (v !== undefined && !(v in known)) throw new UsageError(`unknown ${what} version '${v}' (known: ${Object.keys(known).join(', ')})`);
  }
  return { kernel: o.kernel, glibc: o.glibc };
}

/** --set name=value, collected into an object. */
export function collectSetting(v: string, acc: Record<string, string>): Record<string, string> {
  const eq = v.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError('expected name=value');
  return { ...acc, [v.slice(0, eq)]: v.slice(eq + 1) };
}

interface CliMatrix {
  kernel?: string;
  glibc?: string;
  set: Record<string, string>;
  strategy: StrategyName;
  runs: number;
  seed: number;
  memoryModel?: MemoryModel;
  variant?: string;
  preemptionBound?: number;
  perturb?: boolean;
  json?: boolean;
}

interface CliRun {
  replay?: string;
  seed: number;
  memoryModel?: MemoryModel;
  kernel?: string;
  glibc?: string;
  variant?: string;
  set: Record<string, string>;
  perturb?: boolean;
  json?: boolean;
}

interface CliCheck {
  workers: number;
  shrink: boolean;
  set: Record<string, string>;
  perturb?: boolean;
  variant?: string;
  kernel?: string;
  glibc?: string;
  strategy: StrategyName;
  runs?: number;
  time?: number;
  seed: number;
  memoryModel?: MemoryModel;
  pctDepth: number;
  preemptionBound?: number;
  keepGoing?: boolean;
  stateHash?: boolean;
  json?: boolean;
}

export async function main(argv: string[]): Promise<number> {
  let code = EXIT_OK;
  const program = buildProgram((c) => (code = c));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0 ? EXIT_OK : EXIT_ERROR;
    }
    if (e instanceof UsageError) {
      process.stderr.write(`hyrum: error: ${e.message}\n`);
      return EXIT_ERROR;
    }
    const internal = e instanceof InternalError ? e : new InternalError(String(e), { cause: e });
    const cause = internal.cause instanceof Error ? `\n${internal.cause.stack}` : '';
    process.stderr.write(
      `hyrum: internal error (a bug in Hyrum, not a finding about the scenario): ${internal.message}${cause}\n`,
    );
    return EXIT_ERROR;
  }
}
