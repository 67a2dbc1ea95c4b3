/* inherit.c: what happens to a registration across fork, pthread_create, vfork,
 * clone(CLONE_VM), thread exit and execve.
 * Sources: include/linux/rseq.h rseq_fork() ("if (clone_flags & CLONE_VM) reset, else
 * inherit rseq, rseq_len, rseq_sig, event mask"), rseq_execve() (reset on successful exec;
 * fs/exec.c), kernel/rseq.c __rseq_handle_notify_resume (PF_EXITING: nothing written at
 * exit).  A registration is detected with rseq(same ptr,len,sig) -> EBUSY (registered) /
 * OK (was not registered).  Run with glibc's registration off (re-execs itself). */
#include "probes.h"
#include <pthread.h>
#include <sys/mman.h>

static const char *P = "inherit";
static __thread struct hrseq T; /* our per-thread area (initial-exec TLS) */
static volatile char *shared;   /* MAP_SHARED scratch for child results */

static void child_report(const char *name, pid_t pid)
{
	int st;
	char b[32];
	waitpid(pid, &st, 0);
	OUT(P, name, ",%s,\"child\":\"%s\"", (char *)shared, wdesc(st, b, sizeof b));
}

static void *thr_fresh(void *arg)
{
	(void)arg;
	/* parent's area: this thread is not registered there; own TLS area: registers */
	const char *u = rs(arg, 32, F_UNREG, SIG_X86);
	const char *r = rs(&T, 32, 0, SIG_X86);
	OUT(P, "pthread_child", ",\"unregister_parent_area\":\"%s\",\"register_own\":\"%s\"", u, r);
	return NULL;
}

static struct hrseq *heap_area;
static void *thr_exit(void *arg)
{
	(void)arg;
	heap_area->cpu_id = SENT;
	rs(heap_area, 32, 0, SIG_X86); /* register, then exit without unregistering */
	return NULL;
}

static int clone_fn(void *arg)
{
	(void)arg;
	/* CLONE_VM without CLONE_SETTLS: %fs still points at the parent's TLS, so &T is
	 * the parent's area */
	const char *r = rs(&T, 32, 0, SIG_X86);
	sprintf((char *)shared, "\"register_same_args\":\"%s\"", r);
	if (!strcmp(r, "OK"))
		rs(&T, 32, F_UNREG, SIG_X86); /* undo, the parent still uses this area */
	return 0;
}

int main(int argc, char **argv)
{
	probe_init();
	if (argc == 3 && !strcmp(argv[1], "--after-exec")) {
		/* new image: the pre-exec address (same static TLS layout) is not registered */
		void *old = (void *)strtoul(argv[2], NULL, 16);
		int cpu0 = (int)T.cpu_id; /* fresh static TLS: 0, nobody wrote it */
		const char *u = rs(old, 32, F_UNREG, SIG_X86);
		/* OK here proves no registration survived (a kept one would give EINVAL/EBUSY) */
		const char *r = rs(&T, 32, 0, SIG_X86);
		OUT(P, "exec_clears", ",\"unregister_old_address\":\"%s\",\"register_fresh\":\"%s\","
				      "\"cpu_id_before_register\":%d",
		    u, r, cpu0);
		return 0;
	}
	need_glibc_rseq_off(P, argv);
	shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	OUT(P, "register_parent", ",\"result\":\"%s\"", rs(&T, 32, 0, SIG_X86));

	/* fork: child keeps the registration (its COW copy of the area) */
	T.cpu_id_start = T.cpu_id = SENT;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		int rewritten = T.cpu_id_start != SENT; /* first return to user of the child */
		int cpu = T.cpu_id;
		const char *again = rs(&T, 32, 0, SIG_X86);
		const char *un = rs(&T, 32, F_UNREG, SIG_X86);
		sprintf((char *)shared, "\"ids_rewritten_on_first_return\":%s,\"cpu_id_valid\":%s,"
					"\"reregister_same_args\":\"%s\",\"unregister\":\"%s\"",
			B(rewritten), B(cpu >= 0 && cpu < 2), again, un);
		_exit(0);
	}
	int parent_rewritten = T.cpu_id_start != SENT;
	child_report("fork_child", pid);
	OUT(P, "fork_parent_after", ",\"ids_rewritten_by_fork_return\":%s,\"still_registered\":\"%s\"",
	    B(parent_rewritten), rs(&T, 32, 0, SIG_X86));

	/* pthread_create: CLONE_VM|CLONE_THREAD -> new thread starts unregistered */
	pthread_t t;
	pthread_create(&t, NULL, thr_fresh, &T);
	pthread_join(t, NULL);

	/* thread exit: no unregistration write (cpu_id keeps its last CPU value, not -1) */
	heap_area = aligned_alloc(32, 32);
	memset(heap_area, 0, 32);
	pthread_create(&t, NULL, thr_exit, NULL);
	pthread_join(t, NULL);
	OUT(P, "thread_exit_leaves_area", ",\"cpu_id_after_exit\":%d,\"cpu_id_is_valid_cpu\":%s",
	    (int)heap_area->cpu_id, B((int)heap_area->cpu_id >= 0 && (int)heap_area->cpu_id < 2));

	/* vfork: CLONE_VM|CLONE_VFORK -> child unregistered (shares memory with parent) */
	strcpy((char *)shared, "\"register_same_args\":\"none\"");
	pid = vfork();
	if (pid == 0) {
		long r = sys_rseq(&T, 32, 0, SIG_X86);
		int e = errno;
		if (r == 0)
			sys_rseq(&T, 32, F_UNREG, SIG_X86);
		sprintf((char *)shared, "\"register_same_args\":\"%s\"", r == 0 ? "OK" : ename(e));
		_exit(0);
	}
	child_report("vfork_child", pid);

	/* clone(CLONE_VM) without CLONE_THREAD */
	static char stack[65536] __attribute__((aligned(16)));
	strcpy((char *)shared, "\"register_same_args\":\"none\"");
	pid = clone(clone_fn, stack + sizeof stack, CLONE_VM | SIGCHLD, NULL);
	child_report("clone_vm_child", pid);
	OUT(P, "parent_still_registered", ",\"reregister_same_args\":\"%s\"", rs(&T, 32, 0, SIG_X86));

	/* failed execve keeps the registration */
	char *nargv[] = {"/nonexistent/x", NULL};
	execv(nargv[0], nargv);
	int e = errno;
	OUT(P, "failed_exec_keeps", ",\"execve\":\"%s\",\"reregister_same_args\":\"%s\"", ename(e),
	    rs(&T, 32, 0, SIG_X86));

	/* successful execve resets: exec self and look from the new image */
	char addr[32];
	snprintf(addr, sizeof addr, "%lx", (unsigned long)&T);
	char *xargv[] = {argv[0], "--after-exec", addr, NULL};
	fflush(stdout);
	execv("/proc/self/exe", xargv);
	SKIP(P, "exec_clears", "execv failed");
	return 0;
}
