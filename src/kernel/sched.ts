/**
 * Scheduling calls the rseq model needs: which CPU am I on, and moving a thread to another CPU
 * (kernel/sched/core.c sched_setaffinity; a migration sets rseq's migrate event and marks the
 * IDs changed, __set_task_cpu -> rseq_migrate).
 */
import { atomic, type AtomicAction, type Op } from '../engine/ops.ts';
import type { SimThread } from '../engine/thread.ts';
import { EINVAL } from './errno.ts';
import type { Task } from './task.ts';

const GETCPU: AtomicAction<number> = {
  name: 'getcpu',
  run: (t: unknown) => (t as SimThread).cpu,
};

/** getcpu(2) / sched_getcpu(3) through the vDSO: no system call cost. */
export const getcpu = (): Op => atomic(GETCPU);

/** sched_setaffinity(0, {cpu}) for the calling thread: it continues on `cpu`. */
export function schedSetaffinity(cpu: number): Op {
  return atomic({
    name: 'sched_setaffinity',
    run(t: unknown): number {
      const thread = t as SimThread;
      const task = thread.task as Task;
      const k = task.kernel;
      k.charge(thread);
      if (cpu < 0 || cpu >= k.machine.cpuCount) return -EINVAL;
      if (cpu !== thread.cpu) {
        k.machine.migrate(thread, cpu);
        task.rseq.idsChanged = true;
        task.rseq.event = true;
      }
      return 0;
    },
    describe: () => `sched_setaffinity(${cpu})`,
  });
}
