/**
 * A simulated thread: a generator of operations, its registers for the operation it has issued
 * and not yet performed, and its store buffer. The engine alone advances it.
 */
import type { AddressSpace } from '../memory/address-space.ts';
import { StoreBuffer } from '../memory/store-buffer.ts';
import type { OpRegisters, SimCode } from './ops.ts';
import type { SourceSite } from './source.ts';

export const RUNNING = 0;
export const DONE = 1;

export class SimThread implements OpRegisters {
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
  /** Rolling hash of (operation, result) history, kept while checking determinism. */
  hist = 0;

  constructor(
    /** Creation index within the run: the id simulated code sees. */
    readonly id: number,
    /** A path stable across schedules: "0", "0.1", ... (the n-th child of its parent). */
    readonly path: string,
    readonly cpu: number,
    public mem: AddressSpace,
    readonly gen: SimCode<unknown>,
  ) {}

  get name(): string {
    return `T${this.id}`;
  }
}
