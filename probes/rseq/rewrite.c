/* rewrite.c: when does the kernel rewrite cpu_id_start/cpu_id (and lazily clear rseq_cs)?
 * Method: write a sentinel (0xdeadbeef) into cpu_id_start and cpu_id, do one thing, read back.
 * Source (classic <= 6.18): kernel/rseq.c __rseq_handle_notify_resume writes all 4 IDs on
 * every TIF_NOTIFY_RESUME processing; set by rseq_preempt (prepare_task_switch, i.e. any
 * context switch), rseq_migrate (set_task_cpu), rseq_signal_deliver (before a handler frame),
 * membarrier ipi_rseq (kernel/sched/membarrier.c; not the caller).  A plain syscall writes
 * nothing.  Documentation/userspace-api/rseq.rst (2026) "legacy" column: "Updated by the
 * kernel unconditionally after each context switch and before signal delivery".
 * Run with glibc's registration off (re-execs itself); pins to CPU 0 (machine has >= 2). */
#include "probes.h"
#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/resource.h>
#include <time.h>

static const char *P = "rewrite";
static __thread struct hrseq T;
static volatile int stop, ready;
static volatile uint32_t in_handler_cs, in_handler_cpu;

static void set_sent(void) { T.cpu_id_start = SENT; T.cpu_id = SENT; __asm__ volatile("" ::: "memory"); }
static int rewritten(void) { __asm__ volatile("" ::: "memory"); return T.cpu_id_start != SENT; }
static void report(const char *cs)
{
	int w = rewritten();
	OUT(P, cs, ",\"cpu_id_start_rewritten\":%s,\"cpu_id_rewritten\":%s,\"cpu_id_start\":%u,"
		   "\"cpu_id\":%u",
	    B(w), B(T.cpu_id != SENT), T.cpu_id_start, T.cpu_id);
}

/* voluntary + involuntary context switches of this thread so far */
static long csw(void)
{
	struct rusage ru;
	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_nvcsw + ru.ru_nivcsw;
}

/* Repeat an action N times; count rewrites and context switches (rusage) per iteration.
 * The sentinel is written BEFORE the first getrusage: a preemption at that syscall's exit
 * happens after the counters were read, so it must show up as a rewrite too. */
static void loop(const char *cs, void (*act)(void), int N)
{
	int w = 0, sw = 0, w_nosw = 0, sw_now = 0;
	for (int i = 0; i < N; i++) {
		set_sent();
		long c0 = csw();
		act();
		int r = rewritten();
		int s = csw() != c0;
		w += r, sw += s, w_nosw += r && !s, sw_now += s && !r;
	}
	OUT(P, cs, ",\"calls\":%d,\"rewrites\":%d,\"context_switches\":%d,"
		   "\"rewrite_without_switch\":%d,\"switch_without_rewrite\":%d",
	    N, w, sw, w_nosw, sw_now);
}
static void a_getppid(void) { syscall(SYS_getppid); }
static void a_yield(void) { sched_yield(); }

static void on_usr1(int s)
{
	(void)s;
	in_handler_cs = T.cpu_id_start;
	in_handler_cpu = T.cpu_id;
	set_sent(); /* does the return path (rt_sigreturn) write again? */
}

