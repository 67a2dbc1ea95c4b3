/* state.c: rseq registration state at process start, as left by glibc.
 * Run twice by run.sh: default, and with GLIBC_TUNABLES=glibc.pthread.rseq=0.
 * Sources: glibc sysdeps/nptl/dl-tls_init_tp.c (main thread registration, __rseq_size,
 * __rseq_offset), nptl/pthread_create.c (new threads inherit registration state),
 * sysdeps/unix/sysv/linux/rseq-internal.h (cpu_id = -2 when disabled/failed),
 * sched_getcpu.c; kernel fs/binfmt_elf.c create_elf_tables (AT_RSEQ_FEATURE_SIZE=27,
 * AT_RSEQ_ALIGN=28, since 6.3); kernel/rseq.c SYSCALL_DEFINE4(rseq) re-register checks. */
#include "probes.h"
#include <pthread.h>
#include <sys/auxv.h>
#include <sys/ptrace.h>
#include <sys/rseq.h>

static const char *P = "state";
static const char *mode;

static struct hrseq *glibc_area(void)
{
	char *tp;
	__asm__("mov %%fs:0, %0" : "=r"(tp)); /* x86-64 thread pointer */
	return (struct hrseq *)(tp + __rseq_offset);
}

static void dump(const char *cs, struct hrseq *a)
{
	unsigned cpu_sys = 0;
	syscall(SYS_getcpu, &cpu_sys, NULL, NULL);
	OUT(P, cs, ",\"mode\":\"%s\",\"area_mod32\":%lu,\"cpu_id_start\":%d,\"cpu_id\":%d,"
		   "\"rseq_cs\":%llu,\"flags\":%u,\"node_id\":%u,\"mm_cid\":%u,\"sched_getcpu\":%d,"
		   "\"getcpu_syscall\":%u,\"cpu_id_eq_getcpu\":%s",
	    mode, (unsigned long)a % 32, (int)a->cpu_id_start, (int)a->cpu_id,
	    (unsigned long long)a->rseq_cs, a->flags, a->node_id, a->mm_cid, sched_getcpu(), cpu_sys,
	    B((int)a->cpu_id == (int)cpu_sys));
}

static void *thr(void *arg)
{
	(void)arg;
	dump("pthread_area", glibc_area());
	/* a registered thread answers EBUSY to its own exact arguments */
	OUT(P, "pthread_reregister_glibc_area_len32", ",\"mode\":\"%s\",\"result\":\"%s\"", mode,
	    __rseq_size ? rs(glibc_area(), 32, 0, RSEQ_SIG) : "not-tried(size 0)");
	return NULL;
}

/* PTRACE_GET_RSEQ_CONFIGURATION (0x420f, since 5.13, include/uapi/linux/ptrace.h):
 * the kernel's view of the registration (pointer, len, sig) of a fork child, which
 * inherits the main thread's registration (kernel rseq_fork without CLONE_VM). */
static void ptrace_config(void)
{
	struct { uint64_t ptr; uint32_t size, sig, flags, pad; } c = {0};
	pid_t pid = fork();
	if (pid == 0) {
		ptrace(PTRACE_TRACEME, 0, 0, 0);
		raise(SIGSTOP);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	errno = 0;
	long r = ptrace(0x420f, pid, (void *)sizeof c, &c);
	int e = errno;
	OUT(P, "ptrace_rseq_config_fork_child", ",\"mode\":\"%s\",\"result\":\"%s\",\"ret\":%ld,"
		"\"ptr_is_glibc_area\":%s,\"ptr_nonzero\":%s,\"size\":%u,\"sig\":%u,\"flags\":%u",
	    mode, r >= 0 ? "OK" : ename(e), r, B(c.ptr == (uint64_t)(uintptr_t)glibc_area()),
	    B(c.ptr != 0), c.size, c.sig, c.flags);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
}

int main(void)
{
	probe_init();
	mode = getenv("GLIBC_TUNABLES") ? getenv("GLIBC_TUNABLES") : "default";

	errno = 0;
	unsigned long fs = getauxval(27); /* AT_RSEQ_FEATURE_SIZE */
	int e1 = errno;
	errno = 0;
	unsigned long al = getauxval(28); /* AT_RSEQ_ALIGN */
	int e2 = errno;
	OUT(P, "auxv", ",\"mode\":\"%s\",\"AT_RSEQ_FEATURE_SIZE\":%lu,\"feature_errno\":\"%s\","
		       "\"AT_RSEQ_ALIGN\":%lu,\"align_errno\":\"%s\"",
	    mode, fs, ename(e1), al, ename(e2));

	OUT(P, "glibc_exports", ",\"mode\":\"%s\",\"__rseq_size\":%u,\"__rseq_offset\":%ld,"
				"\"__rseq_flags\":%u,\"RSEQ_SIG\":%u,\"sizeof_struct_rseq\":%zu",
	    mode, __rseq_size, (long)__rseq_offset, __rseq_flags, (unsigned)RSEQ_SIG,
	    sizeof(struct rseq));

	dump("main_area", glibc_area());

	pthread_t t;
	pthread_create(&t, NULL, thr, NULL);
	pthread_join(t, NULL);

	ptrace_config();

	/* Coexistence (kernel: one registration per thread; re-register checks address,
	 * then len, then sig). Only meaningful while glibc registered the thread. */
	struct hrseq *g = glibc_area();
	if (__rseq_size) {
		/* glibc registers max(__rseq_size, 32) bytes (rseq-internal.h) */
		OUT(P, "reregister_len_rseq_size", ",\"mode\":\"%s\",\"len\":%u,\"result\":\"%s\"",
		    mode, __rseq_size, rs(g, __rseq_size, 0, RSEQ_SIG));
		OUT(P, "reregister_same_args_len32", ",\"mode\":\"%s\",\"result\":\"%s\"", mode,
		    rs(g, 32, 0, RSEQ_SIG));
		OUT(P, "reregister_other_sig_len32", ",\"mode\":\"%s\",\"result\":\"%s\"", mode,
		    rs(g, 32, 0, RSEQ_SIG + 1));
		OUT(P, "reregister_len64", ",\"mode\":\"%s\",\"result\":\"%s\"", mode,
		    rs(g, 64, 0, RSEQ_SIG));
	}
	/* a TCMalloc-like private area (32 bytes, aligned 32, RSEQ_SIG) */
	static __thread struct hrseq own;
	const char *r = rs(&own, 32, 0, RSEQ_SIG);
	OUT(P, "register_own_area", ",\"mode\":\"%s\",\"result\":\"%s\",\"own_cpu_id\":%d",
	    mode, r, (int)own.cpu_id);
	if (!strcmp(r, "OK")) {
		r = rs(&own, 32, F_UNREG, RSEQ_SIG);
		OUT(P, "unregister_own_area", ",\"mode\":\"%s\",\"result\":\"%s\",\"own_cpu_id\":%d,"
					      "\"own_cpu_id_start\":%u",
		    mode, r, (int)own.cpu_id, own.cpu_id_start);
	}
	return 0;
}
