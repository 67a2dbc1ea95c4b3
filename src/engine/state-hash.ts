/**
 * Fingerprints of the modelled state (issue 5, "state hashing"), in the manner of SPIN's
 * hash-compact storage (Holzmann, "The SPIN Model Checker", ch. 9): a 53-bit key per state, two
 * 32-bit murmur3-style lanes folded together; a collision merges two states (probability about
 * n^2 / 2^54 for n states: below 1e-4 for a million).
 *
 * What a state is: every address space in use (pages by number, protection, VMA flags, mapping
 * generation and bytes; pages frozen by a fork in progress), every thread's store buffer, state,
 * CPU and *position*, the kernel's tasks, processes, namespaces and futex queues, and glibc's
 * JS-side registry (Glibc.hashState). Meters are not state: step counts, system-call costs and
 * coverage never change what a thread does next.
 *
 * A thread's position stands for its generator's suspended frame, which JS cannot inspect: it
 * is a hash of the thread's spawn path and of every result it has been given (and every handler
 * frame pushed and rseq abort thrown into it). Since simulated code is deterministic given its
 * results (checked before every exploration, determinism.ts), equal positions mean equal
 * frames. A position never repeats on its own; code marks a loop head with `loopHead(entry,
 * ...values)` to reset it to a hash of the loop's entry position (`loopEntry()`) and the loop's
 * live values, promising that nothing else the loop changed matters to what follows. Then a loop
 * that goes round without changing memory comes back to the same state, which is how a livelock
 * shows (Machine: a repeated state on a run's own path).
 *
 * When pruning by state is sound: for safety properties (assertions, invariants, crashes,
 * deadlocks) in a search that explores all of a state's successors the first time it meets it
 * (stateful DFS, Holzmann's algorithm), provided every JS value simulated code keeps across
 * operations is its own thread's (a thread's locals are covered by its position) and loop heads
 * name all their live values. JS objects shared between threads are outside the hash; the
 * determinism check catches those that change what a thread does, not those read only by a
 * scenario's final check.
 */

import { fmix32, Hasher, stringHash } from '../memory/fingerprint.ts';

// ---- thread positions ----------------------------------------------------------------------

/** The part of a thread its position lives in (SimThread implements it). */
export interface Positioned {
  pos1: number;
  pos2: number;
  /** The thread passed a loop head during its last step: look for a repeated state. */
  looped: boolean;
}

const scratch = new Hasher();
let tracking = false;

/** Engine use: whether positions are kept in this run (state hashing is on). */
export function setPositionTracking(on: boolean): void {
  tracking = on;
}

export function positionsTracked(): boolean {
  return tracking;
}

/** A thread's first position: its spawn path (stable across schedules). */
export function startPosition(t: Positioned, path: string): void {
  t.pos1 = stringHash(path);
  t.pos2 = fmix32(t.pos1 ^ 0x68e31da4);
}

/** The thread was given `result` (an operation's, or undefined when it starts). */
export function advancePosition(t: Positioned, result: unknown): void {
  scratch.a = t.pos1;
  scratch.b = t.pos2;
  if (typeof result === 'number' && (result | 0) === result) scratch.word(result);
  else scratch.value(result);
  t.pos1 = scratch.a;
  t.pos2 = scratch.b;
}

/** Something other than a result changed the thread's course: a handler frame, an rseq abort. */
export function markPosition(t: Positioned, marker: number, detail: unknown): void {
  scratch.a = t.pos1 ^ marker;
  scratch.b = t.pos2;
  scratch.word(marker);
  scratch.value(detail);
  t.pos1 = scratch.a;
  t.pos2 = scratch.b;
}

/** loopEntry for thread t: a mark in its position (two loops entered in a row differ), as one number. */
export function entryOf(t: Positioned): number {
  markPosition(t, 0x100e, undefined);
  return (t.pos1 >>> 0) * 2097152 + (t.pos2 >>> 11);
}

/** loopHead for thread t: the position becomes (entry, values). */
export function headAt(t: Positioned, entry: number, v0: number, v1: number, v2: number): void {
  scratch.reset(0x51ed27 ^ (entry | 0), 0x7f4a7c15);
  scratch.num(entry);
  scratch.num(v0);
  scratch.num(v1);
  scratch.num(v2);
  t.pos1 = scratch.a;
  t.pos2 = scratch.b;
  t.looped = true;
}
