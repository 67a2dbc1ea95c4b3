/**
 * TCMalloc's per-CPU caches (tcmalloc/internal/percpu.{h,cc}, percpu_tcmalloc.h,
 * percpu_rseq_x86_64.S; reference rseq.md 5), reduced to one size class:
 *
 * - its own registration (InitThreadPerCpu): `__rseq_abi` in its TLS, 32 bytes, signature
 *   0x53053053; when the kernel refuses (glibc already registered another area: EINVAL) the
 *   thread's cpu_id is set to -2 and every allocation takes the slow path (the central list);
 * - the overlay: the 8-byte `tcmalloc_slabs` ends at __rseq_abi.cpu_id_start, so bit 63 of the
 *   cached slab pointer is bit 31 of cpu_id_start. Any kernel write of a CPU number clears it,
 *   which sends the thread to the slow path (CacheCpuSlabSlow), which checks `stopped[cpu]`;
 * - push (free) and pop (malloc) as rseq critical sections whose last instruction is the commit
 *   store of the slab's `current`; an abort restarts them;
 * - a drain of one CPU's slab by another thread: StopCpu, FenceCpu (membarrier RSEQ IPI),
 *   move the objects to the central list, start the CPU again. The drain is safe only if every
 *   thread that cached that CPU's slab pointer finds the cache invalid afterwards.
 *
 * Left out: size classes, capacity resizing, the sampler, vCPU (mm_cid) mode, the transfer cache.
 */
import { lllLock, lllUnlock } from '../../libc/lowlevellock.ts';
import { at, fence, load32, load64, loadPtr, store32, store64, storePtr, xchg32, type SimCode } from '../../engine/ops.ts';
import { assert } from '../../engine/errors.ts';
import { RSEQ, RSEQ_CS, RSEQ_SIG, RseqAbort, sysRseq, membarrier, MEMBARRIER_CMD_FLAG_CPU, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ } from '../../kernel/rseq.ts';
import { PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE } from '../../memory/page.ts';
import type { Setup } from '../../scenario/memory-view.ts';

/** TCMalloc's TLS block, relative to its 64-byte aligned base B (percpu_rseq_asm.S). */
const TLS = { CACHED_VCPU: 88, SLABS: 92, RSEQ_ABI: 96, SIZE: 128 } as const;
const CACHED_SLABS_BIT = 1n << 63n;
const CPU_ID_UNINITIALIZED = 0xffffffff;
const CPU_ID_UNSUPPORTED = 0xfffffffe; // -2: kCpuIdUnsupported

/** Slab of one CPU: current (u32) then CAPACITY object pointers. */
const SLAB = { CURRENT: 0, OBJS: 8 } as const;
export const CAPACITY = 4;
const SLAB_SIZE = 64;

/** Where TCMalloc's text lives; the critical sections' addresses are real numbers in it. */
const TEXT = 0x500000;
const CS = {
  push: { start: TEXT + 0x100, length: 0x40, abort: TEXT + 0x180 },
  pop: { start: TEXT + 0x200, length: 0x40, abort: TEXT + 0x280 },
  cache: { start: TEXT + 0x300, length: 0x40, abort: TEXT + 0x380 },
} as const;

export class Tcmalloc {
  readonly objects: number[] = [];
  private readonly heap: number;
  private readonly slabs: number;
  private readonly stopped: number;
  private readonly central: number;
  private readonly centralLock: number;
  /** One flag per object: 1 while the program holds it (the invariant's bookkeeping). */
  readonly live: number;
  private readonly desc: { push: number; pop: number; cache: number };
  /** Process-wide mode: 0 unknown, 1 fast (per-CPU), 2 slow. */
  private readonly mode: number;

  constructor(
    m: Setup,
    readonly cpus: number,
    objectCount: number,
  ) {
    this.heap = m.alloc(objectCount * 64, 64);
    for (let i = 0; i < objectCount; i++) this.objects.push(this.heap + i * 64);
    this.slabs = m.alloc(cpus * SLAB_SIZE, 64);
    this.stopped = m.alloc(4 * cpus);
    this.centralLock = m.alloc(4);
    this.central = m.alloc(8 + 8 * objectCount);
    this.live = m.alloc(4 * objectCount);
    this.mode = m.alloc(4);
    // Every object starts in the central free list.
    m.write32(this.central, objectCount);
    this.objects.forEach((o, i) => m.writePtr(this.central + 8 + 8 * i, o));
    // The text, with the signature before each abort handler, and the rseq_cs descriptors.
    m.map(TEXT, PAGE_SIZE, PROT_READ | PROT_WRITE);
    const desc = m.alloc(3 * RSEQ_CS.SIZE, 32);
    this.desc = { push: desc, pop: desc + 32, cache: desc + 64 };
    for (const [name, cs] of Object.entries(CS) as [keyof typeof CS, (typeof CS)[keyof typeof CS]][]) {
      m.write32(cs.abort - 4, RSEQ_SIG);
      const d = this.desc[name];
      m.writePtr(d + RSEQ_CS.START_IP, cs.start);
      m.writePtr(d + RSEQ_CS.POST_COMMIT_OFFSET, cs.length);
      m.writePtr(d + RSEQ_CS.ABORT_IP, cs.abort);
    }
    m.protect(TEXT, PAGE_SIZE, PROT_READ | PROT_EXEC);
  }

