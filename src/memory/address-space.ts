/**
 * A sparse address space of 4 KiB pages (Linux's mm_struct reduced to a page table): map, unmap,
 * protect, little-endian loads and stores of 8 to 64 bits, faults as {@link SimFault}, and
 * copy-on-write duplication for fork (kernel/fork.c dup_mmap, mm/memory.c copy_page_range).
 *
 * The hot path is load/store: one page-number compare against a one-entry cache per direction,
 * then a DataView access. Accesses that straddle a page go byte by byte.
 */
import { fmix32, type Hasher } from './fingerprint.ts';
import { Page, Pte, SimFault, PAGE_SIZE, PROT_READ, PROT_WRITE, VM_DONTCOPY, VM_SHARED, VM_WIPEONFORK } from './page.ts';

const TWO32 = 4294967296;
/** Largest value of the high word for which a 64-bit pointer is still a safe JS integer. */
const SAFE_HI = 0x200000;

/**
 * The zero page (mm/memory.c do_anonymous_page maps ZERO_PAGE for a read fault): private
 * anonymous mappings start on it, and the first write gives them a frame of their own. Most
 * mapped memory of a run is never written; this saves allocating and collecting it.
 */
const ZERO_PAGE = new Page();
ZERO_PAGE.mappers = Number.MAX_SAFE_INTEGER;

/** A page-table entry's share of its space's fingerprint (stored on the entry: ca, cb). */
function contribution(pn: number, pte: Pte): void {
  const page = pte.page;
  if (!page.hashed) page.rehash();
  const x = fmix32(Math.imul(pn, 0x9e3779b1) ^ page.h1 ^ Math.imul(pte.prot + 1, 0x01000193) ^ pte.flags ^ Math.imul(pte.gen, 0x85ebca6b));
  pte.ca = x;
  pte.cb = fmix32(x ^ page.h2 ^ Math.imul(pn, 0xcc9e2d51));
}

export class AddressSpace {
  private readonly ptes = new Map<number, Pte>();
  /**
   * Pages write-protected by a fork in progress (their copy for the child is taken): writers
   * stall until the fork ends. Null when no fork is copying this space.
   */
  frozen: Set<number> | null = null;
  private nextGen = 1;
  private rPn = -1;
  private rPage: Page | null = null;
  private wPn = -1;
  private wPage: Page | null = null;
  /** Fingerprint upkeep (hashInto): the sums so far, pages written since, whether the layout changed. */
  private fingerprinted = false;
  private layoutChanged = true;
  private sumA = 0;
  private sumB = 0;
  private readonly dirty: number[] = [];
  private sharedPns: number[] = [];

  /** Map [addr, addr+len) with fresh zeroed pages (mmap MAP_ANONYMOUS; VM_SHARED for MAP_SHARED). */
  map(addr: number, len: number, prot: number, flags = 0): void {
    this.checkRange(addr, len);
    for (let pn = addr / PAGE_SIZE, end = Math.ceil((addr + len) / PAGE_SIZE); pn < end; pn++) {
      this.drop(pn);
      this.ptes.set(pn, new Pte(flags & VM_SHARED ? new Page() : ZERO_PAGE, prot, flags, this.nextGen++));
    }
    this.layoutChanged = true;
    this.invalidate();
  }

  /**
   * The mapping generation of the page holding addr (undefined when unmapped): it changes when
   * the page is unmapped and mapped again, so a saved generation tells whether memory someone
   * holds on to was freed and reused meanwhile.
   */
  generationAt(addr: number): number | undefined {
    return this.ptes.get(Math.floor(addr / PAGE_SIZE))?.gen;
  }

  /** VMA flags of the page holding addr, or undefined when unmapped. */
  flagsAt(addr: number): number | undefined {
    return this.ptes.get(Math.floor(addr / PAGE_SIZE))?.flags;
  }

  /** Set and clear VMA flags on the mapped pages of [addr, addr+len) (madvise). */
  updateFlags(addr: number, len: number, set: number, clear: number): void {
    for (let pn = Math.floor(addr / PAGE_SIZE), end = Math.ceil((addr + len) / PAGE_SIZE); pn < end; pn++) {
      const pte = this.ptes.get(pn);
      if (pte) pte.flags = (pte.flags | set) & ~clear;
    }
    this.layoutChanged = true;
  }

  /**
   * One page of fork's copy (kernel/fork.c dup_mmap, mm/memory.c copy_page_range): shared
   * mappings share the frame, VM_WIPEONFORK gives the child a zero page (flag kept), VM_DONTCOPY
   * is not mapped in the child, anything else is shared copy-on-write.
   */
  forkPage(into: AddressSpace, pn: number): void {
    const pte = this.ptes.get(pn);
    if (!pte || pte.flags & VM_DONTCOPY) return;
    into.drop(pn);
    if (pte.flags & VM_WIPEONFORK) into.ptes.set(pn, new Pte(pte.flags & VM_SHARED ? new Page() : ZERO_PAGE, pte.prot, pte.flags, pte.gen));
    else {
      pte.page.mappers++;
      into.ptes.set(pn, new Pte(pte.page, pte.prot, pte.flags, pte.gen));
    }
    into.layoutChanged = true;
    into.invalidate();
    this.invalidate();
  }

