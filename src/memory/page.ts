/**
 * Physical pages: 4 KiB of little-endian bytes, shared copy-on-write between address spaces
 * (Linux mm/memory.c, do_wp_page: a write to a page with more than one mapper copies it first).
 */
import { fmix32 } from './fingerprint.ts';

export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;

export const PROT_NONE = 0;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;

/** A physical page frame. `mappers` counts the page-table entries that point at it. */
export class Page {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  mappers = 1;
  /**
   * The fingerprint of the bytes (h1, h2), valid while `hashed`: AddressSpace clears it when a
   * write looks the page up, and forgets its cached write page after every fingerprint.
   */
  hashed = false;
  h1 = 0;
  h2 = 0;
  private words: Uint32Array | null = null;

  constructor(copyOf?: Page) {
    this.bytes = copyOf ? copyOf.bytes.slice() : new Uint8Array(PAGE_SIZE);
    this.view = new DataView(this.bytes.buffer);
    if (copyOf === undefined) this.hashed = true; // zero bytes: the fingerprint is 0
    else if (copyOf.hashed) {
      this.hashed = true;
      this.h1 = copyOf.h1;
      this.h2 = copyOf.h2;
    }
  }

  /** Fingerprint the bytes: a sum over non-zero words of a mix of (index, word), so a zero page is 0. */
  rehash(): void {
    const w = (this.words ??= new Uint32Array(this.bytes.buffer));
    let a = 0;
    let b = 0;
    for (let i = 0; i < w.length; i++) {
      const x = w[i]!;
      if (x === 0) continue;
      a = (a + fmix32(Math.imul(i + 1, 0x9e3779b1) ^ x)) | 0;
      b = (b + fmix32(Math.imul(x, 0x85ebca6b) ^ Math.imul(i + 7, 0x27d4eb2f))) | 0;
    }
    this.h1 = a;
    this.h2 = b;
    this.hashed = true;
  }
}

/** VMA flags the fork and madvise models need (include/linux/mm.h). */
export const VM_SHARED = 0x8;
export const VM_DONTCOPY = 0x20000;
export const VM_WIPEONFORK = 0x2000000;

/** A page-table entry: the frame, this mapping's protection and its VMA flags. */
export class Pte {
  constructor(
    public page: Page,
    public prot: number,
    public flags = 0,
    /** Which mapping this is: a new mmap of the page gets a new one; fork and COW keep it. */
    public gen = 0,
  ) {}

  /** This entry's share of its space's fingerprint, as last computed (AddressSpace.hashInto). */
  ca = 0;
  cb = 0;
}

/** Why an access faulted, as the kernel's SIGSEGV si_code would say. */
export type FaultReason = 'SEGV_MAPERR' | 'SEGV_ACCERR';

/** A memory access the address space refused: becomes a simulated SIGSEGV. */
export class SimFault extends Error {
  constructor(
    readonly addr: number,
    readonly access: 'read' | 'write' | 'exec',
    readonly reason: FaultReason,
  ) {
    super(
      `SIGSEGV (${reason}): ${access} at 0x${addr.toString(16)} ` +
        (reason === 'SEGV_MAPERR' ? '(no mapping)' : '(protection)'),
    );
    this.name = 'SimFault';
  }
}
