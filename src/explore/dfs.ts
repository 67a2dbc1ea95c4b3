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
 */
import { type Agents, type Chooser } from '../engine/choice.ts';
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
}

export class DfsStrategy implements Strategy, Chooser {
  readonly name = 'dfs';
  private readonly frames: Frame[] = [];
  private depth = 0;
  private exhausted = false;

  /**
   * @param bound at most this many preemptions per run; Infinity for none.
   * @param share for parallel search: explore only the root choice's alternatives whose
   *   position in the DFS order is `share.first`, `share.first + share.stride`, ... (subtrees).
   */
  constructor(
    readonly bound: number = Infinity,
    readonly share: { readonly first: number; readonly stride: number } | null = null,
  ) {}

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
    const current = agents ? agents.current : -1;
    const def = current >= 0 ? current : 0;
    const order = new Int32Array(n);
    order[0] = def;
    for (let i = 0, k = 1; i < n; i++) if (i !== def) order[k++] = i;
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
    frames.push({ arity: n, order, preempt, next, preBefore });
    this.depth++;
    return order[next]!;
  }

  endRun(): void {
    const frames = this.frames;
    frames.length = this.depth;
    while (frames.length > 0) {
      const f = frames[frames.length - 1]!;
      for (let i = f.next + 1; i < f.order.length; i++) {
        if (!this.inShare(frames.length - 1, i)) continue;
        if (f.preBefore + (f.preempt?.[f.order[i]!] ?? 0) <= this.bound) {
          f.next = i;
          return;
        }
      }
      frames.pop();
    }
    this.exhausted = true;
  }

  /** True once every run within the bound has been explored. */
  get done(): boolean {
    return this.exhausted;
  }

  describe(): string {
    return `exhaustive DFS, ${this.bound === Infinity ? 'no preemption bound' : `preemption bound ${this.bound}`}`;
  }
}

