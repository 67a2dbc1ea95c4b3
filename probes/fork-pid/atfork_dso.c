/* atfork_dso.c — built as atfork_dso.so and dlopen'd by atfork.c. pthread_atfork in a DSO
 * passes that DSO's __dso_handle (glibc nptl/pthread_atfork.c, libc_nonshared.a); dlclose
 * runs __cxa_finalize(__dso_handle) -> __unregister_atfork (glibc stdlib/cxa_finalize.c). */
#include <pthread.h>

static int *counts;                    /* [0]=prepare [1]=parent [2]=child, memory shared with children */
static void prepare(void) { counts[0]++; }
static void parent(void) { counts[1]++; }
static void child(void) { counts[2]++; }

int dso_register(int *c)
{
    counts = c;
    return pthread_atfork(prepare, parent, child);
}
