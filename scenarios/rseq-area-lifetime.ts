/**
 * Seed 003 (LKML 2018, "glibc: Perform rseq(2) registration at nptl init and thread creation"):
 * the lifetime of the rseq area. glibc registers an area in each thread's TLS; with a
 * user-supplied stack (pthread_attr_setstack) that TLS lives in the application's memory. If
 * the application frees that memory while the thread is still alive (here: the worker says it
 * is done, then waits to be told to exit; the main thread unmaps its stack and maps something
 * else there), the kernel still has the area registered and writes cpu_id_start on the
 * worker's next return to user space: into memory that now belongs to someone else.
 *
 * - reuse: the stack's memory is mapped again for other data: the kernel's write corrupts it;
 * - unmap: the memory is only unmapped: the kernel's write faults and the process gets SIGSEGV;
 * - unregister-first: the worker unregisters its area before it says it is done (what seed 003
 *   asks of code that frees such memory): nothing to find;
 * - join-first: the main thread joins the worker before it frees the stack: nothing to find.
 */
import { assert, load32, scenario, store32, type SimCode } from 'hyrum';
import { RSEQ, RSEQ_FLAG_UNREGISTER, RSEQ_SIG, sysRseq } from '../src/kernel/rseq.ts';
import { futexWait, futexWake, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, mmap, munmap, PROT_READ, PROT_WRITE } from '../src/kernel/syscalls.ts';
import type { Glibc } from '../src/libc/glibc.ts';
import { PAGE_SIZE } from '../src/memory/page.ts';

const STACK = 2 * PAGE_SIZE;

interface Ctx {
  readonly libc: Glibc;
  readonly variant: string;
  readonly done: number;
  readonly go: number;
}

function* worker(ctx: Ctx): SimCode<number> {
  if (ctx.variant === 'unregister-first') {
    const self: number = yield* ctx.libc.self();
    const area = self + ctx.libc.rseqOffset;
    const r: number = yield sysRseq(area, 32, RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
    assert(r === 0, `unregistering failed: ${r}`);
  }
  yield store32(ctx.done, 1);
  yield futexWake(ctx.done, 1);
  if (ctx.variant === 'join-first') return 0;
  // Wait to be told to exit: the thread is alive, its area registered (unless unregistered).
  while ((yield load32(ctx.go)) === 0) yield* futexWait(ctx.go, 0);
  return 0;
}

function* main(ctx: Ctx): SimCode<number> {
  const libc = ctx.libc;
  const stack: number = yield mmap(0, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const pd: number = yield* libc.pthreadCreateOnStack(() => worker(ctx), 0, stack, STACK);
  assert(pd > 0, `pthread_create failed: ${pd}`);
  while ((yield load32(ctx.done)) === 0) yield* futexWait(ctx.done, 0);
  if (ctx.variant === 'join-first') yield* libc.pthreadJoin(pd);
  // The application is done with the stack: free it.
  yield munmap(stack, STACK);
  if (ctx.variant !== 'unmap') {
    // ... and the memory is reused for something else (a buffer full of data).
    yield mmap(stack, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
    yield store32(pd + RSEQ.CPU_ID_START + libc.rseqOffset, 0x600d);
  }
  if (ctx.variant !== 'join-first') {
    yield store32(ctx.go, 1);
    yield futexWake(ctx.go, 1);
  }
  return 0;
}

export default scenario({
  name: 'rseq-area-lifetime',
  description: "seed 003: an rseq area in a user-supplied stack freed while registered: the kernel's next write lands in freed memory",
  glibc: true,
  cpus: 1,
  versions: { kernel: '6.18', glibc: '2.35' },
  variants: ['reuse', 'unmap', 'unregister-first', 'join-first'],
  setup: (m, variant) => ({ libc: m.glibc, variant, done: m.alloc(4), go: m.alloc(4) }),
  threads: [main],
  expect: [
    { variant: 'reuse', strategy: 'dfs', verdict: 'corruption' },
    { variant: 'unmap', strategy: 'dfs', verdict: 'crash' },
    { variant: 'unregister-first', strategy: 'dfs', verdict: 'none' },
    { variant: 'join-first', strategy: 'dfs', verdict: 'none' },
  ],
});
