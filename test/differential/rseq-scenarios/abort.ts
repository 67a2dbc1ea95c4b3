/**
 * probes/rseq/abort.c: real critical sections and when the classic kernel aborts them, or kills
 * the process over a bad descriptor. glibc's registration is off; the thread registers T.
 *
 * A section here is the probe's: rseq_cs = &descriptor (outside), then at start_ip a loop of n
 * steps ("decq; jnz"), then the commit store, the section's last instruction; an abort enters
 * the code at abort_ip, which stores 0. Descriptors live in data, their code addresses in a text
 * page whose abort_ip is preceded by the signature word (0x53053053, or 0x12345678 for cs_badsig).
 *
 * - Cases whose disturbing event comes from a poker thread on CPU 1 (a signal, a migration, a
 *   membarrier IPI), and the fatal cases, run under one fixed schedule (round robin): the poker
 *   spins until the section has started, as the probe's sleeps 20 ms into it. The probe's fact
 *   is "an event delivered inside aborts it (or kills)", and this schedule delivers it inside.
 * - The preemption trials (alone_*, contended_*) run every schedule (DFS) of the section against
 *   a busy thread on the same CPU, the probe's busy thread or the machine's background work:
 *   in every schedule a section is aborted iff the busy thread ran inside it. Whether it ran is
 *   read atomically with the commit (the commit is an exchange of a marker word B sets).
 * - The probe runs each fatal case in a fork child (to survive it); here each is its own run,
 *   since a SIGSEGV ends a model run. The child's inheritance is the inherit probe's business.
 */
import {
  at, fetchAdd32, load32, load64, store32, storePtr, xchg32, type SimCode,
} from '../../../src/engine/ops.ts';
import {
  membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, RSEQ, RSEQ_CS,
  RseqAbort, sysRseq,
} from '../../../src/kernel/rseq.ts';
import { schedSetaffinity } from '../../../src/kernel/sched.ts';
import { SIGALRM, SIGUSR1 } from '../../../src/kernel/signal.ts';
import { getpid, gettid, kill, SIG_BLOCK, SIG_SETMASK, sigaction, sigprocmask, tgkill } from '../../../src/kernel/syscalls.ts';
import type { Glibc } from '../../../src/libc/glibc.ts';
import { PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE } from '../../../src/memory/page.ts';
import type { Setup } from '../../../src/scenario/memory-view.ts';
import {
  childEnd, everySchedule, factsScenario, GLIBC_RSEQ_OFF, interruptedIp, noFinding, once, roundRobin, same, schedYield, SIG,
  type CaseFacts, type Facts, type Line, type Plan,
} from './common.ts';

/** The critical sections' code: start_ip, post_commit_offset, abort_ip, and the word before it. */
const TEXT = 0x500000;
const LEN = 0x40;
type CsName = 'good' | 'badsig' | 'version1' | 'flagNoRestart';
const CS: Record<CsName, { start: number; abort: number; version: number; flags: number; sigword: number }> = {
  good: { start: TEXT + 0x100, abort: TEXT + 0x180, version: 0, flags: 0, sigword: SIG },
  badsig: { start: TEXT + 0x200, abort: TEXT + 0x280, version: 0, flags: 0, sigword: 0x12345678 },
  version1: { start: TEXT + 0x300, abort: TEXT + 0x380, version: 1, flags: 0, sigword: SIG },
  flagNoRestart: { start: TEXT + 0x400, abort: TEXT + 0x480, version: 0, flags: 1, sigword: SIG },
};

interface Ctx {
  readonly libc: Glibc;
  readonly T: number;
  readonly desc: Readonly<Record<CsName, number>>;
  /** Set by the section's first instruction: the poker's "20 ms in". */
  readonly inside: number;
  readonly ready: number;
  /** The section's `ret` (1 committed, 0 aborted). */
  readonly ret: number;
  readonly handlerCalls: number;
  readonly handlerRip: number;
  /** The busy thread marks every step here. */
  readonly marker: number;
  readonly tid: number;
}

