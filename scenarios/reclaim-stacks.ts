/**
 * Seed 002 (Red Hat bz 477705, "__reclaim_stacks deadlock"): one thread calls fork() while
 * another creates and joins threads, so that glibc's stack lists (stack_used, stack_cache) may be
 * half edited in the memory the child gets. glibc 2.9 walks the lists in the child as they are;
 * when the stores of a list_add reach memory out of program order (the compiler may reorder
 * them: list_add had no barrier; PSO models that reordering), the child can find a stack_used
 * element whose `next` still points into stack_cache, and its walk never ends. glibc 2.10
 * records the operation in flight (in_flight_stack) and repairs it in the child.
 *
 * The child only runs fork's child side (reclaim_stacks) and exits; a hang there is the bug.
 */
import { assert, scenario, load32, type SimCode } from 'hyrum';
import { exitGroup, wait4, wexitstatus, wifexited } from '../src/kernel/syscalls.ts';
import type { Glibc } from '../src/libc/glibc.ts';

interface Ctx {
  readonly libc: Glibc;
  readonly status: number;
}

/** A thread that does nothing: its stack goes to the cache when joined. */
function* noop(): SimCode<number> {
  return 0;
}

/** Create and join threads: the second create reuses the first one's cached stack. */
function* churn(ctx: Ctx): SimCode<number> {
  for (let i = 0; i < 2; i++) {
    const pd: number = yield* ctx.libc.pthreadCreate(noop, 0);
    assert(pd > 0, `pthread_create failed: ${pd}`);
    yield* ctx.libc.pthreadJoin(pd);
  }
  return 0;
}

function* main(ctx: Ctx): SimCode<number> {
  const libc = ctx.libc;
  const worker: number = yield* libc.pthreadCreate(() => churn(ctx), 0);
  const pid: number = yield* libc.fork();
  if (pid === 0) {
    yield exitGroup(0);
    return 0;
  }
  assert(pid > 0, `fork failed: ${pid}`);
  yield wait4(pid, ctx.status, 0);
  const st: number = yield load32(ctx.status);
  assert(wifexited(st) && wexitstatus(st) === 0, `the child ended with status 0x${st.toString(16)}`);
  yield* libc.pthreadJoin(worker);
  return 0;
}

export default scenario({
  name: 'reclaim-stacks',
  description: 'seed 002: fork while another thread edits the stack lists; 2.9 hangs in __reclaim_stacks, 2.10 repairs',
  glibc: true,
  stepBudget: 800,
  memoryModel: 'pso',
  versions: { glibc: '2.9' },
  setup: (m) => ({ libc: m.glibc, status: m.alloc(4) }),
  threads: [main],
  // Bounds: exhaustive DFS or DPOR with the preemption bound given (drains of store buffers count
  // as preemptions), plus 20000 PCT runs (depth 3, seed 1) where exhaustive search is out of reach.
  expect: [
    { versions: { glibc: '2.9' }, memoryModel: 'pso', strategy: 'pct', runs: 20000, verdict: 'hang' },
    // Stores in program order (SC, and TSO's FIFO buffers): the child sees a prefix of each
    // list operation and its walk ends, as the reference infers (fork-pid.md 5.5).
    { versions: { glibc: '2.9' }, memoryModel: 'sc', strategy: 'dfs', preemptionBound: 1, verdict: 'none' },
    { versions: { glibc: '2.9' }, memoryModel: 'tso', strategy: 'pct', runs: 20000, verdict: 'none' },
    { versions: { glibc: '2.10' }, memoryModel: 'sc', strategy: 'dfs', preemptionBound: 1, verdict: 'none' },
    { versions: { glibc: '2.10' }, memoryModel: 'tso', strategy: 'dpor', preemptionBound: 1, verdict: 'none' },
    { versions: { glibc: '2.10' }, memoryModel: 'pso', strategy: 'dpor', preemptionBound: 1, verdict: 'none' },
    { versions: { glibc: '2.10' }, memoryModel: 'pso', strategy: 'pct', runs: 20000, verdict: 'none' },
  ],
});
