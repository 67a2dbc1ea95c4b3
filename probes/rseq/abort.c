/* abort.c: real rseq critical sections (x86-64 inline asm) and when the kernel aborts them.
 * Pattern: tools/testing/selftests/rseq/rseq-x86.h (RSEQ_ASM_DEFINE_TABLE in section
 * __rseq_cs, abort block in __rseq_failure preceded by "ud1 <RSEQ_SIG>(%rip),%edi" so the
 * 4 bytes before abort_ip are the signature).  Kernel (classic <= 6.18) kernel/rseq.c:
 * rseq_ip_fixup -> rseq_get_rseq_cs validates any non-NULL descriptor (version 0, ranges,
 * abort outside, signature at abort_ip-4) even when IP is outside; if IP is inside and an
 * event is pending (preempt/signal/migrate) it checks flags (rseq_warn_flags: any non-zero
 * cs or area flags -> -EINVAL), clears rseq_cs and sets IP = abort_ip; any error ->
 * force_sigsegv.  Run with glibc's registration off (re-execs itself). */
#include "probes.h"
#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <ucontext.h>

static const char *P = "abort";
static __thread struct hrseq T;

/* One critical section: stores &descriptor into rs->rseq_cs, then counts *n down to 0
 * inside [start_ip, post_commit_ip); the commit is "ret = 1".  Abort path: ret = 0.
 * Returns 1 committed / 0 aborted; *n = iterations left. */
#define DEFINE_CS(name, VERSION, FLAGS, SIGWORD)                                            \
	__attribute__((noinline)) static int name(struct hrseq *rs, unsigned long *n)       \
	{                                                                                   \
		int ret;                                                                    \
		unsigned long it = *n;                                                      \
		__asm__ __volatile__(".pushsection __rseq_cs, \"aw\"\n\t"                   \
				     ".balign 32\n\t"                                       \
				     "3: .long " #VERSION ", " #FLAGS "\n\t"                \
				     ".quad 1f, (2f - 1f), 4f\n\t"                          \
				     ".popsection\n\t"                                      \
				     "leaq 3b(%%rip), %%rax\n\t"                            \
				     "movq %%rax, 8(%[rs])\n\t" /* rs->rseq_cs = &desc */   \
				     "1:\n\t"                   /* start_ip */              \
				     "6: decq %[it]\n\t"                                    \
				     "jnz 6b\n\t"                                           \
				     "movl $1, %[ret]\n\t" /* commit (last insn) */         \
				     "2:\n\t"              /* post_commit_ip */             \
				     ".pushsection __rseq_failure, \"ax\"\n\t"              \
				     ".byte 0x0f, 0xb9, 0x3d\n\t" /* ud1 disp32(%rip),%edi */ \
				     ".long " #SIGWORD "\n\t"                               \
				     "4: movl $0, %[ret]\n\t" /* abort_ip */                \
				     "jmp 2b\n\t"                                           \
				     ".popsection\n\t"                                      \
				     : [ret] "=&r"(ret), [it] "+r"(it)                      \
				     : [rs] "r"(rs)                                         \
				     : "rax", "memory", "cc");                              \
		*n = it;                                                                    \
		return ret;                                                                 \
	}
DEFINE_CS(cs_good, 0, 0, 0x53053053)
DEFINE_CS(cs_badsig, 0, 0, 0x12345678)
DEFINE_CS(cs_version1, 1, 0, 0x53053053)
DEFINE_CS(cs_flag_norestart, 0, 1, 0x53053053) /* RSEQ_CS_FLAG_NO_RESTART_ON_PREEMPT */

static struct hrseq_cs *good_desc;
static volatile uint64_t handler_rip;
static volatile int handler_calls;
static void on_sig(int s, siginfo_t *si, void *uc)
{
	(void)s, (void)si;
	handler_rip = ((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP];
	handler_calls++;
}
static void handler(int sig)
{
	struct sigaction sa = {0};
	sa.sa_sigaction = on_sig;
	sa.sa_flags = SA_SIGINFO;
	sigaction(sig, &sa, NULL);
}
static long csw(void)
{
	struct rusage ru;
	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_nvcsw + ru.ru_nivcsw;
}
/* context-switch count taken so that a preemption at the exit of getrusage itself (after
 * it read the counters) is excluded: that preemption rewrites cpu_id_start (see rewrite.c),
 * so retry until the sentinel survives the call */
static long csw0(void)
{
	long c;
	do {
		T.cpu_id_start = SENT;
		c = csw();
	} while (T.cpu_id_start != SENT);
	return c;
}
static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}
static unsigned long per_ms; /* loop iterations per millisecond */

