import type { RseqBehaviour } from './rseq.ts';

/**
 * Kernel profiles: the behaviours that changed between Linux versions, as data. Each field
 * names the version and source that changed it; code reads the field, never a version number.
 */

/** Costs in simulated nanoseconds (see probes/fork-pid/getpid_cost.c for where they come from). */
export interface CostModel {
  /** A plain memory operation (load, store) that hits the cache. */
  readonly memOpNs: number;
  /** A cheap system call's round trip: getpid, gettid, getppid (measured on this machine). */
  readonly syscallNs: number;
  /** Extra cost per page copied by fork (dup_mmap + copy_page_range). */
  readonly forkPageNs: number;
  /** Fixed cost of fork/clone beyond the syscall (copy_process). */
  readonly cloneNs: number;
  /** A context switch (sched_yield to another thread on the CPU), beyond the syscall. */
  readonly contextSwitchNs: number;
  /**
   * rseq's work on a return to user space after a switch: the ID stores and the rseq_cs read,
   * each a user access with STAC/CLAC toggling (what 6.19 removed).
   */
  readonly rseqUpdateNs: number;
}

export interface KernelProfile {
  readonly name: string;
  readonly version: string;
  /**
   * unshare(CLONE_NEWPID) implies CLONE_THREAD (so a multithreaded caller gets EINVAL): true in
   * 3.8/3.9, false in modern kernels (kernel/fork.c ksys_unshare; reference fork-pid.md 1.5).
   */
  readonly unshareNewpidImpliesThread: boolean;
  /** MADV_WIPEONFORK exists (Linux 4.14, commit d2cd9ede6e19 "mm,fork: introduce MADV_WIPEONFORK"). */
  readonly madvWipeOnFork: boolean;
  /** Order in which fork copies pages: ascending as dup_mmap walks VMAs, or any order (explored). */
  readonly forkPageOrder: 'ascending' | 'any';
  /**
   * rseq's return-to-user behaviour (reference rseq.md 3.1), null before rseq (4.18):
   * 'classic' up to 6.18; 'opt' 6.19 (Gleixner's rework: IDs written only when they change);
   * 'fix' the 2026 series (P-revert + P-v2): 32-byte registrations get classic, longer ones opt.
   */
  readonly rseq: RseqBehaviour | null;
  /** AT_RSEQ_FEATURE_SIZE: 28 for 6.3-6.19, 33 from 7.0 (P-33). */
  readonly rseqFeatureSize: number;
  /** AT_RSEQ_ALIGN: 32 before 7.0, 64 from 7.0 (P-33). */
  readonly rseqAlign: number;
  /** Registration reads rseq_cs and clears it (P-cs0, 2025; probes/rseq errors: EFAULT). */
  readonly rseqClearCsOnRegister: boolean;
  readonly costs: CostModel;
}

/**
 * Costs measured on this machine (Linux 6.18, x86-64 VM, glibc 2.36) by
 * probes/fork-pid/getpid_cost.c over 10M calls: getpid() 162 ns, syscall(SYS_getpid) 163 ns,
 * gettid() 154 ns, a volatile int read 0.7 ns, systemd's cached getpid 1.4 ns. Fork costs are
 * round figures (not measured) and only matter for absolute times, never for the ratios reported.
 *
 * Context switches and rseq: probes/rseq/switch_cost.c, two threads pinned to one CPU taking
 * turns with sched_yield, 2M yields, three runs each way: 2074 ns per yield round trip with
 * glibc's rseq registration, 1779 ns without (GLIBC_TUNABLES=glibc.pthread.rseq=0). A round
 * trip is two yields, two switches and two rseq updates: 890 ns per yield and switch (160 of it
 * the syscall), 148 ns per rseq update.
 */
export const MEASURED_COSTS: CostModel = {
  memOpNs: 1,
  syscallNs: 160,
  forkPageNs: 50,
  cloneNs: 20_000,
  contextSwitchNs: 730,
  rseqUpdateNs: 148,
};

const MODERN = {
  unshareNewpidImpliesThread: false,
  madvWipeOnFork: true,
  forkPageOrder: 'ascending',
  rseqClearCsOnRegister: true,
  costs: MEASURED_COSTS,
} as const;

export const KERNEL_PROFILES: Readonly<Record<string, KernelProfile>> = {
  '3.8': {
    ...MODERN,
    name: 'linux-3.8',
    version: '3.8',
    unshareNewpidImpliesThread: true,
    madvWipeOnFork: false,
    rseq: null,
    rseqFeatureSize: 0,
    rseqAlign: 0,
    rseqClearCsOnRegister: false,
  },
  '6.18': { ...MODERN, name: 'linux-6.18', version: '6.18', rseq: 'classic', rseqFeatureSize: 28, rseqAlign: 32 },
  '6.19': { ...MODERN, name: 'linux-6.19', version: '6.19', rseq: 'opt', rseqFeatureSize: 28, rseqAlign: 32 },
  '7.1': { ...MODERN, name: 'linux-7.1', version: '7.1', rseq: 'fix', rseqFeatureSize: 33, rseqAlign: 64 },
};

export const DEFAULT_KERNEL = '6.18';

export function kernelProfile(version: string): KernelProfile {
  const p = KERNEL_PROFILES[version];
  if (!p) throw new Error(`unknown kernel profile '${version}' (known: ${Object.keys(KERNEL_PROFILES).join(', ')})`);
  return p;
}
