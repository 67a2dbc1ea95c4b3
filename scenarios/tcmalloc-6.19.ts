/**
 * Seed 004 (LWN 2026, "Restartable sequences, TCMalloc, and Hyrum's Law"): TCMalloc caches its
 * per-CPU slab pointer in the 8 bytes that end at rseq's cpu_id_start, with bit 63 set, and
 * relies on the kernel overwriting cpu_id_start after every context switch to notice that
 * another thread may have changed the CPU's slab meanwhile. Linux 6.19 writes the field only
 * when the CPU changes, so after a preemption on the same CPU the thread keeps its stale
 * pointer: here a drain of the CPU's slab (StopCpu, FenceCpu, move to the central list) runs
 * between two of the allocating thread's steps, and malloc hands out an object twice or loses
 * one. One CPU, so every interleaving is a preemption.
 *
 * TCMalloc owns the registration only when glibc does not register: glibc < 2.35, or
 * GLIBC_TUNABLES=glibc.pthread.rseq=0. Otherwise its rseq() fails (EINVAL: another area is
 * registered) and it falls back to the central list, which 6.19 cannot break.
 */
import { assert, scenario, type SimCode } from 'hyrum';
import type { Glibc } from '../src/libc/glibc.ts';
import { Tcmalloc } from '../src/libs/tcmalloc/percpu.ts';

interface Ctx {
  readonly libc: Glibc;
  readonly tc: Tcmalloc;
}

/** Allocate and free in a loop; the slab of CPU 0 fills and empties. */
function* allocator(ctx: Ctx): SimCode<number> {
  const tls = ctx.tc.tlsOf(yield* ctx.libc.self());
  yield* ctx.tc.threadInit(tls);
  for (let i = 0; i < 3; i++) {
    const a: number = yield* ctx.tc.malloc(tls);
    const b: number = yield* ctx.tc.malloc(tls);
    yield* ctx.tc.free(tls, a);
    yield* ctx.tc.free(tls, b);
  }
  return 0;
}

/** The background thread: drain CPU 0's slab. */
function* drainer(ctx: Ctx): SimCode<number> {
  const tls = ctx.tc.tlsOf(yield* ctx.libc.self());
  yield* ctx.tc.threadInit(tls);
  yield* ctx.tc.drainCpu(tls, 0);
  return 0;
}

function* main(ctx: Ctx): SimCode<number> {
  const tls = ctx.tc.tlsOf(yield* ctx.libc.self());
  yield* ctx.tc.threadInit(tls);
  // Warm the slab up from this thread: registration, a cached slab pointer, objects in the slab.
  const p: number = yield* ctx.tc.malloc(tls);
  yield* ctx.tc.free(tls, p);
  const a: number = yield* ctx.libc.pthreadCreate(() => allocator(ctx), 0);
  const d: number = yield* ctx.libc.pthreadCreate(() => drainer(ctx), 0);
  yield* ctx.libc.pthreadJoin(a);
  yield* ctx.libc.pthreadJoin(d);
  return 0;
}

const KERNELS = ['6.18', '6.19', '7.1'] as const;
const OWNED: { glibc: string; settings: Record<string, string> }[] = [
  { glibc: '2.34', settings: {} },
  { glibc: '2.35', settings: { 'glibc.pthread.rseq': '0' } },
  { glibc: '2.41', settings: { 'glibc.pthread.rseq': '0' } },
];
const GLIBC_OWNS: { glibc: string; settings: Record<string, string> }[] = [
  { glibc: '2.35', settings: { 'glibc.pthread.rseq': '1' } },
  { glibc: '2.41', settings: { 'glibc.pthread.rseq': '1' } },
];

export default scenario({
  name: 'tcmalloc-6.19',
  description: 'seed 004: TCMalloc relies on cpu_id_start being rewritten after preemption; 6.19 stopped, malloc returns a pointer twice',
  glibc: true,
  cpus: 1,
  stepBudget: 20_000,
  versions: { kernel: '6.19', glibc: '2.35' },
  settings: { 'glibc.pthread.rseq': '0' },
  setup: (m) => ({ libc: m.glibc, tc: new Tcmalloc(m, 1, 6) }),
  threads: [main],
  check(m, ctx) {
    const bad = ctx.tc.accounting((a) => m.read32(a), (a) => m.readPtr(a));
    assert(bad === null, bad ?? '');
  },
  expect: [
    // TCMalloc owns the registration: only 6.19 breaks it.
    ...KERNELS.flatMap((kernel) =>
      OWNED.map((o) => ({
        versions: { kernel, glibc: o.glibc },
        settings: o.settings,
        strategy: 'pct' as const,
        runs: 3000,
        verdict: kernel === '6.19' ? ('assertion' as const) : ('none' as const),
      })),
    ),
    // glibc owns it: TCMalloc runs on the central list everywhere.
    ...KERNELS.flatMap((kernel) =>
      GLIBC_OWNS.map((o) => ({ versions: { kernel, glibc: o.glibc }, settings: o.settings, strategy: 'pct' as const, runs: 3000, verdict: 'none' as const })),
    ),
  ],
});
