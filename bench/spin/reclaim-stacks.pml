/*
 * Seed 002, __reclaim_stacks vs fork (scenarios/reclaim-stacks.ts), as a Promela model for SPIN.
 * The same abstraction as the Hyrum scenario, cut down to the memory the child's walk reads:
 *
 *   Worker  a thread that creates and joins a thread twice through glibc's stack cache
 *           (scenarios/reclaim-stacks.ts churn; src/libc/glibc.ts pthreadCreate/pthreadJoin;
 *           src/libc/stack-cache.ts allocateStack/getCachedStack/deallocateStack);
 *   Drain   the worker's PSO store buffer: one FIFO per address, addresses drain in any order
 *           (src/memory/store-buffer.ts drainable; src/engine/machine.ts listDrains);
 *   init    the main thread: fork() copies the address space page by page, a copied page stays
 *           write-protected until fork ends (src/kernel/clone.ts ForkBegin, FORK_COPY_PAGE,
 *           FORK_END), then the child runs reclaim_stacks on its copy (stack-cache.ts
 *           reclaimStacks, repairInFlight).
 *
 * Variants (spin -D...): default glibc 2.9 (legacy list_add store order, no barrier, no
 * in_flight_stack); -DGLIBC_2_10 (in_flight_stack with fences, init-first list_add with a
 * barrier, the child's repair); -DSC stores reach memory at once (a sanity check: Hyrum finds
 * nothing on 2.9 under SC either).
 *
 * Left out, as they cannot change a list pointer the child reads: the noop threads themselves
 * (their only stores go to fields the walk does not read; clone and exit do not touch the lists),
 * the TID/PID/size fields, actsize, the PID-cache dance in fork, the lock's value (only the worker
 * takes it in the parent, and the child resets it): lll_lock/lll_unlock keep what matters to the
 * race, a read-modify-write on the globals page, which empties the store buffer and stalls while
 * that page is write-protected. The main thread's descriptor (the child's `self`) is on
 * stack_user, which nobody else touches, so the walks never meet it.
 */

/* ---- nodes: list heads and thread descriptors (stack-cache.ts StackGlobals, PD.LIST) ---- */
#define NIL 0
#define U   1   /* stack_used head  (glibc's globals page, glibc.ts layOut) */
#define C   2   /* stack_cache head (glibc's globals page) */
#define S1  3   /* the worker's descriptor, at the top of the first mmap'd stack */
#define S2  4   /* the noop threads' descriptor: one stack, mmap'd, cached, reused */

/* ---- memory cells: next/prev of each node (list.ts NEXT, PREV), in_flight_stack ---- */
#define NEXT(n) (2 * (n))
#define PREV(n) (2 * (n) + 1)
#define INFL    10
#define CELLS   11
#define NODE(c) ((c) / 2)

/* ---- pages, in dup_mmap's (ascending) copy order: globals at 0x10000, then S2's stack
 * (mmap'd second, so lower), then S1's (clone.ts FORK_COPY_PAGE walks pages in order) ---- */
#define PG 0
#define P2 1
#define P1 2
#define PAGE(c) ((c) == INFL -> PG : (NODE(c) <= C -> PG : (NODE(c) == S2 -> P2 : P1)))

/* in_flight_stack's encoding: elem (delete) or elem | 1 (add): here elem*2 and elem*2+1 */
#define INFL_DEL(e) (2 * (e))
#define INFL_ADD(e) (2 * (e) + 1)

/* A walk of 3 elements has seen every node but its head; a 4th step repeats one, and a walk
 * that repeats a node before coming back to its head never ends (the child's memory is its
 * own): walked > MAX_WALK is exactly Hyrum's `hang`, without its 3000-step budget. */
#define MAX_WALK 3

#define NONE 255

byte mem[CELLS];          /* the parent's memory */
byte sb[CELLS];           /* the worker's store buffer: the oldest pending store per cell */
byte sb2[CELLS];          /* ... and a newer one (PSO keeps the order per address) */
bool frozen[3];           /* pages copied by the fork in progress (AddressSpace.frozen) */
bool forking;             /* a fork holds the mmap lock (ForkBegin .. FORK_END) */
bool mapped2;             /* S2's stack is mapped */
bool copies2;             /* S2's stack was mapped when the fork listed the pages */
byte cmem[CELLS];         /* the child's copy, page by page */

/* Worker's loads read through its own buffer (StoreBuffer.readThrough). */
#define LD(c) (sb2[c] != NONE -> sb2[c] : (sb[c] != NONE -> sb[c] : mem[c]))

/* A store to a write-protected page stalls until fork ends (machine.ts writable); otherwise
 * it goes to the buffer (PSO) or to memory (SC). */
