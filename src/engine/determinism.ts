/**
 * The check that simulated code is a function of its operations' results. Across runs, a thread
 * (named by its spawn path) that has seen the same history of operations and results must issue
 * the same next operation. Code that reads Math.random, the clock, or a JavaScript variable that
 * another thread writes breaks this, and the check names the line where the runs diverged.
 */
import { NondeterminismError } from './errors.ts';
import { OP_ATOMIC, OP_SPAWN, SIZE_BIG } from './ops.ts';
import { formatSite, type SourceSite } from './source.ts';
import type { SimThread } from './thread.ts';

function mix(h: number, v: number): number {
  h = Math.imul(h ^ v, 0x9e3779b1);
  return (h ^ (h >>> 15)) | 0;
}

function fnv(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h | 0;
}

/** A hash of a thread's issued operation and its operands. */
export function opHash(t: SimThread): number {
  let h = mix(mix(t.op, t.size), mix(t.a0 | 0, Math.floor(t.a0 / 4294967296)));
  h = mix(h, t.a1 | 0);
  h = mix(h, t.a2 | 0);
  if (t.size === SIZE_BIG) h = mix(mix(h, Number(t.b1 & 0xffffffffn)), Number(t.b2 & 0xffffffffn));
  if (t.op === OP_SPAWN && typeof t.obj === 'function') h = mix(h, fnv(t.obj.name));
  else if (t.op === OP_ATOMIC && t.obj !== null && typeof t.obj === 'object' && 'name' in t.obj) h = mix(h, fnv(String(t.obj.name)));
  return h;
}

function resultHash(r: unknown): number {
  if (typeof r === 'number') return mix(r | 0, Math.floor(r / 4294967296));
  if (typeof r === 'bigint') return mix(Number(r & 0xffffffffn), Number((r >> 32n) & 0xffffffffn));
  if (typeof r === 'boolean') return r ? 1 : 2;
  return 0;
}

/** Fold a performed operation and its result into the thread's history (two 32-bit hashes). */
export function recordResult(t: SimThread, result: unknown): void {
  const op = opHash(t);
  const r = resultHash(result);
  t.hist = mix(mix(t.hist, op), r);
  t.hist2 = mix(mix(t.hist2 ^ 0x5bd1e995, r), op);
  t.opCount++;
}

/** Fold an event that is not an operation (a signal handler starting) into the history. */
export function recordEvent(t: SimThread, code: number): void {
  t.hist = mix(t.hist, code ^ 0x7ed55d16);
  t.hist2 = mix(t.hist2, code ^ 0x165667b1);
  t.opCount++;
}

/**
 * Fold a new thread's start arguments into its history: they come from the parent's results
 * (a stack address, say), so two runs may start the same thread path with different values.
 */
export function recordStart(t: SimThread, args: readonly unknown[]): void {
  let h = 0x1f3d5b79;
  for (const a of args) h = mix(h, resultHash(a));
  recordEvent(t, h);
}

/** Where two runs diverged: a thread (by spawn path) at its n-th operation. */
export interface Divergence {
  readonly path: string;
  readonly count: number;
  /** The runs (as numbered by the caller) that issued different operations there. */
  readonly runs: readonly [number, number];
}

/** Thrown by a check-mode log at the first divergence; the caller then locates its lines. */
export class DivergenceFound extends Error {
  constructor(readonly divergence: Divergence) {
    super(`runs ${divergence.runs[0]} and ${divergence.runs[1]} diverged in thread ${divergence.path} at operation ${divergence.count}`);
  }
}

/**
 * Check mode: remember, per (thread path, operation count, history), the operation issued;
 * a different one later is a divergence. Keys hold 64 bits of history so that long runs do not
 * collide. Locate mode: capture the call site of the operation at one (path, count).
 */
export class DeterminismLog {
  private readonly seen = new Map<string, { op: number; run: number }>();
  /** The run being observed (set by the caller before each run). */
  run = 0;
  /** Locate mode: the operation found at the target, with its text and call sites. */
  located: { text: string; sites: SourceSite[] | null } | null = null;

  constructor(readonly target: { path: string; count: number } | null = null) {}

  /** Whether the machine must capture call sites (locate mode only: it costs a stack per operation). */
  get wantsSites(): boolean {
    return this.target !== null;
  }

  /** Called when thread t has just issued an operation (registers hold it). */
  observe(t: SimThread, describe: (t: SimThread) => string): void {
    if (this.target !== null) {
      if (this.located === null && t.opCount === this.target.count && t.path === this.target.path) {
        this.located = { text: describe(t), sites: t.sites };
      }
      return;
    }
    const key = `${t.path}:${t.opCount}:${t.hist}:${t.hist2}`;
    const op = opHash(t);
    const prev = this.seen.get(key);
    if (prev === undefined) this.seen.set(key, { op, run: this.run });
    else if (prev.op !== op) throw new DivergenceFound({ path: t.path, count: t.opCount, runs: [prev.run, this.run] });
  }
}

/** The error for a divergence, with the two operations and their lines. */
export function nondeterminismError(
  d: Divergence,
  a: { text: string; sites: SourceSite[] | null } | null,
  b: { text: string; sites: SourceSite[] | null } | null,
): NondeterminismError {
  const where = (s: SourceSite[] | null | undefined) => (s && s.length > 0 ? s.map(formatSite).join(' <- ') : 'an unknown line');
  const op = (x: typeof a) => (x ? `\`${x.text}\` at ${where(x.sites)}` : 'no operation (the thread had ended)');
  const site = b?.sites?.[b.sites.length - 1] ?? a?.sites?.[a.sites.length - 1];
  return new NondeterminismError(
    `simulated code is not deterministic: thread ${d.path} issued ${op(a)} in one run and ${op(b)} in another, ` +
      'after the same operations and results. Simulated code may depend only on the results of its ' +
      'operations: no Math.random, clock, or JavaScript variables shared between threads or runs ' +
      '(keep shared state in simulated memory).',
    site,
  );
}
