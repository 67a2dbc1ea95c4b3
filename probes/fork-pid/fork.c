/* fork.c — identity and state of a fork(2) child. Sources: man-pages fork(2), getpid(2),
 * gettid(2); glibc sysdeps/unix/sysv/linux/arch-fork.h (fork = clone(CLONE_CHILD_SETTID|
 * CLONE_CHILD_CLEARTID|SIGCHLD, ctid=&THREAD_SELF->tid)); glibc 2.25 commit c579f48
 * "Remove cached PID/TID in clone". */
#include "probe.h"
#include <fcntl.h>
#include <sys/prctl.h>

struct facts { int got_zero, getpid, getppid, gettid, cached_tid, sigpending_usr1, sigmask_usr1,
               alarm_left, pdeathsig, lock_type, lock_pid; };

static void return_values(void)
{
    /* fork(2): parent gets the child's PID, child gets 0; child's PPID = parent's PID;
     * gettid(2): single-threaded => TID == PID; CLONE_CHILD_SETTID writes the child's TID
     * into glibc's struct pthread::tid before the child runs user code. */
    struct facts *f = shared_page();
    pid_t parent = getpid();
    pid_t r = fork();
    if (r < 0) { failed("return_values", "fork", errno); return; }
    if (r == 0) {
        f->got_zero = 1; f->getpid = getpid(); f->getppid = getppid();
        f->gettid = sys_gettid(); f->cached_tid = cached_tid(pthread_self());
        _exit(7);
    }
    int code, sig;
    wait_status(r, &code, &sig);
    jbegin("return_values");
    jbool("parent_ret_positive", r > 0); jbool("child_ret_zero", f->got_zero);
    jbool("child_getpid_eq_ret", f->getpid == r); jbool("child_getppid_eq_parent", f->getppid == parent);
    jbool("child_gettid_eq_getpid", f->gettid == f->getpid);
    jbool("child_cached_tid_eq_getpid", f->cached_tid == f->getpid);
    jbool("parent_getpid_unchanged", getpid() == parent);
    jbool("parent_cached_tid_eq_gettid", cached_tid(pthread_self()) == sys_gettid());
    jint("wait_exit_code", code);
    jend();
}

static void child_state(void)
{
    /* fork(2): pending signals emptied; signal mask inherited; alarm (setitimer) not
     * inherited; PR_SET_PDEATHSIG cleared; fcntl record locks not inherited (the child sees
     * the parent's lock as someone else's); termination signal is SIGCHLD. */
    struct facts *f = shared_page();
    sigset_t set, old;
    sigemptyset(&set); sigaddset(&set, SIGUSR1); sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &old);
    raise(SIGUSR1);
    alarm(100);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    FILE *tf = tmpfile();
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
    int have_lock = tf && fcntl(fileno(tf), F_SETLK, &fl) == 0;
    pid_t parent = getpid();
    pid_t r = fork();
    if (r < 0) { failed("child_state", "fork", errno); return; }
    if (r == 0) {
        sigset_t p, m;
        sigpending(&p); sigprocmask(SIG_BLOCK, NULL, &m);
        f->sigpending_usr1 = sigismember(&p, SIGUSR1);
        f->sigmask_usr1 = sigismember(&m, SIGUSR1);
        f->alarm_left = alarm(0);
        int pd = -1; prctl(PR_GET_PDEATHSIG, &pd); f->pdeathsig = pd;
        if (have_lock) {
            struct flock q = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
            fcntl(fileno(tf), F_GETLK, &q);
            f->lock_type = q.l_type; f->lock_pid = q.l_pid;
        }
        _exit(0);
    }
    siginfo_t si; struct timespec to = { 5, 0 };
    sigset_t chld; sigemptyset(&chld); sigaddset(&chld, SIGCHLD);
    int s = sigtimedwait(&chld, &si, &to);
    int code, sig;
    wait_status(r, &code, &sig);
    jbegin("child_state");
    jbool("child_sigpending_has_usr1", f->sigpending_usr1);
    jbool("child_sigmask_has_usr1", f->sigmask_usr1);
    jint("child_alarm_remaining", f->alarm_left);
    jint("child_pdeathsig", f->pdeathsig);
    if (have_lock) {
        jbool("child_sees_parent_lock", f->lock_type == F_WRLCK);
        jbool("child_lock_owner_eq_parent", f->lock_pid == parent);
    }
    jstr("exit_signal", s == SIGCHLD ? "SIGCHLD" : "none");
    jbool("sigchld_si_pid_eq_child", s == SIGCHLD && si.si_pid == r);
    jbool("sigchld_si_code_cld_exited", s == SIGCHLD && si.si_code == CLD_EXITED);
    jend();
    sigset_t p; sigpending(&p);
    if (sigismember(&p, SIGUSR1)) { int g; sigset_t u; sigemptyset(&u); sigaddset(&u, SIGUSR1); sigwait(&u, &g); }
    alarm(0); prctl(PR_SET_PDEATHSIG, 0);
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (tf) fclose(tf);
}

static void raw_fork(void)
{
    /* getpid(2) NOTES: glibc <= 2.24 cached the PID, so a child made by a raw syscall saw the
     * parent's PID; since 2.25 getpid() always enters the kernel. The TID cache
     * (struct pthread::tid) is still there: a raw clone without CLONE_CHILD_SETTID leaves the
     * parent's TID in it (runc commit b0654c75). Raw clone(SIGCHLD, stack 0) == fork. */
    struct facts *f = shared_page();
    pid_t parent = getpid(), ptid = sys_gettid();
    long r = syscall(SYS_clone, (long)SIGCHLD, 0L, 0L, 0L, 0L);
    if (r < 0) { failed("raw_syscall_fork", "syscall(SYS_clone)", errno); return; }
    if (r == 0) {
        f->getpid = getpid(); f->gettid = sys_gettid(); f->cached_tid = cached_tid(pthread_self());
        _exit(0);
    }
    int code, sig;
    wait_status(r, &code, &sig);
    jbegin("raw_syscall_fork");
    jbool("child_getpid_eq_ret", f->getpid == r);
    jbool("child_getpid_eq_parent", f->getpid == parent);
    jbool("child_gettid_eq_getpid", f->gettid == f->getpid);
    jbool("child_cached_tid_eq_parent_tid", f->cached_tid == ptid);
    jbool("child_cached_tid_eq_own_tid", f->cached_tid == f->gettid);
    jend();
}

int main(void)
{
    PROBE = "fork";
    return_values();
    child_state();
    raw_fork();
    return 0;
}
