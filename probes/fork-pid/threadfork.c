/* threadfork.c — fork from a secondary thread of a multithreaded process. Sources:
 * man-pages fork(2) ("the child is created with a single thread — the one that called
 * fork()"; PPID is the parent's PID), gettid(2), clone(2) CLONE_THREAD (same parent for all
 * threads; any thread may wait for a child of another; execve from a non-leader thread runs
 * the program as the leader, PID unchanged), execve(2); glibc fork = clone with
 * CLONE_CHILD_SETTID on &THREAD_SELF->tid (sysdeps/unix/sysv/linux/arch-fork.h). */
#include "probe.h"
#include <dirent.h>

struct facts { int tasks, pid, tid, ppid, cached, self_eq, frozen, create_ok, trylock; };
static struct facts *F;
static volatile long spins[3];
static volatile int stop;
static pthread_t forker_handle;
static pid_t forker_tid, parent_pid;
static int threads_at_fork;
static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;

static int count_tasks(void)
{
    DIR *d = opendir("/proc/self/task"); struct dirent *e; int n = 0;
    while (d && (e = readdir(d))) if (e->d_name[0] != '.') n++;
    if (d) closedir(d);
    return n;
}
static void *spin(void *a) { long i = (long)a; while (!stop) spins[i]++; return NULL; }
static void *noop(void *a) { (void)a; return NULL; }
static void *hold(void *a) { (void)a; pthread_mutex_lock(&held); while (!stop) usleep(1000); pthread_mutex_unlock(&held); return NULL; }

static void child_side(void)
{
    F->tasks = count_tasks(); F->pid = getpid(); F->tid = sys_gettid(); F->ppid = getppid();
    F->cached = cached_tid(pthread_self()); F->self_eq = pthread_equal(pthread_self(), forker_handle);
    long s0 = spins[0]; usleep(50000); F->frozen = spins[0] == s0;
    F->trylock = pthread_mutex_trylock(&held);
}

static void *forker(void *arg)
{
    int raw = (long)arg;
    forker_tid = sys_gettid(); forker_handle = pthread_self(); threads_at_fork = count_tasks();
    pid_t r = raw ? (pid_t)syscall(SYS_clone, (long)SIGCHLD, 0L, 0L, 0L, 0L) : fork();
    if (r == 0) {
        child_side();
        if (!raw) { pthread_t t; F->create_ok = pthread_create(&t, NULL, noop, NULL) == 0 && pthread_join(t, NULL) == 0; }
        _exit(0);
    }
    return (void *)(long)r;            /* the main thread reaps it */
}

static void run(const char *cas, int raw)
{
    pthread_t sp[3], h, f; void *ret;
    memset(F, 0, sizeof *F); stop = 0;
    for (long i = 0; i < 3; i++) pthread_create(&sp[i], NULL, spin, (void *)i);
    pthread_create(&h, NULL, hold, NULL);
    usleep(20000);
    pthread_create(&f, NULL, forker, (void *)(long)raw);
    pthread_join(f, &ret);
    pid_t child = (pid_t)(long)ret;
    errno = 0;
    pid_t w = waitpid(child, NULL, 0);  /* main thread waits for a child forked by another thread */
    int werr = w < 0 ? errno : 0;
    stop = 1;
    for (int i = 0; i < 3; i++) pthread_join(sp[i], NULL);
    pthread_join(h, NULL);
    jbegin(cas);
    jint("parent_threads_at_fork", threads_at_fork);
    jbool("forker_tid_ne_pid", forker_tid != parent_pid);
    jint("child_threads", F->tasks);
    jbool("child_getpid_eq_ret", F->pid == child);
    jbool("child_getpid_eq_gettid", F->pid == F->tid);
    jbool("child_getppid_eq_parent_tgid", F->ppid == parent_pid);
    jbool("child_cached_tid_eq_gettid", F->cached == F->tid);
    jbool("child_cached_tid_eq_forker_tid", F->cached == forker_tid);
    jbool("child_pthread_self_eq_forker_handle", F->self_eq);
    jbool("child_other_threads_stopped", F->frozen);
    jerr("child_trylock_mutex_held_by_other_thread", F->trylock);
    if (!raw) jbool("child_pthread_create_ok", F->create_ok);
    jerr("waitpid_from_main_thread", werr);
    jend();
}

static void *exec_self(void *a) { execv("/proc/self/exe", (char **)a); return NULL; }

static void exec_from_thread(void)
{
    pid_t c = fork();
    if (c == 0) {
        char pidbuf[16]; snprintf(pidbuf, sizeof pidbuf, "%d", getpid());
        static char *argv[] = { "threadfork", "exec-check", NULL, NULL };
        argv[2] = pidbuf;
        pthread_t t, sp; stop = 0;
        pthread_create(&sp, NULL, spin, (void *)0);
        pthread_create(&t, NULL, exec_self, argv);
        pthread_join(t, NULL);
        _exit(1);                      /* not reached if execv works */
    }
    waitpid(c, NULL, 0);
}

int main(int argc, char **argv)
{
    PROBE = "threadfork";
    if (argc == 3 && !strcmp(argv[1], "exec-check")) {   /* image exec'd by a non-leader thread */
        jbegin("exec_from_secondary_thread");
        jbool("getpid_unchanged", getpid() == atoi(argv[2]));
        jbool("getpid_eq_gettid", getpid() == sys_gettid());
        jint("threads_after_exec", count_tasks());
        jend();
        return 0;
    }
    F = shared_page();
    parent_pid = getpid();
    run("fork_from_secondary_thread", 0);
    run("raw_clone_from_secondary_thread", 1);
    exec_from_thread();
    return 0;
}
