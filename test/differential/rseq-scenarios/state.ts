/**
 * probes/rseq/state.c: the registration glibc 2.36 leaves at process start, run with the tunable
 * glibc.pthread.rseq on (default) and off: auxv, glibc's exports, the main thread's and a new
 * thread's areas, the kernel's record of a fork child's registration, re-registration of glibc's
 * area and a TCMalloc-like private area.
 *
 * Every schedule (DFS): main, the pthread and a fork child; the facts are the same in each.
 */
import { type SimCode } from '../../../src/engine/ops.ts';
import { forkLike } from '../../../src/kernel/clone.ts';
import { AT_RSEQ_ALIGN, AT_RSEQ_FEATURE_SIZE, RSEQ, sysRseq } from '../../../src/kernel/rseq.ts';
import { getcpu } from '../../../src/kernel/sched.ts';
import { SIGCHLD, SIGKILL } from '../../../src/kernel/signal.ts';
import { futexWait, kill, wait4 } from '../../../src/kernel/syscalls.ts';
import type { Glibc } from '../../../src/libc/glibc.ts';
import {
  ename, everyRun, F_UNREG, factsScenario, GLIBC_RSEQ_OFF, getauxval, loadInt, once, partOf, ptraceRseqConfig, rs,
  SIG, storeWord, type CaseFacts, type Facts, type Line, type Plan,
} from './common.ts';

interface Ctx {
  readonly libc: Glibc;
  /** `static __thread struct hrseq own`: a TCMalloc-like private area. */
  readonly own: number;
  /** The pthread's facts, for main to read after the join. */
  readonly scratch: number;
  readonly status: number;
  /** A word nobody changes: the fork child sleeps on it until it is killed. */
  readonly sleep: number;
}

/** The probe's dump(): the area's words and the CPU, as raw numbers. */
function* readArea(area: number): SimCode<number[]> {
  const v = [area % 32];
  for (const off of [RSEQ.CPU_ID_START, RSEQ.CPU_ID, RSEQ.RSEQ_CS, RSEQ.RSEQ_CS + 4, RSEQ.FLAGS, RSEQ.NODE_ID, RSEQ.MM_CID]) {
    v.push(yield* loadInt(area + off));
  }
  v.push((yield getcpu()) as number);
  return v;
}

function areaFacts(v: readonly number[]): Facts {
  const [mod, start, id, csLo, csHi, flags, node, cid, cpu] = v as [number, number, number, number, number, number, number, number, number];
  return {
    area_mod32: mod,
    cpu_id_start: start,
    cpu_id: id,
    rseq_cs: (csHi >>> 0) * 2 ** 32 + (csLo >>> 0),
    flags: flags >>> 0,
    node_id: node >>> 0,
    mm_cid: cid >>> 0,
    sched_getcpu: cpu,
    getcpu_syscall: cpu,
    cpu_id_eq_getcpu: id === cpu,
  };
}

const AREA_WORDS = 9;

/** The probe's thr(): dump its own glibc area, then re-register it with glibc's arguments. */
function thr(ctx: Ctx) {
  return function* thread(): SimCode<number> {
    const area = (yield* ctx.libc.self()) + ctx.libc.rseqOffset;
    const v = yield* readArea(area);
    for (let i = 0; i < AREA_WORDS; i++) yield* storeWord(ctx.scratch + 4 * i, v[i]!);
    if (ctx.libc.rseqSize) {
      yield* storeWord(ctx.scratch + 4 * AREA_WORDS, (yield sysRseq(area, 32, 0, SIG)) as number);
    }
    return 0;
  };
}

function* main(ctx: Ctx): SimCode<CaseFacts> {
  const out: CaseFacts = {};
  const fs: number = yield getauxval(AT_RSEQ_FEATURE_SIZE);
  const al: number = yield getauxval(AT_RSEQ_ALIGN);
  out.auxv = { AT_RSEQ_FEATURE_SIZE: fs, feature_errno: fs ? 'OK' : 'ENOENT', AT_RSEQ_ALIGN: al, align_errno: al ? 'OK' : 'ENOENT' };
  const size = ctx.libc.rseqSize;
  out.glibc_exports = { __rseq_size: size, __rseq_offset: ctx.libc.rseqOffset, __rseq_flags: 0, RSEQ_SIG: SIG, sizeof_struct_rseq: RSEQ.ORIG_SIZE };

  const g = (yield* ctx.libc.self()) + ctx.libc.rseqOffset;
  out.main_area = areaFacts(yield* readArea(g));

  const pd: number = yield* ctx.libc.pthreadCreate(thr(ctx), 0);
  yield* ctx.libc.pthreadJoin(pd);
  const v: number[] = [];
  for (let i = 0; i < AREA_WORDS; i++) v.push(yield* loadInt(ctx.scratch + 4 * i));
  out.pthread_area = areaFacts(v);
  const rereg = yield* loadInt(ctx.scratch + 4 * AREA_WORDS);
  out.pthread_reregister_glibc_area_len32 = { result: size ? ename(rereg) : 'not-tried(size 0)' };

  // A fork child, stopped (here: asleep for good), asked for its registration, then killed. A raw
  // fork: glibc 2.36's fork runs no rseq code.
  const pid: number = yield* forkLike(SIGCHLD);
  if (pid === 0) for (;;) yield* futexWait(ctx.sleep, 0);
  const cfg = (yield ptraceRseqConfig(pid)) as number[];
  yield kill(pid, SIGKILL);
  yield wait4(pid, ctx.status, 0);
  out.ptrace_rseq_config_fork_child = {
    result: 'OK',
    ptr_is_glibc_area: cfg[0] === g,
    ptr_nonzero: cfg[0] !== 0,
    size: cfg[1]!,
    sig: cfg[2]!,
    flags: 0,
  };

  if (size) {
    out.reregister_len_rseq_size = { len: size, result: yield* rs(g, size, 0, SIG) };
    out.reregister_same_args_len32 = { result: yield* rs(g, 32, 0, SIG) };
    out.reregister_other_sig_len32 = { result: yield* rs(g, 32, 0, SIG + 1) };
    out.reregister_len64 = { result: yield* rs(g, 64, 0, SIG) };
  }
  const r = yield* rs(ctx.own, 32, 0, SIG);
  out.register_own_area = { result: r, own_cpu_id: yield* loadInt(ctx.own + RSEQ.CPU_ID) };
  if (r === 'OK') {
    const u = yield* rs(ctx.own, 32, F_UNREG, SIG);
    out.unregister_own_area = {
      result: u,
      own_cpu_id: yield* loadInt(ctx.own + RSEQ.CPU_ID),
      own_cpu_id_start: (yield* loadInt(ctx.own + RSEQ.CPU_ID_START)) >>> 0,
    };
  }
  return out;
}

