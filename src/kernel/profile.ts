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
  readonly costs: CostModel;
}

/**
 * Costs measured on this machine (Linux 6.18, x86-64 VM, glibc 2.36) by
 * probes/fork-pid/getpid_cost.c over 10M calls: getpid() 162 ns, syscall(SYS_getpid) 163 ns,
 * gettid() 154 ns, a volatile int read 0.7 ns, systemd's cached getpid 1.4 ns. Fork costs are
 * round figures (not measured) and only matter for absolute times, never for the ratios reported.
 */
export const MEASURED_COSTS: CostModel = {
  memOpNs: 1,
  syscallNs: 160,
  forkPageNs: 50,
  cloneNs: 20_000,
};

export const KERNEL_PROFILES: Readonly<Record<string, KernelProfile>> = {
  '3.8': {
    name: 'linux-3.8',
    version: '3.8',
    unshareNewpidImpliesThread: true,
    madvWipeOnFork: false,
    forkPageOrder: 'ascending',
    costs: MEASURED_COSTS,
  },
  '6.18': {
    name: 'linux-6.18',
    version: '6.18',
    unshareNewpidImpliesThread: false,
    madvWipeOnFork: true,
    forkPageOrder: 'ascending',
    costs: MEASURED_COSTS,
  },
};

export const DEFAULT_KERNEL = '6.18';

export function kernelProfile(version: string): KernelProfile {
  const p = KERNEL_PROFILES[version];
  if (!p) throw new Error(`unknown kernel profile '${version}' (known: ${Object.keys(KERNEL_PROFILES).join(', ')})`);
  return p;
}