  /** Unmap [addr, addr+len) (munmap). Unmapped holes are not an error, as in Linux. */
  unmap(addr: number, len: number): void {
    this.checkRange(addr, len);
    for (let pn = addr / PAGE_SIZE, end = Math.ceil((addr + len) / PAGE_SIZE); pn < end; pn++) this.drop(pn);
    this.invalidate();
  }

  /** Change protection of [addr, addr+len) (mprotect); false when part of it is unmapped (ENOMEM). */
  protect(addr: number, len: number, prot: number): boolean {
    this.checkRange(addr, len);
    const end = Math.ceil((addr + len) / PAGE_SIZE);
    for (let pn = addr / PAGE_SIZE; pn < end; pn++) if (!this.ptes.has(pn)) return false;
    for (let pn = addr / PAGE_SIZE; pn < end; pn++) this.ptes.get(pn)!.prot = prot;
    this.layoutChanged = true;
    this.invalidate();
    return true;
  }

  /** The protection of the page holding addr, or undefined when unmapped. */
  protectionAt(addr: number): number | undefined {
    return this.ptes.get(Math.floor(addr / PAGE_SIZE))?.prot;
  }

  /**
   * Mix this space into a state fingerprint (engine/state-hash.ts): each page's number,
   * protection, flags, mapping generation and bytes, summed so that the map's order does not
   * matter, and the pages a fork in progress froze. Forgets the cached write page, so that the
   * next write to any page marks it for rehashing.
   */
  hashInto(h: Hasher): void {
    if (this.layoutChanged || !this.fingerprinted) {
      let a = 0;
      let b = 0;
      const shared: number[] = [];
      for (const [pn, pte] of this.ptes) {
        contribution(pn, pte);
        a = (a + pte.ca) | 0;
        b = (b + pte.cb) | 0;
        if (pte.flags & VM_SHARED) shared.push(pn);
      }
      this.sumA = a;
      this.sumB = b;
      this.sharedPns = shared;
      this.layoutChanged = false;
      this.fingerprinted = true;
    } else {
      // Only pages written since (writePage lists them) and shared ones (another space may have written them).
      for (const list of [this.dirty, this.sharedPns]) {
        for (const pn of list) {
          const pte = this.ptes.get(pn);
          if (pte === undefined) continue;
          this.sumA = (this.sumA - pte.ca) | 0;
          this.sumB = (this.sumB - pte.cb) | 0;
          contribution(pn, pte);
          this.sumA = (this.sumA + pte.ca) | 0;
          this.sumB = (this.sumB + pte.cb) | 0;
        }
      }
    }
    this.dirty.length = 0;
    h.word(this.ptes.size);
    h.word(this.sumA);
    h.word(this.sumB);
    const frozen = this.frozen;
    if (frozen !== null) {
      let f = 0;
      for (const pn of frozen) f = (f + fmix32(pn ^ 0x2f0b3a49)) | 0;
      h.word(frozen.size);
      h.word(f);
    }
    this.invalidate();
  }

  /** Page numbers mapped, in ascending order (fork copies in this order unless told otherwise). */
  mappedPages(): number[] {
    return [...this.ptes.keys()].sort((a, b) => a - b);
  }

  /** A copy-on-write duplicate of the whole space (the child's mm after dup_mmap). */
  fork(): AddressSpace {
    const child = new AddressSpace();
    for (const [pn, pte] of this.ptes) this.sharePageInto(child, pn, pte);
    return child;
  }

  /** Share one page of this space into another, copy-on-write (one step of a page-by-page fork). */
  sharePage(into: AddressSpace, pn: number): void {
    const pte = this.ptes.get(pn);
    if (pte) this.sharePageInto(into, pn, pte);
  }

  private sharePageInto(child: AddressSpace, pn: number, pte: Pte): void {
    child.drop(pn);
    pte.page.mappers++;
    child.ptes.set(pn, new Pte(pte.page, pte.prot, pte.flags, pte.gen));
    child.layoutChanged = true;
    child.invalidate();
    this.invalidate();
  }

  private drop(pn: number): void {
    const pte = this.ptes.get(pn);
    if (pte) {
      pte.page.mappers--;
      this.ptes.delete(pn);
      this.layoutChanged = true;
    }
  }

  private invalidate(): void {
    this.rPn = -1;
    this.rPage = null;
    this.wPn = -1;
    this.wPage = null;
  }

  private checkRange(addr: number, len: number): void {
    if (!Number.isSafeInteger(addr) || addr % PAGE_SIZE !== 0 || !(len > 0)) {
      throw new RangeError(`bad mapping range 0x${addr.toString(16)}+${len}`);
    }
  }

  private readPage(pn: number, addr: number): Page {
    const pte = this.ptes.get(pn);
    if (!pte) throw new SimFault(addr, 'read', 'SEGV_MAPERR');
    if (!(pte.prot & PROT_READ)) throw new SimFault(addr, 'read', 'SEGV_ACCERR');
    this.rPn = pn;
    this.rPage = pte.page;
    return pte.page;
  }