const scenario = factsScenario<Ctx>(
  'rseq state',
  (m) => ({ libc: m.glibc, own: m.alloc(32, 32), scratch: m.alloc(64), status: m.alloc(4), sleep: m.alloc(4) }),
  main,
);

/** The probe's `mode` field: GLIBC_TUNABLES, or "default". */
export type StateMode = 'default' | 'glibc.pthread.rseq=0';

const facts = {
  default: once(() => everyRun(scenario) as CaseFacts),
  'glibc.pthread.rseq=0': once(() => everyRun(scenario, { settings: GLIBC_RSEQ_OFF }) as CaseFacts),
};

/** CPU numbers vary run to run; what they say about registration does not. */
const cpuIds = {
  cpu_id_ge0: (f: Line) => (f.cpu_id as number) >= 0,
  cpu_id_start_eq_cpu_id: (f: Line) => f.cpu_id_start === f.cpu_id,
};
const AREA_STABLE = ['area_mod32', 'rseq_cs', 'flags', 'node_id', 'cpu_id_eq_getcpu'];

export function stateCases(mode: StateMode): Record<string, Plan> {
  const f = facts[mode];
  const on = mode === 'default';
  const plans: Record<string, Plan> = {
    auxv: { model: partOf(f, 'auxv'), fields: ['AT_RSEQ_FEATURE_SIZE', 'feature_errno', 'AT_RSEQ_ALIGN', 'align_errno'] },
    glibc_exports: {
      model: partOf(f, 'glibc_exports'),
      // __rseq_offset itself is the place of the area in struct pthread, which the model lays
      // out its own way; that it is positive (the area inside struct pthread, 2.35-2.40) is kept.
      fields: ['__rseq_size', '__rseq_flags', 'RSEQ_SIG', 'sizeof_struct_rseq'],
      derived: { __rseq_offset_positive: (l) => (l.__rseq_offset as number) > 0 },
    },
    // Registered: cpu_id_start == cpu_id == the CPU (a number that varies). The main thread's
    // mm_cid is 0 (the only thread); a pthread's depends on which CIDs are free.
    main_area: on
      ? { model: partOf(f, 'main_area'), fields: [...AREA_STABLE, 'mm_cid'], derived: cpuIds }
      : { model: partOf(f, 'main_area'), fields: [...AREA_STABLE, 'cpu_id_start', 'cpu_id', 'mm_cid'] },
    pthread_area: on
      ? { model: partOf(f, 'pthread_area'), fields: AREA_STABLE, derived: cpuIds }
      : { model: partOf(f, 'pthread_area'), fields: [...AREA_STABLE, 'cpu_id_start', 'cpu_id', 'mm_cid'] },
    pthread_reregister_glibc_area_len32: { model: partOf(f, 'pthread_reregister_glibc_area_len32'), fields: ['result'] },
    // `ret` is sizeof the configuration struct the probe passes (24): not a model fact.
    ptrace_rseq_config_fork_child: {
      model: partOf(f, 'ptrace_rseq_config_fork_child'),
      fields: ['result', 'ptr_is_glibc_area', 'ptr_nonzero', 'size', 'sig', 'flags'],
    },
    register_own_area: on
      ? { model: partOf(f, 'register_own_area'), fields: ['result', 'own_cpu_id'] }
      : { model: partOf(f, 'register_own_area'), fields: ['result'], derived: { own_cpu_id_ge0: (l) => (l.own_cpu_id as number) >= 0 } },
  };
  if (on) {
    plans.reregister_len_rseq_size = { model: partOf(f, 'reregister_len_rseq_size'), fields: ['len', 'result'] };
    for (const c of ['reregister_same_args_len32', 'reregister_other_sig_len32', 'reregister_len64']) {
      plans[c] = { model: partOf(f, c), fields: ['result'] };
    }
  } else {
    plans.unregister_own_area = { model: partOf(f, 'unregister_own_area'), fields: ['result', 'own_cpu_id', 'own_cpu_id_start'] };
  }
  return plans;
}

