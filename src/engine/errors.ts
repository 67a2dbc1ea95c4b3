/**
 * The three kinds of failure Hyrum keeps apart: findings about the user's code (verdicts, see
 * verdict.ts), bad input (the scenario or the command line is wrong: exit 2 naming file and
 * line), and internal errors of Hyrum itself (never reported as a finding).
 */
import type { SourceSite } from './source.ts';
import { formatSite } from './source.ts';

/** The scenario or the command line is malformed; reported with its file and line, exit code 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly site?: SourceSite,
  ) {
    super(site ? `${formatSite(site)}: ${message}` : message);
    this.name = 'UsageError';
  }
}

/** Simulated code is not a function of its operations' results (Math.random, shared JS state). */
export class NondeterminismError extends UsageError {
  constructor(message: string, site?: SourceSite) {
    super(message, site);
    this.name = 'NondeterminismError';
  }
}

/** A bug in Hyrum: never a finding about the user's code. */
export class InternalError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InternalError';
  }
}

/**
 * Thrown by simulated code (a model of a library) to abort its process, as abort(3) or
 * __libc_fatal do: a `crash` verdict with SIGABRT, not an internal error.
 */
export class ProcessAbort extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProcessAbort';
  }
}

/** Thrown by {@link assert} in simulated code or in a scenario's final check. */
export class AssertionFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AssertionFailed';
  }
}

/** Assert a condition in simulated code or in a final check; failure is an `assertion` verdict. */
export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
  if (!condition) throw new AssertionFailed(message);
}
