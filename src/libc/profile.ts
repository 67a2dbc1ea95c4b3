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
  /**
   * rseq registration of every thread (reference rseq.md 4), null before 2.35:
   * - regLen: the length passed to rseq(2): 32, or 'auxv' = max(AT_RSEQ_FEATURE_SIZE, 20)
   *   rounded as 2.41's dl-parse_auxv.h does (at least 32);
   * - size: what __rseq_size says on success: 32 (2.35-2.39), 20 (2.40: "the size of the
   *   active rseq area", NEWS), or 'auxv' (2.41+);
   * - placement: in struct pthread (2.35-2.40) or before the TCB in the extra TLS block (2.41+).
   */
  readonly rseq: { readonly regLen: 32 | 'auxv'; readonly size: 32 | 20 | 'auxv'; readonly placement: 'pthread' | 'before-tcb' } | null;
}

const MODERN = { pidCache: false, inFlightStack: true, listAdd: 'init-first' } as const;

export const GLIBC_PROFILES: Readonly<Record<string, GlibcProfile>> = {
  '2.9': { version: '2.9', pidCache: true, inFlightStack: false, listAdd: 'legacy', rseq: null },
  '2.10': { version: '2.10', pidCache: true, inFlightStack: true, listAdd: 'init-first', rseq: null },
  '2.24': { version: '2.24', pidCache: true, inFlightStack: true, listAdd: 'init-first', rseq: null },
  '2.25': { ...MODERN, version: '2.25', rseq: null },
  '2.34': { ...MODERN, version: '2.34', rseq: null },
  '2.35': { ...MODERN, version: '2.35', rseq: { regLen: 32, size: 32, placement: 'pthread' } },
  // This machine's Debian 2.36-9+deb12u14 carries the 2.40 __rseq_size change (probes/rseq
  // state: __rseq_size 20, registration length 32); upstream 2.36 said 32.
  '2.36': { ...MODERN, version: '2.36', rseq: { regLen: 32, size: 20, placement: 'pthread' } },
  '2.40': { ...MODERN, version: '2.40', rseq: { regLen: 32, size: 20, placement: 'pthread' } },
  '2.41': { ...MODERN, version: '2.41', rseq: { regLen: 'auxv', size: 'auxv', placement: 'before-tcb' } },
};

/** This machine's glibc (Debian 2.36-9+deb12u14). */
export const DEFAULT_GLIBC = '2.36';

export function glibcProfile(version: string): GlibcProfile {
  const p = GLIBC_PROFILES[version];
  if (!p) throw new Error(`unknown glibc profile '${version}' (known: ${Object.keys(GLIBC_PROFILES).join(', ')})`);
  return p;
}
