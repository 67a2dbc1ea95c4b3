/**
 * System calls for simulated code: `const pid: number = yield getpid()`. Each returns the raw
 * syscall ABI's value (-errno on failure). Simple calls are one atomic step; calls that block
 * (futex wait, wait4) are an atomic step that may be disabled until it can complete; fork and
 * friends, which let other threads run in the middle, are in clone.ts.
 */
import { atomic, type Op, type SimCode } from '../engine/ops.ts';
import { Syscall } from './syscall.ts';
import type { SimThread } from '../engine/thread.ts';
import { PAGE_SIZE, PROT_READ, PROT_WRITE, VM_DONTCOPY, VM_SHARED, VM_WIPEONFORK } from '../memory/page.ts';
import { EAGAIN, ECHILD, EINVAL, ENOMEM, ENOSPC, ESRCH } from './errno.ts';
import { MAX_PID_NS_LEVEL, type Kernel } from './kernel.ts';
import { uncatchable } from './signal.ts';
import { PidNamespace, type Process, type SigHandler, type Task } from './task.ts';

export const CLONE_NEWPID = 0x20000000;
export const WNOHANG = 1;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
/** No special treatment: changes no flag the model has, but checks the range like any advice. */
export const MADV_NORMAL = 0;
export const MADV_DONTFORK = 10;
export const MADV_DOFORK = 11;
export const MADV_WIPEONFORK = 18;
export const MADV_KEEPONFORK = 19;
export const SIG_BLOCK = 0;
export const SIG_UNBLOCK = 1;
export const SIG_SETMASK = 2;

/** mmap_write_lock is held by a fork copying this address space (kernel/fork.c dup_mmap). */
const mmUnlocked = (task: Task): boolean => task.process.mm.frozen === null;

const GETPID = new Syscall('getpid', (_k, task) => task.process.pid.in(task.ns));
const GETTID = new Syscall('gettid', (_k, task) => task.pid.in(task.ns));
const GETPPID = new Syscall('getppid', (_k, task) => {
  const parent = task.process.parent;
  return parent ? parent.pid.in(task.ns) : 0;
});

/** getpid(2): the thread group's PID in the caller's namespace (kernel/sys.c). */
export const getpid = (): Op => atomic(GETPID);
/** gettid(2). */
export const gettid = (): Op => atomic(GETTID);
/** getppid(2): 0 when the parent is in another PID namespace (pid_namespaces(7)). */
export const getppid = (): Op => atomic(GETPPID);

/** exit(2): this thread only. */
export const sysExit = (code: number): Op =>
  atomic(new Syscall('exit', (k, task) => (k.exitTask(task, code), 0), undefined, String(code)));

/** exit_group(2): every thread of the process. */
export const exitGroup = (code: number): Op =>
  atomic(new Syscall('exit_group', (k, task) => (k.exitGroup(task.process, (code & 0xff) << 8), 0), undefined, String(code)));

/**
 * futex(FUTEX_WAIT): returns -EAGAIN at once when *addr != val, else sleeps until a wake
 * (kernel/futex/waitwake.c futex_wait_setup: the check and the enqueue are atomic).
 */
export function* futexWait(addr: number, val: number): SimCode<number> {
  const r: number = yield atomic(
    new Syscall(
      'futex_wait',
      (k, task) => {
        if (task.process.mm.load(addr, 4) !== val >>> 0) return -EAGAIN;
        k.futexWait(task, addr);
        return 0;
      },
      undefined,
      `0x${addr.toString(16)}, ${val}`,
    ),
  );
  if (r !== 0) return r;
  return (yield atomic(FUTEX_SLEEP)) as number;
}

const FUTEX_SLEEP = new Syscall(
  'futex_wait (asleep)',
  (_k, task) => {
    task.futexWoken = false;
    return 0;
  },
  (task) => task.futexWoken,
);

/** futex(FUTEX_WAKE): wake up to n waiters on addr; returns how many. */
export const futexWake = (addr: number, n: number): Op =>
  atomic(new Syscall('futex_wake', (k, task) => k.futexWake(task.process.mm, addr, n), undefined, `0x${addr.toString(16)}, ${n}`));

/**
 * wait4(pid, &status, options): reap a zombie child (pid -1: any). Blocks until one exists;
 * -ECHILD when there is no such child; 0 with WNOHANG when none has exited (kernel/exit.c).
 */
