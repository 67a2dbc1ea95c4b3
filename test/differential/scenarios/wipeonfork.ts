/**
 * probes/fork-pid/wipeonfork.c: MADV_WIPEONFORK, KEEPONFORK, DONTFORK and DOFORK across fork,
 * the madvise errors the model covers, and the smaps flags (read through procfs.ts). Not
 * modelled: file mappings (wipe_file_private, keep_file_private, wipe_anon_then_file) and
 * MAP_DROPPABLE.
 */
import { load8, store8, type SimCode } from '../../../src/engine/ops.ts';
import { forkLike } from '../../../src/kernel/clone.ts';
import { SIGCHLD } from '../../../src/kernel/signal.ts';
import {
  exitGroup, madvise, MADV_DOFORK, MADV_NORMAL, MADV_DONTFORK, MADV_KEEPONFORK, MADV_WIPEONFORK, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, mmap, munmap,
  PROT_READ, PROT_WRITE, wait4,
} from '../../../src/kernel/syscalls.ts';
import { PAGE_SIZE as PG, VM_DONTCOPY, VM_WIPEONFORK } from '../../../src/memory/page.ts';
import type { Scenario } from '../../../src/scenario/define.ts';
import { factsOf, modelFacts, modelVerdict, partOf, type ModelCase } from '../model.ts';
import { vmFlags } from './procfs.ts';
import { errName, factsScenario, loadInt, sharedPage, storeInt, waitStatus, type CaseFacts, type Ctx, type Facts } from './common.ts';

/** Words of the shared page F (struct facts of the probe). */
const CHILD_P0 = 0, CHILD_P1 = 4, CHILD_WF = 8, GCHILD_P0 = 12, MADV_ERRNO = 16;