function setup(m: Setup): Ctx {
  m.map(TEXT, PAGE_SIZE, PROT_READ | PROT_WRITE);
  const desc = {} as Record<CsName, number>;
  for (const [name, cs] of Object.entries(CS) as [CsName, (typeof CS)[CsName]][]) {
    m.write32(cs.abort - 4, cs.sigword);
    const d = m.alloc(RSEQ_CS.SIZE, 32);
    m.write32(d + RSEQ_CS.VERSION, cs.version);
    m.write32(d + RSEQ_CS.FLAGS, cs.flags);
    m.writePtr(d + RSEQ_CS.START_IP, cs.start);
    m.writePtr(d + RSEQ_CS.POST_COMMIT_OFFSET, LEN);
    m.writePtr(d + RSEQ_CS.ABORT_IP, cs.abort);
    desc[name] = d;
  }
  m.protect(TEXT, PAGE_SIZE, PROT_READ | PROT_EXEC);
  return {
    libc: m.glibc,
    T: m.alloc(32, 32),
    desc,
    inside: m.alloc(4),
    ready: m.alloc(4),
    ret: m.alloc(4),
    handlerCalls: m.alloc(4),
    handlerRip: m.alloc(8),
    marker: m.alloc(4),
    tid: m.alloc(4),
  };
}

/** One critical section of n loop steps: committed or aborted, and the iterations left. */
function* section(ctx: Ctx, name: CsName, n: number): SimCode<{ ok: boolean; left: number }> {
  const cs = CS[name];
  let left = n;
  yield store32(ctx.inside, 0);
  try {
    yield storePtr(ctx.T + RSEQ.RSEQ_CS, ctx.desc[name]);
    at(cs.start);
    yield store32(ctx.inside, 1);
    at(cs.start + 8);
    while (left > 0) {
      yield load32(ctx.ready);
      left--;
    }
    at(cs.start + LEN - 8);
    yield store32(ctx.ret, 1); // the commit
    at(0);
    return { ok: true, left };
  } catch (e) {
    if (!(e instanceof RseqAbort)) throw e;
    yield store32(ctx.ret, 0); // abort_ip: movl $0, ret
    at(0);
    return { ok: false, left };
  }
}

/** on_sig: count the call and keep the interrupted RIP. */
function onSig(ctx: Ctx) {
  return function* handler(): SimCode {
    yield storePtr(ctx.handlerRip, (yield interruptedIp()) as number);
    yield fetchAdd32(ctx.handlerCalls, 1);
  };
}

/** What disturbs the section, from CPU 1 once it has started. */
type Poke = 'tgkill' | 'migrate' | 'membarrier' | 'timer' | 'blocked-timer';

function poker(ctx: Ctx, what: Poke) {
  return function* (): SimCode<number> {
    yield schedSetaffinity(1);
    // A timer is no thread: the signal must not be delivered to the poker (SIGALRM is for the
    // process, and the poker would take it when the target blocks it).
    if (what === 'timer' || what === 'blocked-timer') yield sigprocmask(SIG_BLOCK, 1 << SIGALRM);
    yield store32(ctx.ready, 1);
    while (((yield load32(ctx.inside)) as number) === 0);
    const pid: number = yield getpid();
    const tid = (yield load32(ctx.tid)) as number;
    if (what === 'tgkill') yield tgkill(pid, tid, SIGUSR1);
    else if (what === 'migrate') yield schedSetaffinity(1, tid);
    else if (what === 'membarrier') yield membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, 0, 0);
    else yield kill(pid, SIGALRM);
    return 0;
  };
}

/** Registration and handlers, as abort.c's main and crash() children have them. */
function* start(ctx: Ctx): SimCode {
  yield sysRseq(ctx.T, 32, 0, SIG);
  yield store32(ctx.tid, (yield gettid()) as number);
  yield sigaction(SIGALRM, onSig(ctx));
  yield sigaction(SIGUSR1, onSig(ctx));
}

