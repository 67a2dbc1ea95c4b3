/**
 * probes/rseq/rewrite.c: when the classic kernel rewrites cpu_id_start/cpu_id (sentinel
 * 0xdeadbeef written, one thing done, the field read back), and when it lazily clears rseq_cs.
 * glibc's registration is off; the thread registers its own area T.
 *
 * In the model a context switch is another thread taking a step on the same CPU (`cpus: 1`).
 * Four scenarios:
 *
 * - `seq` (every schedule with at most 2 preemptions, DFS): one thread, plus, where the probe
 *   needs a switch (nanosleep, rseq_cs_lazy_clear), a helper thread created at that point which
 *   the thread must wait for (futex), so that every schedule has the switch exactly there and
 *   nowhere else;
 * - `contended` (every schedule, DFS): a busy thread B on the same CPU, as the probe's busy
 *   thread (and, for the "alone" cases, the machine's background work) is. Whether B ran inside
 *   a window is read atomically with the sentinel: B's every step stores 1 into a marker word
 *   just before T, and the thread writes the sentinel and clears the marker with one 64-bit store
 *   and reads both back with one 64-bit load. "A switch rewrites" (and, in the model, "only a
 *   switch rewrites") is then checked in every schedule; user_spin_200ms_preempted is about the
 *   schedules in which B ran inside the spin;
 * - `migrate` (one thread, two CPUs): sched_setaffinity to CPU 1;
 * - `membarrier` (a fixed schedule, round robin, two CPUs): the target spins on CPU 0 until its
 *   sentinel is rewritten, as the probe's mb_target does, while the caller on CPU 1 issues
 *   membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ). A spinning target has no DFS bound.
 */
import { load32, load64, store32, store64, storePtr, type SimCode } from '../../../src/engine/ops.ts';
import {
  membarrier, MEMBARRIER_CMD_FLAG_CPU, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ,
  RSEQ, RSEQ_CS, sysRseq,
} from '../../../src/kernel/rseq.ts';
import { schedSetaffinity } from '../../../src/kernel/sched.ts';
import { SIGUSR1, SIGUSR2 } from '../../../src/kernel/signal.ts';
import { futexWait, futexWake, getpid, getppid, gettid, sigaction, tgkill } from '../../../src/kernel/syscalls.ts';
import type { Glibc } from '../../../src/libc/glibc.ts';
import type { Setup } from '../../../src/scenario/memory-view.ts';
import {
  ename, everySchedule, F_UNREG, factsScenario, GLIBC_RSEQ_OFF, loadInt, noFinding, once, partOf, roundRobin, same,
  schedYield, SENT, SIG, type CaseFacts, type Facts, type Plan,
} from './common.ts';

interface Ctx {
  readonly libc: Glibc;
  /** `static __thread struct hrseq T`, with the marker word (busy thread ran) just before it. */
  readonly T: number;
  readonly marker: number;
  /** The membarrier targets' own T. */
  readonly T2: number;
  /** What the handler saw: cpu_id_start, cpu_id. */
  readonly inHandler: number;
  /** Handshake words. */
  readonly done: number;
  readonly ready: number;
  readonly spinSeen: number;
  /** A valid descriptor with an empty range (never "inside") and the signature before abort_ip. */
  readonly desc: number;
}

function setup(m: Setup): Ctx {
  const block = m.alloc(64, 32);
  const T = block + 32;
  const sigword = m.alloc(8, 8);
  m.write32(sigword, SIG);
  const desc = m.alloc(32, 32);
  m.writePtr(desc + RSEQ_CS.START_IP, 0x400000);
  m.writePtr(desc + RSEQ_CS.POST_COMMIT_OFFSET, 0);
  m.writePtr(desc + RSEQ_CS.ABORT_IP, sigword + 4);
  return {
    libc: m.glibc,
    T,
    marker: T - 4,
    T2: m.alloc(32, 32),
    inHandler: m.alloc(8),
    done: m.alloc(4),
    ready: m.alloc(4),
    spinSeen: m.alloc(4),
    desc,
  };
}

