/**
 * probes/rseq/errors.c: every errno path of rseq(2) and the order of its checks, with glibc's
 * registration off, run in the probe's order on the same kinds of addresses (two 32-byte areas A
 * and B, a 64-aligned buffer for misaligned addresses, a page-aligned 8 KiB buffer for long
 * lengths). The cases that can fault run in a fork child, as in the probe; the one whose child
 * dies (register_readonly_page_cs0) is a scenario of its own, since a SIGSEGV ends a model run.
 *
 * Every schedule (DFS). The children come from a raw fork, whose parent goes straight to wait4:
 * the child runs alone, as the probe's does while its parent sleeps in waitpid (glibc's fork
 * adds parent-side steps that could preempt the child on its CPU, which the probe never sees).
 */
import { load64, store64, storePtr, store32, type SimCode } from '../../../src/engine/ops.ts';
import { forkLike } from '../../../src/kernel/clone.ts';
import { RSEQ, sysRseq } from '../../../src/kernel/rseq.ts';
import { getcpu } from '../../../src/kernel/sched.ts';
import { SIGCHLD } from '../../../src/kernel/signal.ts';
import {
  exitGroup, MAP_ANONYMOUS, MAP_PRIVATE, mmap, mprotect, munmap, PROT_READ, PROT_WRITE,
} from '../../../src/kernel/syscalls.ts';
import { PAGE_SIZE } from '../../../src/memory/page.ts';
import type { Setup } from '../../../src/scenario/memory-view.ts';
import {
  childEnd, everyRun, everySchedule, F_UNREG, factsScenario, GLIBC_RSEQ_OFF, loadInt, mapShared, NONE, once, partOf,
  resultName, rs, same, schedYield, SENT, SHARED, SIG, storeWord, waitChild, type CaseFacts, type Facts, type Line, type Plan,
} from './common.ts';

interface Ctx {
  readonly A: number;
  readonly Bx: number;
  /** `static char raw[256] aligned(64)`. */
  readonly raw: number;
  /** `static char big[8192] aligned(4096)`. */
  readonly big: number;
  readonly status: number;
}

const setup = (m: Setup): Ctx => ({
  A: m.alloc(32, 32),
  Bx: m.alloc(32, 32),
  raw: m.alloc(256, 64),
  big: m.alloc(8192, 4096),
  status: m.alloc(4),
});

/** Kernel addresses as the probe passes them. 0xffff888000000000 is exact as a double. */
const KERNEL_ADDR = 0xffff888000000000;
/**
 * The probe's 0xffff888000000010 has no exact double (it rounds to an aligned address), so
 * order_misaligned_and_kernel_addr uses another misaligned address above TASK_SIZE.
 */
const KERNEL_ADDR_MISALIGNED = 0x8000_0000_0010;
const ABOVE_TASK_SIZE = 0x8000_0000_0000;

// ---- the probe's in_child cases -----------------------------------------------------------------

/** The probe's page(): a fresh page with rseq_cs = 0x1234560, then unmapped or mprotected. */
function* page(prot: number, unmap: boolean): SimCode<number> {
  const p: number = yield mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  yield store64(p + RSEQ.RSEQ_CS, 0x1234560n);
  if (unmap) yield munmap(p, PAGE_SIZE);
  else yield mprotect(p, PAGE_SIZE, prot);
  return p;
}

function* cUnmapped(): SimCode {
  yield* storeWord(SHARED, (yield sysRseq(yield* page(0, true), 32, 0, SIG)) as number);
}

function* cRoZero(): SimCode {
  const p = yield* page(PROT_READ, false);
  yield mprotect(p, PAGE_SIZE, PROT_READ | PROT_WRITE);
  yield store64(p + RSEQ.RSEQ_CS, 0n);
  yield mprotect(p, PAGE_SIZE, PROT_READ);
  yield* storeWord(SHARED, (yield sysRseq(p, 32, 0, SIG)) as number);
}

function* cRoCs(): SimCode {
  yield* storeWord(SHARED, (yield sysRseq(yield* page(PROT_READ, false), 32, 0, SIG)) as number);
}

function* cGarbageCs(): SimCode {
  const p = yield* page(PROT_READ | PROT_WRITE, false);
  const r: number = yield sysRseq(p, 32, 0, SIG);
  yield* storeWord(SHARED, r);
  const cs = (yield load64(p + RSEQ.RSEQ_CS)) as bigint;
  yield* storeWord(SHARED + 4, Number(cs & 0xffffffffn));
  yield* storeWord(SHARED + 8, Number(cs >> 32n));
}