export const wait4 = (pid: number, statusAddr = 0, options = 0): Op =>
  atomic(
    new Syscall(
      'wait4',
      (k, task) => {
        const p = task.process;
        const matching = [...p.children].filter((c) => pid === -1 || c.pid.in(task.ns) === pid);
        if (matching.length === 0) return -ECHILD;
        const z = matching.find((c) => k.reapable(c));
        if (!z) return 0;
        if (statusAddr !== 0) p.mm.store(statusAddr, 4, z.waitStatus);
        const nr = z.pid.in(task.ns);
        k.reap(z);
        return nr;
      },
      (task) => {
        if (options & WNOHANG) return true;
        const kids = [...task.process.children].filter((c) => pid === -1 || c.pid.in(task.ns) === pid);
        return kids.length === 0 || kids.some((c) => task.kernel.reapable(c));
      },
      `${pid}, 0x${statusAddr.toString(16)}, ${options}`,
    ),
  );

/** WIFEXITED / WEXITSTATUS / WTERMSIG of a wait status word. */
export const wifexited = (status: number): boolean => (status & 0x7f) === 0;
export const wexitstatus = (status: number): number => (status >> 8) & 0xff;
export const wtermsig = (status: number): number => status & 0x7f;

/**
 * unshare(2) with CLONE_NEWPID: the caller stays where it is; its next child is PID 1 of a new
 * namespace. A second call fails EINVAL (copy_pid_ns: active ns != pid_ns_for_children);
 * past 32 levels ENOSPC (probes/fork-pid pidns nesting_limit).
 */
export const unshare = (flags: number): Op =>
  atomic(
    new Syscall(
      'unshare',
      (k, task) => {
        if (flags & ~CLONE_NEWPID) return -EINVAL;
        if (!(flags & CLONE_NEWPID)) return 0;
        if (task.pidNsForChildren !== task.ns) return -EINVAL;
        if (k.profile.unshareNewpidImpliesThread && task.process.tasks.filter((t) => !t.exited).length > 1) return -EINVAL;
        if (task.ns.level + 1 > MAX_PID_NS_LEVEL) return -ENOSPC;
        task.pidNsForChildren = new PidNamespace(task.ns);
        return 0;
      },
      undefined,
      `0x${flags.toString(16)}`,
    ),
  );

// ---- signals ----------------------------------------------------------------------------------

/** sigaction(2) reduced to the handler: a generator function run on the interrupted thread. */
export const sigaction = (sig: number, handler: SigHandler): Op =>
  atomic(
    new Syscall(
      'sigaction',
      (_k, task) => {
        if (sig < 1 || sig > 31 || uncatchable(sig)) return -EINVAL;
        task.process.sigactions.set(sig, handler);
        return 0;
      },
      undefined,
      `${sig}, ${typeof handler === 'string' ? handler : handler.name || 'handler'}`,
    ),
  );

/** kill(2) to one process (pid > 0), in the caller's namespace. */
export const kill = (pid: number, sig: number): Op =>
  atomic(
    new Syscall(
      'kill',
      (k, task) => {
        const p = k.findProcess(task.ns, pid);
        if (!p) return -ESRCH;
        if (sig !== 0) k.sendSignal(p, sig, null);
        return 0;
      },
      undefined,
      `${pid}, ${sig}`,
    ),
  );

/** tgkill(2): a signal for one thread. */
export const tgkill = (tgid: number, tid: number, sig: number): Op =>
  atomic(
    new Syscall(
      'tgkill',
      (k, task) => {
        const target = k.findTask(task.ns, tid);
        if (!target || target.process.pid.in(task.ns) !== tgid) return -ESRCH;
        if (sig !== 0) k.sendSignal(target.process, sig, target);
        return 0;
      },
      undefined,
      `${tgid}, ${tid}, ${sig}`,
    ),
  );

/** rt_sigprocmask(2) on a bit mask of 1 << sig; returns the old mask. */
export const sigprocmask = (how: number, mask: number): Op =>
  atomic(
    new Syscall(
      'rt_sigprocmask',
      (_k, task, t) => {
        const old = task.sigmask;
        if (how === SIG_BLOCK) task.sigmask |= mask;
        else if (how === SIG_UNBLOCK) task.sigmask &= ~mask;
        else if (how === SIG_SETMASK) task.sigmask = mask;
        else return -EINVAL;
        task.sigmask &= ~((1 << 9) | (1 << 19));
        if ((task.pending | task.process.sharedPending) & ~task.sigmask) t.interrupt = true;
        return old;
      },
      undefined,
      `${how}, 0x${mask.toString(16)}`,
    ),
  );

