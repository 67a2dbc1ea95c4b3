/**
 * Scheduling calls the rseq model needs: which CPU am I on, and moving a thread to another CPU
 * (kernel/sched/core.c sched_setaffinity; a migration sets rseq's migrate event and marks the
 * IDs changed, __set_task_cpu -> rseq_migrate).
 */
import { atomic, type AtomicAction, type Op, type SimCode } from '../engine/ops.ts';
import type { SimThread } from '../engine/thread.ts';
import { EINVAL, ESRCH } from './errno.ts';
import type { Task } from './task.ts';

const GETCPU: AtomicAction<number> = {
  name: 'getcpu',
  footprint: 'local',
  run: (t: unknown) => (t as SimThread).cpu,
};

/** getcpu(2) / sched_getcpu(3) through the vDSO: no system call cost. */
export const getcpu = (): Op => atomic(GETCPU);

/**
 * sched_setaffinity(pid, {cpu}): the thread continues on `cpu`. pid 0 is the caller; another TID
 * (in the caller's PID namespace) moves that thread, as a poker thread migrates its target
 * (probes/rseq abort migrated_inside). No permission checks: the model has no credentials.
 */
export function schedSetaffinity(cpu: number, pid = 0): Op {
  return atomic({
    name: 'sched_setaffinity',
    run(t: unknown): number {
      const thread = t as SimThread;
      const caller = thread.task as Task;
      const k = caller.kernel;
      k.charge(thread);
      const task = pid === 0 ? caller : k.findTask(caller.ns, pid);
      if (!task) return -ESRCH;
      if (cpu < 0 || cpu >= k.machine.cpuCount) return -EINVAL;
      if (cpu !== task.thread.cpu) {
        k.machine.migrate(task.thread, cpu);
        task.rseq.idsChanged = true;
        task.rseq.event = true;
      }
      return 0;
    },
    describe: () => (pid === 0 ? `sched_setaffinity(${cpu})` : `sched_setaffinity(${pid}, ${cpu})`),
  });
}

/**
 * sched_yield(2) (kernel/sched/core.c do_sched_yield): the caller gives its CPU to another
 * runnable thread there, if any, and runs again only once that thread has had the CPU. Two
 * steps: the call (charged a syscall and a context switch), then the wait for the CPU.
 */
export function* schedYield(): SimCode<number> {
  yield atomic(YIELD);
  return (yield atomic(YIELD_RETURN)) as number;
}

const YIELD: AtomicAction<number> = {
  name: 'sched_yield',
  run(t: unknown): number {
    const thread = t as SimThread;
    const k = (thread.task as Task).kernel;
    k.charge(thread, k.profile.costs.syscallNs + k.profile.costs.contextSwitchNs);
    return 0;
  },
};

const YIELD_RETURN: AtomicAction<number> = {
  name: 'sched_yield (back on the CPU)',
  enabled(t: unknown): boolean {
    const thread = t as SimThread;
    const m = (thread.task as Task).kernel.machine;
    if (m.onCpu[thread.cpu] !== thread) return true;
    return !m.threads.some((o) => o !== thread && o.state === 0 && o.cpu === thread.cpu && m.isEnabled(o));
  },
  run: () => 0,
};