function* cUnregRo(): SimCode {
  const p = yield* page(PROT_READ | PROT_WRITE, false);
  yield store64(p + RSEQ.RSEQ_CS, 0n);
  if ((yield sysRseq(p, 32, 0, SIG)) !== 0) return;
  yield mprotect(p, PAGE_SIZE, PROT_READ);
  yield* storeWord(SHARED, (yield sysRseq(p, 32, F_UNREG, SIG)) as number);
  yield* storeWord(SHARED + 4, (yield sysRseq(p, 32, 0, SIG)) as number);
}

/** The probe's in_child(): run fn in a fork child; its results in the shared page, and how it ended. */
function* inChild(ctx: Ctx, fn: () => SimCode): SimCode<{ result: string; child: string; w1: number; w2: number }> {
  for (const off of [0, 4, 8]) yield* storeWord(SHARED + off, NONE);
  const pid: number = yield* forkLike(SIGCHLD);
  if (pid === 0) {
    yield* fn();
    yield exitGroup(0);
  }
  const child = yield* waitChild(pid, ctx.status);
  return { result: resultName(yield* loadInt(SHARED)), child, w1: yield* loadInt(SHARED + 4), w2: yield* loadInt(SHARED + 8) };
}

// ---- the sequence ---------------------------------------------------------------------------------

