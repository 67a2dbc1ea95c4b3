/* Shared helpers for the Hyrum rseq probes (x86-64 Linux, glibc).
 * Layout of struct rseq / struct rseq_cs: include/uapi/linux/rseq.h (node_id and
 * mm_cid since 6.3).  Declared here because libc6-dev may ship older uapi headers.
 * Output: one JSON object per line, {"probe":..,"case":..,...}. */
#ifndef HYRUM_RSEQ_PROBES_H
#define HYRUM_RSEQ_PROBES_H
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_rseq
#define SYS_rseq 334 /* x86-64 */
#endif
#define SIG_X86 0x53053053u /* RSEQ_SIG: ud1 0x53053053(%rip),%edi */
#define F_UNREG 1           /* RSEQ_FLAG_UNREGISTER */
#define SENT 0xdeadbeefu    /* sentinel written into kernel-owned fields */

struct hrseq { /* struct rseq, 32 bytes, aligned 32 */
	uint32_t cpu_id_start; /* 0 */
	uint32_t cpu_id;       /* 4: -1 UNINITIALIZED, -2 REGISTRATION_FAILED */
	uint64_t rseq_cs;      /* 8 */
	uint32_t flags;        /* 16 */
	uint32_t node_id;      /* 20 */
	uint32_t mm_cid;       /* 24 */
	uint32_t pad;          /* 28 */
} __attribute__((aligned(32)));

struct hrseq_cs { /* struct rseq_cs */
	uint32_t version, flags;
	uint64_t start_ip, post_commit_offset, abort_ip;
} __attribute__((aligned(32)));

static inline long sys_rseq(void *p, uint32_t len, int flags, uint32_t sig)
{
	return syscall(SYS_rseq, p, len, flags, sig);
}

static inline const char *ename(int e)
{
	switch (e) {
	case 0: return "OK";
	case EINVAL: return "EINVAL";
	case EBUSY: return "EBUSY";
	case EPERM: return "EPERM";
	case EFAULT: return "EFAULT";
	case ENOSYS: return "ENOSYS";
	case ENOENT: return "ENOENT";
	case ENXIO: return "ENXIO";
	case ESRCH: return "ESRCH";
	case EACCES: return "EACCES";
	default: return "E?";
	}
}
/* "OK" when r == 0, else the errno name */
#define RES(r) ((r) == 0 ? "OK" : ename(errno))
/* rseq() call returning the errno name */
static inline const char *rs(void *p, uint32_t len, int flags, uint32_t sig)
{
	errno = 0;
	long r = sys_rseq(p, len, flags, sig);
	return r == 0 ? "OK" : ename(errno);
}

#define OUT(probe, cs, fmt, ...) \
	printf("{\"probe\":\"%s\",\"case\":\"%s\"" fmt "}\n", probe, cs, ##__VA_ARGS__)
#define SKIP(probe, cs, why) \
	printf("{\"probe\":\"%s\",\"case\":\"%s\",\"skipped\":\"%s\"}\n", probe, cs, why)
#define B(x) ((x) ? "true" : "false")

static inline void probe_init(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct rlimit rl = {0, 0}; /* no core files from the SIGSEGV cases */
	setrlimit(RLIMIT_CORE, &rl);
}

/* glibc's __rseq_size (0 when glibc did not register) */
extern const unsigned int __rseq_size __attribute__((weak));

/* Make sure glibc did not register rseq for this process: if it did, re-exec self
 * with GLIBC_TUNABLES=glibc.pthread.rseq=0 (GL manual/tunables.texi). */
static inline void need_glibc_rseq_off(const char *probe, char **argv)
{
	if (&__rseq_size == NULL || __rseq_size == 0)
		return;
	if (getenv("HYRUM_REEXEC")) {
		SKIP(probe, "all", "glibc keeps rseq registered despite GLIBC_TUNABLES");
		exit(0);
	}
	setenv("GLIBC_TUNABLES", "glibc.pthread.rseq=0", 1);
	setenv("HYRUM_REEXEC", "1", 1);
	execv("/proc/self/exe", argv);
	SKIP(probe, "all", "re-exec with GLIBC_TUNABLES failed");
	exit(0);
}

/* pin the calling thread to one CPU; 0 on success */
static inline int pin(int cpu)
{
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	return sched_setaffinity(0, sizeof s, &s);
}

/* Describe how a child ended: "exit:N" or "signal:SIGSEGV" etc. */
static inline const char *wdesc(int st, char *buf, size_t n)
{
	if (WIFEXITED(st))
		snprintf(buf, n, "exit:%d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, n, "signal:SIG%s", sigabbrev_np(WTERMSIG(st)) ? sigabbrev_np(WTERMSIG(st)) : "?");
	else
		snprintf(buf, n, "other:%d", st);
	return buf;
}
#endif
