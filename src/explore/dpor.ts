/**
 * Dynamic partial-order reduction (Flanagan and Godefroid, "Dynamic Partial-Order Reduction for
 * Model Checking Software", POPL 2005), with happens-before tracked by vector clocks and races
 * found after each run (as source-DPOR implementations do, Abdulla et al., POPL 2014).
 *
 * Processes are threads and, under TSO/PSO, store buffers: a buffer (per thread under TSO, per
 * thread and address under PSO) is a process whose steps are drains, each happening after the
 * store that filled it (the treatment of Abdulla et al., "Stateless Model Checking for TSO and
 * PSO", TACAS 2015). Two steps of different processes are dependent when they touch the same
 * 8-byte word and one writes, or when either is global (kernel calls, thread creation and join:
 * see AtomicAction.footprint). Loads served whole by the own store buffer touch nothing shared.
 *
 * After a run, for each step j the latest earlier step i of another process that races with it
 * (dependent, not ordered by happens-before) marks a backtrack point before i: j's process, if
 * it was enabled there, else every process enabled there. The search then explores, at each
 * scheduling choice, only the processes in its backtrack set; data choices are explored fully.
 * Sleep sets (Godefroid, 1996) prune the rest of the redundancy: once a process's step has been
 * explored from a state, the process sleeps in the other branches from that state until a step
 * dependent with its pending one runs.
 *
 * With a preemption bound, an alternative that would exceed it is skipped (the bound is then a
 * bound on the reduced search, as in DFS).
 *
 * Split mode (`split`, see `entersSubtree`) cuts the search into subtrees that parallel workers
 * can share with the same result whatever their number.
 */
import { AGENT_DRAIN, type Agents, type Chooser, type StepObserver } from '../engine/choice.ts';
import { NondeterminismError } from '../engine/errors.ts';
import type { SimThread } from '../engine/thread.ts';
import type { MemoryModel } from '../memory/model.ts';
import type { Strategy } from './strategy.ts';

type Clock = Map<number, number>;

/** Split DPOR (see DporStrategy.entersSubtree): walk the levels above the subtrees, or search one subtree. */
export interface DporSplit {
  /** Choice levels explored with every alternative above the subtrees. */
  readonly depth: number;
  /** The subtree to search; none: walk the levels above the subtrees and list them (`subtrees`). */
  readonly subtree?: Subtree;
}

/** A subtree of split DPOR: the choices that lead to it, and per level the alternatives no race needs to ask for. */
export interface Subtree {
  readonly choices: readonly number[];
  /** Per level: the alternatives asleep there, and the one the walk took first. */
  readonly skip: readonly (readonly number[])[];
  /** Only its first run: it is under a level where every process was asleep. */
  readonly firstRunOnly?: boolean;
}

/** What one step touched: 8-byte words read and written, or everything. */
interface Footprint {
  readonly proc: number;
  readonly global: boolean;
  readonly reads: readonly number[];
  readonly writes: readonly number[];
}

function dependent(a: Footprint, b: Footprint): boolean {
  if (a.proc === b.proc || a.global || b.global) return true;
  for (const w of a.writes) if (b.writes.includes(w) || b.reads.includes(w)) return true;
  for (const w of b.writes) if (a.reads.includes(w)) return true;
  return false;
}

function join(into: Clock, from: Clock): void {
  for (const [p, v] of from) if ((into.get(p) ?? 0) < v) into.set(p, v);
}

/** A scheduling or data choice point of the current branch. */
interface Frame {
  readonly arity: number;
  readonly data: boolean;
  /** Split mode: a level above the subtrees, explored with every alternative. */
  readonly top: boolean;
  /** Process keys of the agents on offer (scheduling frames). */
  readonly keys: readonly number[];
  readonly current: number;
  /** Agent indices to explore here; grows as races are found. */
  readonly backtrack: Set<number>;
  readonly done: Set<number>;
  /** The index taken on the current branch. */
  taken: number;
  readonly preBefore: number;
  /** Processes asleep when the frame was reached, with their pending steps' footprints. */
  readonly sleep: ReadonlyMap<number, Footprint>;
  /** Footprint of the step each explored alternative took. */
  readonly fps: Map<number, Footprint>;
}

/** A step of the current run: its process, clock, and the frame that chose it (-1: forced). */
interface Step {
  readonly proc: number;
  readonly clock: number;
  readonly frame: number;
}

interface Access {
  lastWrite: { step: number; proc: number; clock: Clock } | null;
  readsSince: { step: number; proc: number; clock: Clock }[];
}

