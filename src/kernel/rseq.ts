/**
 * Restartable sequences (kernel/rseq.c, include/uapi/linux/rseq.h; reference rseq.md 1-3):
 * struct rseq and struct rseq_cs in simulated memory byte for byte, the rseq(2) system call with
 * its checks in the kernel's order, membarrier's RSEQ command, and the work done on the way back
 * to user space in three kernel behaviours (classic up to 6.18, the 6.19 optimisation, and the
 * 2026 fix that picks between them by registration length).
 *
 * Documented vs incidental (reference rseq.md 3.7): the ABI promises that cpu_id_start/cpu_id
 * hold the current CPU when user space runs, and that a critical section is aborted when the
 * thread is preempted, migrated or gets a signal in it. That the classic kernel rewrites
 * cpu_id_start after every context switch even when the CPU did not change is incidental: it is
 * observable, code came to depend on it (TCMalloc), and 6.19 stopped doing it.
 */
import { CHOICE_DATA } from '../engine/choice.ts';
import { atomic, cover, type Op } from '../engine/ops.ts';
import { Syscall } from './syscall.ts';
import type { SimThread } from '../engine/thread.ts';
import { SimFault } from '../memory/page.ts';
import { EBUSY, EFAULT, EINVAL, ENOSYS, EPERM } from './errno.ts';
import type { Kernel } from './kernel.ts';
import type { Task } from './task.ts';

/** struct rseq (include/uapi/linux/rseq.h). */
export const RSEQ = {
  CPU_ID_START: 0,
  CPU_ID: 4,
  RSEQ_CS: 8,
  FLAGS: 16,
  NODE_ID: 20,
  MM_CID: 24,
  /** The original allocation size: registrations of 32 bytes are "legacy" (v1). */
  ORIG_SIZE: 32,
} as const;

/** struct rseq_cs. */
export const RSEQ_CS = { VERSION: 0, FLAGS: 4, START_IP: 8, POST_COMMIT_OFFSET: 16, ABORT_IP: 24, SIZE: 32 } as const;

export const RSEQ_CPU_ID_UNINITIALIZED = -1;
export const RSEQ_CPU_ID_REGISTRATION_FAILED = -2;
export const RSEQ_FLAG_UNREGISTER = 1;
/** x86-64's signature (glibc sysdeps/unix/sysv/linux/x86/bits/rseq.h, TCMalloc percpu.h). */
export const RSEQ_SIG = 0x53053053;
export const AT_RSEQ_FEATURE_SIZE = 27;
export const AT_RSEQ_ALIGN = 28;
export const MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ = 1 << 7;
export const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ = 1 << 8;
export const MEMBARRIER_CMD_FLAG_CPU = 1;
/** The top of user space on x86-64 (TASK_SIZE_MAX). */
const TASK_SIZE = 0x7ffffffff000;

/** Which return-to-user behaviour a kernel has (reference rseq.md 3.1). */
export type RseqBehaviour = 'classic' | 'opt' | 'fix';

/** A task's registration (the kernel's struct rseq_data). */
export interface RseqRegistration {
  readonly area: number;
  readonly len: number;
  readonly sig: number;
  /**
   * The mapping generation of the area's page at registration (AddressSpace.generationAt): not
   * the kernel's, the model's way to tell that the area was freed and its memory reused.
   */
  readonly gen?: number;
}

/** Per-task rseq state the return-to-user path needs. */
export interface RseqTaskState {
  reg: RseqRegistration | null;
  /** An event (preempt, signal, migrate) is pending: classic aborts only then. */
  event: boolean;
  /** The IDs changed (migration, registration): opt writes IDs only then. */
  idsChanged: boolean;
  /** A membarrier RSEQ IPI arrived while the task was on a CPU. */
  ipi: boolean;
  /** The CPU written last, for debug-mode validation of read-only fields. */
  cachedCpu: number;
}

export function newRseqState(): RseqTaskState {
  return { reg: null, event: false, idsChanged: false, ipi: false, cachedCpu: -1 };
}

/** Thrown into a thread's code at an abort: the critical section's code jumps to abort_ip. */
export class RseqAbort extends Error {
  constructor(readonly abortIp: number) {
    super(`rseq abort to 0x${abortIp.toString(16)}`);
    this.name = 'RseqAbort';
  }
}


/** Registration is v2 (the 6.19 optimisations) on a fixed kernel when longer than 32 bytes. */
function optimised(k: Kernel, reg: RseqRegistration): boolean {
  const b = k.profile.rseq;
  return b === 'opt' || (b === 'fix' && reg.len > RSEQ.ORIG_SIZE);
}

