/**
 * Seed 001 (2020, "Rseq registration: Google tcmalloc vs glibc"): one rseq registration per
 * thread, several would-be owners. In the main thread, in this order:
 *
 *   1. libA, an LTTng-UST-like library, is dlopen'd and registers `__rseq_abi` by its protocol;
 *   2. libB, linked in, registers by the same protocol (or finds it done);
 *   3. TCMalloc's first malloc tries its own registration (it falls back to the central list
 *      when the kernel refuses);
 *   4. libA is dlclose'd and unregisters by its protocol;
 *   5. libB uses rseq again: the area it relies on must still be registered.
 *
 * The variant is the protocol (src/libs/librseq/protocols.ts); the glibc version and the
 * glibc.pthread.rseq tunable decide whether glibc owns the registration first. The outcome
 * says who ended up with what: `owner` (the area the kernel has), `tcmalloc` (fast or slow),
 * `libB` (shared __rseq_abi, glibc's area, or slow).
 */
import { assert, load32, scenario, type SimCode } from 'hyrum';
import type { Task } from '../src/kernel/task.ts';
import type { Glibc, Library } from '../src/libc/glibc.ts';
import { EarlyAdopter, PROTOCOLS, USES_GLIBC, USES_SHARED, type Protocol } from '../src/libs/librseq/protocols.ts';
import { Tcmalloc } from '../src/libs/tcmalloc/percpu.ts';
import { RSEQ } from '../src/kernel/rseq.ts';

interface Ctx {
  readonly libc: Glibc;
  readonly tc: Tcmalloc;
  readonly libA: EarlyAdopter;
  readonly libB: EarlyAdopter;
  readonly liblttng: Library;
}

function* main(ctx: Ctx): SimCode<number> {
  const { libc, tc, libA, libB } = ctx;
  const self: number = yield* libc.self();
  const tls = tc.tlsOf(self);
  yield* tc.threadInit(tls);
  yield* libc.dlopen(ctx.liblttng);
  yield* libA.register();
  const usesB: number = yield* libB.register();
  const p: number = yield* tc.malloc(tls);
  yield* tc.free(tls, p);
  yield* libA.unregister();
  yield* libc.dlclose(ctx.liblttng);
  if (usesB === USES_SHARED) {
    const cpu: number = yield load32(libB.shared.abi + RSEQ.CPU_ID);
    assert((cpu | 0) >= 0, `libB relies on __rseq_abi, which ${libA.name} unregistered when it was dlclose'd`);
  } else if (usesB === USES_GLIBC) {
    assert(yield* libc.rseqRegistered(), "libB relies on glibc's area, which is not registered");
  }
  return usesB;
}

export default scenario({
  name: 'rseq-registration',
  description: "seed 001: glibc, TCMalloc and two early adopters on one thread's rseq registration, per protocol",
  glibc: true,
  versions: { kernel: '6.18', glibc: '2.34' },
  variants: PROTOCOLS,
  setup(m, variant) {
    const libc = m.glibc;
    const protocol = variant as Protocol;
    const tc = new Tcmalloc(m, 2, 4);
    const liblttng = libc.library('liblttng-ust.so', {});
    const handled = m.alloc(4);
    // __rseq_abi and __rseq_refcount in the main thread's static TLS, below TCMalloc's block.
    const self = libc.mainThreadPointer(0);
    const shared = { abi: self - 384, refcount: self - 320, handled };
    m.write32(shared.abi + RSEQ.CPU_ID, 0xffffffff); // the TLS image: RSEQ_CPU_ID_UNINITIALIZED
    const state = () => ({ uses: m.alloc(4), registered: m.alloc(4) });
    return {
      libc,
      tc,
      liblttng,
      libA: new EarlyAdopter('libA (dlopen)', protocol, shared, libc, state()),
      libB: new EarlyAdopter('libB', protocol, shared, libc, state()),
    };
  },
  threads: [main],
  outcome(m, ctx, results) {
    const task = ctx.libc.mainTask();
    const reg = task?.rseq.reg;
    const self = ctx.libc.mainThreadPointer(0);
    const owner =
      reg == null ? 'none' : reg.area === ctx.libA.shared.abi ? '__rseq_abi' : reg.area === self + ctx.libc.rseqOffset ? 'glibc' : reg.area === ctx.tc.tlsOf(self) + 96 ? 'tcmalloc' : 'other';
    const uses = ['slow', 'shared', 'glibc'][results[0] as number] ?? '?';
    return `owner=${owner} tcmalloc=${ctx.tc.modeOf((a) => m.read32(a))} libB=${uses}`;
  },
  expect: [
    // No glibc registration (2.34, or the tunable off): the early adopters share __rseq_abi.
    // Only __rseq_handled lets the registering library unregister under another's feet.
    ...PROTOCOLS.map((p) => ({ variant: p, versions: { glibc: '2.34' }, strategy: 'dfs' as const, verdict: p === 'handled' ? ('assertion' as const) : ('none' as const) })),
    ...PROTOCOLS.map((p) => ({
      variant: p,
      versions: { glibc: '2.35' },
      settings: { 'glibc.pthread.rseq': '0' },
      strategy: 'dfs' as const,
      verdict: p === 'handled' ? ('assertion' as const) : ('none' as const),
    })),
    // glibc registers first: every other registration is refused and falls back; nothing breaks.
    ...PROTOCOLS.map((p) => ({ variant: p, versions: { glibc: '2.35' }, settings: { 'glibc.pthread.rseq': '1' }, strategy: 'dfs' as const, verdict: 'none' as const })),
    ...PROTOCOLS.map((p) => ({ variant: p, versions: { glibc: '2.41' }, settings: { 'glibc.pthread.rseq': '1' }, strategy: 'dfs' as const, verdict: 'none' as const })),
  ],
});