/** anon(n, fill): a private anonymous mapping whose pages start with the byte `fill`. */
function* anon(pages: number, fill: number): SimCode<number> {
  const p: number = yield mmap(0, pages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  for (let i = 0; i < pages; i++) yield store8(p + i * PG, fill);
  return p;
}

function* hasFlag(addr: number, flag: number): SimCode<boolean> {
  return (((yield vmFlags(addr)) as number) & flag) !== 0;
}

/** fork; the child stores p[0] at F+CHILD_P0 and exits; returns its wait status. */
function* childReads(ctx: Ctx, make: () => SimCode<number>, f: number, p: number) {
  const c: number = yield* make();
  if (c === 0) {
    yield* storeInt(f + CHILD_P0, (yield load8(p)) as number);
    yield exitGroup(0);
  }
  return yield* waitStatus(ctx, c);
}

function* wipeAndKeep(ctx: Ctx): SimCode<CaseFacts> {
  const f: number = yield* sharedPage();
  const p: number = yield* anon(2, 0x5a);
  const r: number = yield madvise(p, PG, MADV_WIPEONFORK);
  if (r < 0) throw new Error(`madvise(MADV_WIPEONFORK): ${errName(r)}`);
  const wf: boolean = yield* hasFlag(p, VM_WIPEONFORK);
  const wf2: boolean = yield* hasFlag(p + PG, VM_WIPEONFORK);
  const c: number = yield* ctx.libc.fork();
  if (c === 0) {
    yield* storeInt(f + CHILD_P0, (yield load8(p)) as number);
    yield* storeInt(f + CHILD_P1, (yield load8(p + PG)) as number);
    yield* storeInt(f + CHILD_WF, yield* hasFlag(p, VM_WIPEONFORK));
    yield store8(p, 0x77);
    const g: number = yield* ctx.libc.fork();
    if (g === 0) {
      yield* storeInt(f + GCHILD_P0, (yield load8(p)) as number);
      yield exitGroup(0);
    }
    yield wait4(g, 0, 0);
    yield exitGroup(0);
  }
  yield wait4(c, 0, 0);
  const wipeonfork: Facts = {
    smaps_wf_on_page: wf,
    smaps_wf_on_neighbour: wf2,
    child_byte: yield* loadInt(f + CHILD_P0),
    child_unadvised_page_byte: yield* loadInt(f + CHILD_P1),
    child_smaps_wf: (yield* loadInt(f + CHILD_WF)) === 1,
    grandchild_byte_after_child_wrote_0x77: yield* loadInt(f + GCHILD_P0),
    parent_byte: (yield load8(p)) as number,
  };
  // A raw clone is wiped too (kernel-enforced); a vfork child shares the parent's memory.
  yield* childReads(ctx, () => forkLike(SIGCHLD), f, p);
  const raw: number = yield* loadInt(f + CHILD_P0);
  yield* childReads(ctx, () => ctx.libc.vfork(), f, p);
  const wipeonfork_other_creators = { raw_clone_child_byte: raw, vfork_child_byte: yield* loadInt(f + CHILD_P0) };

  const k: number = yield madvise(p, PG, MADV_KEEPONFORK);
  yield* childReads(ctx, () => ctx.libc.fork(), f, p);
  const keeponfork = {
    madvise_keeponfork: errName(k),
    smaps_wf_after_keep: yield* hasFlag(p, VM_WIPEONFORK),
    child_byte: yield* loadInt(f + CHILD_P0),
  };
  return { wipeonfork, wipeonfork_other_creators, keeponfork };
}

function* errors(): SimCode<Facts> {
  const p: number = yield* anon(2, 1);
  const shm: number = yield mmap(0, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  const hole: number = yield* anon(3, 0);
  yield munmap(hole + PG, PG);
  const unmapped: number = yield madvise(hole + PG, PG, MADV_WIPEONFORK);
  const partly: number = yield madvise(hole, 3 * PG, MADV_WIPEONFORK);
  const partlyMarked = (yield* hasFlag(hole, VM_WIPEONFORK)) && (yield* hasFlag(hole + 2 * PG, VM_WIPEONFORK));
  return {
    wipe_shared_anon: errName(yield madvise(shm, PG, MADV_WIPEONFORK)),
    wipe_unaligned: errName(yield madvise(p + 1, PG, MADV_WIPEONFORK)),
    wipe_len_0: errName(yield madvise(p, 0, MADV_WIPEONFORK)),
    wipe_len_unrounded_1: errName(yield madvise(p + PG, 1, MADV_WIPEONFORK)),
    len_1_marks_whole_page: yield* hasFlag(p + PG, VM_WIPEONFORK),
    wipe_unmapped: errName(unmapped),
    wipe_partly_unmapped: errName(partly),
    mapped_parts_marked_anyway: partlyMarked,
    bad_advice: errName(yield madvise(p, PG, 12345)),
    dontfork_shared_anon: errName(yield madvise(shm, PG, MADV_DONTFORK)),
  };
}

/**
 * dontfork, then dofork on the same page. The child's read of the page it did not inherit is a
 * SIGSEGV, which in the model ends the whole run as a crash: with `childReads` false the child
 * skips the read, so that the run goes on to the parent's facts and the dofork case.
 */
function dontfork(childReadsPage: boolean) {
  return function* run(ctx: Ctx): SimCode<CaseFacts> {
    const f: number = yield* sharedPage();
    const q: number = yield* anon(1, 0x5a);
    const r: number = yield madvise(q, PG, MADV_DONTFORK);
    if (r < 0) throw new Error(`madvise(MADV_DONTFORK): ${errName(r)}`);
    const dc: boolean = yield* hasFlag(q, VM_DONTCOPY);
    yield madvise(q, PG, MADV_WIPEONFORK);
    const both = (yield* hasFlag(q, VM_DONTCOPY)) && (yield* hasFlag(q, VM_WIPEONFORK));
    const c: number = yield* ctx.libc.fork();
    if (c === 0) {
      yield* storeInt(f + MADV_ERRNO, (yield madvise(q, PG, MADV_NORMAL)) as number);
      if (childReadsPage) yield load8(q);
      yield exitGroup(0);
    }
    yield* waitStatus(ctx, c);
    const dontforkFacts = {
      smaps_dc: dc,
      smaps_dc_and_wf: both,
      child_madvise_on_range: errName(yield* loadInt(f + MADV_ERRNO)),
      parent_byte: (yield load8(q)) as number,
    };
    yield madvise(q, PG, MADV_KEEPONFORK);
    const d: number = yield madvise(q, PG, MADV_DOFORK);
    const end = yield* childReads(ctx, () => ctx.libc.fork(), f, q);
    const dofork = { madvise_dofork: errName(d), child_read_signal: end.signal, child_byte: yield* loadInt(f + CHILD_P0) };
    return { dontfork: dontforkFacts, dofork };
  };
}

/** child_read_signal of dontfork: the signal of the crash that ends the run, if the child's. */
function dontforkCase(withoutRead: Scenario, withRead: Scenario): ModelCase {
  return () => {
    const facts = (modelFacts(withoutRead) as CaseFacts).dontfork!;
    const v = modelVerdict(withRead);
    const signal = v.kind === 'crash' && v.thread !== 'T0' ? (v.signal ?? 'none') : `${v.kind} in ${v.thread}`;
    return { ...facts, child_read_signal: signal };
  };
}

const sequence = factsScenario('wipeonfork', wipeAndKeep);
const dontforkNoRead = factsScenario('wipeonfork dontfork', dontfork(false));

export const wipeonforkCases: Record<string, ModelCase> = {
  wipeonfork: partOf(sequence, 'wipeonfork'),
  wipeonfork_other_creators: partOf(sequence, 'wipeonfork_other_creators'),
  keeponfork: partOf(sequence, 'keeponfork'),
  madvise_errors: factsOf(factsScenario('wipeonfork madvise_errors', errors)),
  dontfork: dontforkCase(dontforkNoRead, factsScenario('wipeonfork dontfork read', dontfork(true))),
  dofork: partOf(dontforkNoRead, 'dofork'),
};
