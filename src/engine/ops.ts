/**
 * The operations simulated code yields. Each helper writes the operation into the running
 * thread's registers and returns a token; `yield` hands the token to the engine, which performs
 * the operation at the thread's next scheduled step and resumes the generator with its result:
 *
 *     const v: number = yield load32(addr);
 *
 * Nothing is allocated per operation. Values of 8 to 32 bits are unsigned numbers; 64-bit values
 * are bigints (exact), or numbers through the *Ptr forms, which insist on safe integers.
 */
import { UsageError } from './errors.ts';
import { callerSites, type SourceSite } from './source.ts';
import { entryOf, headAt, positionsTracked, type Positioned } from './state-hash.ts';

/** The token every operation helper returns; simulated code yields it. */
export type Op = number & { readonly __op: unique symbol };
/** Simulated code: a generator of operations returning R. Yield results are typed at the use site. */
export type SimCode<R = void> = Generator<Op, R, any>;
/** A function that starts simulated code (a thread body). */
export type SimFunction<A extends unknown[] = any[], R = unknown> = (...args: A) => SimCode<R>;

export const OP_TOKEN = 0x4879 as Op;

// Opcodes. Memory operations first: they are never blocked.
export const OP_LOAD = 1;
export const OP_STORE = 2;
export const OP_CAS = 3;
export const OP_XCHG = 4;
export const OP_FADD = 5;
export const OP_FENCE = 6;
export const OP_CHOOSE = 7;
export const OP_SPAWN = 8;
export const OP_EXIT = 9;

/** Opcodes from here on may be blocked (not enabled) when the thread is scheduled. */
export const OP_FIRST_BLOCKING = 16;
export const OP_JOIN = 16;
export const OP_ATOMIC = 17;

/** Value width for the 64-bit forms that take and return bigints. */
export const SIZE_BIG = 8;
/** Pseudo-size for 64-bit operations that take and return safe-integer numbers. */
export const SIZE_PTR = 9;

export const OP_NAMES: Record<number, string> = {
  [OP_LOAD]: 'load',
  [OP_STORE]: 'store',
  [OP_CAS]: 'cas',
  [OP_XCHG]: 'xchg',
  [OP_FADD]: 'fetch_add',
  [OP_FENCE]: 'fence',
  [OP_CHOOSE]: 'choose',
  [OP_SPAWN]: 'spawn',
  [OP_EXIT]: 'exit',
  [OP_ATOMIC]: 'atomic',
  [OP_JOIN]: 'join',
};

/**
 * An action the engine performs atomically for the calling thread (the extension point for
 * kernel calls). `enabled` says whether the thread may run it now (a futex wait, say).
 */
export interface AtomicAction<R = unknown> {
  readonly name: string;
  /**
   * For partial-order reduction: 'local' when the action reads and writes nothing other threads
   * can see or change (getpid, gettid, the thread pointer); otherwise it conflicts with everything.
   */
  readonly footprint?: 'local' | 'global';
  enabled?(thread: OpRegisters): boolean;
  run(thread: OpRegisters): R;
  describe?(): string;
}

/** The part of a simulated thread that operation helpers write. */
export interface OpRegisters {
  opPending: boolean;
  op: number;
  size: number;
  a0: number;
  a1: number;
  a2: number;
  b1: bigint;
  b2: bigint;
  obj: unknown;
  args: unknown[] | null;
  sites: SourceSite[] | null;
}

let cur: OpRegisters | null = null;
let captureSites = false;
let coverage: Map<string, number> | null = null;

/** Engine use: where cover() counts during a run (null: nowhere). */
export function setCoverage(sink: Map<string, number> | null): void {
  coverage = sink;
}

/**
 * Mark a coverage point of a model (a kernel or glibc branch): reports say which points a check
 * reached. Not an operation: no yield, no effect on the run.
 */
export function cover(point: string): void {
  if (coverage !== null) coverage.set(point, (coverage.get(point) ?? 0) + 1);
}