/** rseq(2) (kernel/rseq.c SYSCALL_DEFINE4(rseq)), checks in the kernel's order (rseq.md 2.1). */
export function sysRseq(area: number, len: number, flags: number, sig: number): Op {
  return atomic(
    new Syscall(
      'rseq',
      (k, task, thread) => {
        if (k.profile.rseq === null) return -ENOSYS;
        const st = task.rseq;
        const mm = task.process.mm;
        if (flags & RSEQ_FLAG_UNREGISTER) {
          // rseq_unregister (rseq.md 2.3).
          if (flags & ~RSEQ_FLAG_UNREGISTER) return -EINVAL;
          if (st.reg === null || st.reg.area !== area) return -EINVAL;
          if (len !== st.reg.len) return -EINVAL;
          if (sig >>> 0 !== st.reg.sig) return -EPERM;
          try {
            mm.store(area + RSEQ.CPU_ID_START, 4, 0);
            mm.store(area + RSEQ.CPU_ID, 4, RSEQ_CPU_ID_UNINITIALIZED >>> 0);
            mm.store(area + RSEQ.NODE_ID, 4, 0);
            mm.store(area + RSEQ.MM_CID, 4, 0);
          } catch (e) {
            if (e instanceof SimFault) return -EFAULT;
            throw e;
          }
          st.reg = null;
          return 0;
        }
        if (flags !== 0) return -EINVAL;
        if (st.reg !== null) {
          if (st.reg.area !== area || st.reg.len !== len) return -EINVAL;
          if (sig >>> 0 !== st.reg.sig) return -EPERM;
          return -EBUSY;
        }
        const align = len === RSEQ.ORIG_SIZE ? RSEQ.ORIG_SIZE : k.profile.rseqAlign;
        if (len < RSEQ.ORIG_SIZE || area % align !== 0 || (len > RSEQ.ORIG_SIZE && len < k.profile.rseqFeatureSize)) return -EINVAL;
        if (area === 0 || area + len > TASK_SIZE) return -EFAULT;
        try {
          if (k.profile.rseqClearCsOnRegister) {
            // P-cs0 (2025): read rseq_cs and clear it when set (fault => EFAULT). When it is 0
            // nothing is written: a read-only area registers, and the ID write on the way back to
            // user space kills the task (kernel/rseq.c 6.18: rseq_get_rseq_cs_ptr_val, then
            // `if (rseq_cs && clear_rseq_cs(rseq))`; probes/rseq errors register_readonly_page_cs0).
            if (mm.load64(area + RSEQ.RSEQ_CS) !== 0n) mm.store64(area + RSEQ.RSEQ_CS, 0n);
          }
          if (k.profile.rseq !== 'classic') {
            mm.store64(area + RSEQ.RSEQ_CS, 0n);
            mm.store(area + RSEQ.CPU_ID_START, 4, 0xffffffff);
            mm.store(area + RSEQ.CPU_ID, 4, 0xffffffff);
          }
        } catch (e) {
          if (e instanceof SimFault) return -EFAULT;
          throw e;
        }
        st.reg = { area, len, sig: sig >>> 0, gen: mm.generationAt(area) };
        st.idsChanged = true;
        st.event = true;
        thread.switchedOut = true; // force an ID update before the return to user space
        return 0;
      },
      undefined,
      `0x${area.toString(16)}, ${len}, ${flags}, 0x${(sig >>> 0).toString(16)}`,
    ),
  );
}

/** getauxval(AT_RSEQ_FEATURE_SIZE / AT_RSEQ_ALIGN): 0 before 6.3. */
export function auxv(k: Kernel, type: number): number {
  if (k.profile.rseq === null) return 0;
  if (type === AT_RSEQ_FEATURE_SIZE) return k.profile.rseqFeatureSize;
  if (type === AT_RSEQ_ALIGN) return k.profile.rseqAlign;
  return 0;
}

/**
 * membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ[, FLAG_CPU, cpu]): every other thread of the
 * mm that is on a targeted CPU gets an rseq event, as from an IPI (kernel/sched/membarrier.c); the
 * caller is not IPI'd. Without the REGISTER command first: EPERM.
 */
export function membarrier(cmd: number, flags: number, cpu: number): Op {
  return atomic(
    new Syscall(
      'membarrier',
      (k, task, thread) => {
        const p = task.process;
        if (cmd === MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ) {
          p.membarrierRseq = true;
          return 0;
        }
        if (cmd !== MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ) return -EINVAL;
        if (!p.membarrierRseq) return -EPERM;
        const onCpu = k.machine.onCpu;
        for (let c = 0; c < onCpu.length; c++) {
          if (flags & MEMBARRIER_CMD_FLAG_CPU && c !== cpu) continue;
          const other = onCpu[c];
          if (!other || other === thread || other.state !== 0) continue;
          const ot = other.task as Task | null;
          if (!ot || ot.process.mm !== p.mm) continue;
          ot.rseq.ipi = true;
          other.interrupt = true;
        }
        return 0;
      },
      undefined,
      `0x${cmd.toString(16)}, ${flags}, ${cpu}`,
    ),
  );
}