function* setSent(T: number): SimCode {
  yield store32(T + RSEQ.CPU_ID_START, SENT);
  yield store32(T + RSEQ.CPU_ID, SENT);
}

function* report(T: number): SimCode<Facts> {
  const start = (yield load32(T + RSEQ.CPU_ID_START)) as number;
  const cpu = (yield load32(T + RSEQ.CPU_ID)) as number;
  return { cpu_id_start_rewritten: start !== SENT, cpu_id_rewritten: cpu !== SENT, cpu_id_start: start, cpu_id: cpu };
}

/** A helper thread on the same CPU that the caller waits for: a context switch, in every schedule. */
function* switchAway(ctx: Ctx): SimCode<boolean> {
  yield store32(ctx.done, 0);
  const pd: number = yield* ctx.libc.pthreadCreate(function* () {
    yield store32(ctx.done, 1);
    yield futexWake(ctx.done, 1);
    return 0;
  }, 0);
  yield schedYield(); // see NEW_THREAD_RUNS in common.ts
  while (((yield load32(ctx.done)) as number) === 0) yield* futexWait(ctx.done, 0);
  yield* ctx.libc.pthreadJoin(pd);
  return ((yield load32(ctx.done)) as number) === 1;
}

// ---- seq: one thread, switches only where the probe has one ---------------------------------------

function* seq(ctx: Ctx): SimCode<CaseFacts> {
  const out: CaseFacts = {};
  const { T } = ctx;
  yield sysRseq(T, 32, 0, SIG);

  // (b) a signal with a handler: rewritten before the handler runs, not by rt_sigreturn
  yield sigaction(SIGUSR1, function* onUsr1(): SimCode {
    yield store32(ctx.inHandler, (yield load32(T + RSEQ.CPU_ID_START)) as number);
    yield store32(ctx.inHandler + 4, (yield load32(T + RSEQ.CPU_ID)) as number);
    yield* setSent(T);
  });
  yield* setSent(T);
  const pid: number = yield getpid();
  const tid: number = yield gettid();
  yield tgkill(pid, tid, SIGUSR1);
  const inCs = (yield load32(ctx.inHandler)) as number;
  const inCpu = (yield load32(ctx.inHandler + 4)) as number;
  out.signal_handler = {
    rewritten_before_handler: inCs !== SENT,
    cpu_id_in_handler_valid: inCpu < 2,
    rewritten_by_sigreturn: ((yield load32(T + RSEQ.CPU_ID_START)) as number) !== SENT,
  };
  // an ignored signal is not delivered
  yield sigaction(SIGUSR2, 'SIG_IGN');
  yield* setSent(T);
  yield tgkill(pid, tid, SIGUSR2);
  out.signal_ignored = yield* report(T);

  // (c) sched_yield with nothing else runnable
  let w = 0;
  for (let i = 0; i < 3; i++) {
    yield* setSent(T);
    yield schedYield();
    if (((yield load32(T + RSEQ.CPU_ID_START)) as number) !== SENT) w++;
  }
  out.sched_yield_alone = { calls: 3, rewrites: w, context_switches: 0, rewrite_without_switch: w, switch_without_rewrite: 0 };

  // a blocking call: another thread runs meanwhile (here: the helper that wakes us)
  yield* setSent(T);
  yield* switchAway(ctx);
  out.nanosleep_1ms = yield* report(T);

  // lazy clear of rseq_cs: kept over a plain syscall, cleared after a switch or a signal
  yield storePtr(T + RSEQ.RSEQ_CS, ctx.desc);
  yield getppid();
  const kept = ((yield load64(T + RSEQ.RSEQ_CS)) as bigint) !== 0n;
  const switched = yield* switchAway(ctx);
  out.rseq_cs_lazy_clear = {
    kept_after_getppid: kept,
    switched,
    cleared_after_switch: ((yield load64(T + RSEQ.RSEQ_CS)) as bigint) === 0n,
  };
  yield storePtr(T + RSEQ.RSEQ_CS, ctx.desc);
  yield tgkill(pid, tid, SIGUSR1);
  out.rseq_cs_lazy_clear_signal = { cleared_after_signal: ((yield load64(T + RSEQ.RSEQ_CS)) as bigint) === 0n };
  yield store64(T + RSEQ.RSEQ_CS, 0n);
  return out;
}