// ---- memory -----------------------------------------------------------------------------------

/** mmap(2) of anonymous memory; returns the address or -errno. */
export const mmap = (addr: number, len: number, prot: number, flags: number): Op =>
  atomic(
    new Syscall(
      'mmap',
      (k, task) => {
        if (!(flags & MAP_ANONYMOUS) || len <= 0 || addr % PAGE_SIZE !== 0) return -EINVAL;
        const size = Math.ceil(len / PAGE_SIZE) * PAGE_SIZE;
        const mm = task.process.mm;
        const at = flags & MAP_FIXED ? addr : k.placeMapping(mm, size);
        mm.map(at, size, prot, flags & MAP_SHARED ? VM_SHARED : 0);
        return at;
      },
      mmUnlocked,
      `0x${addr.toString(16)}, ${len}, ${prot}, 0x${flags.toString(16)}`,
    ),
  );

/** munmap(2). */
export const munmap = (addr: number, len: number): Op =>
  atomic(
    new Syscall(
      'munmap',
      (_k, task) => {
        if (addr % PAGE_SIZE !== 0 || len <= 0) return -EINVAL;
        task.process.mm.unmap(addr, Math.ceil(len / PAGE_SIZE) * PAGE_SIZE);
        return 0;
      },
      mmUnlocked,
      `0x${addr.toString(16)}, ${len}`,
    ),
  );

/** mprotect(2): -ENOMEM when part of the range is unmapped. */
export const mprotect = (addr: number, len: number, prot: number): Op =>
  atomic(
    new Syscall(
      'mprotect',
      (_k, task) => {
        if (addr % PAGE_SIZE !== 0) return -EINVAL;
        return task.process.mm.protect(addr, Math.ceil(len / PAGE_SIZE) * PAGE_SIZE, prot) ? 0 : -ENOMEM;
      },
      mmUnlocked,
      `0x${addr.toString(16)}, ${len}, ${prot}`,
    ),
  );

/**
 * madvise(2) for the fork-related advice (mm/madvise.c): WIPEONFORK on shared mappings is
 * EINVAL (file mappings are not modelled); an unaligned address or unknown advice EINVAL; an
 * unmapped part ENOMEM after the mapped parts were changed; length 0 succeeds.
 */
export const madvise = (addr: number, len: number, advice: number): Op =>
  atomic(
    new Syscall(
      'madvise',
      (k, task) => {
        const mm = task.process.mm;
        if (addr % PAGE_SIZE !== 0) return -EINVAL;
        // MADV_NORMAL: probes/fork-pid wipeonfork dontfork (ENOMEM on a range not inherited).
        const known = [MADV_NORMAL, MADV_DONTFORK, MADV_DOFORK, MADV_KEEPONFORK, ...(k.profile.madvWipeOnFork ? [MADV_WIPEONFORK] : [])];
        if (!known.includes(advice)) return -EINVAL;
        if (len === 0) return 0;
        const end = addr + Math.ceil(len / PAGE_SIZE) * PAGE_SIZE;
        let unmapped = false;
        for (let a = addr; a < end; a += PAGE_SIZE) {
          const flags = mm.flagsAt(a);
          if (flags === undefined) {
            unmapped = true;
            continue;
          }
          if (advice === MADV_WIPEONFORK && flags & VM_SHARED) return -EINVAL;
          const set = advice === MADV_DONTFORK ? VM_DONTCOPY : advice === MADV_WIPEONFORK ? VM_WIPEONFORK : 0;
          const clear = advice === MADV_DOFORK ? VM_DONTCOPY : advice === MADV_KEEPONFORK ? VM_WIPEONFORK : 0;
          mm.updateFlags(a, PAGE_SIZE, set, clear);
        }
        return unmapped ? -ENOMEM : 0;
      },
      mmUnlocked,
      `0x${addr.toString(16)}, ${len}, ${advice}`,
    ),
  );

export { PROT_READ, PROT_WRITE };
export type { Process };
