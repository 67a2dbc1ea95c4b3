/**
 * Trace steps and the words used for operations and values in traces and messages.
 */
import { type AtomicAction, OP_CAS, OP_CHOOSE, OP_EXIT, OP_FADD, OP_FENCE, OP_JOIN, OP_LOAD, OP_ATOMIC, OP_SPAWN, OP_STORE, OP_XCHG, SIZE_BIG, SIZE_PTR } from './ops.ts';
import type { SourceSite } from './source.ts';
import type { SimThread } from './thread.ts';

/** One step of a traced run. */
export interface TraceStep {
  readonly step: number;
  readonly cpu: number;
  readonly thread: string;
  readonly op: string;
  readonly effect: string;
  readonly sites: readonly SourceSite[];
}

const hex = (a: number) => `0x${a.toString(16)}`;

function width(size: number): string {
  return size === SIZE_BIG ? '64' : size === SIZE_PTR ? 'Ptr' : String(size * 8);
}

/** A value as traces show it. */
export function describeValue(v: unknown): string {
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'number') return v > 0xffff && Number.isInteger(v) ? `${v} (${hex(v)})` : String(v);
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return JSON.stringify(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** The operation a thread has pending, e.g. `store32 [0x10000] = 1`. */
export function describeOp(t: SimThread): string {
  const w = width(t.size);
  const v1 = t.size === SIZE_BIG ? `${t.b1}n` : String(t.a1);
  const v2 = t.size === SIZE_BIG ? `${t.b2}n` : String(t.a2);
  switch (t.op) {
    case OP_LOAD:
      return `load${w} [${hex(t.a0)}]`;
    case OP_STORE:
      return `store${w} [${hex(t.a0)}] = ${v1}`;
    case OP_CAS:
      return `cas${w} [${hex(t.a0)}] ${v2} -> ${v1}`;
    case OP_XCHG:
      return `xchg${w} [${hex(t.a0)}] = ${v1}`;
    case OP_FADD:
      return `fetch_add${w} [${hex(t.a0)}] += ${v1}`;
    case OP_FENCE:
      return 'fence';
    case OP_CHOOSE:
      return `choose(${t.a1})`;
    case OP_SPAWN:
      return `spawn ${(t.obj as { name?: string }).name || '(anonymous)'}`;
    case OP_JOIN:
      return `join T${t.a0}`;
    case OP_EXIT:
      return 'exit';
    case OP_ATOMIC: {
      const a = t.obj as AtomicAction;
      return a.describe ? a.describe() : a.name;
    }
    default:
      return `op${t.op}`;
  }
}