export class DporStrategy implements Strategy, Chooser, StepObserver {
  readonly name = 'dpor';
  private readonly frames: Frame[] = [];
  private depth = 0;
  private exhausted = false;
  // Per run:
  private steps: Step[] = [];
  private clocks = new Map<number, Clock>();
  private words = new Map<number, Access>();
  private globalClock: Clock = new Map();
  private lastGlobal: { step: number; clock: Clock } | null = null;
  private entryClocks = new Map<number, Clock[]>();
  private bufferKeys = new Map<string, number>();
  private cur: { proc: number; clock: Clock; races: number; isGlobal: boolean; frame: number } | null = null;
  private lastChoiceFrame = -1;
  private sleep = new Map<number, Footprint>();
  // Split mode, per run: the level whose choice entered the subtree (-1: none yet; the sleep set
  // is emptied at the next choice), and a level above the subtrees where every process was
  // asleep (-1: none).
  private entered = -1;
  private entering = false;
  private blockedAt = -1;
  private readonly found: Subtree[] = [];
  private cut = false;
  private readonly demanded = new Map<string, Subtree>();

  /**
   * @param split explore the first levels fully and the subtrees under them independently (for
   *   parallel search; see the comment on `entersSubtree`). Null: plain DPOR.
   */
  constructor(
    readonly model: MemoryModel,
    readonly bound: number = Infinity,
    readonly split: DporSplit | null = null,
  ) {}

  /** Split walk: the subtrees under the levels walked so far, in DFS order. */
  get subtrees(): readonly Subtree[] {
    return this.found;
  }

  /** Split walk: whether a path reached `split.depth` (a deeper split would differ). */
  get reachedDepth(): boolean {
    return this.cut;
  }

  /** Split subtree: the subtrees its races asked for above it (see `lastPreemption`). */
  get demands(): Subtree[] {
    return [...this.demanded.values()];
  }

  // ---- Strategy ------------------------------------------------------------------------------

  nextRun(): Chooser | null {
    if (this.exhausted) return null;
    this.depth = 0;
    this.steps = [];
    this.clocks = new Map();
    this.words = new Map();
    this.globalClock = new Map();
    this.lastGlobal = null;
    this.entryClocks = new Map();
    this.bufferKeys = new Map();
    this.cur = null;
    this.lastChoiceFrame = -1;
    this.sleep = new Map();
    this.entered = -1;
    this.entering = false;
    this.blockedAt = -1;
    return this;
  }

  endRun(): void {
    if (this.split !== null) return this.endSplitRun();
    this.frames.length = this.depth;
    if (!this.backtrack(0)) this.exhausted = true;
  }

  /** Move to the next alternative of the deepest frame above `floor` that has one; false when none has. */
  private backtrack(floor: number): boolean {
    while (this.frames.length > floor) {
      const f = this.frames[this.frames.length - 1]!;
      f.done.add(f.taken);
      const next = this.nextAlternative(f);
      if (next >= 0) {
        f.taken = next;
        return true;
      }
      this.frames.pop();
    }
    return false;
  }

  private endSplitRun(): void {
    const given = this.split!.subtree;
    if (given !== undefined) {
      // A subtree: plain DPOR under the given choices.
      this.frames.length = given.firstRunOnly ? 0 : this.depth;
      if (!this.backtrack(given.choices.length)) this.exhausted = true;
      return;
    }
    // The walk: this run was the first of its subtree; then the next path above the subtrees.
    const blocked = this.blockedAt >= 0;
    this.found.push(this.subtreeAt(this.entered >= 0 ? this.entered : this.depth - 1, this.frames[this.entered]?.taken, blocked));
    // Under a level where every process slept, nothing is left that an earlier branch did not cover.
    this.frames.length = blocked ? this.blockedAt : Math.min(this.depth, this.entered >= 0 ? this.entered + 1 : this.depth);
    while (this.frames.length > 0) {
      const level = this.frames.length - 1;
      const f = this.frames[level]!;
      f.done.add(f.taken);
      for (let next = this.nextAlternative(f); next >= 0; next = this.nextAlternative(f)) {
        if (!this.entersSubtree(level, f, next)) {
          f.taken = next;
          return;
        }
        f.done.add(next);
        this.found.push(this.subtreeAt(level, next, false));
      }
      this.frames.pop();
    }
    this.exhausted = true;
  }

