/**
 * Verdicts: what a run found about the user's code. Internal errors of Hyrum are not verdicts;
 * they are thrown as InternalError and reported apart (see errors.ts).
 */
import type { SourceSite } from './source.ts';

export type VerdictKind =
  | 'assertion' // an assert() in simulated code or in the final check failed
  | 'invariant' // the scenario's invariant was false after a step or at the end
  | 'deadlock' // every live thread is blocked
  | 'hang' // a thread exceeded its step budget (an endless loop)
  | 'livelock' // the same modelled state recurred with no progress
  | 'crash' // a simulated fatal signal (SIGSEGV with address and reason)
  | 'corruption' // the kernel wrote into memory the program had freed and reused
  | 'exception'; // simulated code threw something that is not an assertion

export const VERDICT_KINDS: readonly VerdictKind[] = [
  'assertion',
  'invariant',
  'deadlock',
  'hang',
  'livelock',
  'crash',
  'corruption',
  'exception',
];

export interface Verdict {
  readonly kind: VerdictKind;
  readonly message: string;
  /** The thread the verdict is about, when there is one (display name, e.g. "T2"). */
  readonly thread?: string;
  /** Where in the source it happened, innermost first (model code, then the user's line). */
  readonly sites?: readonly SourceSite[];
  /** For crashes: the signal and the faulting address. */
  readonly signal?: string;
  readonly addr?: number;
}