static void *busy(void *arg)
{
	pin((int)(long)arg);
	ready = 1;
	while (!stop)
		;
	return NULL;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct hrseq_cs cs_desc; /* valid descriptor, empty range */
static volatile int spin_seen;
static void *mb_target(void *arg)
{
	(void)arg;
	pin(0);
	rs(&T, 32, 0, SIG_X86);
	set_sent();
	ready = 1;
	double t0 = now();
	while (!rewritten() && now() - t0 < 2.0)
		;
	spin_seen = rewritten();
	rs(&T, 32, F_UNREG, SIG_X86);
	return NULL;
}

int main(int argc, char **argv)
{
	(void)argc;
	probe_init();
	need_glibc_rseq_off(P, argv);
	if (pin(0)) {
		SKIP(P, "all", "sched_setaffinity failed");
		return 0;
	}
	if (strcmp(rs(&T, 32, 0, SIG_X86), "OK")) {
		SKIP(P, "all", "rseq registration failed");
		return 0;
	}

	/* (a) plain syscalls: count rewrites over N getppid() calls */
	loop("getppid_syscall", a_getppid, 10000);

	/* (a2) user-space spin 50 ms, no syscalls, CPU otherwise idle (timer ticks only) */
	set_sent();
	long c0 = csw();
	for (double t0 = now(); now() - t0 < 0.05;)
		; /* clock_gettime is vDSO: no syscall */
	long d = csw() - c0;
	OUT(P, "user_spin_50ms_alone", ",\"cpu_id_start_rewritten\":%s,\"context_switches\":%ld,"
				       "\"rewritten_iff_switched\":%s",
	    B(rewritten()), d, B(rewritten() == (d > 0)));

	/* (b) signal with a handler */
	signal(SIGUSR1, on_usr1);
	set_sent();
	raise(SIGUSR1);
	OUT(P, "signal_handler", ",\"rewritten_before_handler\":%s,\"cpu_id_in_handler_valid\":%s,"
				 "\"rewritten_by_sigreturn\":%s",
	    B(in_handler_cs != SENT), B(in_handler_cpu < 2), B(rewritten()));
	/* ignored signal: no delivery */
	signal(SIGUSR2, SIG_IGN);
	set_sent();
	raise(SIGUSR2);
	report("signal_ignored");

	/* (c) sched_yield alone on the CPU, then with a busy thread pinned to the same CPU */
	loop("sched_yield_alone", a_yield, 100);

	struct timespec ms = {0, 1000000};
	set_sent();
	nanosleep(&ms, NULL);
	report("nanosleep_1ms");

	pthread_t b;
	stop = 0;
	ready = 0;
	pthread_create(&b, NULL, busy, (void *)0L);
	while (!ready)
		sched_yield();
	loop("sched_yield_contended", a_yield, 100);
	/* preemption without any syscall: spin 200 ms with the busy thread on the same CPU */
	set_sent();
	c0 = csw();
	for (double t0 = now(); now() - t0 < 0.2;)
		;
	OUT(P, "user_spin_200ms_preempted", ",\"cpu_id_start_rewritten\":%s,\"context_switches\":%ld",
	    B(rewritten()), csw() - c0);

	/* lazy clear of rseq_cs (descriptor valid, IP outside): classic clears it whenever
	 * notify-resume runs with regs (kernel rseq_ip_fixup -> clear_rseq_cs) */
	/* descriptor: version 0, empty range (post_commit_offset 0, so never "inside"),
	 * abort_ip preceded by SIG_X86 -> passes every classic validation check */
	static uint32_t sigword[2] __attribute__((aligned(8))) = {SIG_X86, 0};
	cs_desc.start_ip = (uint64_t)(uintptr_t)&main;
	cs_desc.post_commit_offset = 0;
	cs_desc.abort_ip = (uint64_t)(uintptr_t)&sigword[1];
	T.rseq_cs = (uint64_t)(uintptr_t)&cs_desc;
	syscall(SYS_getppid);
	int after_syscall = T.rseq_cs != 0;
	c0 = csw(); /* yield (contended) until a context switch actually happens */
	for (int k = 0; k < 10000 && csw() == c0; k++)
		sched_yield();
	OUT(P, "rseq_cs_lazy_clear", ",\"kept_after_getppid\":%s,\"switched\":%s,"
				     "\"cleared_after_switch\":%s",
	    B(after_syscall), B(csw() != c0), B(T.rseq_cs == 0));
	T.rseq_cs = (uint64_t)(uintptr_t)&cs_desc;
	raise(SIGUSR1);
	OUT(P, "rseq_cs_lazy_clear_signal", ",\"cleared_after_signal\":%s", B(T.rseq_cs == 0));
	T.rseq_cs = 0;
	stop = 1;
	pthread_join(b, NULL);

	/* (d) migration: move ourselves to CPU 1 */
	set_sent();
	if (pin(1))
		SKIP(P, "migrate_setaffinity", "sched_setaffinity(1) failed");
	else
		OUT(P, "migrate_setaffinity", ",\"cpu_id_start_rewritten\":%s,\"cpu_id\":%u,"
					      "\"cpu_id_is_1\":%s",
		    B(rewritten()), T.cpu_id, B(T.cpu_id == 1));
	pin(0);

	/* (e) membarrier RSEQ: before REGISTER -> EPERM; then IPI a thread spinning on CPU 0
	 * from CPU 1; the caller itself is not rseq_preempt()ed */
	long r = syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, 0, 0);
	OUT(P, "membarrier_rseq_unregistered", ",\"result\":\"%s\"", RES(r));
	r = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0, 0);
	OUT(P, "membarrier_register_rseq", ",\"result\":\"%s\"", RES(r));
	pin(1);
	ready = 0;
	pthread_t m;
	pthread_create(&m, NULL, mb_target, NULL);
	while (!ready)
		;
	for (volatile int i = 0; i < 1000000; i++) /* let it spin a little */
		;
	set_sent();
	r = syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, 0, 0);
	int self = rewritten();
	pthread_join(m, NULL);
	OUT(P, "membarrier_rseq_ipi", ",\"result\":\"%s\",\"target_rewritten\":%s,"
				      "\"caller_rewritten\":%s",
	    RES(r), B(spin_seen), B(self));
	/* MEMBARRIER_CMD_FLAG_CPU targeting CPU 0 */
	ready = 0;
	pthread_create(&m, NULL, mb_target, NULL);
	while (!ready)
		;
	for (volatile int i = 0; i < 1000000; i++)
		;
	r = syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, MEMBARRIER_CMD_FLAG_CPU, 0);
	pthread_join(m, NULL);
	OUT(P, "membarrier_rseq_ipi_cpu0", ",\"result\":\"%s\",\"target_rewritten\":%s", RES(r),
	    B(spin_seen));
	return 0;
}
