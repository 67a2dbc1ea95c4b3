/* getpid_cost.c — cost of getpid(). Sources: man-pages getpid(2) NOTES (glibc 2.3.4..2.24
 * cached the PID; since 2.25 every call is a system call; there is no vDSO getpid); glibc
 * commit c579f48 (2.25); seed 000 (Fedora bz 1469670: systemd slowed 20-30%); systemd
 * src/basic/process-util.c getpid_cached(). Figures vary by machine; compare ratios. */
#include "probe.h"
#include <stdatomic.h>

#define N 10000000L
static volatile int sink;
static volatile int cached_int = 1234;
static _Atomic int systemd_cache;      /* 0 = unset, as in getpid_cached() */

static int cached_getpid(void)
{
    int cur = atomic_load_explicit(&systemd_cache, memory_order_relaxed);
    if (cur > 0) return cur;
    cur = (int)syscall(SYS_getpid);
    atomic_store(&systemd_cache, cur);
    return cur;
}

#define MEASURE(expr) ({ double t0 = now_ns(); for (long i = 0; i < N; i++) sink = (expr); (now_ns() - t0) / N; })

int main(void)
{
    PROBE = "getpid_cost";
    struct timespec ts;
    MEASURE(getpid());                 /* warm up */
    double g = MEASURE(getpid());
    double s = MEASURE((int)syscall(SYS_getpid));
    double t = MEASURE(gettid());
    double v = MEASURE(cached_int);
    double c = MEASURE(cached_getpid());
    double k = MEASURE(clock_gettime(CLOCK_MONOTONIC, &ts));   /* vDSO if the clocksource allows */
    jbegin("ns_per_call");
    jint("iterations", N);
    jnum("getpid", g); jnum("syscall_SYS_getpid", s); jnum("gettid", t);
    jnum("volatile_int_read", v); jnum("systemd_style_cached", c); jnum("clock_gettime_monotonic", k);
    jnum("getpid_over_volatile_read", v > 0 ? g / v : 0);
    jbool("getpid_costs_like_raw_syscall", g > s / 2 && g < s * 2);
    jbool("getpid_much_slower_than_cached_read", g > 5 * c);
    jend();
    return 0;
}
