/**
 * Early adopters of rseq and the coexistence protocols of seed 001 (libc-alpha/LKML 2020, "Rseq
 * registration: Google tcmalloc vs glibc"; reference rseq.md 6). The kernel takes one
 * registration per thread, so libraries that share the `__rseq_abi` TLS symbol must agree who
 * registers it and who may unregister it:
 *
 * - refcount: `__rseq_refcount` counts users; the first registers, the last unregisters
 *   (librseq src/rseq.c before 2021, rseq_register_current_thread);
 * - handled: `__rseq_handled` says "someone registered"; a library that sees it set uses the
 *   area without counting, and the one that registered unregisters when it goes;
 * - uninit: register only if `__rseq_abi.cpu_id == RSEQ_CPU_ID_UNINITIALIZED`, never unregister
 *   (Desnoyers's rule for early adopters);
 * - glibc: since glibc 2.35, use glibc's area (thread pointer + __rseq_offset) when
 *   __rseq_size > 0, else register as `uninit` does (librseq since 2022).
 *
 * A library "relies" on an area when it believes the area registered; relying on an area the
 * kernel no longer has is the failure the protocols exist to prevent.
 */
import { load32, store32, type SimCode } from '../../engine/ops.ts';
import { RSEQ, RSEQ_CPU_ID_REGISTRATION_FAILED, RSEQ_FLAG_UNREGISTER, RSEQ_SIG, sysRseq } from '../../kernel/rseq.ts';
import type { Glibc } from '../../libc/glibc.ts';

export type Protocol = 'refcount' | 'handled' | 'uninit' | 'glibc';
export const PROTOCOLS: readonly Protocol[] = ['refcount', 'handled', 'uninit', 'glibc'];

/** The shared symbols, per thread (__rseq_abi, __rseq_refcount) and per process (__rseq_handled). */
export interface SharedRseq {
  /** This thread's `__rseq_abi` (32 bytes, aligned 32). */
  readonly abi: number;
  readonly refcount: number;
  readonly handled: number;
}

/** What a library ends up using for this thread. */
export const USES_NONE = 0;
export const USES_SHARED = 1;
export const USES_GLIBC = 2;

export class EarlyAdopter {
  constructor(
    readonly name: string,
    readonly protocol: Protocol,
    readonly shared: SharedRseq,
    readonly libc: Glibc,
    /** Where the library remembers what it uses (one u32: USES_*) and whether it registered. */
    readonly state: { uses: number; registered: number },
  ) {}

  /** rseq_register_current_thread: returns USES_* (USES_NONE: slow path). */
  *register(): SimCode<number> {
    const { abi, refcount, handled } = this.shared;
    let uses = USES_NONE;
    switch (this.protocol) {
      case 'refcount': {
        const n: number = yield load32(refcount);
        yield store32(refcount, n + 1);
        if (n > 0) {
          uses = USES_SHARED;
          break;
        }
        const r: number = yield sysRseq(abi, 32, 0, RSEQ_SIG);
        if (r === 0) {
          uses = USES_SHARED;
          yield store32(this.state.registered, 1);
        } else yield store32(refcount, n);
        break;
      }
      case 'handled': {
        if ((yield load32(handled)) !== 0) {
          uses = USES_SHARED;
          break;
        }
        const r: number = yield sysRseq(abi, 32, 0, RSEQ_SIG);
        if (r === 0) {
          uses = USES_SHARED;
          yield store32(handled, 1);
          yield store32(this.state.registered, 1);
        }
        break;
      }
      case 'glibc':
      case 'uninit': {
        if (this.protocol === 'glibc' && this.libc.rseqSize > 0 && (yield* this.libc.rseqRegistered())) {
          uses = USES_GLIBC;
          break;
        }
        // No glibc registration: behave as an early adopter.
        const cpu: number = yield load32(abi + RSEQ.CPU_ID);
        if ((cpu | 0) >= 0) {
          uses = USES_SHARED;
          break;
        }
        if ((cpu | 0) === RSEQ_CPU_ID_REGISTRATION_FAILED) break;
        const r: number = yield sysRseq(abi, 32, 0, RSEQ_SIG);
        if (r === 0) uses = USES_SHARED;
        else yield store32(abi + RSEQ.CPU_ID, RSEQ_CPU_ID_REGISTRATION_FAILED >>> 0);
        break;
      }
    }
    yield store32(this.state.uses, uses);
    return uses;
  }

  /** rseq_unregister_current_thread, as the library's destructor (dlclose) runs it. */
  *unregister(): SimCode {
    const { abi, refcount, handled } = this.shared;
    const uses: number = yield load32(this.state.uses);
    yield store32(this.state.uses, USES_NONE);
    if (uses !== USES_SHARED) return;
    switch (this.protocol) {
      case 'refcount': {
        const n: number = yield load32(refcount);
        yield store32(refcount, n - 1);
        if (n - 1 === 0) yield sysRseq(abi, 32, RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
        break;
      }
      case 'handled':
        if ((yield load32(this.state.registered)) !== 0) {
          yield sysRseq(abi, 32, RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
          yield store32(handled, 0);
        }
        break;
      case 'uninit':
      case 'glibc':
        break; // never unregisters: the kernel stops at thread exit
    }
  }
}