  /** The process-wide mode as the model records it: 'unknown', 'fast' (per-CPU) or 'slow'. */
  modeOf(read32: (a: number) => number): 'unknown' | 'fast' | 'slow' {
    return (['unknown', 'fast', 'slow'] as const)[read32(this.mode)] ?? 'unknown';
  }

  /** TCMalloc's TLS block of a thread whose thread pointer (glibc's descriptor) is `self`. */
  tlsOf(self: number): number {
    return self - 256;
  }

  private slabOf(cpu: number): number {
    return this.slabs + cpu * SLAB_SIZE;
  }

  /** The TLS initial image: cpu_id = -1 (kCpuIdUninitialized), cached_vcpu = -1. */
  *threadInit(tls: number): SimCode {
    yield store32(tls + TLS.RSEQ_ABI + RSEQ.CPU_ID, CPU_ID_UNINITIALIZED);
    yield store32(tls + TLS.CACHED_VCPU, CPU_ID_UNINITIALIZED);
  }

  /**
   * IsFast / InitFastPerCpu / InitThreadPerCpu: register __rseq_abi with the kernel unless done;
   * a refusal makes the thread (and, the first time, the process) use the slow path.
   */
  private *isFast(tls: number): SimCode<boolean> {
    const abi = tls + TLS.RSEQ_ABI;
    const cpu: number = yield load32(abi + RSEQ.CPU_ID);
    if (cpu === CPU_ID_UNSUPPORTED) return false;
    if (cpu !== CPU_ID_UNINITIALIZED) return true;
    const mode: number = yield load32(this.mode);
    if (mode === 2) {
      yield store32(abi + RSEQ.CPU_ID, CPU_ID_UNSUPPORTED);
      return false;
    }
    const r: number = yield sysRseq(abi, 32, 0, RSEQ_SIG);
    if (r !== 0) {
      assert(mode !== 1, 'TCMalloc: rseq registration failed in a later thread (TC_CHECK)');
      yield store32(this.mode, 2);
      yield store32(abi + RSEQ.CPU_ID, CPU_ID_UNSUPPORTED);
      return false;
    }
    if (mode === 0) {
      yield store32(this.mode, 1);
      yield membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0, 0);
    }
    return true;
  }

  /** malloc for the one size class; the live-flag exchange is the invariant's check. */
  *malloc(tls: number): SimCode<number> {
    let p = 0;
    if (yield* this.isFast(tls)) p = yield* this.percpu(tls, 'pop', 0);
    if (p === 0) p = yield* this.centralPop();
    assert(p !== 0, 'TCMalloc model: out of objects');
    const i = (p - this.heap) / 64;
    const old: number = yield xchg32(this.live + 4 * i, 1);
    assert(old === 0, `malloc returned 0x${p.toString(16)}, which is already live`);
    return p;
  }

  *free(tls: number, p: number): SimCode {
    const i = (p - this.heap) / 64;
    yield store32(this.live + 4 * i, 0);
    if ((yield* this.isFast(tls)) && (yield* this.percpu(tls, 'push', p)) !== 0) return;
    yield* this.centralPush(p);
  }

  /**
   * A per-CPU push or pop: the fast path as an rseq critical section, entered through the
   * cached slab pointer, refreshed by CacheCpuSlabSlow when bit 63 is clear. Returns the object
   * (pop) or 1 (push), or 0 when the slab cannot serve it (empty, full, or the CPU stopped).
   */
  private *percpu(tls: number, op: 'push' | 'pop', p: number): SimCode<number> {
    const abi = tls + TLS.RSEQ_ABI;
    const cs = CS[op];
    for (;;) {
      try {
        yield storePtr(abi + RSEQ.RSEQ_CS, this.desc[op]); // START_RSEQ: rseq_cs is left set afterwards
        at(cs.start);
        const slabs: bigint = yield load64(tls + TLS.SLABS);
        if ((slabs & CACHED_SLABS_BIT) === 0n) {
          at(0);
          if (!(yield* this.cacheCpuSlab(tls))) return 0;
          continue;
        }
        const base = Number(slabs & ~CACHED_SLABS_BIT);
        at(cs.start + 8);
        const cur: number = yield load32(base + SLAB.CURRENT);
        if (op === 'pop') {
          if (cur === 0) {
            at(0);
            return 0;
          }
          at(cs.start + 16);
          const obj: number = yield loadPtr(base + SLAB.OBJS + 8 * (cur - 1));
          at(cs.start + 24); // the commit
          yield store32(base + SLAB.CURRENT, cur - 1);
          at(0);
          return obj;
        }
        if (cur >= CAPACITY) {
          at(0);
          return 0;
        }
        at(cs.start + 16);
        yield storePtr(base + SLAB.OBJS + 8 * cur, p);
        at(cs.start + 24); // the commit
        yield store32(base + SLAB.CURRENT, cur + 1);
        at(0);
        return 1;
      } catch (e) {
        if (!(e instanceof RseqAbort)) throw e;
      }
    }
  }

  /**
   * CacheCpuSlabSlow: mark the cache (bit 63, cpu_id_start = 0x80000000), read the CPU, give up
   * when the CPU is stopped, else store the slab pointer in an rseq section that commits only
   * if bit 63 survived (StoreCurrentCpu). Returns false when the per-CPU path cannot be used.
   */
  private *cacheCpuSlab(tls: number): SimCode<boolean> {
    const abi = tls + TLS.RSEQ_ABI;
    for (;;) {
      yield store64(tls + TLS.SLABS, CACHED_SLABS_BIT);
      const cpu: number = yield load32(abi + RSEQ.CPU_ID);
      if ((yield load32(this.stopped + 4 * cpu)) !== 0) {
        yield store64(tls + TLS.SLABS, 0n);
        return false;
      }
      const value = BigInt(this.slabOf(cpu)) | CACHED_SLABS_BIT;
      try {
        yield storePtr(abi + RSEQ.RSEQ_CS, this.desc.cache);
        at(CS.cache.start);
        const now: bigint = yield load64(tls + TLS.SLABS);
        if ((now & CACHED_SLABS_BIT) === 0n) {
          at(0);
          continue;
        }
        at(CS.cache.start + 8); // the commit
        yield store64(tls + TLS.SLABS, value);
        at(0);
        return true;
      } catch (e) {
        if (!(e instanceof RseqAbort)) throw e;
      }
    }
  }

  /** The central list's lock: absl's SpinLock spins, then sleeps on a futex; modelled as the sleeping lock. */
  private *lockCentral(): SimCode {
    yield* lllLock(this.centralLock);
  }

  private *unlockCentral(): SimCode {
    yield* lllUnlock(this.centralLock);
  }

  private *centralPop(): SimCode<number> {
    yield* this.lockCentral();
    const n: number = yield load32(this.central);
    let p = 0;
    if (n > 0) {
      p = yield loadPtr(this.central + 8 * n);
      yield store32(this.central, n - 1);
    }
    yield* this.unlockCentral();
    return p;
  }

  private *centralPush(p: number): SimCode {
    yield* this.lockCentral();
    const n: number = yield load32(this.central);
    yield storePtr(this.central + 8 + 8 * n, p);
    yield store32(this.central, n + 1);
    yield* this.unlockCentral();
  }

  /**
   * Drain `cpu`'s slab into the central list (what a resize or the background thread does):
   * StopCpu, FenceCpu, move the objects, start the CPU again. `tls` is the caller's TLS block:
   * FenceAllCpus also drops the caller's own cached pointer.
   */
  *drainCpu(tls: number, cpu: number): SimCode {
    yield store32(this.stopped + 4 * cpu, 1);
    yield fence();
    yield membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, MEMBARRIER_CMD_FLAG_CPU, cpu);
    yield store64(tls + TLS.SLABS, 0n);
    const base = this.slabOf(cpu);
    yield* this.lockCentral();
    const cur: number = yield load32(base + SLAB.CURRENT);
    let n: number = yield load32(this.central);
    for (let i = 0; i < cur; i++) {
      const o: number = yield loadPtr(base + SLAB.OBJS + 8 * i);
      yield storePtr(this.central + 8 + 8 * n, o);
      n++;
    }
    yield store32(this.central, n);
    yield store32(base + SLAB.CURRENT, 0);
    yield* this.unlockCentral();
    yield fence();
    yield store32(this.stopped + 4 * cpu, 0);
  }

  /**
   * The end-of-run invariant: every object is in exactly one place (held, in a slab, in the
   * central list). Returns a message when it is not.
   */
  accounting(read32: (a: number) => number, readPtr: (a: number) => number): string | null {
    const where = new Map<number, string[]>();
    const note = (p: number, place: string) => where.set(p, [...(where.get(p) ?? []), place]);
    this.objects.forEach((o, i) => {
      if (read32(this.live + 4 * i) === 1) note(o, 'held');
    });
    const n = read32(this.central);
    for (let i = 0; i < n; i++) note(readPtr(this.central + 8 + 8 * i), 'central');
    for (let c = 0; c < this.cpus; c++) {
      const cur = read32(this.slabOf(c) + SLAB.CURRENT);
      for (let i = 0; i < cur; i++) note(readPtr(this.slabOf(c) + SLAB.OBJS + 8 * i), `cpu${c}`);
    }
    for (const o of this.objects) {
      const places = where.get(o) ?? [];
      if (places.length === 0) return `object 0x${o.toString(16)} was lost`;
      if (places.length > 1) return `object 0x${o.toString(16)} is in ${places.join(' and ')}`;
    }
    return null;
  }
}
