/* switch_cost.c - what rseq costs a context switch on this machine (seed 004: the 6.19
 * rework removed the ID stores, which need user-access toggling, "15% for many workloads").
 * Two threads pinned to CPU 0 take turns with sched_yield(); every yield is a context switch and
 * every return to user space after one runs rseq's notify-resume work when the thread is
 * registered. Run once as is (glibc registers rseq) and once with
 * GLIBC_TUNABLES=glibc.pthread.rseq=0; the difference per yield is two rseq updates.
 * Used by bench/ and for the figures in src/kernel/profile.ts. Timings vary run to run. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/rseq.h>
#include <unistd.h>
#define N 2000000
static volatile int stop;
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e9+t.tv_nsec;}
static void pin(void){cpu_set_t s;CPU_ZERO(&s);CPU_SET(0,&s);sched_setaffinity(0,sizeof s,&s);}
static void *spin(void *a){pin();while(!stop)sched_yield();return 0;}
int main(void){
  pin(); pthread_t t; pthread_create(&t,0,spin,0);
  for(int i=0;i<10000;i++)sched_yield();
  double t0=now(); for(long i=0;i<N;i++) sched_yield(); double t1=now();
  stop=1; pthread_join(t,0);
  double s0=now(); for(long i=0;i<N;i++) getppid(); double s1=now();
  printf("{\"rseq_size\":%u,\"ns_per_yield_with_switch\":%.1f,\"ns_per_getppid\":%.1f}\n", __rseq_size,(t1-t0)/N,(s1-s0)/N);
  return 0;
}
