/* clone_vm.c — glibc clone(3) wrapper and clone(2) flags. Sources: man-pages clone(2)
 * (CLONE_VM, CLONE_PARENT, CLONE_{PARENT,CHILD}_SETTID, CLONE_CHILD_CLEARTID, ERRORS, NOTES:
 * "CLONE_VM without CLONE_VFORK clears the child's sigaltstack"); kernel/fork.c
 * copy_process (flag checks); glibc 2.25 commit c579f48 (clone no longer refreshes the
 * PID/TID cache => a non-thread clone child keeps the parent's struct pthread::tid). */
#include "probe.h"
#include <sched.h>

#define STK (256 * 1024)
static volatile int g_written;
struct facts { int pid, ppid, tid, cached, ss_flags, wait_errno; };
static struct facts *F;

static int child_fn(void *arg)
{
    (void)arg;
    stack_t ss; sigaltstack(NULL, &ss);
    F->pid = getpid(); F->ppid = getppid(); F->tid = sys_gettid();
    F->cached = cached_tid(pthread_self()); F->ss_flags = ss.ss_flags;
    g_written = 42;
    return 3;
}
static int noop_fn(void *arg) { (void)arg; return 0; }
static char *stack_top(void) { return (char *)malloc(STK) + STK; }

static void run(const char *cas, int flags)
{
    memset(F, 0, sizeof *F); g_written = 0;
    pid_t me = getpid(), mytid = sys_gettid();
    pid_t r = clone(child_fn, stack_top(), flags, NULL);
    if (r < 0) { refused(cas, "clone", errno); return; }
    int code, sig; wait_status(r, &code, &sig);
    jbegin(cas);
    jbool("parent_sees_child_write", g_written == 42);
    jbool("child_getpid_eq_ret", F->pid == r);
    jbool("child_gettid_eq_getpid", F->tid == F->pid);
    jbool("child_getppid_eq_parent", F->ppid == me);
    jbool("child_cached_tid_eq_parent_tid", F->cached == mytid);
    jbool("child_sigaltstack_disabled", F->ss_flags & SS_DISABLE);
    jint("wait_exit_code", code);
    jend();
}

static void settid(void)
{
    /* CLONE_PARENT_SETTID: stored before clone returns in the parent (caller's ns PID).
     * CLONE_CHILD_SETTID: child's TID stored in child memory; CLONE_CHILD_CLEARTID: zeroed at
     * child exit (set_tid_address(2)). With CLONE_VM the parent sees both. */
    static volatile pid_t ptid, ctid_set, ctid_clear;
    pid_t r1 = clone(noop_fn, stack_top(), CLONE_VM | CLONE_PARENT_SETTID | CLONE_CHILD_SETTID | SIGCHLD,
                     NULL, &ptid, NULL, &ctid_set);
    int ptid_at_return = ptid;
    int code, sig; wait_status(r1, &code, &sig);
    pid_t r2 = clone(noop_fn, stack_top(), CLONE_VM | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD,
                     NULL, NULL, NULL, &ctid_clear);
    wait_status(r2, &code, &sig);
    jbegin("settid");
    jbool("parent_settid_eq_ret_at_return", ptid_at_return == r1);
    jbool("child_settid_eq_child_pid", ctid_set == r1);
    jint("child_cleartid_after_exit", ctid_clear);
    jend();
}

static void clone_parent(void)
{
    /* clone(2) CLONE_PARENT: the new child's parent is the caller's parent, which (not the
     * caller) is notified and can wait for it. Caller I is a fork child of this probe. */
    memset(F, 0, sizeof *F);
    int *gpid = (int *)F + 16;
    pid_t me = getpid();
    pid_t i = fork();
    if (i == 0) {
        pid_t g = clone(child_fn, stack_top(), CLONE_PARENT | SIGCHLD, NULL);
        *gpid = g;
        if (g < 0) _exit(1);
        usleep(100000);
        F->wait_errno = waitpid(g, NULL, 0) < 0 ? errno : 0;
        _exit(0);
    }
    int code, sig; wait_status(i, &code, &sig);
    int gcode = -1, gsig;
    int reaped = *gpid > 0 && wait_status(*gpid, &gcode, &gsig) == 0;
    jbegin("clone_parent");
    jbool("grandchild_getppid_eq_probe", F->ppid == me);
    jerr("caller_waitpid_errno", F->wait_errno);
    jbool("probe_reaped_grandchild", reaped);
    jend();
}

static void einval(void)
{
    static const struct { const char *name; int flags; } c[] = {
        { "THREAD_without_SIGHAND", CLONE_THREAD | CLONE_VM },
        { "SIGHAND_without_VM", CLONE_SIGHAND },
        /* EINVAL in clone(2) (man-pages 5.13); allowed since Linux 6.9 (PIDFD_THREAD) */
        { "PIDFD_with_THREAD", CLONE_PIDFD | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM },
        { "NEWPID_with_THREAD", CLONE_NEWPID | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM },
        { "NEWUSER_with_THREAD", CLONE_NEWUSER | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM },
    };
    int pidfd = -1;
    jbegin("flag_errors");
    for (unsigned k = 0; k < sizeof c / sizeof c[0]; k++) {
        errno = 0;
        int r = clone(noop_fn, stack_top(), c[k].flags | SIGCHLD, NULL, &pidfd);
        jerr(c[k].name, r < 0 ? errno : 0);
        if (r > 0 && !(c[k].flags & CLONE_THREAD)) waitpid(r, NULL, __WALL);
        if (r > 0 && pidfd >= 0) { usleep(10000); close(pidfd); pidfd = -1; }
    }
    errno = 0; jerr("glibc_fn_NULL", clone(NULL, stack_top(), SIGCHLD, NULL) < 0 ? errno : 0);
    errno = 0; jerr("glibc_stack_NULL", clone(noop_fn, NULL, SIGCHLD, NULL) < 0 ? errno : 0);
    jend();
}

int main(void)
{
    PROBE = "clone_vm";
    F = shared_page();
    stack_t ss = { .ss_sp = malloc(SIGSTKSZ * 4), .ss_size = SIGSTKSZ * 4, .ss_flags = 0 };
    sigaltstack(&ss, NULL);                /* to see whether the child inherits it */
    run("clone_vm", CLONE_VM | SIGCHLD);
    run("clone_no_vm", SIGCHLD);
    run("clone_vm_vfork", CLONE_VM | CLONE_VFORK | SIGCHLD);
    settid();
    clone_parent();
    einval();
    return 0;
}