/** Engine use: the thread whose code is about to run, and whether to record call sites. */
export function setCurrent(t: OpRegisters | null, sites: boolean): void {
  cur = t;
  captureSites = sites;
}

function issue(op: number, size: number): OpRegisters {
  const t = cur;
  if (t === null) throw new UsageError('an operation was created outside simulated code', callerSites()[0]);
  if (t.opPending) {
    throw new UsageError('an operation was created but not yielded (write `yield op(...)`)', callerSites()[0]);
  }
  t.opPending = true;
  t.op = op;
  t.size = size;
  if (captureSites) t.sites = callerSites();
  return t;
}

function checkAddr(addr: number): void {
  if (!Number.isSafeInteger(addr) || addr < 0) {
    throw new UsageError(`address ${String(addr)} is not a non-negative safe integer`, callerSites()[0]);
  }
}

function num(op: number, size: number, addr: number, value: number, expected: number): Op {
  if (typeof addr !== 'number' || addr < 0 || addr !== Math.floor(addr)) checkAddr(addr);
  const t = issue(op, size);
  t.a0 = addr;
  t.a1 = value;
  t.a2 = expected;
  return OP_TOKEN;
}

function big(op: number, addr: number, value: bigint, expected: bigint): Op {
  checkAddr(addr);
  const t = issue(op, SIZE_BIG);
  t.a0 = addr;
  t.b1 = BigInt.asUintN(64, value);
  t.b2 = BigInt.asUintN(64, expected);
  return OP_TOKEN;
}

/** Load 8 bits (unsigned). */
export const load8 = (addr: number): Op => num(OP_LOAD, 1, addr, 0, 0);
/** Load 16 bits (unsigned). */
export const load16 = (addr: number): Op => num(OP_LOAD, 2, addr, 0, 0);
/** Load 32 bits (unsigned). */
export const load32 = (addr: number): Op => num(OP_LOAD, 4, addr, 0, 0);
/** Load 64 bits as a bigint. */
export const load64 = (addr: number): Op => big(OP_LOAD, addr, 0n, 0n);
/** Load a 64-bit pointer as a number. */
export const loadPtr = (addr: number): Op => num(OP_LOAD, SIZE_PTR, addr, 0, 0);
/** Store 8 bits. */
export const store8 = (addr: number, v: number): Op => num(OP_STORE, 1, addr, v & 0xff, 0);
/** Store 16 bits. */
export const store16 = (addr: number, v: number): Op => num(OP_STORE, 2, addr, v & 0xffff, 0);
/** Store 32 bits. */
export const store32 = (addr: number, v: number): Op => num(OP_STORE, 4, addr, v >>> 0, 0);
/** Store 64 bits. */
export const store64 = (addr: number, v: bigint): Op => big(OP_STORE, addr, v, 0n);
/** Store a 64-bit pointer given as a non-negative safe integer. */
export const storePtr = (addr: number, v: number): Op => num(OP_STORE, SIZE_PTR, addr, ptrValue(v), 0);
/** Compare-and-swap 32 bits; yields the old value (success when it equals `expected`). */
export const cas32 = (addr: number, expected: number, v: number): Op => num(OP_CAS, 4, addr, v >>> 0, expected >>> 0);
/** Compare-and-swap 64 bits; yields the old value. */
export const cas64 = (addr: number, expected: bigint, v: bigint): Op => big(OP_CAS, addr, v, expected);
/** Compare-and-swap a pointer; yields the old value. */
export const casPtr = (addr: number, expected: number, v: number): Op =>
  num(OP_CAS, SIZE_PTR, addr, ptrValue(v), ptrValue(expected));