/** The probe's one(): a section of n steps with a poker (or none); its facts. */
function* one(ctx: Ctx, n: number, poke: Poke | null, name: CsName = 'good'): SimCode<Facts> {
  yield store32(ctx.handlerCalls, 0);
  yield storePtr(ctx.handlerRip, 0);
  let pd = 0;
  let old = 0;
  if (poke === 'blocked-timer') old = yield sigprocmask(SIG_BLOCK, 1 << SIGALRM);
  if (poke !== null) {
    yield store32(ctx.ready, 0);
    pd = yield* ctx.libc.pthreadCreate(poker(ctx, poke), 0);
    yield schedYield(); // see NEW_THREAD_RUNS in common.ts
    while (((yield load32(ctx.ready)) as number) === 0);
  }
  const { ok, left } = yield* section(ctx, name, n);
  const cs = (yield load64(ctx.T + RSEQ.RSEQ_CS)) as bigint;
  if (poke === 'blocked-timer') yield sigprocmask(SIG_SETMASK, old); // delivered here, outside
  if (poke !== null) yield* ctx.libc.pthreadJoin(pd);
  const rip = (yield load64(ctx.handlerRip)) as bigint;
  return {
    committed: ok,
    aborted: !ok,
    iters_left_nonzero: left !== 0,
    rseq_cs_after: cs === 0n ? '0' : Number(cs) === ctx.desc[name] ? 'desc' : 'other',
    handler_calls: (yield load32(ctx.handlerCalls)) as number,
    handler_rip_is_abort_ip: Number(rip) === CS[name].abort,
  };
}

// ---- the cases with one section each, under the round-robin schedule ----------------------------------

const N = 10;

function* sections(ctx: Ctx): SimCode<CaseFacts> {
  const out: CaseFacts = {};
  yield* start(ctx);
  // the descriptor, and a commit leaving rseq_cs set
  const d = ctx.desc.good;
  const c1 = yield* section(ctx, 'good', 1);
  const start_ = (yield load64(d + RSEQ_CS.START_IP)) as bigint;
  const off = (yield load64(d + RSEQ_CS.POST_COMMIT_OFFSET)) as bigint;
  const abort = (yield load64(d + RSEQ_CS.ABORT_IP)) as bigint;
  out.descriptor = {
    version: (yield load32(d + RSEQ_CS.VERSION)) as number,
    flags: (yield load32(d + RSEQ_CS.FLAGS)) as number,
    abort_outside: abort - start_ >= off,
    sig_before_abort: ((yield load32(Number(abort) - 4)) as number) === SIG,
    commit_leaves_rseq_cs: c1.ok && ((yield load64(ctx.T + RSEQ.RSEQ_CS)) as bigint) !== 0n,
  };
  out.short_no_event = yield* one(ctx, 3, null);
  out.signal_timer_inside = yield* one(ctx, N, 'timer');
  out.signal_thread_inside = yield* one(ctx, N, 'tgkill');
  out.signal_blocked_inside = yield* one(ctx, N, 'blocked-timer');
  out.migrated_inside = yield* one(ctx, N, 'migrate');
  yield schedSetaffinity(0); // poke_disarm: pin(0)
  yield membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0, 0);
  out.membarrier_ipi_inside = yield* one(ctx, N, 'membarrier');
  return out;
}

const sectionsScenario = factsScenario<Ctx>('rseq abort sections', setup, sections);
const sectionFacts = once(() => noFinding(roundRobin(sectionsScenario, { settings: GLIBC_RSEQ_OFF })) as CaseFacts);

// ---- preemption trials: every schedule against a busy thread on the same CPU ----------------------

const BUSY_STEPS = 3;
const TRIALS = 2;

function* busy(ctx: Ctx): SimCode<number> {
  for (let i = 0; i < BUSY_STEPS; i++) yield store32(ctx.marker, 1);
  return 0;
}

/** One trial: [aborted, switched inside]. */
function* trial(ctx: Ctx): SimCode<[boolean, boolean]> {
  const cs = CS.good;
  try {
    yield storePtr(ctx.T + RSEQ.RSEQ_CS, ctx.desc.good);
    at(cs.start);
    yield store32(ctx.marker, 0);
    yield load32(ctx.ready);
    at(cs.start + LEN - 8);
    const marks = (yield xchg32(ctx.marker, 0)) as number; // the commit, reading B's marks with it
    at(0);
    return [false, marks !== 0];
  } catch (e) {
    if (!(e instanceof RseqAbort)) throw e;
    at(0);
    return [true, ((yield load32(ctx.marker)) as number) !== 0];
  }
}