  /** The subtree the walk enters by alternative `taken` of level `level` (none: a run that ended above the subtrees). */
  private subtreeAt(level: number, taken: number | undefined, firstRunOnly: boolean): Subtree {
    const choices = this.frames.slice(0, level + 1).map((f, l) => (l === level && taken !== undefined ? taken : f.taken));
    const skip = this.frames.slice(0, level + 1).map((f) => [...new Set([f.backtrack.values().next().value!, ...f.keys.flatMap((key, k) => (f.sleep.has(key) ? [k] : []))])].sort((a, b) => a - b));
    return firstRunOnly ? { choices, skip, firstRunOnly } : { choices, skip };
  }

  get done(): boolean {
    return this.exhausted;
  }

  describe(): string {
    const split = this.split === null ? '' : `, split below ${this.split.depth} levels`;
    return `DPOR${this.bound === Infinity ? '' : `, preemption bound ${this.bound}`}${split}`;
  }

  private nextAlternative(f: Frame): number {
    const candidates = f.data || f.top ? [...Array(f.arity).keys()] : [...f.backtrack];
    for (const i of candidates.sort((a, b) => a - b)) {
      if (f.done.has(i)) continue;
      if (f.top && this.lastPreemption(f, i)) continue;
      if (!f.data && f.sleep.has(f.keys[i]!)) continue;
      const pre = f.data || f.current < 0 || i === f.current ? 0 : 1;
      if (f.preBefore + pre <= this.bound) return i;
    }
    return -1;
  }

  // ---- Chooser -------------------------------------------------------------------------------

  private processKey(t: SimThread, drainEntry: number): number {
    if (drainEntry < 0) return t.id * 2;
    if (this.model !== 'pso') return t.id * 2 + 1;
    const name = `${t.id}:${t.sb.addr[drainEntry]}`;
    let k = this.bufferKeys.get(name);
    if (k === undefined) this.bufferKeys.set(name, (k = -1 - this.bufferKeys.size));
    return k;
  }

  schedule(agents: Agents, n: number): number {
    const keys: number[] = [];
    for (let i = 0; i < n; i++) keys.push(this.processKey(agents.thread[i]!, agents.kind[i] === AGENT_DRAIN ? agents.entry[i]! : -1));
    return this.take(n, false, keys, agents.current);
  }

  data(n: number): number {
    return this.take(n, true, [], -1);
  }

  private take(n: number, data: boolean, keys: number[], current: number): number {
    const frames = this.frames;
    this.lastChoiceFrame = this.depth;
    if (this.entering) {
      // A subtree starts with no process asleep: its search does not rely on the levels above.
      this.entering = false;
      this.sleep = new Map();
    }
    if (this.depth < frames.length) {
      const f = frames[this.depth++]!;
      if (f.arity !== n) {
        throw new NondeterminismError(`choice ${this.depth - 1} had ${f.arity} options in an earlier run and ${n} now: simulated code is not deterministic`);
      }
      if (this.depth === frames.length && !f.data) {
        // The branch point: the alternatives explored before go to sleep.
        this.sleep = new Map(f.sleep);
        for (const d of f.done) {
          const fp = f.fps.get(d);
          if (fp) this.sleep.set(fp.proc, fp);
        }
      }
      this.enter(this.depth - 1, f);
      return f.taken;
    }
    const prev = frames[frames.length - 1];
    const preBefore = prev ? prev.preBefore + (!prev.data && prev.current >= 0 && prev.taken !== prev.current ? 1 : 0) : 0;
    let def = current >= 0 ? current : 0;
    const prefix = this.split?.subtree?.choices;
    const fixed = prefix !== undefined && frames.length < prefix.length;
    if (fixed) {
      def = prefix[frames.length]!;
      if (def >= n) throw new NondeterminismError(`choice ${frames.length} of a split DPOR subtree has ${n} options, not ${def + 1}: simulated code is not deterministic`);
    }
    const top = this.split !== null && this.entered < 0 && (prefix !== undefined ? fixed : frames.length < this.split.depth);
    if (!data && !fixed && this.sleep.has(keys[def]!)) {
      const awake = keys.findIndex((k) => !this.sleep.has(k));
      if (awake >= 0) def = awake;
      else if (top && this.blockedAt < 0) this.blockedAt = frames.length;
    }
    const f: Frame = { arity: n, data, top, keys, current, backtrack: new Set([def]), done: new Set(), taken: def, preBefore, sleep: new Map(this.sleep), fps: new Map() };
    frames.push(f);
    this.enter(this.depth++, f);
    return def;
  }