/**
 * A registration made before the program's first instruction (glibc's __tls_init_tp for the
 * initial thread): as if rseq(2) succeeded and the return to user space wrote the IDs.
 */
export function registerAtStartup(t: SimThread, task: Task, area: number, len: number, sig: number): void {
  const mm = task.process.mm;
  task.rseq.reg = { area, len, sig: sig >>> 0, gen: mm.generationAt(area) };
  mm.store64(area + RSEQ.RSEQ_CS, 0n);
  mm.store(area + RSEQ.CPU_ID_START, 4, t.cpu);
  mm.store(area + RSEQ.CPU_ID, 4, t.cpu);
  mm.store(area + RSEQ.MM_CID, 4, t.cpu);
  task.rseq.cachedCpu = t.cpu;
}

/**
 * rseq_fork: a CLONE_VM child starts unregistered, any other child inherits the registration.
 * Classic kernels also write the child's IDs on its first return to user space: wake_up_new_task
 * calls rseq_migrate(p) (kernel/sched/core.c, "rseq/sched: Ensure rseq state is set at fork",
 * 4.18 to 6.18), so a value the parent left in cpu_id_start does not survive into the child
 * (probes/rseq inherit fork_child: ids_rewritten_on_first_return).
 */
export function rseqFork(parent: Task, child: Task, cloneVm: boolean): void {
  child.rseq = newRseqState();
  const reg = parent.rseq.reg;
  if (cloneVm || reg === null) return;
  child.rseq.reg = reg;
  if (!optimised(parent.kernel, reg)) {
    child.rseq.idsChanged = true;
    child.rseq.event = true;
    child.thread.switchedOut = true;
  }
}

/**
 * The return-to-user work for thread t (rseq_handle_notify_resume / the 6.19 exit path):
 * `reason` says why the kernel runs it. Writes the ID fields and evaluates rseq_cs as the
 * profile's behaviour says; may abort t's critical section or kill its process.
 */
export function rseqReturnToUser(k: Kernel, t: SimThread, reason: 'switch' | 'signal' | 'ipi'): void {
  const task = t.task as Task | null;
  if (!task || task.exited) return;
  const st = task.rseq;
  const reg = st.reg;
  if (reg === null) return;
  const opt = optimised(k, reg);
  // Was user space interrupted (a memory operation pending), or did the task enter the kernel?
  const userIrq = t.op < 16 && t.opPending;
  st.event = true;
  let writeIds: boolean;
  let evalCs: boolean;
  if (!opt) {
    writeIds = true;
    evalCs = true;
    // Incidental behaviour: the rewrite after a switch with the same CPU. Under perturbation the
    // explorer may leave it out, as a kernel that keeps only the documented promise would.
    if (!st.idsChanged && reason !== 'signal' && k.perturbIncidental) {
      writeIds = k.machine.choose(2, CHOICE_DATA) === 1;
    }
  } else {
    writeIds = st.idsChanged;
    evalCs = userIrq || reason === 'signal' || k.rseqDebug;
  }
  const mm = task.process.mm;
  if (writeIds || evalCs) k.chargeTime(t, k.profile.costs.rseqUpdateNs);
  if ((writeIds || evalCs) && reg.gen !== undefined && mm.generationAt(reg.area) !== undefined && mm.generationAt(reg.area) !== reg.gen) {
    // Seed 003: the area was unmapped and its address mapped again while still registered.
    // The kernel does not know: it writes into whatever lives there now.
    cover('kernel rseq: write into freed and reused memory');
    k.machine.setVerdict({
      kind: 'corruption',
      message:
        `${t.name}: the kernel wrote rseq fields into 0x${reg.area.toString(16)}, memory that was freed and mapped again ` +
        'while still registered (unregister, or keep the memory, until the thread is gone)',
      thread: t.name,
    });
  }
  try {
    if (evalCs) evaluateCs(k, t, task, st, reg, opt);
    if (task.exited || t.state !== 0) return;
    if (writeIds) {
      if ((opt || k.profile.rseq === 'fix') && k.rseqDebug && st.cachedCpu >= 0) {
        // rseq_debug_validate_ids: user space changed a read-only field => SIGSEGV.
        const start = mm.load(reg.area + RSEQ.CPU_ID_START, 4);
        const cpuId = mm.load(reg.area + RSEQ.CPU_ID, 4);
        if (start !== st.cachedCpu || cpuId !== st.cachedCpu) {
          kill(k, t, task, `rseq debug: read-only field changed by user space (cpu_id_start 0x${start.toString(16)}, expected ${st.cachedCpu})`);
          return;
        }
      }
      const cpu = t.cpu;
      mm.store(reg.area + RSEQ.CPU_ID_START, 4, cpu);
      mm.store(reg.area + RSEQ.CPU_ID, 4, cpu);
      if (reg.len > 20) {
        mm.store(reg.area + RSEQ.NODE_ID, 4, 0);
        mm.store(reg.area + RSEQ.MM_CID, 4, cpu);
      }
      st.cachedCpu = cpu;
      st.idsChanged = false;
    }
  } catch (e) {
    if (e instanceof SimFault) {
      kill(k, t, task, `rseq: fault at 0x${e.addr.toString(16)} while updating the registered area`);
      return;
    }
    throw e;
  }
}

