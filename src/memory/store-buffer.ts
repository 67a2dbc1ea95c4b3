/**
 * A thread's store buffer for the TSO and PSO memory models (Sewell et al., "x86-TSO", CACM 2010,
 * fig. 2: a FIFO buffer per hardware thread, loads forward from the newest own store to the same
 * bytes; SPARC PSO, SPARC V9 manual D.5: stores to different locations may leave out of order).
 *
 * Entries are parallel typed arrays, oldest first, so that buffering a store allocates nothing.
 * A value is kept as two 32-bit halves so that 64-bit stores are exact.
 */
import type { AddressSpace } from './address-space.ts';

/** Entries a buffer holds before the oldest is forced out (real buffers are small too). */
export const STORE_BUFFER_CAPACITY = 32;

export class StoreBuffer {
  count = 0;
  readonly addr = new Float64Array(STORE_BUFFER_CAPACITY);
  readonly size = new Uint8Array(STORE_BUFFER_CAPACITY);
  readonly lo = new Uint32Array(STORE_BUFFER_CAPACITY);
  readonly hi = new Uint32Array(STORE_BUFFER_CAPACITY);

  /** Append a store; the caller has made room (see {@link isFull}). */
  push(addr: number, size: number, lo: number, hi: number): void {
    const i = this.count++;
    this.addr[i] = addr;
    this.size[i] = size;
    this.lo[i] = lo;
    this.hi[i] = hi;
  }

  isFull(): boolean {
    return this.count === STORE_BUFFER_CAPACITY;
  }

  /** True when entry i may reach memory now: no older entry touches the same bytes (PSO). */
  drainable(i: number): boolean {
    const a = this.addr[i]!;
    const e = a + this.size[i]!;
    for (let j = 0; j < i; j++) {
      const b = this.addr[j]!;
      if (b < e && a < b + this.size[j]!) return false;
    }
    return true;
  }

  /** Write entry i to memory and remove it. */
  drain(i: number, mem: AddressSpace): void {
    const a = this.addr[i]!;
    const s = this.size[i]!;
    if (s === 8) {
      mem.store(a, 4, this.lo[i]!);
      mem.store(a + 4, 4, this.hi[i]!);
    } else mem.store(a, s, this.lo[i]!);
    const n = --this.count;
    for (let j = i; j < n; j++) {
      this.addr[j] = this.addr[j + 1]!;
      this.size[j] = this.size[j + 1]!;
      this.lo[j] = this.lo[j + 1]!;
      this.hi[j] = this.hi[j + 1]!;
    }
  }

  /** Drain everything, oldest first (a fence, or a locked read-modify-write). */
  flush(mem: AddressSpace): void {
    while (this.count > 0) this.drain(0, mem);
  }

  /** True when the newest entry touching [addr, addr+size) covers it exactly (the load never reaches memory). */
  forwardsWhole(addr: number, size: number): boolean {
    const end = addr + size;
    for (let j = this.count - 1; j >= 0; j--) {
      const b = this.addr[j]!;
      if (b < end && addr < b + this.size[j]!) return b === addr && this.size[j] === size;
    }
    return false;
  }

  /** Discard all entries (the thread's process is gone). */
  clear(): void {
    this.count = 0;
  }

  /**
   * Read `size` bytes at addr as this thread sees them: each byte from the newest buffered store
   * covering it, else from memory. Result in out[0] (low 32 bits) and out[1] (high 32 bits).
   */
  readThrough(mem: AddressSpace, addr: number, size: number, out: Uint32Array): void {
    const end = addr + size;
    let newest = -1;
    for (let j = this.count - 1; j >= 0; j--) {
      const b = this.addr[j]!;
      if (b < end && addr < b + this.size[j]!) {
        newest = j;
        break;
      }
    }
    if (newest >= 0 && this.addr[newest] === addr && this.size[newest] === size) {
      out[0] = this.lo[newest]!;
      out[1] = this.hi[newest]!;
      return;
    }
    if (newest < 0) {
      if (size === 8) {
        out[0] = mem.load(addr, 4);
        out[1] = mem.load(addr + 4, 4);
      } else {
        out[0] = mem.load(addr, size);
        out[1] = 0;
      }
      return;
    }
    let lo = 0;
    let hi = 0;
    for (let k = size - 1; k >= 0; k--) {
      const byte = this.byteAt(mem, addr + k);
      if (k >= 4) hi = hi * 256 + byte;
      else lo = lo * 256 + byte;
    }
    out[0] = lo;
    out[1] = hi;
  }

  private byteAt(mem: AddressSpace, a: number): number {
    for (let j = this.count - 1; j >= 0; j--) {
      const b = this.addr[j]!;
      const off = a - b;
      if (off >= 0 && off < this.size[j]!) {
        const word = off < 4 ? this.lo[j]! : this.hi[j]!;
        return (word >>> ((off & 3) * 8)) & 0xff;
      }
    }
    return mem.load(a, 1);
  }
}
