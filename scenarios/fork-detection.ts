/**
 * Seed 000's question: how should a library notice that it runs in a fork child? Four
 * strategies (src/libs/systemd/fork-detect.ts) against the ways a child comes to be: fork,
 * vfork, clone(CLONE_VM), unshare(CLONE_NEWPID) then fork, fork from a signal handler, and
 * fork after the library was dlclose'd; plus `loop`, 100 calls in one process, for the cost.
 * A variant is `strategy/case`. In every case the child asks the detector for its PID and
 * compares it with the kernel's answer; a mismatch is an assertion in the parent.
 *
 * `atfork-no-dso/dlclose` is the atfork strategy registered without a __dso_handle, so
 * dlclose cannot unregister its handler and the next fork calls into unmapped code.
 */
import { assert, load32, scenario, store32, type SimCode } from 'hyrum';
import { CLONE_NEWPID, exitGroup, getpid, gettid, sigaction, tgkill, wait4, wexitstatus } from '../src/kernel/syscalls.ts';
import { CLONE_VM } from '../src/kernel/clone.ts';
import { SIGCHLD, SIGUSR1 } from '../src/kernel/signal.ts';
import { PROGRAM_TEXT, type Glibc, type Library } from '../src/libc/glibc.ts';
import { ForkDetector, resetCachedPid, STRATEGIES, type Strategy } from '../src/libs/systemd/fork-detect.ts';

const CASES = ['fork', 'vfork', 'clone-vm', 'unshare-fork', 'signal-fork', 'dlclose', 'loop'] as const;
type Case = (typeof CASES)[number];

/** Where each strategy gives the wrong PID (or crashes), per the analysis in the module comment. */
const WRONG: Record<Strategy, readonly Case[]> = {
  getpid: [],
  'atfork-reset': ['vfork', 'clone-vm'],
  wipeonfork: ['vfork', 'clone-vm'],
  proposal: ['vfork'],
};

interface Ctx {
  readonly libc: Glibc;
  readonly det: ForkDetector;
  readonly lib: Library | null;
  readonly kase: Case;
  readonly status: number;
  readonly childPid: number;
}

/** In the child: 0 when the detector's answer is the real PID. */
function* verdictInChild(det: ForkDetector): SimCode<number> {
  const believed: number = yield* det.getpid();
  const real: number = yield getpid();
  return believed === real ? 0 : 1;
}

function* childThenExit(det: ForkDetector): SimCode {
  yield exitGroup(yield* verdictInChild(det));
}

function* main(ctx: Ctx): SimCode<number> {
  const { det, libc } = ctx;
  if (ctx.lib) yield* libc.dlopen(ctx.lib);
  yield* det.init();
  const parentPid: number = yield* det.getpid();
  let pid = 0;
  switch (ctx.kase) {
    case 'loop':
      for (let i = 0; i < 100; i++) assert((yield* det.getpid()) === parentPid, 'the PID changed in a loop');
      return 0;
    case 'fork':
      pid = yield* det.fork();
      if (pid === 0) yield* childThenExit(det);
      break;
    case 'vfork':
      pid = yield* libc.vfork();
      if (pid === 0) yield* childThenExit(det);
      break;
    case 'clone-vm':
      pid = yield* det.clone(CLONE_VM | SIGCHLD, () => verdictInChild(det), 0);
      break;
    case 'unshare-fork':
      assert((yield* det.unshare(CLONE_NEWPID)) === 0, 'unshare failed');
      pid = yield* det.fork();
      if (pid === 0) yield* childThenExit(det);
      break;
    case 'signal-fork': {
      yield sigaction(SIGUSR1, function* onUsr1(): SimCode {
        const p: number = yield* det.fork();
        if (p === 0) yield* childThenExit(det);
        yield store32(ctx.childPid, p);
      });
      yield tgkill(parentPid, yield gettid(), SIGUSR1);
      pid = yield load32(ctx.childPid);
      break;
    }
    case 'dlclose':
      yield* libc.dlclose(ctx.lib!);
      pid = yield* libc.fork();
      if (pid === 0) yield exitGroup(0);
      break;
  }
  assert(pid > 0, `creating the child failed: ${pid}`);
  yield wait4(pid, ctx.status, 0);
  const st: number = yield load32(ctx.status);
  assert(wexitstatus(st) === 0, `${det.strategy}: the child's detector answered its parent's PID after ${ctx.kase}`);
  return 0;
}

const variants = [...STRATEGIES.flatMap((s) => CASES.map((c) => `${s}/${c}`)), 'atfork-no-dso/dlclose'];

export default scenario({
  name: 'fork-detection',
  description: 'seed 000: four ways to detect a fork child against fork, vfork, clone(CLONE_VM), unshare+fork, a handler, dlclose',
  glibc: true,
  versions: { glibc: '2.36' },
  variants,
  setup(m, variant) {
    const [name, kase] = variant.split('/') as [string, Case];
    const strategy: Strategy = name === 'atfork-no-dso' ? 'atfork-reset' : (name as Strategy);
    const libc = m.glibc;
    const state = { cell: m.alloc(8), installed: m.alloc(4), disabled: m.alloc(4) };
    const reset = resetCachedPid(state.cell);
    let lib: Library | null = null;
    let handler: number;
    let dso: number;
    if (kase === 'dlclose') {
      lib = libc.library('libsystemd.so.0', { reset_cached_pid: reset });
      handler = lib.fns.reset_cached_pid!;
      dso = name === 'atfork-no-dso' ? 0 : lib.handle;
    } else {
      handler = libc.program({ reset_cached_pid: reset }).reset_cached_pid!;
      dso = PROGRAM_TEXT;
    }
    const det = new ForkDetector(strategy, libc, state, handler, dso);
    return { libc, det, lib, kase, status: m.alloc(4), childPid: m.alloc(4) };
  },
  threads: [main],
  expect: [
    ...STRATEGIES.flatMap((s) =>
      CASES.map((c) => ({ variant: `${s}/${c}`, strategy: 'dfs' as const, verdict: WRONG[s].includes(c) ? ('assertion' as const) : ('none' as const) })),
    ),
    { variant: 'atfork-no-dso/dlclose', strategy: 'dfs', verdict: 'crash' },
  ],
});