function* main(ctx: Ctx): SimCode<CaseFacts> {
  const out: CaseFacts = {};
  const { A, Bx, raw, big } = ctx;
  const c = function* (name: string, r: SimCode<string>): SimCode {
    out[name] = { result: yield* r };
  };
  yield* mapShared();

  // not registered
  yield* c('unregister_not_registered', rs(A, 32, F_UNREG, SIG));
  yield* c('unregister_not_registered_flags3', rs(A, 32, F_UNREG | 2, SIG));
  yield* c('register_flags2', rs(A, 32, 2, SIG));
  yield* c('register_flags_0x80000000', rs(A, 32, 0x80000000 | 0, SIG));
  yield* c('register_misaligned_16', rs(raw + 16, 32, 0, SIG));
  yield* c('register_misaligned_4', rs(raw + 4, 32, 0, SIG));
  yield* c('register_len0', rs(A, 0, 0, SIG));
  yield* c('register_len20', rs(A, 20, 0, SIG));
  yield* c('register_len28', rs(A, 28, 0, SIG));
  yield* c('register_len31', rs(A, 31, 0, SIG));
  yield* c('register_len64_misaligned_16', rs(raw + 16, 64, 0, SIG));
  yield* c('register_null_len32', rs(0, 32, 0, SIG));
  yield* c('register_kernel_addr', rs(KERNEL_ADDR, 32, 0, SIG));
  yield* c('register_above_task_size', rs(ABOVE_TASK_SIZE, 32, 0, SIG));
  yield* c('order_flags2_and_misaligned', rs(raw + 4, 32, 2, SIG));
  yield* c('order_misaligned_and_kernel_addr', rs(KERNEL_ADDR_MISALIGNED, 32, 0, SIG));
  yield* c('order_len16_and_null', rs(0, 16, 0, SIG));
  yield* c('order_flags2_and_kernel_addr', rs(KERNEL_ADDR, 32, 2, SIG));

  let k = yield* inChild(ctx, cUnmapped);
  out.register_unmapped_page = { result: k.result, child: k.child };
  k = yield* inChild(ctx, cRoCs);
  out.register_readonly_page_cs_nonzero = { result: k.result, child: k.child };
  k = yield* inChild(ctx, cGarbageCs);
  out.register_with_garbage_rseq_cs = { result: k.result, rseq_cs_after: String((k.w2 >>> 0) * 2 ** 32 + (k.w1 >>> 0)), child: k.child };
  k = yield* inChild(ctx, cUnregRo);
  out.unregister_readonly_area = { result: k.result, reregister_after: resultName(k.w1), child: k.child };

  // lengths other than 32
  for (const len of [33, 64, 4096]) {
    const r = yield* rs(big, len, 0, SIG);
    const u32 = r === 'OK' ? yield* rs(big, 32, F_UNREG, SIG) : '-';
    const u = r === 'OK' ? yield* rs(big, len, F_UNREG, SIG) : '-';
    out[`register_len${len}`] = { result: r, unregister_len32: u32, unregister_same_len: u };
  }

  // register A: fields before/after
  for (const off of [RSEQ.CPU_ID_START, RSEQ.CPU_ID, RSEQ.NODE_ID, RSEQ.MM_CID]) yield* storeWord(A + off, SENT);
  yield store32(A + RSEQ.FLAGS, 0x55);
  yield store32(A + 28, 0x66);
  const r = yield* rs(A, 32, 0, SIG);
  const ids: number[] = [];
  for (const off of [RSEQ.CPU_ID_START, RSEQ.CPU_ID, RSEQ.NODE_ID, RSEQ.MM_CID]) ids.push((yield* loadInt(A + off)) >>> 0);
  const cpu: number = yield getcpu();
  out.register_ok = {
    result: r,
    cpu_id_start: ids[0]!,
    cpu_id: ids[1]!,
    node_id: ids[2]!,
    mm_cid: ids[3]!,
    flags: (yield* loadInt(A + RSEQ.FLAGS)) >>> 0,
    pad: (yield* loadInt(A + 28)) >>> 0,
    cpu_id_is_getcpu: ids[1] === cpu,
    ids_rewritten: ids.every((v) => v !== SENT),
  };
  yield store32(A + RSEQ.FLAGS, 0);

  // registered
  yield* c('reregister_same_args', rs(A, 32, 0, SIG));
  yield* c('reregister_other_addr', rs(Bx, 32, 0, SIG));
  yield* c('reregister_other_len64', rs(A, 64, 0, SIG));
  yield* c('reregister_other_sig', rs(A, 32, 0, SIG + 1));
  yield* c('reregister_misaligned', rs(raw + 4, 32, 0, SIG));
  yield* c('reregister_null', rs(0, 32, 0, SIG));
  yield* c('order_reregister_flags2_same_args', rs(A, 32, 2, SIG));
  yield* c('order_reregister_flags2_other_sig', rs(A, 32, 2, SIG + 1));
  yield* c('order_reregister_other_addr_other_sig', rs(Bx, 32, 0, SIG + 1));
  yield* c('order_reregister_other_len_other_sig', rs(A, 64, 0, SIG + 1));
  yield* c('unregister_wrong_sig', rs(A, 32, F_UNREG, SIG + 1));
  yield* c('unregister_wrong_addr', rs(Bx, 32, F_UNREG, SIG));
  yield* c('unregister_wrong_len', rs(A, 64, F_UNREG, SIG));
  yield* c('unregister_null', rs(0, 32, F_UNREG, SIG));
  yield* c('order_unregister_wrong_addr_wrong_sig', rs(Bx, 32, F_UNREG, SIG + 1));
  yield* c('order_unregister_wrong_len_wrong_sig', rs(A, 64, F_UNREG, SIG + 1));
  yield* c('order_unregister_flags3_wrong_sig', rs(A, 32, F_UNREG | 2, SIG + 1));
  yield* c('unregister_flags_minus1', rs(A, 32, -1, SIG));
  yield* c('still_registered_after_failures', rs(A, 32, 0, SIG));

  // unregister: which fields are reset, which untouched
  yield store32(A + RSEQ.FLAGS, 0x77);
  yield store32(A + 28, 0x88);
  yield storePtr(A + RSEQ.RSEQ_CS, Bx);
  const u = yield* rs(A, 32, F_UNREG, SIG);
  out.unregister_ok = {
    result: u,
    cpu_id_start: (yield* loadInt(A + RSEQ.CPU_ID_START)) >>> 0,
    cpu_id: yield* loadInt(A + RSEQ.CPU_ID),
    node_id: (yield* loadInt(A + RSEQ.NODE_ID)) >>> 0,
    mm_cid: (yield* loadInt(A + RSEQ.MM_CID)) >>> 0,
    flags: (yield* loadInt(A + RSEQ.FLAGS)) >>> 0,
    pad: (yield* loadInt(A + 28)) >>> 0,
    rseq_cs_untouched: Number((yield load64(A + RSEQ.RSEQ_CS)) as bigint) === Bx,
  };
  yield store64(A + RSEQ.RSEQ_CS, 0n);
  yield schedYield();
  out.fields_stay_after_unregister = {
    cpu_id_start: (yield* loadInt(A + RSEQ.CPU_ID_START)) >>> 0,
    cpu_id: yield* loadInt(A + RSEQ.CPU_ID),
  };
  yield* c('unregister_twice', rs(A, 32, F_UNREG, SIG));
  yield* c('register_other_after_unregister', rs(Bx, 32, 0, SIG));
  yield* c('unregister_other', rs(Bx, 32, F_UNREG, SIG));
  yield* c('register_again_other_sig', rs(A, 32, 0, 0x12345678));
  yield* c('unregister_again_other_sig', rs(A, 32, F_UNREG, 0x12345678));
  return out;
}