const seqScenario = factsScenario<Ctx>('rseq rewrite seq', setup, seq, { cpus: 1 });
/** The helper's interleavings with glibc's pthread_create/join code are many: bounded to 2 preemptions. */
const seqFacts = once(() => same(everySchedule(seqScenario, noFinding, { settings: GLIBC_RSEQ_OFF, preemptionBound: 2 }), seqScenario.name) as CaseFacts);

// ---- contended: a busy thread on the same CPU ------------------------------------------------------

const BUSY_STEPS = 3;

/** The busy thread: every step marks "B ran". */
function* busy(ctx: Ctx): SimCode<number> {
  for (let i = 0; i < BUSY_STEPS; i++) yield store32(ctx.marker, 1);
  return 0;
}

/** Sentinel in cpu_id_start and marker cleared, in one store. */
const arm = (ctx: Ctx): SimCode<unknown> =>
  (function* () {
    yield store64(ctx.marker, BigInt(SENT) << 32n);
  })();

/** [rewritten, switched] over the window since arm(), in one load. */
function* look(ctx: Ctx): SimCode<[boolean, boolean]> {
  const v = (yield load64(ctx.marker)) as bigint;
  return [Number(v >> 32n) !== SENT, (v & 0xffffffffn) !== 0n];
}

interface Loop {
  readonly context_switches: number;
  readonly rewrite_without_switch: number;
  readonly switch_without_rewrite: number;
}

function* loop(ctx: Ctx, act: () => SimCode<unknown>, n: number): SimCode<Loop> {
  let sw = 0;
  let wNoSw = 0;
  let swNoW = 0;
  for (let i = 0; i < n; i++) {
    yield* arm(ctx);
    yield* act();
    const [r, s] = yield* look(ctx);
    if (s) sw++;
    if (r && !s) wNoSw++;
    if (s && !r) swNoW++;
  }
  return { context_switches: sw, rewrite_without_switch: wNoSw, switch_without_rewrite: swNoW };
}

function* contended(ctx: Ctx): SimCode<unknown> {
  yield sysRseq(ctx.T, 32, 0, SIG);
  const getppidLoop = yield* loop(ctx, function* () {
    yield getppid();
  }, 2);
  const yieldLoop = yield* loop(ctx, function* () {
    yield schedYield();
  }, 2);
  // a user-space spin: no system call
  yield* arm(ctx);
  for (let i = 0; i < 2; i++) yield load32(ctx.done);
  const [rewritten, switched] = yield* look(ctx);
  return { getppid: getppidLoop, yield: yieldLoop, spin: { rewritten, switched } };
}

const contendedScenario = factsScenario<Ctx>('rseq rewrite contended', setup, contended, { cpus: 1, others: [busy] });

interface ContendedRun {
  readonly getppid: Loop;
  readonly yield: Loop;
  readonly spin: { readonly rewritten: boolean; readonly switched: boolean };
}
const contendedRuns = once(() => [...everySchedule(contendedScenario, noFinding, { settings: GLIBC_RSEQ_OFF }).values()].map((v) => v.value as ContendedRun));

/** A fact that must be the same in every schedule. */
function everySame<T>(what: string, f: (r: ContendedRun) => T): T {
  const values = new Set(contendedRuns().map((r) => JSON.stringify(f(r))));
  if (values.size !== 1) throw new Error(`${what}: differs between schedules: ${[...values].join(' ')}`);
  return JSON.parse([...values][0]!) as T;
}

/** The two stable counts of a loop, the same in every schedule; and some schedule does switch in it. */
function loopFacts(what: string, f: (r: ContendedRun) => Loop): Facts {
  if (!contendedRuns().some((r) => f(r).context_switches > 0)) throw new Error(`${what}: no schedule switches inside the loop`);
  return everySame(what, (r) => ({ rewrite_without_switch: f(r).rewrite_without_switch, switch_without_rewrite: f(r).switch_without_rewrite }));
}