function evaluateCs(k: Kernel, t: SimThread, task: Task, st: RseqTaskState, reg: RseqRegistration, opt: boolean): void {
  const mm = task.process.mm;
  const csPtr = Number(mm.load64(reg.area + RSEQ.RSEQ_CS));
  const event = st.event;
  st.event = false;
  if (csPtr === 0) return;
  if (csPtr >= TASK_SIZE) return kill(k, t, task, 'rseq: rseq_cs points outside user space');
  const version = mm.load(csPtr + RSEQ_CS.VERSION, 4);
  const flags = mm.load(csPtr + RSEQ_CS.FLAGS, 4);
  const start = mm.loadPtr(csPtr + RSEQ_CS.START_IP);
  const offset = mm.loadPtr(csPtr + RSEQ_CS.POST_COMMIT_OFFSET);
  const abort = mm.loadPtr(csPtr + RSEQ_CS.ABORT_IP);
  const inside = t.ip - start >= 0 && t.ip - start < offset;
  if (!opt || k.rseqDebug) {
    // Classic validates every non-NULL descriptor (rseq_get_rseq_cs), inside or not.
    if (version > 0) return kill(k, t, task, 'rseq: descriptor version is not 0');
    if (abort - start >= 0 && abort - start < offset) return kill(k, t, task, 'rseq: abort_ip inside the critical section');
  }
  // Classic rseq_get_rseq_cs checks abort_ip and the signature before it, too, before
  // rseq_ip_fixup looks at the IP: a bad signature kills even when the IP is outside (kernel/rseq.c
  // 6.18; probes/rseq abort bad_signature_outside_signal). 6.19 checks it only inside.
  if (!opt || inside) {
    if (abort < 4 || abort >= TASK_SIZE) return kill(k, t, task, 'rseq: bad abort_ip');
    const sigWord = mm.load(abort - 4, 4);
    if (sigWord !== reg.sig) {
      return kill(k, t, task, `rseq: unexpected signature 0x${sigWord.toString(16)}, expecting 0x${reg.sig.toString(16)}`);
    }
  }
  if (!inside) {
    // Lazy clear of a descriptor left behind (classic: only when an event is pending... and it
    // clears it whenever it looks, rseq.md 3.2).
    mm.store64(reg.area + RSEQ.RSEQ_CS, 0n);
    return;
  }
  if (!opt) {
    // rseq_need_restart: rseq_warn_flags on the descriptor's flags, then on struct rseq's flags
    // (any bit set => -EINVAL => SIGSEGV; probes/rseq abort cs_flags_norestart_inside_signal,
    // area_flags1_inside_signal), then the event mask.
    if (flags !== 0) return kill(k, t, task, 'rseq: rseq_cs flags are not 0 (deprecated NO_RESTART bits)');
    if (mm.load(reg.area + RSEQ.FLAGS, 4) !== 0) return kill(k, t, task, 'rseq: struct rseq flags are not 0');
    if (!event) return;
  }
  mm.store64(reg.area + RSEQ.RSEQ_CS, 0n);
  t.ip = abort;
  k.machine.redirect(t, new RseqAbort(abort));
}

/** force_sigsegv: the process dies, a crash verdict names the reason. */
function kill(k: Kernel, t: SimThread, task: Task, why: string): void {
  k.machine.setVerdict({ kind: 'crash', message: `${t.name}: SIGSEGV from ${why}`, thread: t.name, signal: 'SIGSEGV' });
  k.exitGroup(task.process, 11);
}