function* trials(ctx: Ctx): SimCode<Facts> {
  yield sysRseq(ctx.T, 32, 0, SIG);
  let abNoSw = 0;
  let swNoAb = 0;
  let aborts = 0;
  for (let i = 0; i < TRIALS; i++) {
    const [a, s] = yield* trial(ctx);
    if (a) aborts++;
    if (a && !s) abNoSw++;
    if (s && !a) swNoAb++;
  }
  return { aborts, abort_without_switch: abNoSw, switch_without_abort: swNoAb };
}

const trialsScenario = factsScenario<Ctx>('rseq abort trials', setup, trials, { cpus: 1, others: [busy] });
const trialRuns = once(() => [...everySchedule(trialsScenario, noFinding, { settings: GLIBC_RSEQ_OFF }).values()].map((v) => v.value as Facts));

/**
 * The probe counts context switches around each trial (getrusage), so under load a switch just
 * before or after the section can be counted in a trial that did not abort: a few such trials
 * (up to 2% of them) are measurement noise, not a switch the kernel failed to abort on.
 */
function switchCountNoise(line: Record<string, unknown>): string | undefined {
  const n = Number(line.switch_without_abort);
  const trials = Number(line.trials);
  if (n > 0 && n <= Math.max(1, trials / 50)) return `${n} of ${trials} trials counted a switch outside the section`;
  return undefined;
}

/** switch_without_abort in every schedule; and some schedule does abort (the check is not vacuous). */
function trialFacts(): Facts {
  const runs = trialRuns();
  if (!runs.some((r) => (r.aborts as number) > 0)) throw new Error('no schedule preempts a section');
  return { switch_without_abort: same(new Map(runs.map((r) => [String(r.switch_without_abort), { value: r.switch_without_abort, runs: 1 }])), 'trials') };
}

// ---- fatal cases: each its own run -------------------------------------------------------------------

type Fatal = (ctx: Ctx) => SimCode<unknown>;

/** A section of `name` with a (timer) signal delivered inside it. */
const insideSignal = (name: CsName, areaFlags = 0): Fatal =>
  function* (ctx) {
    if (areaFlags) yield store32(ctx.T + RSEQ.FLAGS, areaFlags);
    yield* one(ctx, N, 'timer', name);
  };

/** Commit at once, leaving rseq_cs set, then a signal while outside. */
const outsideSignal = (name: CsName, areaFlags = 0): Fatal =>
  function* (ctx) {
    if (areaFlags) yield store32(ctx.T + RSEQ.FLAGS, areaFlags);
    yield* section(ctx, name, 1);
    yield tgkill((yield getpid()) as number, (yield load32(ctx.tid)) as number, SIGUSR1);
  };

/** No signal: preempted by a busy thread on the same CPU. */
const insidePreempt = (name: CsName): Fatal =>
  function* (ctx) {
    const pd: number = yield* ctx.libc.pthreadCreate(function* () {
      for (let i = 0; i < 4 * N; i++) yield store32(ctx.marker, 1);
      return 0;
    }, 0);
    yield schedYield(); // see NEW_THREAD_RUNS in common.ts
    yield* section(ctx, name, N);
    yield* ctx.libc.pthreadJoin(pd);
  };

function fatal(name: string, body: Fatal, cpus = 2): () => Facts {
  const s = factsScenario<Ctx>(
    `rseq abort ${name}`,
    setup,
    function* (ctx) {
      yield* start(ctx);
      yield* body(ctx);
      // The child's _exit(0): a pending signal is delivered before the thread's next operation,
      // so there must be one (a thread that ends right after raise() would never get it).
      yield load32(ctx.ret);
      return { child: 'exit:0' };
    },
    { cpus },
  );
  return once(() => ({ child: childEnd(roundRobin(s, { settings: GLIBC_RSEQ_OFF })) }));
}

const ONE_FIELDS = ['committed', 'aborted', 'iters_left_nonzero', 'rseq_cs_after', 'handler_calls', 'handler_rip_is_abort_ip'];
const part = (name: string): (() => Facts) => () => sectionFacts()[name]!;