  private writePage(pn: number, addr: number): Page {
    const pte = this.ptes.get(pn);
    if (!pte) throw new SimFault(addr, 'write', 'SEGV_MAPERR');
    if (!(pte.prot & PROT_WRITE)) throw new SimFault(addr, 'write', 'SEGV_ACCERR');
    if (pte.page === ZERO_PAGE) pte.page = new Page();
    else if (pte.page.mappers > 1 && !(pte.flags & VM_SHARED)) {
      pte.page.mappers--;
      pte.page = new Page(pte.page);
    }
    pte.page.hashed = false;
    if (this.fingerprinted) this.dirty.push(pn);
    this.wPn = pn;
    this.wPage = pte.page;
    if (this.rPn === pn) this.rPage = pte.page;
    return pte.page;
  }

  /** False while [addr, addr+size) touches a page frozen by a fork in progress. */
  mayWrite(addr: number, size: number): boolean {
    const f = this.frozen;
    return f === null || (!f.has(Math.floor(addr / PAGE_SIZE)) && !f.has(Math.floor((addr + size - 1) / PAGE_SIZE)));
  }

  /** Fault now if [addr, addr+size) could not be written (a store that goes to a store buffer). */
  checkWritable(addr: number, size: number): void {
    for (let a = addr; a < addr + size; a = (Math.floor(a / PAGE_SIZE) + 1) * PAGE_SIZE) {
      const pte = this.ptes.get(Math.floor(a / PAGE_SIZE));
      if (!pte) throw new SimFault(a, 'write', 'SEGV_MAPERR');
      if (!(pte.prot & PROT_WRITE)) throw new SimFault(a, 'write', 'SEGV_ACCERR');
    }
  }

  /** Load `size` bytes (1, 2 or 4) as an unsigned number. */
  load(addr: number, size: number): number {
    const pn = Math.floor(addr / PAGE_SIZE);
    const off = addr - pn * PAGE_SIZE;
    if (off + size > PAGE_SIZE) return this.loadStraddling(addr, size);
    const page = pn === this.rPn ? this.rPage! : this.readPage(pn, addr);
    const v = page.view;
    return size === 4 ? v.getUint32(off, true) : size === 1 ? v.getUint8(off) : v.getUint16(off, true);
  }

  /** Store the low `size` bytes (1, 2 or 4) of an unsigned number. */
  store(addr: number, size: number, value: number): void {
    const pn = Math.floor(addr / PAGE_SIZE);
    const off = addr - pn * PAGE_SIZE;
    if (off + size > PAGE_SIZE) return this.storeStraddling(addr, size, value);
    const page = pn === this.wPn ? this.wPage! : this.writePage(pn, addr);
    const v = page.view;
    if (size === 4) v.setUint32(off, value, true);
    else if (size === 1) v.setUint8(off, value);
    else v.setUint16(off, value, true);
  }

  /** Load 64 bits as two 32-bit halves into out[0] (low) and out[1] (high). */
  load64Halves(addr: number, out: Uint32Array): void {
    out[0] = this.load(addr, 4);
    out[1] = this.load(addr + 4, 4);
  }

  /** Load 64 bits exactly. */
  load64(addr: number): bigint {
    return BigInt(this.load(addr, 4)) | (BigInt(this.load(addr + 4, 4)) << 32n);
  }

  /** Store 64 bits exactly. */
  store64(addr: number, value: bigint): void {
    this.store(addr, 4, Number(value & 0xffffffffn));
    this.store(addr + 4, 4, Number((value >> 32n) & 0xffffffffn));
  }

  /** Load a 64-bit pointer as a number; throws RangeError past 2^53 (use load64 there). */
  loadPtr(addr: number): number {
    const lo = this.load(addr, 4);
    const hi = this.load(addr + 4, 4);
    if (hi >= SAFE_HI) throw new RangeError(`64-bit value at 0x${addr.toString(16)} is not a safe integer pointer`);
    return hi * TWO32 + lo;
  }

  /** Store a non-negative safe integer as a 64-bit little-endian pointer. */
  storePtr(addr: number, value: number): void {
    this.store(addr, 4, value % TWO32);
    this.store(addr + 4, 4, Math.floor(value / TWO32));
  }

  /** Read raw bytes (for probes, reports and fork); faults like loads do. */
  readBytes(addr: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    for (let i = 0; i < len; i++) out[i] = this.load(addr + i, 1);
    return out;
  }

  /** Write raw bytes; faults like stores do. */
  writeBytes(addr: number, bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i++) this.store(addr + i, 1, bytes[i]!);
  }

  private loadStraddling(addr: number, size: number): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.load(addr + i, 1);
    return v;
  }

  private storeStraddling(addr: number, size: number, value: number): void {
    for (let i = 0; i < size; i++) {
      this.store(addr + i, 1, value & 0xff);
      value = Math.floor(value / 256);
    }
  }
}