/* SCHED_FIFO for the calling thread, so kernel threads and other SCHED_OTHER work on
 * CPU 0 cannot preempt it (background noise of a shared VM); 1 if it worked */
static int rt(int on)
{
	struct sched_param sp = {on ? 1 : 0};
	return sched_setscheduler(0, on ? SCHED_FIFO : SCHED_OTHER, &sp) == 0 && on;
}

/* spin `ms` milliseconds inside cs_good (under SCHED_FIFO when allowed); report
 * commit/abort facts.  arm() starts the disturbing event (timer/thread) for each attempt;
 * an attempt is retried (max 5) if it aborted before the event at ~20 ms, or with a context
 * switch when the event itself does not switch (background noise on a shared VM); with
 * sw_ok == 2 (no abort expected) any abort is retried: a stale event bit left by an earlier
 * blocking syscall plus an unrelated notify-resume can abort (see stale_signal_event). */
static void one(const char *cs, int ms, void (*arm)(void), void (*disarm)(void), int sw_ok)
{
	unsigned long n;
	int ok, ms_in, tries = 0, fifo = rt(1);
	long sw;
	uint64_t cs_after;
	do {
		n = per_ms * ms;
		handler_calls = 0, handler_rip = 0;
		if (arm)
			arm();
		long c0 = csw0();
		double t0 = now();
		ok = cs_good(&T, &n);
		ms_in = (int)((now() - t0) * 1000);
		sw = csw() - c0;
		cs_after = T.rseq_cs;
		if (disarm)
			disarm();
	} while (!ok && arm && (ms_in < 19 || (sw && !sw_ok) || sw_ok == 2) && ++tries < 5);
	rt(0);
	OUT(P, cs, ",\"committed\":%s,\"aborted\":%s,\"iters_left_nonzero\":%s,"
		   "\"rseq_cs_after\":\"%s\",\"handler_calls\":%d,\"handler_rip_is_abort_ip\":%s,"
		   "\"context_switches\":%ld,\"ms_in_section\":%d,\"retries\":%d,\"rt\":%s",
	    B(ok), B(!ok), B(n != 0),
	    cs_after == 0 ? "0" : (cs_after == (uintptr_t)good_desc ? "desc" : "other"),
	    handler_calls, B(handler_rip == good_desc->abort_ip), sw, ms_in, tries, B(fifo));
}

/* K trials of `ms` each; count aborts vs context switches */
static void trials(const char *cs, int K, int ms, int want_rt)
{
	int ab = 0, sw = 0, ab_nosw = 0, sw_noab = 0, fifo = want_rt && rt(1);
	for (int i = 0; i < K; i++) {
		unsigned long n = per_ms * ms;
		long c0 = csw0();
		int a = !cs_good(&T, &n);
		int s = csw() != c0;
		ab += a, sw += s, ab_nosw += a && !s, sw_noab += s && !a;
	}
	rt(0);
	OUT(P, cs, ",\"trials\":%d,\"ms_each\":%d,\"aborts\":%d,\"context_switches\":%d,"
		   "\"abort_without_switch\":%d,\"switch_without_abort\":%d,\"rt\":%s",
	    K, ms, ab, sw, ab_nosw, sw_noab, B(fifo));
}

/* Classic kernels clear the event mask only when they evaluate it with IP inside a
 * section (rseq_need_restart).  A signal delivered outside a section leaves its event bit
 * set; the next notify-resume that happens while inside (e.g. task_work) then aborts with
 * no new event [inference from kernel/rseq.c].  A: section right after such a signal;
 * B: the next section (mask cleared by A's abort, or still set if A committed). */
