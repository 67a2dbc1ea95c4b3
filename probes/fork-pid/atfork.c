/* atfork.c — pthread_atfork(3) ordering and scope. Sources: man-pages pthread_atfork(3)
 * (prepare in reverse registration order, parent/child in registration order), vfork(2),
 * clone(2); glibc posix/register-atfork.c (__run_prefork_handlers/__run_postfork_handlers,
 * handlers added during a fork are not run in it, glibc >= 2.36), posix/fork.c (handlers
 * run even when single-threaded), stdlib/cxa_finalize.c (dlclose unregisters a DSO's
 * handlers), posix/_Fork (no handlers), popen -> posix_spawn (glibc commit 14d0e87d9b8c). */
#include "probe.h"
#include <dlfcn.h>
#include <spawn.h>

extern char **environ;
struct shared { char plog[32], clog[32]; int plen, clen; pid_t main_pid; int enabled, late_runs, dso[3]; pid_t prepare_tid; };
static struct shared *S;
static void note(char c)               /* parent and child each append to their own log */
{
    if (!S->enabled) return;
    if (getpid() == S->main_pid) { if (S->plen < 31) S->plog[S->plen++] = c; }
    else if (S->clen < 31) S->clog[S->clen++] = c;
}
static void prep_a(void) { note('a'); S->prepare_tid = sys_gettid(); }
static void prep_b(void) { note('b'); }
static void prep_c(void) { note('c'); }
static void par_a(void) { note('A'); }
static void par_b(void) { note('B'); }
static void par_c(void) { note('C'); }
static void chi_a(void) { note('1'); }
static void chi_b(void) { note('2'); }
static void chi_c(void) { note('3'); }
static void late(void) { S->late_runs++; }
static int registered_late;
static void prep_registers(void) { if (S->enabled == 2 && !registered_late++) pthread_atfork(late, late, late); }

static void fork_and_wait(void) { pid_t r = fork(); if (r == 0) _exit(0); waitpid(r, NULL, 0); }
static void reset(int en)
{
    memset(S->plog, 0, sizeof S->plog); memset(S->clog, 0, sizeof S->clog);
    S->plen = S->clen = 0; S->enabled = en;
}

static void order(void)
{
    /* registration order a, b, c. Log: prepare lower case, parent upper case, child digits. */
    reset(1);
    fork_and_wait();
    S->enabled = 0;
    jbegin("order");
    jstr("parent_log", S->plog);
    jstr("child_log", S->clog);
    jend();
}

static void registered_during_fork(void)
{
    reset(2);
    fork_and_wait();
    int first = S->late_runs;
    fork_and_wait();
    S->enabled = 0;
    jbegin("registered_during_prepare");
    jint("late_runs_same_fork", first);
    jint("late_runs_next_fork", S->late_runs - first);   /* prepare + parent + child */
    jend();
}

static void *fork_thread(void *a) { (void)a; fork_and_wait(); return (void *)(long)sys_gettid(); }
static void handler_thread(void)
{
    pthread_t t; void *tid;
    reset(1);
    pthread_create(&t, NULL, fork_thread, NULL);
    pthread_join(t, &tid);
    S->enabled = 0;
    jbegin("handlers_run_in_forking_thread");
    jbool("prepare_tid_eq_forking_thread", S->prepare_tid == (pid_t)(long)tid);
    jbool("prepare_tid_ne_main", S->prepare_tid != getpid());
    jend();
}

static int count_runs(void (*how)(void))
{
    reset(1); how(); S->enabled = 0;
    return S->plen + S->clen;
}
static void via_fork(void) { fork_and_wait(); }
static void via_Fork(void) { pid_t r = _Fork(); if (r == 0) _exit(0); waitpid(r, NULL, 0); }
static void via_vfork(void) { pid_t r = vfork(); if (r == 0) _exit(0); waitpid(r, NULL, 0); }
static void via_raw_clone(void) { long r = syscall(SYS_clone, (long)SIGCHLD, 0L, 0L, 0L, 0L); if (r == 0) _exit(0); waitpid(r, NULL, 0); }
static void via_posix_spawn(void)
{
    pid_t p; char *argv[] = { "true", NULL };
    if (posix_spawn(&p, "/bin/true", NULL, NULL, argv, environ) == 0) waitpid(p, NULL, 0);
}
static void via_popen(void) { FILE *f = popen("true", "r"); if (f) pclose(f); }
static void via_system(void) { if (system("true")) {} }

static void not_run(void)
{
    jbegin("handler_calls_per_creation_api");   /* 9 = 3 prepare + 3 parent + 3 child */
    jint("fork", count_runs(via_fork));
    jint("_Fork", count_runs(via_Fork));
    jint("vfork", count_runs(via_vfork));
    jint("raw_clone", count_runs(via_raw_clone));
    jint("posix_spawn", count_runs(via_posix_spawn));
    jint("popen", count_runs(via_popen));
    jint("system", count_runs(via_system));
    jend();
}

static void dso(const char *path)
{
    void *h = dlopen(path, RTLD_NOW);
    if (!h) { printf("{\"probe\":\"atfork\",\"case\":\"dlclose_unregisters\",\"ok\":false,\"error\":\"dlopen\"}\n"); return; }
    int (*reg)(int *) = (int (*)(int *))dlsym(h, "dso_register");
    reg(S->dso);
    fork_and_wait();
    int before[3] = { S->dso[0], S->dso[1], S->dso[2] };
    int rc = dlclose(h);
    pid_t r = fork();
    if (r == 0) _exit(0);
    int code, sig; wait_status(r, &code, &sig);
    jbegin("dlclose_unregisters");
    jint("dso_prepare_runs_while_loaded", before[0]);
    jint("dso_parent_runs_while_loaded", before[1]);
    jint("dso_child_runs_while_loaded", before[2]);
    jint("dlclose_rc", rc);
    jint("dso_runs_after_dlclose", S->dso[0] + S->dso[1] + S->dso[2] - before[0] - before[1] - before[2]);
    jstr("fork_after_dlclose_child_signal", signame(sig));
    jend();
}

int main(int argc, char **argv)
{
    PROBE = "atfork";
    S = shared_page();
    S->main_pid = getpid();
    pthread_atfork(prep_a, par_a, chi_a);
    pthread_atfork(prep_b, par_b, chi_b);
    pthread_atfork(prep_c, par_c, chi_c);
    pthread_atfork(prep_registers, NULL, NULL);
    order();
    registered_during_fork();
    handler_thread();
    not_run();
    dso(argc > 1 ? argv[1] : "./atfork_dso.so");
    return 0;
}
