/**
 * A simulated thread: a generator of operations, its registers for the operation it has issued
 * and not yet performed, and its store buffer. The engine alone advances it.
 */
import type { AddressSpace } from '../memory/address-space.ts';
import { StoreBuffer } from '../memory/store-buffer.ts';
import type { OpRegisters, SimCode, SimFunction } from './ops.ts';
import type { SourceSite } from './source.ts';
import type { Positioned } from './state-hash.ts';

export const RUNNING = 0;
export const DONE = 1;

export class SimThread implements OpRegisters, Positioned {
  // Operation registers (see ops.ts).
  opPending = false;
  op = 0;
  size = 0;
  a0 = 0;
  a1 = 0;
  a2 = 0;
  b1 = 0n;
  b2 = 0n;
  obj: unknown = null;
  args: unknown[] | null = null;
  sites: SourceSite[] | null = null;

  state = RUNNING;
  /** Steps this thread has taken (the hang budget counts these). */
  steps = 0;
  retval: unknown = undefined;
  /** Children spawned so far, for stable child paths. */
  spawned = 0;
  readonly sb = new StoreBuffer();
  /** Sites of buffered stores, parallel to the buffer (only kept while tracing). */
  sbSites: (SourceSite[] | null)[] = [];
  /** Rolling hashes of the (operation, result) history and its length, kept while checking determinism. */
  hist = 0;
  hist2 = 0;
  opCount = 0;
  /** The thread's position for state hashing (state-hash.ts): its path and results since its last loop head. */
  pos1 = 0;
  pos2 = 0;
  /** It passed a loop head in its last step. */
  looped = false;
  /**
   * It went round a loop that changed nothing while another thread that could move did not
   * (Machine.atState): it sits out until another agent moves, since running it again only
   * repeats states (GenMC's and Nidhugg's treatment of spin loops as waits).
   */
  parked = false;
  /** Step counts at its last step and at the last drain of its store buffer (fairness of a repeated state). */
  lastStep = 0;
  lastDrain = 0;
  /**
   * Results of every operation performed, and markers for signal-handler frames, kept when the
   * machine may fork: a fork child is this thread re-run on these results (see Machine.forkThread).
   */
  history: unknown[] | null = null;
  /** Frames interrupted by signal handlers, innermost last. */
  readonly frames: SavedFrame[] = [];
  /** Set by the kernel when something must happen before the next step (a signal to deliver). */
  interrupt = false;
  /**
   * The instruction pointer, as far as anything checks it: code in an rseq critical section
   * sets it with at(ip) (no operation, no scheduling point); 0 means "somewhere else".
   */
  ip = 0;
  /** The CPU the thread last ran on was given to another thread since (a context switch). */
  switchedOut = false;
  /** The kernel's task for this thread, when a kernel is attached. */
  task: unknown = null;
  /** Simulated nanoseconds spent in system calls (the kernel's cost model adds them). */
  syscallNs = 0;
  syscalls = 0;

  constructor(
    /** Creation index within the run: the id simulated code sees. */
    readonly id: number,
    /** A path stable across schedules: "0", "0.1", ... (the n-th child of its parent). */
    readonly path: string,
    public cpu: number,
    public mem: AddressSpace,
    public gen: SimCode<unknown>,
    public startFn: SimFunction,
    public startArgs: readonly unknown[],
  ) {}

  get name(): string {
    return `T${this.id}`;
  }
}

/** A generator frame set aside while a signal handler runs on the thread, with its pending operation. */
export interface SavedFrame {
  readonly gen: SimCode<unknown>;
  readonly op: number;
  readonly size: number;
  readonly a0: number;
  readonly a1: number;
  readonly a2: number;
  readonly b1: bigint;
  readonly b2: bigint;
  readonly obj: unknown;
  readonly args: unknown[] | null;
  readonly sites: SourceSite[] | null;
}

/** History marker: the kernel made the thread's code jump (an rseq abort) with this error. */
export class Redirect {
  constructor(readonly error: Error) {}
}

/** History marker: a signal handler frame started here (fn called with args). */
export class HandlerStart {
  constructor(
    readonly fn: SimFunction,
    readonly args: readonly unknown[],
  ) {}
}
