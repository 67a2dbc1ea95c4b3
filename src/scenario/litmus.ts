/**
 * Litmus tests as data (in the style of herd7's .litmus files): a few shared variables, a few
 * threads of loads, stores and fences, and an outcome made of the registers' final values (and,
 * where asked, of memory). `litmus()` turns one into a scenario whose outcome set the explorer
 * can collect exhaustively.
 */
import { fence, load32, store32, type SimCode } from '../engine/ops.ts';
import type { MemoryModel } from '../memory/model.ts';
import type { Scenario } from './define.ts';

export type Instr =
  | readonly ['st', string, number] // store32 var = value
  | readonly ['ld', string, string] // register = load32 var
  | readonly ['fence'];

export interface LitmusTest {
  readonly name: string;
  readonly threads: readonly (readonly Instr[])[];
  /** Variables whose final memory values join the outcome. */
  readonly finals?: readonly string[];
  /** The outcome set each model allows, as outcome strings (see {@link litmus}). */
  readonly allowed: Readonly<Record<MemoryModel, readonly string[]>>;
}

type Vars = Readonly<Record<string, number>>;

function variables(t: LitmusTest): string[] {
  const names = new Set<string>();
  for (const th of t.threads) for (const i of th) if (i[0] !== 'fence') names.add(i[1]);
  return [...names].sort();
}

function registers(t: LitmusTest): string[] {
  const regs: string[] = [];
  for (const th of t.threads) for (const i of th) if (i[0] === 'ld') regs.push(i[2]);
  return regs;
}

/** A scenario running the litmus test; its outcome reads e.g. "r0=1 r1=0" or "x=1 y=2". */
export function litmus(t: LitmusTest): Scenario<Vars> {
  const vars = variables(t);
  const regs = registers(t);
  const bodies = t.threads.map(
    (instrs) =>
      function* (v: Vars): SimCode<Record<string, number>> {
        const out: Record<string, number> = {};
        for (const i of instrs) {
          if (i[0] === 'st') yield store32(v[i[1]]!, i[2]);
          else if (i[0] === 'ld') out[i[2]] = yield load32(v[i[1]]!);
          else yield fence();
        }
        return out;
      },
  );
  return {
    name: t.name,
    cpus: t.threads.length,
    setup: (m) => Object.fromEntries(vars.map((name) => [name, m.alloc(4, 64)])),
    threads: bodies,
    outcome(m, v, results) {
      const regVals: Record<string, number> = Object.assign({}, ...(results as Record<string, number>[]));
      const parts = regs.map((r) => `${r}=${regVals[r]}`);
      for (const f of t.finals ?? []) parts.push(`${f}=${m.read32(v[f]!)}`);
      return parts.join(' ');
    },
  };
}

const SC_TSO_PSO = (sc: string[], tso: string[] = sc, pso: string[] = tso) => ({ sc, tso, pso });

function allOutcomes(regs: string[], except: string[]): string[] {
  const out: string[] = [];
  for (let bits = 0; bits < 1 << regs.length; bits++) {
    const s = regs.map((r, i) => `${r}=${(bits >> i) & 1}`).join(' ');
    if (!except.includes(s)) out.push(s);
  }
  return out;
}

/** The classic litmus tests, with the outcome sets of SC, x86-TSO and SPARC PSO. */
export const LITMUS_TESTS: readonly LitmusTest[] = [
  {
    // Store buffering: both loads may miss the other's store once stores are buffered.
    name: 'SB',
    threads: [
      [['st', 'x', 1], ['ld', 'y', 'r0']],
      [['st', 'y', 1], ['ld', 'x', 'r1']],
    ],
    allowed: SC_TSO_PSO(['r0=0 r1=1', 'r0=1 r1=0', 'r0=1 r1=1'], ['r0=0 r1=0', 'r0=0 r1=1', 'r0=1 r1=0', 'r0=1 r1=1']),
  },
  {
    // SB with a fence in each thread: the fences forbid r0=r1=0 again.
    name: 'SB+fences',
    threads: [
      [['st', 'x', 1], ['fence'], ['ld', 'y', 'r0']],
      [['st', 'y', 1], ['fence'], ['ld', 'x', 'r1']],
    ],
    allowed: SC_TSO_PSO(['r0=0 r1=1', 'r0=1 r1=0', 'r0=1 r1=1']),
  },
  {
    // Message passing: seeing the flag but not the data needs store-store reordering (PSO).
    name: 'MP',
    threads: [
      [['st', 'x', 1], ['st', 'y', 1]],
      [['ld', 'y', 'r0'], ['ld', 'x', 'r1']],
    ],
    allowed: SC_TSO_PSO(['r0=0 r1=0', 'r0=0 r1=1', 'r0=1 r1=1'], undefined, ['r0=0 r1=0', 'r0=0 r1=1', 'r0=1 r1=0', 'r0=1 r1=1']),
  },
  {
    // MP with a fence between the writer's stores: forbidden again under PSO.
    name: 'MP+fence',
    threads: [
      [['st', 'x', 1], ['fence'], ['st', 'y', 1]],
      [['ld', 'y', 'r0'], ['ld', 'x', 'r1']],
    ],
    allowed: SC_TSO_PSO(['r0=0 r1=0', 'r0=0 r1=1', 'r0=1 r1=1']),
  },
  {
    // Load buffering: needs loads reordered after later stores, which no store-buffer model does.
    name: 'LB',
    threads: [
      [['ld', 'x', 'r0'], ['st', 'y', 1]],
      [['ld', 'y', 'r1'], ['st', 'x', 1]],
    ],
    allowed: SC_TSO_PSO(['r0=0 r1=0', 'r0=0 r1=1', 'r0=1 r1=0']),
  },
  {
    // 2+2W: both first stores last in memory needs store-store reordering (PSO).
    name: '2+2W',
    threads: [
      [['st', 'x', 1], ['st', 'y', 2]],
      [['st', 'y', 1], ['st', 'x', 2]],
    ],
    finals: ['x', 'y'],
    allowed: SC_TSO_PSO(['x=1 y=2', 'x=2 y=1', 'x=2 y=2'], undefined, ['x=1 y=1', 'x=1 y=2', 'x=2 y=1', 'x=2 y=2']),
  },
  {
    // Independent reads of independent writes: the readers disagree on the order of the writes
    // only without multi-copy atomicity, which all three models have.
    name: 'IRIW',
    threads: [
      [['st', 'x', 1]],
      [['st', 'y', 1]],
      [['ld', 'x', 'r0'], ['ld', 'y', 'r1']],
      [['ld', 'y', 'r2'], ['ld', 'x', 'r3']],
    ],
    allowed: SC_TSO_PSO(allOutcomes(['r0', 'r1', 'r2', 'r3'], ['r0=1 r1=0 r2=1 r3=0'])),
  },
];
