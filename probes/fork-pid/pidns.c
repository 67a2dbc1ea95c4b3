/* pidns.c — PID namespaces through unshare(CLONE_NEWPID). Sources: man-pages
 * pid_namespaces(7), unshare(2), getpid(2), clone(2); kernel/pid_namespace.c copy_pid_ns,
 * create_pid_namespace (MAX_PID_NS_LEVEL 32, ENOSPC); kernel/pid.c alloc_pid (ENOMEM after
 * init died); kernel/fork.c copy_process (CLONE_THREAD vs pid_ns_for_children, CLONE_PARENT
 * by an init); kernel/signal.c sig_task_ignored. Every case runs in a forked helper so the
 * probe's own namespaces stay untouched. */
#include "probe.h"
#include <sched.h>

struct facts {
    volatile int go, init_done;
    int init_pid, init_ppid, init_cached_tid, init_clone_parent_errno;
    int a_pid, b_pid, orphan_ppid;
    int second_pid, second_ppid;
    char init_ns[64];
};
static struct facts *F;
static int noop_fn(void *a) { (void)a; return 0; }
static void *noop_thread(void *a) { (void)a; return NULL; }
static void *park(void *a) { (void)a; pause(); return NULL; }
static int ns_link(const char *path, char *out, size_t n)
{
    ssize_t k = readlink(path, out, n - 1);
    if (k < 0) return errno;
    out[k] = 0;
    return 0;
}
static void wait_flag(volatile int *f) { for (int i = 0; i < 500 && !*f; i++) usleep(10000); }

static void init_process(void)      /* first child after unshare: the namespace init */
{
    F->init_pid = getpid(); F->init_ppid = getppid();
    F->init_cached_tid = cached_tid(pthread_self());
    ns_link("/proc/self/ns/pid", F->init_ns, sizeof F->init_ns);
    /* clone(2): CLONE_PARENT by an init process -> EINVAL */
    int r = clone(noop_fn, (char *)malloc(65536) + 65536, CLONE_PARENT | SIGCHLD, NULL);
    F->init_clone_parent_errno = r < 0 ? errno : 0;
    wait_flag(&F->go);
    /* pid_namespaces(7): orphans are reparented to the namespace init */
    pid_t a = fork();
    if (a == 0) {
        F->a_pid = getpid();
        if (fork() == 0) { F->b_pid = getpid(); usleep(100000); F->orphan_ppid = getppid(); _exit(0); }
        _exit(0);
    }
    waitpid(a, NULL, 0);
    while (wait(NULL) > 0) ;           /* the reparented grandchild */
    F->init_done = 1;
    for (;;) pause();                  /* SIG_DFL SIGUSR1 from the parent ns must not kill us */
}

static void unshare_helper(void)
{
    pid_t before = getpid();
    char ns_before[64], ns_after[64], pfc[64];
    ns_link("/proc/self/ns/pid", ns_before, sizeof ns_before);
    if (unshare(CLONE_NEWPID) < 0) {
        static const char *cases[] = { "unshare_caller_not_moved", "init_child", "later_children",
                                       "after_unshare", "init_death" };
        int e = errno;
        for (int i = 0; i < 5; i++) refused(cases[i], "unshare(CLONE_NEWPID)", e);
        _exit(0);
    }
    ns_link("/proc/self/ns/pid", ns_after, sizeof ns_after);
    int pfc_err = ns_link("/proc/self/ns/pid_for_children", pfc, sizeof pfc);
    jbegin("unshare_caller_not_moved");
    jbool("getpid_unchanged", getpid() == before);
    jbool("own_pid_ns_unchanged", strcmp(ns_before, ns_after) == 0);
    jerr("pid_for_children_readlink_before_first_child", pfc_err);
    jend();

    pid_t init = fork();
    if (init < 0) { failed("init_child", "fork", errno); _exit(0); }
    if (init == 0) init_process();
    pid_t second = fork();
    if (second == 0) { F->second_pid = getpid(); F->second_ppid = getppid(); pause(); _exit(0); }
    F->go = 1;
    wait_flag(&F->init_done);
    pfc_err = ns_link("/proc/self/ns/pid_for_children", pfc, sizeof pfc);
    jbegin("init_child");
    jint("init_getpid", F->init_pid); jint("init_getppid", F->init_ppid);
    jint("init_cached_tid", F->init_cached_tid);
    jbool("fork_ret_in_parent_gt_1", init > 1);
    jbool("pid_for_children_eq_init_ns", pfc_err == 0 && strcmp(pfc, F->init_ns) == 0);
    jerr("init_clone_parent_errno", F->init_clone_parent_errno);
    jend();
    jbegin("later_children");
    jint("second_child_getpid", F->second_pid); jint("second_child_getppid", F->second_ppid);
    jint("init_child_a_getpid", F->a_pid); jint("init_grandchild_b_getpid", F->b_pid);
    jint("orphan_getppid_after_parent_exit", F->orphan_ppid);
    jend();

    errno = 0;
    int r2 = unshare(CLONE_NEWPID);
    pthread_t t;
    int pc = pthread_create(&t, NULL, noop_thread, NULL);
    if (pc == 0) pthread_join(t, NULL);
    jbegin("after_unshare");
    jerr("second_unshare_newpid", r2 < 0 ? errno : 0);
    jerr("pthread_create", pc);        /* clone(2): CLONE_THREAD when pid_ns_for_children differs */
    jend();

    kill(init, SIGUSR1);               /* no handler: dropped for a namespace init */
    usleep(100000);
    int alive_after_usr1 = waitpid(init, NULL, WNOHANG) == 0;
    kill(init, SIGKILL);
    /* The dying init waits in zap_pid_ns_processes (kernel/pid_namespace.c) until every
     * other task of the namespace has been reaped; the second child is ours, so reap it
     * first or we deadlock. */
    usleep(100000);
    int init_reapable_early = waitpid(init, NULL, WNOHANG) == init;
    int icode, isig = SIGKILL, scode, ssig;
    wait_status(second, &scode, &ssig);
    if (!init_reapable_early) wait_status(init, &icode, &isig);
    errno = 0;
    pid_t late = fork();
    int late_errno = late < 0 ? errno : 0;
    if (late == 0) _exit(0);
    if (late > 0) waitpid(late, NULL, 0);
    jbegin("init_death");
    jbool("init_survives_dfl_sigusr1_from_parent_ns", alive_after_usr1);
    jstr("init_killed_by", signame(isig));
    jbool("init_reapable_before_other_ns_members_reaped", init_reapable_early);
    jstr("second_child_killed_by", signame(ssig));
    jerr("fork_after_init_death", late_errno);
    jend();
    _exit(0);
}

