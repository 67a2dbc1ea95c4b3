/**
 * The check that simulated code is a function of its operations' results. Across runs, a thread
 * (named by its spawn path) that has seen the same history of operations and results must issue
 * the same next operation. Code that reads Math.random, the clock, or a JavaScript variable that
 * another thread writes breaks this, and the check names the line where the runs diverged.
 */
import { NondeterminismError } from './errors.ts';
import { OP_NAMES, SIZE_BIG } from './ops.ts';
import { formatSite, type SourceSite } from './source.ts';
import type { SimThread } from './thread.ts';

interface Seen {
  readonly op: number;
  readonly text: string;
  readonly sites: SourceSite[] | null;
}

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
  if (typeof t.obj === 'function') h = mix(h, fnv(t.obj.name));
  else if (t.obj !== null && typeof t.obj === 'object' && 'name' in t.obj) h = mix(h, fnv(String(t.obj.name)));
  return h;
}

function resultHash(r: unknown): number {
  if (typeof r === 'number') return mix(r | 0, Math.floor(r / 4294967296));
  if (typeof r === 'bigint') return mix(Number(r & 0xffffffffn), Number((r >> 32n) & 0xffffffffn));
  if (typeof r === 'boolean') return r ? 1 : 2;
  return 0;
}

/** Fold a performed operation and its result into the thread's history. */
export function recordResult(t: SimThread, result: unknown): void {
  t.hist = mix(mix(t.hist, opHash(t)), resultHash(result));
}

export class DeterminismLog {
  private readonly seen = new Map<string, Seen>();

  /** Called when thread t has just issued an operation (registers hold it). */
  observe(t: SimThread, describe: (t: SimThread) => string): void {
    const key = `${t.path}:${t.hist}`;
    const op = opHash(t);
    const prev = this.seen.get(key);
    if (prev === undefined) {
      this.seen.set(key, { op, text: describe(t), sites: t.sites });
      return;
    }
    if (prev.op === op) return;
    const now = describe(t);
    const where = (s: SourceSite[] | null) => (s && s.length > 0 ? s.map(formatSite).join(' <- ') : 'unknown line');
    throw new NondeterminismError(
      `simulated code is not deterministic: thread ${t.path} issued \`${prev.text}\` at ${where(prev.sites)} ` +
        `in one run and \`${now}\` at ${where(t.sites)} in another, after the same operations and results. ` +
        'Simulated code may depend only on the results of its operations: no Math.random, clock, ' +
        'or JavaScript variables shared between threads or runs (keep shared state in simulated memory).',
      t.sites?.[t.sites.length - 1] ?? prev.sites?.[prev.sites.length - 1],
    );
  }

  /** Name of an opcode, for messages. */
  static opName(op: number): string {
    return OP_NAMES[op] ?? `op${op}`;
  }
}
