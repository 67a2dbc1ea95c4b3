/**
 * What the probes read from /proc, read here straight from the model's kernel state (the model
 * has no procfs): /proc/self/task (live threads), /proc/self/status NSpid (the namespace
 * level) and /proc/self/smaps VmFlags (wf, dc). No logic of their own: they only look.
 */
import { atomic, type Op } from '../../../src/engine/ops.ts';
import type { SimThread } from '../../../src/engine/thread.ts';
import type { Task } from '../../../src/kernel/task.ts';

const taskOf = (t: unknown): Task => (t as SimThread).task as Task;

/** The number of entries in /proc/self/task. */
export const countTasks = (): Op =>
  atomic({ name: '/proc/self/task', run: (t) => taskOf(t).process.tasks.filter((o) => !o.exited).length });

/** The caller's PID namespace level (NSpid has level + 1 entries). */
export const nsLevel = (): Op => atomic({ name: '/proc/self/status NSpid', run: (t) => taskOf(t).ns.level });

/** The VMA flags of the mapping holding addr (smaps VmFlags), 0 when unmapped. */
export const vmFlags = (addr: number): Op =>
  atomic({ name: '/proc/self/smaps VmFlags', run: (t) => taskOf(t).process.mm.flagsAt(addr) ?? 0 });
