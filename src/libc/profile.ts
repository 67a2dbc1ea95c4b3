/**
 * glibc profiles: behaviours that changed between releases, as data, each with the release and
 * source that changed it (reference fork-pid.md sections 2 and 5).
 */
export interface GlibcProfile {
  readonly version: string;
  /**
   * getpid() reads a PID cached in struct pthread (2.3.4 .. 2.24); removed in 2.25 by commit
   * c579f48edba8 "Remove cached PID/TID in clone" (sysdeps/unix/sysv/linux/getpid.c).
   */
  readonly pidCache: boolean;
  /**
   * Stack-list operations are recorded in in_flight_stack and repaired in the fork child
   * (nptl/ChangeLog 2009-01-07, Drepper; shipped in 2.10; nptl/allocatestack.c stack_list_add/del).
   */
  readonly inFlightStack: boolean;
  /**
   * list_add's store order (include/list.h): 'legacy' = head->next->prev, new->next, new->prev,
   * head->next, no barrier (before 2009-01-08); 'init-first' = new->next, new->prev,
   * head->next->prev, write barrier, head->next (2009-01-08 "Initialize new element first").
   */
  readonly listAdd: 'legacy' | 'init-first';
}

export const GLIBC_PROFILES: Readonly<Record<string, GlibcProfile>> = {
  '2.9': { version: '2.9', pidCache: true, inFlightStack: false, listAdd: 'legacy' },
  '2.10': { version: '2.10', pidCache: true, inFlightStack: true, listAdd: 'init-first' },
  '2.24': { version: '2.24', pidCache: true, inFlightStack: true, listAdd: 'init-first' },
  '2.25': { version: '2.25', pidCache: false, inFlightStack: true, listAdd: 'init-first' },
  '2.36': { version: '2.36', pidCache: false, inFlightStack: true, listAdd: 'init-first' },
};

/** This machine's glibc (Debian 2.36-9+deb12u14). */
export const DEFAULT_GLIBC = '2.36';

export function glibcProfile(version: string): GlibcProfile {
  const p = GLIBC_PROFILES[version];
  if (!p) throw new Error(`unknown glibc profile '${version}' (known: ${Object.keys(GLIBC_PROFILES).join(', ')})`);
  return p;
}
