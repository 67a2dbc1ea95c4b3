/* probe.h — shared helpers for the fork-pid probes: JSON lines, errno names,
 * memory shared with children, and glibc's cached TID.
 * Every probe prints one JSON object per line:
 *   {"probe":P,"case":C,"ok":true,...facts}      case ran; facts are what the machine said
 *   {"probe":P,"case":C,"skipped":"EPERM unshare"} the sandbox refused a call
 *   {"probe":P,"case":C,"ok":false,"error":"EAGAIN fork"} an unexpected failure */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *PROBE = "?";

static inline const char *errname(int e)
{
    static char buf[16];
#define E(x) case x: return #x;
    switch (e) {
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EBADF) E(ECHILD) E(EAGAIN) E(ENOMEM)
    E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(EINVAL) E(ENOSPC) E(ENOSYS) E(EUSERS)
    E(EOPNOTSUPP)
    case 0: return "none";
    }
#undef E
    snprintf(buf, sizeof buf, "E%d", e);
    return buf;
}

static inline const char *signame(int s)
{
    static char buf[16];
#define S(x) case x: return #x;
    switch (s) { S(SIGSEGV) S(SIGBUS) S(SIGKILL) S(SIGTERM) S(SIGUSR1) S(SIGUSR2) S(SIGCHLD) S(SIGABRT) S(SIGALRM)
    case 0: return "none"; }
#undef S
    snprintf(buf, sizeof buf, "SIG%d", s);
    return buf;
}

static inline void jbegin(const char *cas) { printf("{\"probe\":\"%s\",\"case\":\"%s\",\"ok\":true", PROBE, cas); }
static inline void jint(const char *k, long v) { printf(",\"%s\":%ld", k, v); }
static inline void jbool(const char *k, int v) { printf(",\"%s\":%s", k, v ? "true" : "false"); }
static inline void jstr(const char *k, const char *v) { printf(",\"%s\":\"%s\"", k, v); }
static inline void jerr(const char *k, int e) { jstr(k, errname(e)); }
static inline void jnum(const char *k, double v) { printf(",\"%s\":%.2f", k, v); }
static inline void jend(void) { printf("}\n"); fflush(stdout); }

static inline void skipped(const char *cas, const char *call, int e)
{
    printf("{\"probe\":\"%s\",\"case\":\"%s\",\"skipped\":\"%s %s\"}\n", PROBE, cas, errname(e), call);
    fflush(stdout);
}
static inline void failed(const char *cas, const char *call, int e)
{
    printf("{\"probe\":\"%s\",\"case\":\"%s\",\"ok\":false,\"error\":\"%s %s\"}\n", PROBE, cas, errname(e), call);
    fflush(stdout);
}
/* A refusal by the sandbox is a skip, anything else a failure. */
static inline void refused(const char *cas, const char *call, int e)
{
    if (e == EPERM || e == EACCES || e == ENOSYS) skipped(cas, call, e);
    else failed(cas, call, e);
}

/* Zeroed memory shared with children (MAP_SHARED survives fork): children store facts here. */
static inline void *shared_page(void)
{
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); exit(2); }
    return p;
}

static inline pid_t sys_gettid(void) { return (pid_t)syscall(SYS_gettid); }

/* glibc's cached TID (struct pthread::tid) of a thread, read through the public
 * pthread_getcpuclockid(): glibc builds the clock id as MAKE_THREAD_CPUCLOCK(pd->tid,
 * CPUCLOCK_SCHED) = (~tid << 3) | 6 [glibc nptl/pthread_getcpuclockid.c,
 * sysdeps/unix/sysv/linux/kernel-posix-cpu-timers.h]. */
static inline pid_t cached_tid(pthread_t t)
{
    clockid_t c;
    if (pthread_getcpuclockid(t, &c) != 0) return -1;
    return ~(c >> 3);
}

/* Wait for pid; return "exit:N", "signal:NAME" style pieces via out params. */
static inline int wait_status(pid_t pid, int *code, int *sig)
{
    int st;
    *code = -1; *sig = 0;
    if (waitpid(pid, &st, 0) != pid) return -1;
    if (WIFEXITED(st)) *code = WEXITSTATUS(st);
    if (WIFSIGNALED(st)) *sig = WTERMSIG(st);
    return 0;
}

static inline double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}