  /**
   * Split DPOR, for a parallel search whose result does not depend on the number of workers. The
   * first `split.depth` levels are explored with every alternative (Godefroid's sleep sets still
   * prune among them), and each node under them roots a subtree searched by plain DPOR on its
   * own, from an empty sleep set: a race that reaches above it needs nothing, those levels being
   * fully explored. A subtree's search is then the same whoever runs it, and the subtrees,
   * numbered in DFS order, can be dealt out; unbounded, the top levels explore a superset of
   * plain DPOR's. Inheriting the sleep sets of sibling subtrees would not be sound: DPOR adds
   * backtrack points only along the runs it explores, and a reversal it would reach, in its own
   * order, through a sibling that full expansion puts to sleep is lost (litmus IRIW split at depth
   * 1 then shows 12 of its 15 traces).
   *
   * An alternative that spends the last preemption the bound allows roots a subtree too, explored
   * only if a race asks for it (`lastPreemption`). A walk (no `split.subtree`) runs one path
   * through the levels above the subtrees per subtree it enters and lists the subtrees; each is
   * then searched with `split.subtree` (its first run again), by whichever worker.
   */
  private entersSubtree(level: number, f: Frame, i: number): boolean {
    const prefix = this.split!.subtree?.choices;
    if (prefix !== undefined) return level + 1 === prefix.length;
    return level + 1 >= this.split!.depth || this.lastPreemption(f, i);
  }

  /**
   * Whether alternative i of a frame above the subtrees spends the last preemption the bound
   * allows. Such alternatives are not explored with the levels above the subtrees but, as in
   * DPOR, when a race asks for one (`demands`); each is then a subtree of its own, searched in a
   * later phase (parallel.ts, SplitSearch), so that the search does not depend on who met the
   * race. Below them DPOR has little left to do, and exploring them all would mostly be waste:
   * on reclaim-stacks (glibc 2.10, PSO, bound 1) 7248 runs instead of 6114; plain DPOR makes 5978.
   */
  private lastPreemption(f: Frame, i: number): boolean {
    return !f.data && f.current >= 0 && i !== f.current && f.preBefore + 1 === this.bound;
  }

  /** Past a level above the subtrees, by alternative f.taken: the rest of the run is in a subtree. */
  private enter(level: number, f: Frame): void {
    if (f.top && this.entersSubtree(level, f, f.taken)) {
      this.entered = level;
      this.entering = true;
      if (level + 1 >= this.split!.depth) this.cut = true;
    }
  }

  // ---- StepObserver: happens-before and races --------------------------------------------------

  beginStep(t: SimThread, drainEntry: number): void {
    const proc = this.processKey(t, drainEntry);
    let clock = this.clocks.get(proc);
    if (clock === undefined) this.clocks.set(proc, (clock = new Map()));
    // A step chosen at a frame of this run is that frame's; a forced step has none.
    const frame = this.lastChoiceFrame;
    this.lastChoiceFrame = -1;
    this.cur = { proc, clock, races: -1, isGlobal: false, frame };
    // Every step depends on the last global one: a race unless already ordered after it.
    const g = this.lastGlobal;
    if (g !== null) {
      this.race(g.step, this.steps[g.step]!.proc);
      join(clock, g.clock);
    }
  }

  /** The latest earlier step that races with the current one, by a happens-before check. */
  private race(step: number, proc: number): void {
    const c = this.cur!;
    if (proc === c.proc) return;
    const s = this.steps[step]!;
    if ((c.clock.get(proc) ?? 0) >= s.clock) return; // ordered before us
    if (step > c.races) c.races = step;
  }

  private access(addr: number, size: number, write: boolean): void {
    const c = this.cur!;
    for (let w = Math.floor(addr / 8), end = Math.floor((addr + size - 1) / 8); w <= end; w++) {
      let a = this.words.get(w);
      if (a === undefined) this.words.set(w, (a = { lastWrite: null, readsSince: [] }));
      if (a.lastWrite) this.race(a.lastWrite.step, a.lastWrite.proc);
      if (write) for (const r of a.readsSince) this.race(r.step, r.proc);
    }
  }

  read(addr: number, size: number): void {
    this.access(addr, size, false);
    this.pending.push([addr, size, false]);
  }

  write(addr: number, size: number): void {
    this.access(addr, size, true);
    this.pending.push([addr, size, true]);
  }

  private pending: [number, number, boolean][] = [];

  global(): void {
    const c = this.cur!;
    c.isGlobal = true;
    // Races with the latest step of every other process not ordered before us.
    for (let i = this.steps.length - 1; i >= 0; i--) {
      const s = this.steps[i]!;
      if (s.proc !== c.proc && (c.clock.get(s.proc) ?? 0) < s.clock) {
        if (i > c.races) c.races = i;
        break;
      }
    }
  }

