/*
 * Seed 001, one rseq registration per thread and several would-be owners
 * (scenarios/rseq-registration.ts), as a Promela model for SPIN, on glibc 2.34: glibc registers
 * nothing, so the early adopters share the `__rseq_abi` TLS symbol by a protocol
 * (src/libs/librseq/protocols.ts EarlyAdopter):
 *
 *   -DHANDLED   `__rseq_handled`: a library that finds it set uses the area without counting;
 *               the one that registered unregisters when it goes (the bug);
 *   default     `__rseq_refcount`: the first registers, the last unregisters (the fix).
 *
 * One thread, as in the scenario's main(): libA (dlopen'd) registers, libB registers or finds it
 * done, TCMalloc's first malloc tries its own registration and falls back to the slow path,
 * libA unregisters at dlclose, and libB must still find __rseq_abi registered.
 *
 * The kernel's side (src/kernel/rseq.ts sysRseq and the return to user space) is reduced to
 * one registration per thread and the cpu_id field of each area: registering writes the CPU
 * (the thread runs on CPU 0) on the way back to user space, unregistering writes
 * RSEQ_CPU_ID_UNINITIALIZED. Left out: lengths, signatures, alignment, rseq_cs, TCMalloc's
 * per-CPU slabs (its slow path is taken, which never touches rseq again), dlclose's atfork
 * table and munmap (libA registered no atfork handler).
 */

/* cpu_id values (include/uapi/linux/rseq.h), as bytes */
#define CPU0             0
#define CPU_UNINITIALIZED 255   /* -1 */
#define CPU_REG_FAILED    254   /* -2 */
#define REGISTERED(cpu) ((cpu) < CPU_REG_FAILED)   /* (cpu_id | 0) >= 0 */

/* the areas a registration can name */
#define NOAREA 0
#define ABI    1   /* the shared __rseq_abi in the main thread's static TLS */
#define TCM    2   /* TCMalloc's own __rseq_abi in its TLS block (percpu.ts TLS.RSEQ_ABI) */

/* USES_* (protocols.ts) */
#define USES_NONE   0
#define USES_SHARED 1

/* rseq(2) results */
#define OK     0
#define EINVAL 22
#define EBUSY  16

/* kernel: the thread's registration (task.rseq.reg) */
byte reg = NOAREA;
/* user memory */
byte cpu[3];                 /* cpu_id of each area, indexed by ABI / TCM */
byte refcount;               /* __rseq_refcount (per thread) */
bool handled;                /* __rseq_handled (per process) */
byte uses[2];                /* each library's state.uses: libA = 0, libB = 1 */
bool registered[2];          /* ... and state.registered */
byte tcmMode;                /* TCMalloc's process-wide mode: 0 unknown, 1 fast, 2 slow */

/* rseq(area, 32, 0, RSEQ_SIG) (rseq.ts sysRseq, registration; then rseqReturnToUser) */
inline RSEQ_REGISTER(area, r) {
  if
  :: reg == NOAREA -> reg = area; cpu[area] = CPU0; r = OK
  :: reg == area -> r = EBUSY
  :: else -> r = EINVAL
  fi
}

/* rseq(area, 32, RSEQ_FLAG_UNREGISTER, RSEQ_SIG) */
inline RSEQ_UNREGISTER(area, r) {
  if
  :: reg == area -> reg = NOAREA; cpu[area] = CPU_UNINITIALIZED; r = OK
  :: else -> r = EINVAL
  fi
}

/* EarlyAdopter.register (rseq_register_current_thread) */
inline LIB_REGISTER(lib) {
  u = USES_NONE;
#ifdef HANDLED
  if
  :: handled -> u = USES_SHARED
  :: else ->
     RSEQ_REGISTER(ABI, r);
     if :: r == OK -> u = USES_SHARED; handled = true; registered[lib] = true :: else fi
  fi;
#else
  n = refcount;
  refcount = n + 1;
  if
  :: n > 0 -> u = USES_SHARED
  :: else ->
     RSEQ_REGISTER(ABI, r);
     if
     :: r == OK -> u = USES_SHARED; registered[lib] = true
     :: else -> refcount = n
     fi
  fi;
#endif
  uses[lib] = u
}

/* EarlyAdopter.unregister (rseq_unregister_current_thread, from the library's destructor) */
inline LIB_UNREGISTER(lib) {
  u = uses[lib];
  uses[lib] = USES_NONE;
  if
  :: u == USES_SHARED ->
#ifdef HANDLED
     if :: registered[lib] -> RSEQ_UNREGISTER(ABI, r); handled = false :: else fi
#else
     n = refcount;
     refcount = n - 1;
     if :: n - 1 == 0 -> RSEQ_UNREGISTER(ABI, r) :: else fi
#endif
  :: else
  fi
}

/* TCMalloc's IsFast (percpu.ts isFast): register its own area unless done; refused => slow */
inline TCMALLOC_IS_FAST() {
  if
  :: cpu[TCM] == CPU_REG_FAILED -> skip
  :: cpu[TCM] != CPU_UNINITIALIZED -> skip
  :: else ->
     if
     :: tcmMode == 2 -> cpu[TCM] = CPU_REG_FAILED
     :: else ->
        RSEQ_REGISTER(TCM, r);
        if
        :: r != OK ->
           assert(tcmMode != 1);   /* TC_CHECK: registration failed in a later thread */
           tcmMode = 2;
           cpu[TCM] = CPU_REG_FAILED
        :: else -> if :: tcmMode == 0 -> tcmMode = 1 :: else fi
        fi
     fi
  fi
}

init {
  byte u, r, n, usesB;
  /* the TLS image: __rseq_abi.cpu_id = RSEQ_CPU_ID_UNINITIALIZED (the scenario's setup) */
  cpu[ABI] = CPU_UNINITIALIZED;
  /* tc.threadInit: TCMalloc's area starts uninitialised too */
  cpu[TCM] = CPU_UNINITIALIZED;
  /* dlopen(liblttng-ust.so); libA registers by the protocol */
  LIB_REGISTER(0);
  /* libB, linked in, registers by the same protocol (or finds it done) */
  LIB_REGISTER(1);
  usesB = uses[1];
  /* p = malloc(); free(p): TCMalloc asks for its own registration and is refused */
  TCMALLOC_IS_FAST();
  TCMALLOC_IS_FAST();
  /* libA unregisters as it is dlclose'd */
  LIB_UNREGISTER(0);
  /* libB uses rseq again: the area it relies on must still be registered */
  if
  :: usesB == USES_SHARED -> assert(REGISTERED(cpu[ABI]))
  :: else
  fi
}