inline ST(c, v) {
  atomic {
    !frozen[PAGE(c)] ->
#ifdef SC
    mem[c] = v
#else
    if
    :: sb[c] == NONE -> sb[c] = v
    :: else -> assert(sb2[c] == NONE); sb2[c] = v
    fi
#endif
  }
}

/* Every pending store may drain now: none is for a write-protected page. */
#define OK(c) (sb[c] == NONE || !frozen[PAGE(c)])
#define DRAINABLE (OK(2) && OK(3) && OK(4) && OK(5) && OK(6) && OK(7) && OK(8) && OK(9) && OK(10))

/* A fence (atomic_write_barrier, the fences around in_flight_stack) empties the buffer in one
 * step, enabled when every entry may drain (machine.ts perform OP_FENCE, writable). */
inline FENCE() {
  d_step {
    DRAINABLE ->
    k = 0;
    do
    :: k < CELLS ->
       if
       :: sb[k] != NONE ->
          mem[k] = sb[k];
          if :: sb2[k] != NONE -> mem[k] = sb2[k] :: else fi;
          sb[k] = NONE; sb2[k] = NONE
       :: else
       fi;
       k++
    :: else -> break
    od;
    k = 0
  }
}

/* lll_lock / lll_unlock (lowlevellock.ts): cas32 / xchg32 on the lock in the globals page, a
 * read-modify-write: it empties the buffer and stalls while that page is write-protected. */
inline LLL() {
  d_step {
    DRAINABLE && !frozen[PG] ->
    k = 0;
    do
    :: k < CELLS ->
       if
       :: sb[k] != NONE ->
          mem[k] = sb[k];
          if :: sb2[k] != NONE -> mem[k] = sb2[k] :: else fi;
          sb[k] = NONE; sb2[k] = NONE
       :: else
       fi;
       k++
    :: else -> break
    od;
    k = 0
  }
}

/* ---- list.h (src/libc/list.ts) ---- */

/* list_add(newp, head) */
inline LIST_ADD(newp, head) {
  first = LD(NEXT(head));
#ifdef GLIBC_2_10
  /* 'init-first' (2009-01-08): newp->next, newp->prev, head->next->prev, barrier, head->next */
  ST(NEXT(newp), first);
  ST(PREV(newp), head);
  ST(PREV(first), newp);
  FENCE();
  ST(NEXT(head), newp)
#else
  /* 'legacy': head->next->prev, newp->next, newp->prev, head->next; no barrier */
  ST(PREV(first), newp);
  ST(NEXT(newp), first);
  ST(PREV(newp), head);
  ST(NEXT(head), newp)
#endif
}

/* list_del(elem): elem's own pointers are left stale */
inline LIST_DEL(elem) {
  nx = LD(NEXT(elem));
  pv = LD(PREV(elem));
  ST(PREV(nx), pv);
  ST(NEXT(pv), nx)
}

/* stack_list_add / stack_list_del (stack-cache.ts): 2.10 records the operation in flight */
inline STACK_LIST_ADD(elem, list) {
#ifdef GLIBC_2_10
  ST(INFL, INFL_ADD(elem));
  FENCE();
  LIST_ADD(elem, list);
  FENCE();
  ST(INFL, 0)
#else
  LIST_ADD(elem, list)
#endif
}

inline STACK_LIST_DEL(elem) {
#ifdef GLIBC_2_10
  ST(INFL, INFL_DEL(elem));
  FENCE();
  LIST_DEL(elem);
  FENCE();
  ST(INFL, 0)
#else
  LIST_DEL(elem)
#endif
}

/* ---- the worker: churn() in scenarios/reclaim-stacks.ts ---- */
proctype Worker() {
  byte i, pd, first, nx, pv, k;
  do
  :: i < 2 ->
     /* pthread_create -> allocate_stack -> get_cached_stack: the cache's first entry fits
      * (same size, its thread has exited), else nothing is cached */
     LLL();
     pd = LD(NEXT(C));
     if
     :: pd != C ->
        STACK_LIST_DEL(pd);
        STACK_LIST_ADD(pd, U);
        LLL()
     :: else ->
        LLL();
        /* mmap of a fresh stack: waits while a fork holds the mmap lock (syscalls.ts) */
        atomic { !forking -> mapped2 = true; pd = S2 };
        LLL();
        STACK_LIST_ADD(pd, U);
        LLL()
     fi;
     /* clone(noop); noop returns and exits; pthread_join sees tid 0, then
      * __deallocate_stack: off stack_used, onto stack_cache (queue_stack) */
     LLL();
     STACK_LIST_DEL(pd);
     STACK_LIST_ADD(pd, C);
     LLL();
     i++
  :: else -> break
  od
}

/* ---- the worker's store buffer drains, one address at a time, in any order; a drain into a
 * write-protected page waits (machine.ts listDrains) ---- */