static void stale(int K, int ms)
{
	int a_ab = 0, a_nosw = 0, b_ab = 0, b_nosw = 0, fifo = rt(1);
	for (int k = 0; k < K; k++) {
		raise(SIGUSR1); /* delivered outside: sets RSEQ_EVENT_SIGNAL */
		for (int j = 0; j < 2; j++) {
			unsigned long n = per_ms * ms;
			long c0 = csw0();
			int a = !cs_good(&T, &n), sw = csw() != c0;
			if (j == 0)
				a_ab += a, a_nosw += a && !sw;
			else
				b_ab += a, b_nosw += a && !sw;
		}
	}
	rt(0);
	OUT(P, "stale_signal_event", ",\"reps\":%d,\"ms_each\":%d,\"A_aborts\":%d,"
		"\"A_abort_without_switch\":%d,\"B_aborts\":%d,\"B_abort_without_switch\":%d,\"rt\":%s",
	    K, ms, a_ab, a_nosw, b_ab, b_nosw, B(fifo));
}

static volatile int stop, ready, go;
static pid_t target_tid;
static void *busy(void *arg)
{
	(void)arg;
	pin(0);
	ready = 1;
	while (!stop)
		;
	return NULL;
}
static void *poke(void *arg) /* from CPU 1, 20 ms after start, disturb target_tid */
{
	long what = (long)arg;
	pin(1);
	ready = 1;
	while (!go)
		;
	struct timespec d = {0, 20000000};
	nanosleep(&d, NULL);
	if (what == 0)
		syscall(SYS_tgkill, getpid(), target_tid, SIGUSR1);
	else if (what == 1) {
		cpu_set_t s;
		CPU_ZERO(&s);
		CPU_SET(1, &s);
		sched_setaffinity(target_tid, sizeof s, &s);
	} else
		syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, 0, 0);
	return NULL;
}
static pthread_t poker;
static long poke_what;
static void poke_arm(void)
{
	ready = go = 0;
	pthread_create(&poker, NULL, poke, (void *)poke_what);
	while (!ready) /* the new thread starts on CPU 0 (inherited mask) until it pins */
		sched_yield();
	go = 1;
}
static void poke_disarm(void)
{
	pthread_join(poker, NULL);
	pin(0);
}
static void poked(const char *cs, long what)
{
	pin(0);
	target_tid = gettid();
	poke_what = what;
	one(cs, 500, poke_arm, poke_disarm, what == 1);
}
static void timer_arm(void)
{
	struct itimerval it = {{0, 0}, {0, 20000}};
	setitimer(ITIMER_REAL, &it, NULL);
}
static sigset_t alrm, old;
static void block_arm(void)
{
	sigprocmask(SIG_BLOCK, &alrm, &old);
	timer_arm();
}
static void block_disarm(void)
{
	sigprocmask(SIG_SETMASK, &old, NULL); /* delivered here, outside the section */
}

/* Run fn in a forked child (it inherits the registration of T, kernel rseq_fork); report
 * how it ended.  Inside cases: the first notify-resume with IP inside (the 20 ms timer
 * signal, or earlier preemption/task_work) evaluates the descriptor. */
static void crash(const char *cs, void (*fn)(void))
{
	fflush(stdout);
	pid_t pid = fork(); /* child inherits the registration of T (same address) */
	if (pid == 0) {
		handler(SIGUSR1);
		fn();
		_exit(0);
	}
	int st;
	char b[32];
	waitpid(pid, &st, 0);
	OUT(P, cs, ",\"child\":\"%s\"", wdesc(st, b, sizeof b));
}
static void inside_signal(int (*f)(struct hrseq *, unsigned long *))
{
	struct itimerval it = {{0, 0}, {0, 20000}};
	handler(SIGALRM);
	setitimer(ITIMER_REAL, &it, NULL);
	unsigned long n = per_ms * 500;
	f(&T, &n);
}
static void k_badsig_inside(void) { inside_signal(cs_badsig); }
static void k_badsig_preempt(void) /* no signal: preempted by a busy thread on CPU 0 */
{
	pthread_t b;
	pin(0);
	stop = 0, ready = 0;
	pthread_create(&b, NULL, busy, NULL);
	while (!ready)
		sched_yield();
	unsigned long n = per_ms * 2000;
	cs_badsig(&T, &n);
}
static void k_version1_inside(void) { inside_signal(cs_version1); }
static void k_flags_inside(void) { inside_signal(cs_flag_norestart); }
static void k_area_flags_inside(void) { T.flags = 1; inside_signal(cs_good); }
/* commit quickly, leaving rseq_cs pointing at the descriptor; then deliver a signal while
 * IP is outside the section */