/**
 * one() retries an attempt disturbed by something other than the event under test (at most 5
 * attempts, `retries` counts the repeats: 5 means it gave up and reports a disturbed one).
 */
const gaveUp = (l: Line): string | undefined =>
  (l.retries as number) >= 5 ? `all 5 attempts were disturbed by other work (retries ${String(l.retries)})` : undefined;
/** short_no_event has no event and no retry: an abort there came from the machine. */
const abortedWithoutEvent = (l: Line): string | undefined =>
  l.aborted === true ? `aborted with no event from the probe (context switches: ${String(l.context_switches)})` : undefined;

export const abortCases: Record<string, Plan> = {
  descriptor: { model: part('descriptor'), fields: ['version', 'flags', 'abort_outside', 'sig_before_abort', 'commit_leaves_rseq_cs'] },
  // context_switches, ms_in_section, retries and rt describe the run on a shared VM.
  short_no_event: { model: part('short_no_event'), fields: ONE_FIELDS, noise: abortedWithoutEvent },
  signal_timer_inside: { model: part('signal_timer_inside'), fields: ONE_FIELDS, noise: gaveUp },
  signal_thread_inside: { model: part('signal_thread_inside'), fields: ONE_FIELDS, noise: gaveUp },
  signal_blocked_inside: { model: part('signal_blocked_inside'), fields: ONE_FIELDS, noise: gaveUp },
  // aborts, context_switches and abort_without_switch count background noise.
  alone_20x20ms: { model: trialFacts, fields: ['switch_without_abort'], noise: switchCountNoise },
  alone_rt_5x300ms: { model: trialFacts, fields: ['switch_without_abort'], noise: switchCountNoise },
  stale_signal_event: {
    notModelled:
      'its A_*/B_* counts vary run to run; and the model has no notify-resume without an event (it treats every return to user ' +
      'space as carrying one), so the stale event bit it shows cannot arise',
  },
  contended_20x20ms: { model: trialFacts, fields: ['switch_without_abort'], noise: switchCountNoise },
  contended_200x1ms: { model: trialFacts, fields: ['switch_without_abort'], noise: switchCountNoise },
  migrated_inside: { model: part('migrated_inside'), fields: ONE_FIELDS, noise: gaveUp },
  membarrier_ipi_inside: { model: part('membarrier_ipi_inside'), fields: ONE_FIELDS, noise: gaveUp },
  bad_signature_inside_signal: { model: fatal('bad_signature_inside_signal', insideSignal('badsig')), fields: ['child'] },
  bad_signature_inside_preempt: { model: fatal('bad_signature_inside_preempt', insidePreempt('badsig'), 1), fields: ['child'] },
  bad_signature_outside_signal: { model: fatal('bad_signature_outside_signal', outsideSignal('badsig')), fields: ['child'] },
  version1_inside_signal: { model: fatal('version1_inside_signal', insideSignal('version1')), fields: ['child'] },
  version1_outside_signal: { model: fatal('version1_outside_signal', outsideSignal('version1')), fields: ['child'] },
  cs_flags_norestart_inside_signal: { model: fatal('cs_flags_norestart_inside_signal', insideSignal('flagNoRestart')), fields: ['child'] },
  cs_flags_norestart_outside_signal: { model: fatal('cs_flags_norestart_outside_signal', outsideSignal('flagNoRestart')), fields: ['child'] },
  area_flags1_inside_signal: { model: fatal('area_flags1_inside_signal', insideSignal('good', 1)), fields: ['child'] },
  area_flags1_outside_signal: { model: fatal('area_flags1_outside_signal', outsideSignal('good', 1)), fields: ['child'] },
  good_outside_signal: { model: fatal('good_outside_signal', outsideSignal('good')), fields: ['child'] },
  garbage_rseq_cs_ptr_signal: {
    model: fatal('garbage_rseq_cs_ptr_signal', function* (ctx) {
      yield storePtr(ctx.T + RSEQ.RSEQ_CS, 0x10);
      yield tgkill((yield getpid()) as number, (yield load32(ctx.tid)) as number, SIGUSR1);
    }),
    fields: ['child'],
  },
};