const scenario = factsScenario<Ctx>('rseq errors', setup, main);
const facts = once(() => everyRun(scenario, { settings: GLIBC_RSEQ_OFF }) as CaseFacts);

/** register_readonly_page_cs0 alone: its child is killed, which ends the model's run. */
function* roZeroMain(ctx: Ctx): SimCode<Facts> {
  yield* mapShared();
  const k = yield* inChild(ctx, cRoZero);
  return { result: k.result, child: k.child };
}
const roZero = factsScenario<Ctx>('rseq errors register_readonly_page_cs0', setup, roZeroMain);
const roZeroFacts = once(
  () =>
    same(
      everySchedule(roZero, (r) => (r.verdict === null ? r.facts : { result: resultName(r.mem.read32(SHARED)), child: childEnd(r) }), {
        settings: GLIBC_RSEQ_OFF,
      }),
      roZero.name,
    ) as Facts,
);

const result = (name: string): Plan => ({ model: partOf(facts, name), fields: ['result'] });

export const errorsCases: Record<string, Plan> = {
  ...Object.fromEntries(
    [
      'unregister_not_registered', 'unregister_not_registered_flags3', 'register_flags2', 'register_flags_0x80000000',
      'register_misaligned_16', 'register_misaligned_4', 'register_len0', 'register_len20', 'register_len28',
      'register_len31', 'register_len64_misaligned_16', 'register_null_len32', 'register_kernel_addr',
      'register_above_task_size', 'order_flags2_and_misaligned', 'order_misaligned_and_kernel_addr',
      'order_len16_and_null', 'order_flags2_and_kernel_addr',
    ].map((n) => [n, result(n)]),
  ),
  register_unmapped_page: { model: partOf(facts, 'register_unmapped_page'), fields: ['result', 'child'] },
  register_readonly_page_cs0: { model: roZeroFacts, fields: ['result', 'child'] },
  register_readonly_page_cs_nonzero: { model: partOf(facts, 'register_readonly_page_cs_nonzero'), fields: ['result', 'child'] },
  register_with_garbage_rseq_cs: { model: partOf(facts, 'register_with_garbage_rseq_cs'), fields: ['result', 'rseq_cs_after', 'child'] },
  unregister_readonly_area: { model: partOf(facts, 'unregister_readonly_area'), fields: ['result', 'reregister_after', 'child'] },
  ...Object.fromEntries(
    [33, 64, 4096].map((n) => [
      `register_len${n}`,
      { model: partOf(facts, `register_len${n}`), fields: ['result', 'unregister_len32', 'unregister_same_len'] },
    ]),
  ),
  // cpu_id_start and cpu_id are the CPU the probe ran on.
  register_ok: {
    model: partOf(facts, 'register_ok'),
    fields: ['result', 'node_id', 'mm_cid', 'flags', 'pad', 'cpu_id_is_getcpu', 'ids_rewritten'],
    derived: { cpu_id_start_eq_cpu_id: (l: Line) => l.cpu_id_start === l.cpu_id },
  },
  ...Object.fromEntries(
    [
      'reregister_same_args', 'reregister_other_addr', 'reregister_other_len64', 'reregister_other_sig',
      'reregister_misaligned', 'reregister_null', 'order_reregister_flags2_same_args',
      'order_reregister_flags2_other_sig', 'order_reregister_other_addr_other_sig',
      'order_reregister_other_len_other_sig', 'unregister_wrong_sig', 'unregister_wrong_addr', 'unregister_wrong_len',
      'unregister_null', 'order_unregister_wrong_addr_wrong_sig', 'order_unregister_wrong_len_wrong_sig',
      'order_unregister_flags3_wrong_sig', 'unregister_flags_minus1', 'still_registered_after_failures',
    ].map((n) => [n, result(n)]),
  ),
  unregister_ok: {
    model: partOf(facts, 'unregister_ok'),
    fields: ['result', 'cpu_id_start', 'cpu_id', 'node_id', 'mm_cid', 'flags', 'pad', 'rseq_cs_untouched'],
  },
  fields_stay_after_unregister: { model: partOf(facts, 'fields_stay_after_unregister'), fields: ['cpu_id_start', 'cpu_id'] },
  ...Object.fromEntries(
    ['unregister_twice', 'register_other_after_unregister', 'unregister_other', 'register_again_other_sig', 'unregister_again_other_sig'].map(
      (n) => [n, result(n)],
    ),
  ),
};