const contendedCases = {
  getppid_syscall: (): Facts => loopFacts('getppid_syscall', (r) => r.getppid),
  sched_yield_contended: (): Facts => loopFacts('sched_yield_contended', (r) => r.yield),
  user_spin_50ms_alone: (): Facts => ({
    rewritten_iff_switched: everySame('user_spin_50ms_alone', (r) => r.spin.rewritten === r.spin.switched),
    switched_implies_rewritten: everySame('user_spin_50ms_alone', (r) => !r.spin.switched || r.spin.rewritten),
  }),
  // Some schedules preempt the spin (B runs inside it): in all of those it was rewritten.
  user_spin_200ms_preempted: (): Facts => {
    const preempted = contendedRuns().filter((r) => r.spin.switched);
    if (preempted.length === 0) throw new Error('no schedule preempts the spin');
    return { cpu_id_start_rewritten: preempted.every((r) => r.spin.rewritten) };
  },
};

// ---- migrate ------------------------------------------------------------------------------------

function* migrate(ctx: Ctx): SimCode<Facts> {
  yield sysRseq(ctx.T, 32, 0, SIG);
  yield* setSent(ctx.T);
  const r: number = yield schedSetaffinity(1);
  if (r !== 0) throw new Error(`sched_setaffinity: ${ename(r)}`);
  const cpu = yield* loadInt(ctx.T + RSEQ.CPU_ID);
  return {
    cpu_id_start_rewritten: ((yield load32(ctx.T + RSEQ.CPU_ID_START)) as number) !== SENT,
    cpu_id: cpu >>> 0,
    cpu_id_is_1: cpu === 1,
  };
}
const migrateScenario = factsScenario<Ctx>('rseq rewrite migrate', setup, migrate);
const migrateFacts = once(() => same(everySchedule(migrateScenario, noFinding, { settings: GLIBC_RSEQ_OFF }), migrateScenario.name) as Facts);

// ---- membarrier ---------------------------------------------------------------------------------

/** mb_target: on CPU 0, registered, spins until its sentinel is rewritten (bounded). */
function mbTarget(ctx: Ctx) {
  return function* (): SimCode<number> {
    yield schedSetaffinity(0);
    yield sysRseq(ctx.T2, 32, 0, SIG);
    yield* setSent(ctx.T2);
    yield store32(ctx.ready, 1);
    let seen = false;
    for (let i = 0; i < 200 && !seen; i++) seen = ((yield load32(ctx.T2 + RSEQ.CPU_ID_START)) as number) !== SENT;
    yield store32(ctx.spinSeen, Number(seen));
    yield sysRseq(ctx.T2, 32, F_UNREG, SIG);
    return 0;
  };
}

function* mb(ctx: Ctx): SimCode<CaseFacts> {
  const out: CaseFacts = {};
  yield sysRseq(ctx.T, 32, 0, SIG);
  out.membarrier_rseq_unregistered = { result: ename(yield membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, 0, 0)) };
  out.membarrier_register_rseq = { result: ename(yield membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0, 0)) };
  yield schedSetaffinity(1);
  for (const flagCpu of [false, true]) {
    yield store32(ctx.ready, 0);
    const pd: number = yield* ctx.libc.pthreadCreate(mbTarget(ctx), 0);
    yield schedYield(); // see NEW_THREAD_RUNS in common.ts
    while (((yield load32(ctx.ready)) as number) === 0);
    for (let i = 0; i < 3; i++) yield load32(ctx.done); // let it spin a little
    yield* setSent(ctx.T);
    const r: number = yield membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, flagCpu ? MEMBARRIER_CMD_FLAG_CPU : 0, 0);
    const self = ((yield load32(ctx.T + RSEQ.CPU_ID_START)) as number) !== SENT;
    yield* ctx.libc.pthreadJoin(pd);
    const seen = ((yield load32(ctx.spinSeen)) as number) === 1;
    if (flagCpu) out.membarrier_rseq_ipi_cpu0 = { result: ename(r), target_rewritten: seen };
    else out.membarrier_rseq_ipi = { result: ename(r), target_rewritten: seen, caller_rewritten: self };
  }
  return out;
}
const mbScenario = factsScenario<Ctx>('rseq rewrite membarrier', setup, mb);
const mbFacts = once(() => noFinding(roundRobin(mbScenario, { settings: GLIBC_RSEQ_OFF })) as CaseFacts);

