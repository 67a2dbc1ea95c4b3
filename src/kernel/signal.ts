/**
 * Signal numbers and default actions (include/uapi/asm-generic/signal.h; signal(7)).
 */
export const SIGHUP = 1;
export const SIGINT = 2;
export const SIGILL = 4;
export const SIGABRT = 6;
export const SIGBUS = 7;
export const SIGFPE = 8;
export const SIGKILL = 9;
export const SIGUSR1 = 10;
export const SIGSEGV = 11;
export const SIGUSR2 = 12;
export const SIGPIPE = 13;
export const SIGALRM = 14;
export const SIGTERM = 15;
export const SIGCHLD = 17;
export const SIGCONT = 18;
export const SIGSTOP = 19;
export const SIGURG = 23;
export const SIGWINCH = 28;

const NAMES: Record<number, string> = {
  1: 'SIGHUP', 2: 'SIGINT', 4: 'SIGILL', 6: 'SIGABRT', 7: 'SIGBUS', 8: 'SIGFPE', 9: 'SIGKILL',
  10: 'SIGUSR1', 11: 'SIGSEGV', 12: 'SIGUSR2', 13: 'SIGPIPE', 14: 'SIGALRM', 15: 'SIGTERM',
  17: 'SIGCHLD', 18: 'SIGCONT', 19: 'SIGSTOP', 23: 'SIGURG', 28: 'SIGWINCH',
};

export function signalName(sig: number): string {
  return NAMES[sig] ?? `signal ${sig}`;
}

/** Default action "ignore" (signal(7) table: Ign). */
export function ignoredByDefault(sig: number): boolean {
  return sig === SIGCHLD || sig === SIGURG || sig === SIGWINCH || sig === SIGCONT;
}

/** Signals whose default action dumps core: a crash of the user's code. */
export function isCrashSignal(sig: number): boolean {
  return sig === SIGSEGV || sig === SIGBUS || sig === SIGILL || sig === SIGFPE || sig === SIGABRT;
}

/** SIGKILL and SIGSTOP cannot be caught, blocked or ignored. */
export function uncatchable(sig: number): boolean {
  return sig === SIGKILL || sig === SIGSTOP;
}
