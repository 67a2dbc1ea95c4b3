/**
 * What every differential scenario shares: facts named as in the probes' JSON lines, a memory
 * page shared with children (the probes' shared_page), waiting for a child, and the scenario
 * shape whose first thread returns the facts.
 */
import { load32, store32, type SimCode } from '../../../src/engine/ops.ts';
import type { Scenario } from '../../../src/scenario/define.ts';
import type { Setup } from '../../../src/scenario/memory-view.ts';
import { errnoName } from '../../../src/kernel/errno.ts';
import { signalName } from '../../../src/kernel/signal.ts';
import {
  MAP_ANONYMOUS, MAP_SHARED, PROT_READ, PROT_WRITE, mmap, wait4, wexitstatus, wifexited, wtermsig,
} from '../../../src/kernel/syscalls.ts';
import type { Glibc } from '../../../src/libc/glibc.ts';
import { PAGE_SIZE } from '../../../src/memory/page.ts';

/** One probe case's facts: booleans, namespace-local numbers, errno and signal names. */
export type Facts = Record<string, boolean | number | string>;

/** The facts of several cases a scenario runs in sequence, as the probe does, by case name. */
export type CaseFacts = Record<string, Facts>;

export interface Ctx {
  readonly libc: Glibc;
  /** A word for wait4's status. */
  readonly status: number;
}

/** Zeroed memory that fork children share with their parent (MAP_SHARED | MAP_ANONYMOUS). */
export function* sharedPage(): SimCode<number> {
  return (yield mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS)) as number;
}

/** An errno name for a raw result: "none" unless it is -errno. */
export const errName = (r: number): string => (r < 0 ? errnoName(r) : 'none');

/** A signed 32-bit word (facts may be -errno). */
export function* loadInt(addr: number): SimCode<number> {
  return ((yield load32(addr)) as number) | 0;
}

export function* storeInt(addr: number, v: number | boolean): SimCode {
  yield store32(addr, Number(v) >>> 0);
}

/** waitpid(pid) as the probes' wait_status: the exit code (-1 if killed) and the signal's name. */
export function* waitStatus(ctx: Ctx, pid: number): SimCode<{ code: number; signal: string }> {
  yield wait4(pid, ctx.status, 0);
  const st: number = yield load32(ctx.status);
  return wifexited(st) ? { code: wexitstatus(st), signal: 'none' } : { code: -1, signal: signalName(wtermsig(st)) };
}

/**
 * A scenario whose first thread returns the facts; the run's outcome is their JSON, so every
 * explored schedule must give the same string.
 */
export function factsScenario<C extends Ctx>(
  name: string,
  main: (ctx: C) => SimCode<Facts | CaseFacts>,
  setup: (m: Setup, base: Ctx) => C = (_m, base) => base as C,
): Scenario<C> {
  return {
    name,
    glibc: true,
    setup: (m) => setup(m, { libc: m.glibc, status: m.alloc(4) }),
    threads: [main],
    outcome: (_m, _ctx, results) => JSON.stringify(results[0]),
  };
}
