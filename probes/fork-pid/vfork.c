/* vfork.c — vfork(2): child shares memory, only the calling thread is suspended until the
 * child calls execve(2) or _exit(2); NPTL vfork runs no pthread_atfork handlers; signals to
 * the parent arrive after the child releases the memory. Source: man-pages vfork(2),
 * clone(2) (CLONE_VM|CLONE_VFORK|SIGCHLD). */
#include "probe.h"

static volatile int v_child_pid, v_child_ppid, v_child_tid, v_child_cached_tid, v_written;
static volatile long counter, v_seen_before, v_seen_after;
static volatile int stop, prepare_runs, parent_runs, child_runs, usr1_seen, v_usr1_seen_by_child;
static void prepare(void) { prepare_runs++; }
static void parent(void) { parent_runs++; }
static void child(void) { child_runs++; }
static void on_usr1(int s) { (void)s; usr1_seen = 1; }
static void *spin(void *a) { (void)a; while (!stop) counter++; return NULL; }

static void shared_memory(void)
{
    pid_t me = getpid(), mytid = sys_gettid();
    double t0 = now_ns();
    pid_t r = vfork();
    if (r == 0) {
        v_child_pid = getpid(); v_child_ppid = getppid(); v_child_tid = sys_gettid();
        v_child_cached_tid = cached_tid(pthread_self());   /* shared TCB: parent's TID */
        usleep(200000);
        v_written = 42;
        _exit(0);
    }
    double ms = (now_ns() - t0) / 1e6;
    if (r < 0) { failed("shared_memory", "vfork", errno); return; }
    int code, sig; wait_status(r, &code, &sig);
    jbegin("shared_memory");
    jbool("parent_sees_child_write", v_written == 42);
    jbool("parent_waited_for_child_exit", ms >= 190);
    jbool("child_getpid_eq_ret", v_child_pid == r);
    jbool("child_getpid_ne_parent", v_child_pid != me);
    jbool("child_getppid_eq_parent", v_child_ppid == me);
    jbool("child_gettid_eq_getpid", v_child_tid == v_child_pid);
    jbool("child_cached_tid_eq_parent_tid", v_child_cached_tid == mytid);
    jend();
}

static void released_by_exec(void)
{
    /* vfork(2): the parent resumes when the child calls execve(2), not when the exec'd
     * program ends. Child sleeps 100 ms, then execs "sleep 0.4". */
    double t0 = now_ns();
    pid_t r = vfork();
    if (r == 0) {
        usleep(100000);
        execl("/bin/sleep", "sleep", "0.4", (char *)NULL);
        _exit(127);
    }
    double ms = (now_ns() - t0) / 1e6;
    if (r < 0) { failed("released_by_exec", "vfork", errno); return; }
    int code, sig; wait_status(r, &code, &sig);
    double total = (now_ns() - t0) / 1e6;
    jbegin("released_by_exec");
    jbool("parent_resumed_after_child_pre_exec_sleep", ms >= 90);
    jbool("parent_resumed_before_exec_program_ended", ms < 400 && total >= 450);
    jint("exec_exit_code", code);
    jend();
}

static void other_threads_run(void)
{
    pthread_t t;
    stop = 0;
    if (pthread_create(&t, NULL, spin, NULL)) { failed("other_threads_run", "pthread_create", errno); return; }
    usleep(10000);
    pid_t r = vfork();
    if (r == 0) {
        v_seen_before = counter; usleep(100000); v_seen_after = counter;
        _exit(0);
    }
    stop = 1; pthread_join(t, NULL);
    if (r < 0) { failed("other_threads_run", "vfork", errno); return; }
    int code, sig; wait_status(r, &code, &sig);
    jbegin("other_threads_run");
    jbool("sibling_thread_progressed_during_vfork", v_seen_after > v_seen_before);
    jend();
}

static void signal_deferred(void)
{
    /* vfork(2): "signals sent to the parent arrive after the child releases the parent's
     * memory". The child signals the (single-threaded) parent and looks at the handler's flag. */
    signal(SIGUSR1, on_usr1);
    usr1_seen = 0;
    pid_t r = vfork();
    if (r == 0) {
        kill(getppid(), SIGUSR1);
        usleep(100000);
        v_usr1_seen_by_child = usr1_seen;
        _exit(0);
    }
    int after = usr1_seen;
    if (r < 0) { failed("signal_deferred", "vfork", errno); return; }
    int code, sig; wait_status(r, &code, &sig);
    signal(SIGUSR1, SIG_DFL);
    jbegin("signal_deferred");
    jbool("handler_ran_while_child_alive", v_usr1_seen_by_child);
    jbool("handler_ran_after_vfork_returned", after);
    jend();
}

static void atfork_not_run(void)
{
    pthread_atfork(prepare, parent, child);
    pid_t r = vfork();
    if (r == 0) _exit(child_runs);
    int code, sig; wait_status(r, &code, &sig);
    int vp = prepare_runs, vpa = parent_runs, vc = code;
    r = fork();
    if (r == 0) _exit(child_runs);
    wait_status(r, &code, &sig);
    jbegin("atfork_not_run");
    jint("vfork_prepare_runs", vp); jint("vfork_parent_runs", vpa); jint("vfork_child_runs", vc);
    jint("fork_prepare_runs", prepare_runs - vp); jint("fork_parent_runs", parent_runs - vpa);
    jint("fork_child_runs", code);
    jend();
}

int main(void)
{
    PROBE = "vfork";
    shared_memory();
    released_by_exec();
    other_threads_run();
    signal_deferred();
    atfork_not_run();
    return 0;
}