/** Exchange 32 bits; yields the old value. */
export const xchg32 = (addr: number, v: number): Op => num(OP_XCHG, 4, addr, v >>> 0, 0);
/** Exchange 64 bits; yields the old value. */
export const xchg64 = (addr: number, v: bigint): Op => big(OP_XCHG, addr, v, 0n);
/** Exchange a pointer; yields the old value. */
export const xchgPtr = (addr: number, v: number): Op => num(OP_XCHG, SIZE_PTR, addr, ptrValue(v), 0);
/** Atomic fetch-and-add on 32 bits (wrapping); yields the old value. */
export const fetchAdd32 = (addr: number, delta: number): Op => num(OP_FADD, 4, addr, delta >>> 0, 0);
/** Atomic fetch-and-add on 64 bits (wrapping); yields the old value. */
export const fetchAdd64 = (addr: number, delta: bigint): Op => big(OP_FADD, addr, delta, 0n);
/** A full fence (mfence): the thread's buffered stores reach memory before it goes on. */
export const fence = (): Op => num(OP_FENCE, 0, 0, 0, 0);

/**
 * Set the running thread's instruction pointer (for rseq critical sections: the kernel checks it
 * against start_ip and post_commit_offset). A register write, not an operation: no yield.
 */
export function at(ip: number): void {
  const t = cur;
  if (t === null) throw new UsageError('at(ip) outside simulated code', callerSites()[0]);
  (t as OpRegisters & { ip: number }).ip = ip;
}

/**
 * Enter a loop whose head will be marked with {@link loopHead}: returns a number naming the loop
 * and everything the thread did before it (its position). Not an operation: no yield. Returns 0
 * when state hashing is off.
 */
export function loopEntry(): number {
  const t = cur;
  if (t === null) throw new UsageError('loopEntry() outside simulated code', callerSites()[0]);
  return positionsTracked() ? entryOf(t as unknown as Positioned) : 0;
}

/**
 * Mark a loop head for state hashing: from here on the thread's position is (entry, v0, v1, v2)
 * plus what it is given later, so a loop that goes round without changing memory comes back to
 * a state seen before (a livelock, or a revisit a search may prune). The promise: v0..v2 are all
 * the loop's live values that differ between iterations (the loop variables), and its code keeps
 * no other JS state across iterations. Not an operation: no yield, no scheduling point.
 */
export function loopHead(entry: number, v0 = 0, v1 = 0, v2 = 0): void {
  if (!positionsTracked()) return;
  const t = cur;
  if (t === null) throw new UsageError('loopHead() outside simulated code', callerSites()[0]);
  headAt(t as unknown as Positioned, entry, v0, v1, v2);
}

/** A nondeterministic value in [0, n) for scenario data: explored like scheduling. */
export function choose(n: number): Op {
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`choose(${String(n)}): n must be a positive integer`, callerSites()[0]);
  const t = issue(OP_CHOOSE, 0);
  t.a1 = n;
  return OP_TOKEN;
}

/** Start a thread running fn(...args); yields its thread id. */
export function spawn<A extends unknown[]>(fn: SimFunction<A>, ...args: A): Op {
  if (typeof fn !== 'function') throw new UsageError('spawn(fn): fn must be a generator function', callerSites()[0]);
  const t = issue(OP_SPAWN, 0);
  t.obj = fn;
  t.args = args;
  return OP_TOKEN;
}

/** Wait for a thread to finish; yields its return value. */
export function join(tid: number): Op {
  const t = issue(OP_JOIN, 0);
  t.a0 = tid;
  return OP_TOKEN;
}

/** End the calling thread now with a return value. */
export function exit(value?: unknown): Op {
  const t = issue(OP_EXIT, 0);
  t.obj = value;
  return OP_TOKEN;
}

/** Run an action atomically for this thread (used by the kernel and library models). */
export function atomic<R>(action: AtomicAction<R>): Op {
  const t = issue(OP_ATOMIC, 0);
  t.obj = action;
  return OP_TOKEN;
}

const TWO53 = 9007199254740992;
function ptrValue(v: number): number {
  if (!(v >= 0 && v < TWO53 && v === Math.floor(v))) {
    throw new UsageError(`pointer value ${String(v)} is not a non-negative safe integer`, callerSites()[0]);
  }
  return v;
}