  buffered(t: SimThread): void {
    const c = this.cur!;
    let list = this.entryClocks.get(t.id);
    if (list === undefined) this.entryClocks.set(t.id, (list = []));
    // The entry happens after the store (the thread's clock after this step).
    const snap = new Map(c.clock);
    snap.set(c.proc, (c.clock.get(c.proc) ?? 0) + 1);
    list.push(snap);
  }

  drained(t: SimThread, entry: number): void {
    const list = this.entryClocks.get(t.id);
    const snap = list?.splice(entry, 1)[0];
    if (snap) join(this.cur!.clock, snap);
    this.write(t.sb.addr[entry]!, t.sb.size[entry]!);
  }

  endStep(): void {
    const c = this.cur!;
    const index = this.steps.length;
    // Join what we read from and overwrote, then tick our own component.
    for (const [addr, size, write] of this.pending) {
      for (let w = Math.floor(addr / 8), end = Math.floor((addr + size - 1) / 8); w <= end; w++) {
        const a = this.words.get(w)!;
        if (a.lastWrite && a.lastWrite.proc !== c.proc) join(c.clock, a.lastWrite.clock);
        if (write) for (const r of a.readsSince) if (r.proc !== c.proc) join(c.clock, r.clock);
      }
    }
    if (c.isGlobal) join(c.clock, this.globalClock);
    const tick = (c.clock.get(c.proc) ?? 0) + 1;
    c.clock.set(c.proc, tick);
    const snapshot = new Map(c.clock);
    for (const [addr, size, write] of this.pending) {
      for (let w = Math.floor(addr / 8), end = Math.floor((addr + size - 1) / 8); w <= end; w++) {
        const a = this.words.get(w)!;
        if (write) {
          a.lastWrite = { step: index, proc: c.proc, clock: snapshot };
          a.readsSince = [];
        } else a.readsSince.push({ step: index, proc: c.proc, clock: snapshot });
      }
    }
    const reads: number[] = [];
    const writes: number[] = [];
    for (const [addr, size, write] of this.pending) {
      for (let w = Math.floor(addr / 8), end = Math.floor((addr + size - 1) / 8); w <= end; w++) (write ? writes : reads).push(w);
    }
    const fp: Footprint = { proc: c.proc, global: c.isGlobal, reads, writes };
    // Sleep sets above the subtrees only hold steps every worker has seen (none into a subtree).
    const chosen = c.frame >= 0 ? this.frames[c.frame] : undefined;
    if (chosen && !(chosen.top && this.entersSubtree(c.frame, chosen, chosen.taken))) chosen.fps.set(chosen.taken, fp);
    for (const [p, s] of this.sleep) if (dependent(s, fp)) this.sleep.delete(p);
    this.pending = [];
    join(this.globalClock, snapshot);
    if (c.isGlobal) this.lastGlobal = { step: index, clock: snapshot };
    this.steps.push({ proc: c.proc, clock: tick, frame: c.frame });
    if (c.races >= 0) this.addBacktrack(c.races, c.proc);
    this.cur = null;
  }

  /** Backtrack before step i so that process `proc` (or, if it could not run there, everyone) goes first. */
  private addBacktrack(i: number, proc: number): void {
    const frameIndex = this.steps[i]!.frame;
    if (frameIndex < 0) return; // step i was the only one that could move
    const f = this.frames[frameIndex];
    if (!f || f.data) return;
    const at = f.keys.indexOf(proc);
    if (f.top) {
      // Levels above the subtrees explore every alternative but those spending the last preemption.
      const given = this.split!.subtree;
      if (given === undefined) return; // the walk's runs are searched again as their subtrees' first
      for (let k = at >= 0 ? at : 0; k < (at >= 0 ? at + 1 : f.keys.length); k++) {
        if (k === f.taken || f.done.has(k) || !this.lastPreemption(f, k)) continue;
        // (The levels above the subtree stay for all its runs: `done` keeps what was asked for.)
        f.done.add(k);
        if (given.skip[frameIndex]!.includes(k)) continue;
        const choices = given.choices.slice(0, frameIndex);
        choices.push(k);
        this.demanded.set(choices.join(','), { choices, skip: given.skip.slice(0, frameIndex + 1) });
      }
      return;
    }
    if (at >= 0) f.backtrack.add(at);
    else for (let k = 0; k < f.keys.length; k++) f.backtrack.add(k);
  }
}