static void outside(int (*f)(struct hrseq *, unsigned long *))
{
	unsigned long n = 1;
	f(&T, &n);
	raise(SIGUSR1);
}
static void k_badsig_outside(void) { outside(cs_badsig); }
static void k_version1_outside(void) { outside(cs_version1); }
static void k_flags_outside(void) { outside(cs_flag_norestart); }
static void k_area_flags_outside(void) { T.flags = 1; outside(cs_good); }
static void k_good_outside(void) { outside(cs_good); }
static void k_garbage_ptr(void) { T.rseq_cs = 0x10; raise(SIGUSR1); }

int main(int argc, char **argv)
{
	(void)argc;
	probe_init();
	need_glibc_rseq_off(P, argv);
	if (pin(0) || strcmp(rs(&T, 32, 0, SIG_X86), "OK")) {
		SKIP(P, "all", "pin or rseq registration failed");
		return 0;
	}
	/* calibrate with the same loop outside any section; then capture the descriptor
	 * address from a committed 1-iteration run */
	double best = 1e9;
	rt(1);
	for (int i = 0; i < 10; i++) { /* fastest of 10 runs: preempted runs only look slower */
		unsigned long it = 4000000;
		double t0 = now();
		__asm__ __volatile__("1: decq %0\n\tjnz 1b" : "+r"(it) : : "cc");
		if (now() - t0 < best)
			best = now() - t0;
	}
	rt(0);
	per_ms = 4000000 / (best * 1000) + 1;
	int tries = 0;
	for (unsigned long n = 1; tries < 1000 && !cs_good(&T, &n); tries++)
		n = 1;
	good_desc = (struct hrseq_cs *)(uintptr_t)T.rseq_cs;
	if (!good_desc) {
		SKIP(P, "all", "could not commit a critical section");
		return 0;
	}
	OUT(P, "descriptor", ",\"version\":%u,\"flags\":%u,\"abort_outside\":%s,"
			     "\"sig_before_abort\":%s,\"commit_leaves_rseq_cs\":%s",
	    good_desc->version, good_desc->flags,
	    B(good_desc->abort_ip - good_desc->start_ip >= good_desc->post_commit_offset),
	    B(*(uint32_t *)(uintptr_t)(good_desc->abort_ip - 4) == SIG_X86), B(T.rseq_cs != 0));

	one("short_no_event", 1, NULL, NULL, 0);

	/* signal delivered while inside: timer (SIGALRM) and from another thread (tgkill) */
	handler(SIGALRM);
	handler(SIGUSR1);
	one("signal_timer_inside", 500, timer_arm, NULL, 0);
	poked("signal_thread_inside", 0);
	/* blocked signal: not delivered inside, so no abort (section 40 ms, timer 20 ms) */
	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	one("signal_blocked_inside", 40, block_arm, block_disarm, 2);

	/* preemption: alone on CPU 0 (SCHED_OTHER, then SCHED_FIFO), then with a busy
	 * SCHED_OTHER thread pinned to CPU 0 */
	trials("alone_20x20ms", 20, 20, 0);
	trials("alone_rt_5x300ms", 5, 300, 1);
	stale(4, 300);
	pthread_t b;
	ready = 0;
	pthread_create(&b, NULL, busy, NULL);
	while (!ready)
		sched_yield();
	trials("contended_20x20ms", 20, 20, 0);
	trials("contended_200x1ms", 200, 1, 0);
	stop = 1;
	pthread_join(b, NULL);

	/* migration by another thread; membarrier RSEQ IPI from CPU 1 */
	poked("migrated_inside", 1);
	long r = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0, 0);
	if (r)
		SKIP(P, "membarrier_ipi_inside", "membarrier register failed");
	else
		poked("membarrier_ipi_inside", 2);

	/* fatal cases, each in a forked child (inherits the registration) */
	crash("bad_signature_inside_signal", k_badsig_inside);
	crash("bad_signature_inside_preempt", k_badsig_preempt);
	crash("bad_signature_outside_signal", k_badsig_outside);
	crash("version1_inside_signal", k_version1_inside);
	crash("version1_outside_signal", k_version1_outside);
	crash("cs_flags_norestart_inside_signal", k_flags_inside);
	crash("cs_flags_norestart_outside_signal", k_flags_outside);
	crash("area_flags1_inside_signal", k_area_flags_inside);
	crash("area_flags1_outside_signal", k_area_flags_outside);
	crash("good_outside_signal", k_good_outside);
	crash("garbage_rseq_cs_ptr_signal", k_garbage_ptr);
	return 0;
}
