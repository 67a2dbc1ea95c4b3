/**
 * The run's one source of nondeterminism. Every decision the machine cannot make alone (which
 * agent steps next, which value a choose(n) yields; later preemption, migration, signal timing and
 * fork's page order) is one call to {@link Chooser.choose}; a run is the sequence of its answers,
 * and replaying that sequence reproduces the run exactly. Decisions with one option are not
 * choices and are not recorded.
 */
import type { SimThread } from './thread.ts';

/** Kinds of choice; strategies may treat them differently (PCT prioritises agents). */
export const CHOICE_SCHEDULE = 0;
export const CHOICE_DATA = 1;

/** What steps next: a thread performs its pending operation, or a store buffer entry drains. */
export const AGENT_STEP = 0;
export const AGENT_DRAIN = 1;

/** The options of a scheduling choice, in parallel arrays reused from step to step. */
export class Agents {
  readonly thread: SimThread[] = [];
  kind = new Uint8Array(64);
  /** For drains: the store-buffer entry. */
  entry = new Int32Array(64);
  /** Index of the agent that continues the thread that ran last, or -1 (a switch is then free). */
  current = -1;
  /**
   * The fingerprint of the state the choice is made in (engine/state-hash.ts), computed on
   * demand; `withLast` adds which thread ran last (it decides what counts as a preemption).
   * Null when the run does not hash states.
   */
  stateKey: ((withLast: boolean) => number) | null = null;
  /** The machine's step count at this choice (state hashing only). */
  step = 0;
  /**
   * The state is the one the run was in at step `since` (a cycle on the run's path, which a
   * stateful search found): true when the cycle is weakly fair (every thread that can move and
   * every non-empty store buffer moved since), that is, a livelock the machine will call at its
   * next loop head.
   */
  fairSince: ((since: number) => boolean) | null = null;

  ensure(n: number): void {
    if (n <= this.kind.length) return;
    const kind = new Uint8Array(n * 2);
    kind.set(this.kind);
    this.kind = kind;
    const entry = new Int32Array(n * 2);
    entry.set(this.entry);
    this.entry = entry;
  }
}

/**
 * A strategy's side of the engine: answer choices. `schedule` gets the agents on offer; `data`
 * just the range. Both are only called with n >= 2.
 */
export interface Chooser {
  /** The agent to move, or {@link PRUNE}: end the run here (a state explored before). */
  schedule(agents: Agents, n: number): number;
  data(n: number): number;
}

/** Chooser.schedule's answer for "end this run: nothing new is reachable from here". */
export const PRUNE = -1;

/**
 * Watches what each step touches, for partial-order reduction (explore/dpor.ts). The machine
 * calls it only when one is given, and then leaves its fast paths.
 */
export interface StepObserver {
  /** A step of thread t begins (drain: the store-buffer entry that drains, else -1). */
  beginStep(t: SimThread, drainEntry: number): void;
  read(addr: number, size: number): void;
  write(addr: number, size: number): void;
  /** The step touched state the observer cannot see (kernel calls, thread creation): it conflicts with everything. */
  global(): void;
  /** t's store buffer got a new entry (its last) in this step. */
  buffered(t: SimThread): void;
  /** Entry `entry` of t's store buffer reaches memory in this step (before it is removed). */
  drained(t: SimThread, entry: number): void;
  endStep(): void;
}

/** The choices of one run, with their arities: enough to replay it or to backtrack from it. */
export class ChoiceLog {
  len = 0;
  value = new Int32Array(256);
  arity = new Int32Array(256);
  kind = new Uint8Array(256);

  push(value: number, arity: number, kind: number): void {
    if (this.len === this.value.length) this.grow();
    const i = this.len++;
    this.value[i] = value;
    this.arity[i] = arity;
    this.kind[i] = kind;
  }

  reset(): void {
    this.len = 0;
  }

  values(): number[] {
    return Array.from(this.value.subarray(0, this.len));
  }

  private grow(): void {
    const n = this.value.length * 2;
    const v = new Int32Array(n);
    v.set(this.value);
    this.value = v;
    const a = new Int32Array(n);
    a.set(this.arity);
    this.arity = a;
    const k = new Uint8Array(n);
    k.set(this.kind);
    this.kind = k;
  }
}