/**
 * Loops: calls, rewrites and context_switches are counts of one run on a shared VM. Of the two
 * relations only switch_without_rewrite (0: every switch rewrites) is stable: the machine also
 * rewrites without a switch, about one run in three when the probe runs under load, always once
 * (rewrite_without_switch 1 with 0 switches): the classic kernel writes the IDs on every
 * notify-resume, and other work raises it too (most likely the mm_cid compaction task_work,
 * 100 ms after the mm starts: README "surprise" 7). The model has no such trigger, so in it
 * rewrite_without_switch is 0 in every schedule; that is not compared.
 */
const LOOP_STABLE = ['switch_without_rewrite'];

export const rewriteCases: Record<string, Plan> = {
  getppid_syscall: { model: contendedCases.getppid_syscall, fields: LOOP_STABLE },
  // cpu_id_start_rewritten depends on whether the machine preempted the spin. The probe's
  // rewritten_iff_switched has the same exposure as the loops (a rewrite with no switch), so
  // the half that holds on the machine whatever else ran is compared: a switch rewrites.
  user_spin_50ms_alone: {
    model: contendedCases.user_spin_50ms_alone,
    fields: [],
    fromLine: { switched_implies_rewritten: (l) => !((l.context_switches as number) > 0) || l.cpu_id_start_rewritten === true },
  },
  signal_handler: {
    model: partOf(seqFacts, 'signal_handler'),
    fields: ['rewritten_before_handler', 'cpu_id_in_handler_valid', 'rewritten_by_sigreturn'],
  },
  signal_ignored: {
    model: partOf(seqFacts, 'signal_ignored'),
    fields: ['cpu_id_start_rewritten', 'cpu_id_rewritten', 'cpu_id_start', 'cpu_id'],
  },
  sched_yield_alone: { model: partOf(seqFacts, 'sched_yield_alone'), fields: LOOP_STABLE },
  // cpu_id_start / cpu_id are the CPU the probe is pinned to.
  nanosleep_1ms: { model: partOf(seqFacts, 'nanosleep_1ms'), fields: ['cpu_id_start_rewritten', 'cpu_id_rewritten'] },
  sched_yield_contended: { model: contendedCases.sched_yield_contended, fields: LOOP_STABLE },
  user_spin_200ms_preempted: { model: contendedCases.user_spin_200ms_preempted, fields: ['cpu_id_start_rewritten'] },
  rseq_cs_lazy_clear: {
    model: partOf(seqFacts, 'rseq_cs_lazy_clear'),
    fields: ['kept_after_getppid', 'switched', 'cleared_after_switch'],
  },
  rseq_cs_lazy_clear_signal: { model: partOf(seqFacts, 'rseq_cs_lazy_clear_signal'), fields: ['cleared_after_signal'] },
  migrate_setaffinity: { model: migrateFacts, fields: ['cpu_id_start_rewritten', 'cpu_id', 'cpu_id_is_1'] },
  membarrier_rseq_unregistered: { model: partOf(mbFacts, 'membarrier_rseq_unregistered'), fields: ['result'] },
  membarrier_register_rseq: { model: partOf(mbFacts, 'membarrier_register_rseq'), fields: ['result'] },
  membarrier_rseq_ipi: { model: partOf(mbFacts, 'membarrier_rseq_ipi'), fields: ['result', 'target_rewritten', 'caller_rewritten'] },
  membarrier_rseq_ipi_cpu0: { model: partOf(mbFacts, 'membarrier_rseq_ipi_cpu0'), fields: ['result', 'target_rewritten'] },
};
