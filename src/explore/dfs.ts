/**
 * Exhaustive depth-first search over the tree of choices (stateless model checking, Godefroid,
 * "Model Checking for Programming Languages using VeriSoft", POPL 1997), optionally bounded in
 * preemptions (Musuvathi and Qadeer, "Iterative Context Bounding", PLDI 2007).
 *
 * Each run replays the prefix of the previous one up to the deepest choice with an untried
 * alternative, takes that alternative, and continues with default choices: keep running the
 * thread that ran last. A preemption is letting any other agent move (another thread, or a
 * store buffer's drain) while the thread that ran last could go on, so the bound limits both
 * interleavings and store delays; data choices are never preemptions.
 *
 * When runs fingerprint states (RunConfig.stateHash), the search is stateful (Holzmann's DFS with a visited set, as SPIN's): a
 * scheduling choice in a state whose fingerprint (engine/state-hash.ts) was met before with no
 * more preemptions spent ends the run there, since everything reachable from it was or is being
 * explored from the earlier visit (with a bound, the key includes the thread that ran last, which
 * decides what a preemption is). A state that recurs on the run's own path without every
 * runnable thread moving is a livelock when the cycle is fair (Machine.atState). When subtrees
 * are shared out to workers (`share`), each subtree of the first choice has its own visited set,
 * so that a subtree explores the same runs whichever worker takes it and findings do not depend
 * on the worker count; a search in one process prunes across subtrees (often far more: two
 * threads' first steps commute across the root's subtrees), and may then meet a bug by another
 * schedule than a parallel search does.
 */
import { PRUNE, type Agents, type Chooser } from '../engine/choice.ts';
import { NondeterminismError } from '../engine/errors.ts';
import type { Strategy } from './strategy.ts';

interface Frame {
  readonly arity: number;
  /** Alternatives in the order tried: the default first. */
  readonly order: Int32Array;
  /** Per alternative (by value): 1 when taking it is a preemption. */
  readonly preempt: Uint8Array | null;
  /** Index into `order` of the alternative taken now. */
  next: number;
  /** Preemptions taken by the frames before this one. */
  readonly preBefore: number;
  /** The state's fingerprint (-1: none) and the machine's step count there. */
  readonly key: number;
  readonly step: number;
}

export class DfsStrategy implements Strategy, Chooser {
  readonly name = 'dfs';
  private readonly frames: Frame[] = [];
  private depth = 0;
  private exhausted = false;
  /** Fingerprints of the states met in the current root subtree, with the fewest preemptions spent there. */
  private readonly visited = new Map<number, number>();
  private statesSeen = 0;
  private stateful = false;
  /** Keys of the current path's frames, by frame index (a repeat among them is a cycle). */
  private readonly onPath = new Map<number, number>();

  /**
   * @param bound at most this many preemptions per run; Infinity for none.
   * @param share for parallel search: explore only the root choice's alternatives whose
   *   position in the DFS order is `share.first`, `share.first + share.stride`, ... (subtrees).
   */
  constructor(
    readonly bound: number = Infinity,
    readonly share: { readonly first: number; readonly stride: number } | null = null,
  ) {}

  /** States met (summed over root subtrees: one met in two subtrees counts twice). */
  get states(): number {
    return this.statesSeen;
  }

  private inShare(depth: number, position: number): boolean {
    return depth > 0 || this.share === null || (position >= this.share.first && (position - this.share.first) % this.share.stride === 0);
  }

  /** The position in the DFS order of the root alternative the current run took (-1: no choice). */
  get rootPosition(): number {
    return this.frames.length > 0 ? this.frames[0]!.next : -1;
  }

  nextRun(): Chooser | null {
    if (this.exhausted) return null;
    this.depth = 0;
    return this;
  }

  schedule(agents: Agents, n: number): number {
    return this.take(n, agents);
  }

  data(n: number): number {
    return this.take(n, null);
  }

  private take(n: number, agents: Agents | null): number {
    const frames = this.frames;
    if (this.depth < frames.length) {
      const f = frames[this.depth++]!;
      if (f.arity !== n) {
        throw new NondeterminismError(
          `choice ${this.depth - 1} had ${f.arity} options in an earlier run and ${n} now, after the same choices: simulated code is not deterministic`,
        );
      }
      return f.order[f.next]!;
    }
    const prev = frames[frames.length - 1];
    const preBefore = prev ? prev.preBefore + (prev.preempt?.[prev.order[prev.next]!] ?? 0) : 0;
    let key = -1;
    if (agents !== null && agents.stateKey !== null) {
      this.stateful = true;
      key = agents.stateKey(this.bound !== Infinity);
      const at = this.onPath.get(key);
      if (at !== undefined) {
        // Back on the path: a cycle. Holzmann's DFS does not expand an on-stack state again; a
        // fair cycle is taken round again (the same choice alone) until the machine calls it a
        // livelock at a loop head.
        const f = frames[at]!;
        if (!agents.fairSince!(f.step)) return PRUNE;
        return this.push(n, agents, preBefore, -1, f.order[f.next]!);
      }
      const seen = this.visited.get(key);
      if (seen !== undefined && seen <= preBefore) return PRUNE;
      if (seen === undefined) this.statesSeen++;
      this.visited.set(key, preBefore);
    }
    return this.push(n, agents, preBefore, key, -1);
  }

  /** A new frame; `only` >= 0: that alternative alone (going round a fair cycle again). */
  private push(n: number, agents: Agents | null, preBefore: number, key: number, only: number): number {
    const frames = this.frames;
    const current = agents ? agents.current : -1;
    const def = only >= 0 ? only : current >= 0 ? current : 0;
    const order = new Int32Array(only >= 0 ? 1 : n);
    order[0] = def;
    if (only < 0) for (let i = 0, k = 1; i < n; i++) if (i !== def) order[k++] = i;
    let preempt: Uint8Array | null = null;
    if (agents && current >= 0) {
      preempt = new Uint8Array(n);
      for (let i = 0; i < n; i++) preempt[i] = i !== current ? 1 : 0;
    }
    let next = 0;
    if (frames.length === 0 && this.share !== null) {
      next = this.share.first;
      if (next >= n) throw new Error(`DFS share ${this.share.first} of a root choice among ${n}`);
    }
    frames.push({ arity: n, order, preempt, next, preBefore, key, step: agents?.step ?? 0 });
    if (key >= 0) this.onPath.set(key, frames.length - 1);
    this.depth++;
    return order[next]!;
  }

  endRun(): void {
    const frames = this.frames;
    this.truncate(this.depth);
    while (frames.length > 0) {
      const f = frames[frames.length - 1]!;
      for (let i = f.next + 1; i < f.order.length; i++) {
        if (!this.inShare(frames.length - 1, i)) continue;
        if (f.preBefore + (f.preempt?.[f.order[i]!] ?? 0) <= this.bound) {
          f.next = i;
          if (frames.length === 1 && this.share !== null) this.visited.clear();
          return;
        }
      }
      this.truncate(frames.length - 1);
    }
    this.exhausted = true;
  }

  private truncate(len: number): void {
    const frames = this.frames;
    for (let i = len; i < frames.length; i++) {
      const k = frames[i]!.key;
      if (k >= 0 && this.onPath.get(k) === i) this.onPath.delete(k);
    }
    frames.length = len;
  }

  /** True once every run within the bound has been explored. */
  get done(): boolean {
    return this.exhausted;
  }

  describe(): string {
    const bound = this.bound === Infinity ? 'no preemption bound' : `preemption bound ${this.bound}`;
    return `exhaustive DFS, ${bound}${this.stateful ? ', states cached' : ''}`;
  }
}

