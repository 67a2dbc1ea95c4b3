/**
 * The shape of a system call in the model: an atomic action on the calling task that charges
 * the call's cost, optionally disabled until it can complete (a blocking call).
 */
import type { AtomicAction } from '../engine/ops.ts';
import type { SimThread } from '../engine/thread.ts';
import type { Kernel } from './kernel.ts';
import { taskOf, type Task } from './task.ts';

/** A system call as an atomic action on the calling task. */
export class Syscall<R = number> implements AtomicAction<R> {
  constructor(
    readonly name: string,
    private readonly body: (k: Kernel, task: Task, t: SimThread) => R,
    private readonly isEnabled?: (task: Task) => boolean,
    private readonly detail?: string,
  ) {}

  enabled(t: unknown): boolean {
    return this.isEnabled === undefined || this.isEnabled((t as SimThread).task as Task);
  }

  run(t: unknown): R {
    const thread = t as SimThread;
    const task = taskOf(t);
    task.kernel.charge(thread);
    return this.body(task.kernel, task, thread);
  }

  describe(): string {
    return this.detail ? `${this.name}(${this.detail})` : `${this.name}()`;
  }
}
