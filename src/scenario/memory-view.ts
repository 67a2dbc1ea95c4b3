/**
 * Direct access to simulated memory from outside simulated code: a scenario's setup writes
 * initial values through it, and invariants and final checks read committed memory (what has
 * reached memory, not what sits in store buffers).
 */
import type { AddressSpace } from '../memory/address-space.ts';
import { PAGE_SIZE, PROT_READ, PROT_WRITE } from '../memory/page.ts';
import type { Kernel } from '../kernel/kernel.ts';
import type { Glibc } from '../libc/glibc.ts';

export class MemoryView {
  constructor(protected readonly mem: AddressSpace) {}

  read8(addr: number): number {
    return this.mem.load(addr, 1);
  }
  read16(addr: number): number {
    return this.mem.load(addr, 2);
  }
  read32(addr: number): number {
    return this.mem.load(addr, 4);
  }
  read64(addr: number): bigint {
    return this.mem.load64(addr);
  }
  readPtr(addr: number): number {
    return this.mem.loadPtr(addr);
  }
}

/** Where {@link Setup.alloc} places scenario data: a read-write segment mapped on demand. */
export const DATA_BASE = 0x10000;

/** What a scenario's setup may do: map memory, allocate variables, write initial values. */
export class Setup extends MemoryView {
  private brk = DATA_BASE;
  private mappedTo = DATA_BASE;

  constructor(
    mem: AddressSpace,
    /** The kernel model, when the scenario asked for one. */
    readonly kernel: Kernel | null = null,
    private readonly libc: Glibc | null = null,
  ) {
    super(mem);
  }

  /** The glibc model (scenario option `glibc: true`); simulated code calls it through ctx. */
  get glibc(): Glibc {
    if (this.libc === null) throw new Error('this scenario has no glibc model (add glibc: true)');
    return this.libc;
  }

  /** Allocate `size` zeroed bytes in the data segment, aligned to `align`; returns the address. */
  alloc(size: number, align = 8): number {
    const addr = Math.ceil(this.brk / align) * align;
    this.brk = addr + size;
    if (this.brk > this.mappedTo) {
      const end = Math.ceil(this.brk / PAGE_SIZE) * PAGE_SIZE;
      this.mem.map(this.mappedTo, end - this.mappedTo, PROT_READ | PROT_WRITE);
      this.mappedTo = end;
    }
    return addr;
  }

  /** Map fresh zeroed pages at a page-aligned address with a protection (PROT_* bits). */
  map(addr: number, len: number, prot: number): void {
    this.mem.map(addr, len, prot);
  }

  /** Change the protection of mapped pages. */
  protect(addr: number, len: number, prot: number): void {
    if (!this.mem.protect(addr, len, prot)) throw new RangeError(`protect: 0x${addr.toString(16)}+${len} is not all mapped`);
  }

  write8(addr: number, v: number): void {
    this.mem.store(addr, 1, v & 0xff);
  }
  write16(addr: number, v: number): void {
    this.mem.store(addr, 2, v & 0xffff);
  }
  write32(addr: number, v: number): void {
    this.mem.store(addr, 4, v >>> 0);
  }
  write64(addr: number, v: bigint): void {
    this.mem.store64(addr, BigInt.asUintN(64, v));
  }
  writePtr(addr: number, v: number): void {
    this.mem.storePtr(addr, v);
  }
}