static void multithreaded_unshare(void)
{
    /* unshare(2) (man-pages 5.13): CLONE_NEWPID "implies CLONE_THREAD" (so a multithreaded
     * caller got EINVAL in 3.8); modern ksys_unshare does not add it. */
    pthread_t t;
    pthread_create(&t, NULL, park, NULL);
    int r = unshare(CLONE_NEWPID);
    if (r < 0 && (errno == EPERM)) { skipped("multithreaded_unshare", "unshare(CLONE_NEWPID)", errno); _exit(0); }
    jbegin("multithreaded_unshare");
    jerr("unshare_newpid_with_2_threads", r < 0 ? errno : 0);
    jend();
    _exit(0);
}

static void clone_newpid_parent(void)
{
    /* clone(2) lists CLONE_NEWPID|CLONE_PARENT as EINVAL; 3.x copy_pid_ns rejected it;
     * modern kernels accept it (reference §1.4: version dependent). */
    int *gpid = (int *)(F + 1);
    pid_t r = clone(noop_fn, (char *)malloc(65536) + 65536, CLONE_NEWPID | CLONE_PARENT | SIGCHLD, NULL);
    *gpid = r;
    if (r < 0 && errno == EPERM) { skipped("clone_newpid_parent", "clone(CLONE_NEWPID)", errno); _exit(1); }
    jbegin("clone_newpid_parent");
    jerr("clone_newpid_with_parent", r < 0 ? errno : 0);
    jend();
    _exit(0);
}

static int level_of_self(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256]; int n = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "NSpid:", 6)) { n = 0; for (char *p = line + 6; *p; p++) if (*p == '\t') n++; }
    if (f) fclose(f);
    return n - 1;                      /* NSpid lists one PID per level; root ns = level 0 */
}

static void nest0(void)                /* pid_namespaces(7): nesting limit 32 levels */
{
    int *d = (int *)(F + 1) + 2;
    for (int depth = 0;; depth++) {
        if (unshare(CLONE_NEWPID) < 0) { d[0] = depth; d[1] = errno; d[2] = level_of_self(); _exit(0); }
        pid_t c = fork();
        if (c < 0) { d[0] = depth; d[1] = errno; _exit(0); }
        if (c > 0) { waitpid(c, NULL, 0); _exit(0); }
    }
}

static void in_helper(void (*fn)(void))
{
    pid_t h = fork();
    if (h == 0) { alarm(30); fn(); _exit(0); }
    waitpid(h, NULL, 0);
}

int main(void)
{
    PROBE = "pidns";
    F = shared_page();
    in_helper(unshare_helper);
    in_helper(multithreaded_unshare);
    in_helper(clone_newpid_parent);
    int *gpid = (int *)(F + 1);
    if (*gpid > 0) waitpid(*gpid, NULL, 0);   /* CLONE_PARENT made it our child */
    int start = level_of_self();
    in_helper(nest0);
    int *d = gpid + 2;
    if (d[1] == EPERM) skipped("nesting_limit", "unshare(CLONE_NEWPID)", d[1]);
    else {
        jbegin("nesting_limit");
        jint("start_level", start); jint("new_levels_created", d[0]);
        jint("deepest_level", d[2]); jerr("next_unshare_errno", d[1]);
        jend();
    }
    return 0;
}