#define DRAIN(c) :: atomic { sb[c] != NONE && !frozen[PAGE(c)] -> mem[c] = sb[c]; sb[c] = sb2[c]; sb2[c] = NONE }

proctype Drain() {
end:
  do
  DRAIN(2) DRAIN(3) DRAIN(4) DRAIN(5) DRAIN(6) DRAIN(7) DRAIN(8) DRAIN(9) DRAIN(10)
  od
}

/* ---- the child (stack-cache.ts reclaimStacks): alone with its copy, so run in one step ---- */

/* loading a pointer through NIL, or from a page the child does not have: SIGSEGV (crash) */
#define MAPPED(n) ((n) != NIL && ((n) != S2 || copies2))

inline WALK(head) {
  runp = cmem[NEXT(head)];
  walked = 0;
  do
  :: runp == head -> break
  :: else ->
     if :: !MAPPED(runp) -> segv = true; break :: else fi;
     walked++;
     if :: walked > MAX_WALK -> hang = true; break :: else fi;
     runp = cmem[NEXT(runp)]
  od;
  assert(!segv);     /* Hyrum: crash (SIGSEGV) */
  assert(!hang)      /* Hyrum: hang */
}

init {
  byte k, runp, walked, elem, l, first, nx, pv;
  bool segv, hang;
  d_step {
    mem[NEXT(U)] = U; mem[PREV(U)] = U;
    mem[NEXT(C)] = C; mem[PREV(C)] = C;
    k = 0;
    do :: k < CELLS -> sb[k] = NONE; sb2[k] = NONE; k++ :: else -> break od;
    k = 0;
    /* main's pthread_create(churn) before: S1 on stack_used, all stores drained by its unlock */
    mem[NEXT(U)] = S1; mem[PREV(U)] = S1;
    mem[NEXT(S1)] = U; mem[PREV(S1)] = U
  }
  atomic { run Worker(); run Drain() }

  /* main: fork() (glibc.ts fork -> clone.ts forkLike) */
  atomic { !forking -> forking = true; copies2 = mapped2 };         /* ForkBegin */
  d_step {                                                          /* copy the globals page */
    cmem[NEXT(U)] = mem[NEXT(U)]; cmem[PREV(U)] = mem[PREV(U)];
    cmem[NEXT(C)] = mem[NEXT(C)]; cmem[PREV(C)] = mem[PREV(C)];
    cmem[INFL] = mem[INFL];
    frozen[PG] = true
  }
  if
  :: copies2 ->
     d_step { cmem[NEXT(S2)] = mem[NEXT(S2)]; cmem[PREV(S2)] = mem[PREV(S2)]; frozen[P2] = true }
  :: else
  fi;
  d_step { cmem[NEXT(S1)] = mem[NEXT(S1)]; cmem[PREV(S1)] = mem[PREV(S1)]; frozen[P1] = true }
  d_step { frozen[PG] = false; frozen[P2] = false; frozen[P1] = false; forking = false }  /* FORK_END */

  /* the child: reclaim_stacks */
  d_step {
#ifdef GLIBC_2_10
    /* repairInFlight (2.10, sysdeps/nptl/fork.h) */
    if
    :: cmem[INFL] == 0 -> skip
    :: cmem[INFL] % 2 == 1 ->
       /* an add: find the list whose first element's back link already points to elem */
       elem = cmem[INFL] / 2;
       first = cmem[NEXT(U)];
       assert(MAPPED(first));
       if
       :: cmem[PREV(first)] != U -> l = U
       :: else ->
          first = cmem[NEXT(C)];
          assert(MAPPED(first));
          if :: cmem[PREV(first)] != C -> l = C :: else -> l = NIL fi
       fi;
       if
       :: l != NIL ->
          first = cmem[NEXT(l)];
          assert(MAPPED(elem));
          cmem[NEXT(elem)] = first;
          cmem[PREV(elem)] = l;
          cmem[NEXT(l)] = elem
       :: else
       fi
    :: else ->
       /* a delete: replay it (idempotent) */
       elem = cmem[INFL] / 2;
       assert(MAPPED(elem));
       nx = cmem[NEXT(elem)];
       pv = cmem[PREV(elem)];
       assert(MAPPED(nx));
       cmem[PREV(nx)] = pv;
       assert(MAPPED(pv));
       cmem[NEXT(pv)] = nx
    fi;
    cmem[INFL] = 0;
#endif
    /* mark every used stack free (the loop over stack_used), then "reset the PIDs in any
     * cached stacks" (the loop over stack_cache; the PID cache is there in 2.9 and 2.10) */
    WALK(U);
    WALK(C)
    /* list_splice, list_del(self), INIT_LIST_HEADs, list_add(self): no loops, left out */
  }
}
