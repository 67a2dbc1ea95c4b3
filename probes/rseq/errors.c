/* errors.c: every errno path of rseq(2), and the order of the checks.
 * Source: kernel/rseq.c SYSCALL_DEFINE4(rseq) (classic, <= 6.18):
 *   UNREGISTER: flags&~1 -> EINVAL; not registered or ptr != registered -> EINVAL;
 *               len != registered -> EINVAL; sig != registered -> EPERM;
 *               then write cpu_id_start=0, cpu_id=-1, node_id=0, mm_cid=0.
 *   REGISTER:   flags != 0 -> EINVAL; registered: ptr/len differ -> EINVAL, sig differs -> EPERM,
 *               else EBUSY; len < 32, or len == 32 && !aligned 32, or len != 32 && (!aligned 32 ||
 *               len < offsetof(end)=28) -> EINVAL; !access_ok -> EFAULT; read rseq_cs (fault ->
 *               EFAULT), clear it if non-zero (fault -> EFAULT) ("rseq: fix segfault on
 *               registration when rseq_cs is non-zero", 2025).
 * Man page rseq(2) (librseq doc/man/rseq.2); selftest tools/testing/selftests/rseq/
 * syscall_errors_test.c.  Run with glibc's registration off (re-execs itself if needed). */
#include "probes.h"
#include <sys/mman.h>

static const char *P = "errors";
static struct hrseq A, Bx; /* two valid areas */
static char raw[256] __attribute__((aligned(64)));

#define CASE(name, call) OUT(P, name, ",\"result\":\"%s\"", call)

/* Run fn in a forked child (so a crash or a stray registration stays there); the child
 * leaves its result in shared memory, the parent prints it with how the child ended. */
static char *shared; /* MAP_SHARED result buffer, "none" if the child wrote nothing */
static void in_child(const char *name, void (*fn)(void))
{
	strcpy(shared, "none");
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		fn();
		_exit(0);
	}
	int st;
	char b[32];
	waitpid(pid, &st, 0);
	OUT(P, name, ",\"result\":\"%s\",\"child\":\"%s\"", shared, wdesc(st, b, sizeof b));
}

static void *page(int prot, int unmap)
{
	char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(p, 0, 4096);
	((struct hrseq *)p)->rseq_cs = 0x1234560; /* non-zero garbage, used by some cases */
	if (unmap)
		munmap(p, 4096);
	else
		mprotect(p, 4096, prot);
	return p;
}

static void c_unmapped(void)
{
	/* munmapped, aligned, len 32: access_ok passes, reading rseq_cs faults */
	strcpy(shared, rs(page(0, 1), 32, 0, SIG_X86));
}
static void c_ro_zero(void)
{
	/* read-only page, rseq_cs == 0: nothing written at registration, the ID write on the
	 * way back to user space faults -> force_sigsegv (kernel __rseq_handle_notify_resume) */
	void *p = page(PROT_READ, 0);
	mprotect(p, 4096, PROT_READ | PROT_WRITE);
	((struct hrseq *)p)->rseq_cs = 0;
	mprotect(p, 4096, PROT_READ);
	strcpy(shared, rs(p, 32, 0, SIG_X86));
}
static void c_ro_cs(void)
{
	/* read-only page, rseq_cs != 0: clearing it faults -> EFAULT */
	strcpy(shared, rs(page(PROT_READ, 0), 32, 0, SIG_X86));
}
static void c_garbage_cs(void)
{
	/* rseq_cs = garbage pointer at registration: cleared (2025 fix) or SIGSEGV (older) */
	struct hrseq *p = page(PROT_READ | PROT_WRITE, 0);
	const char *r = rs(p, 32, 0, SIG_X86);
	sprintf(shared, "%s\",\"rseq_cs_after\":\"%llu", r, (unsigned long long)p->rseq_cs);
}
static void c_unreg_ro(void)
{
	/* area made read-only after registration: the reset write faults -> EFAULT, and the
	 * registration stays (kernel returns before clearing t->rseq) */
	struct hrseq *p = page(PROT_READ | PROT_WRITE, 0);
	p->rseq_cs = 0;
	if (strcmp(rs(p, 32, 0, SIG_X86), "OK"))
		return;
	mprotect(p, 4096, PROT_READ);
	const char *u = rs(p, 32, F_UNREG, SIG_X86);
	const char *again = rs(p, 32, 0, SIG_X86);
	sprintf(shared, "%s\",\"reregister_after\":\"%s", u, again);
}

int main(int argc, char **argv)
{
	(void)argc;
	probe_init();
	need_glibc_rseq_off(P, argv);
	shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	/* ---- not registered ---- */
	CASE("unregister_not_registered", rs(&A, 32, F_UNREG, SIG_X86));
	CASE("unregister_not_registered_flags3", rs(&A, 32, F_UNREG | 2, SIG_X86));
	CASE("register_flags2", rs(&A, 32, 2, SIG_X86));
	CASE("register_flags_0x80000000", rs(&A, 32, (int)0x80000000u, SIG_X86));
	CASE("register_misaligned_16", rs(raw + 16, 32, 0, SIG_X86));
	CASE("register_misaligned_4", rs(raw + 4, 32, 0, SIG_X86));
	CASE("register_len0", rs(&A, 0, 0, SIG_X86));
	CASE("register_len20", rs(&A, 20, 0, SIG_X86));
	CASE("register_len28", rs(&A, 28, 0, SIG_X86));
	CASE("register_len31", rs(&A, 31, 0, SIG_X86));
	CASE("register_len64_misaligned_16", rs(raw + 16, 64, 0, SIG_X86));
	CASE("register_null_len32", rs(NULL, 32, 0, SIG_X86));
	CASE("register_kernel_addr", rs((void *)0xffff888000000000ul, 32, 0, SIG_X86));
	CASE("register_above_task_size", rs((void *)0x800000000000ul, 32, 0, SIG_X86));
	/* several wrong at once: which error wins */
	CASE("order_flags2_and_misaligned", rs(raw + 4, 32, 2, SIG_X86));
	CASE("order_misaligned_and_kernel_addr", rs((void *)0xffff888000000010ul, 32, 0, SIG_X86));
	CASE("order_len16_and_null", rs(NULL, 16, 0, SIG_X86));
	CASE("order_flags2_and_kernel_addr", rs((void *)0xffff888000000000ul, 32, 2, SIG_X86));
	in_child("register_unmapped_page", c_unmapped);
	in_child("register_readonly_page_cs0", c_ro_zero);
	in_child("register_readonly_page_cs_nonzero", c_ro_cs);
	in_child("register_with_garbage_rseq_cs", c_garbage_cs);
	in_child("unregister_readonly_area", c_unreg_ro);

	/* lengths other than 32 (6.3+: len != 32 needs alignment 32 and len >= 28) */
	static const uint32_t lens[] = {33, 64, 4096};
	static char big[8192] __attribute__((aligned(4096)));
	for (unsigned i = 0; i < 3; i++) {
		char n[64];
		const char *r = rs(big, lens[i], 0, SIG_X86);
		const char *u32 = strcmp(r, "OK") ? "-" : rs(big, 32, F_UNREG, SIG_X86);
		const char *u = strcmp(r, "OK") ? "-" : rs(big, lens[i], F_UNREG, SIG_X86);
		snprintf(n, sizeof n, "register_len%u", lens[i]);
		OUT(P, n, ",\"result\":\"%s\",\"unregister_len32\":\"%s\",\"unregister_same_len\":\"%s\"",
		    r, u32, u);
	}

	/* ---- register A: fields before/after ---- */
	A.cpu_id_start = A.cpu_id = A.node_id = A.mm_cid = SENT;
	A.flags = 0x55;
	A.pad = 0x66;
	const char *r = rs(&A, 32, 0, SIG_X86);
	OUT(P, "register_ok", ",\"result\":\"%s\",\"cpu_id_start\":%u,\"cpu_id\":%u,\"node_id\":%u,"
			      "\"mm_cid\":%u,\"flags\":%u,\"pad\":%u,\"cpu_id_is_getcpu\":%s,"
			      "\"ids_rewritten\":%s",
	    r, A.cpu_id_start, A.cpu_id, A.node_id, A.mm_cid, A.flags, A.pad,
	    B((int)A.cpu_id == sched_getcpu()),
	    B(A.cpu_id_start != SENT && A.cpu_id != SENT && A.node_id != SENT && A.mm_cid != SENT));
	A.flags = 0;

	/* ---- registered ---- */
	CASE("reregister_same_args", rs(&A, 32, 0, SIG_X86));
	CASE("reregister_other_addr", rs(&Bx, 32, 0, SIG_X86));
	CASE("reregister_other_len64", rs(&A, 64, 0, SIG_X86));
	CASE("reregister_other_sig", rs(&A, 32, 0, SIG_X86 + 1));
	CASE("reregister_misaligned", rs(raw + 4, 32, 0, SIG_X86));
	CASE("reregister_null", rs(NULL, 32, 0, SIG_X86));
	CASE("order_reregister_flags2_same_args", rs(&A, 32, 2, SIG_X86));
	CASE("order_reregister_flags2_other_sig", rs(&A, 32, 2, SIG_X86 + 1));
	CASE("order_reregister_other_addr_other_sig", rs(&Bx, 32, 0, SIG_X86 + 1));
	CASE("order_reregister_other_len_other_sig", rs(&A, 64, 0, SIG_X86 + 1));
	CASE("unregister_wrong_sig", rs(&A, 32, F_UNREG, SIG_X86 + 1));
	CASE("unregister_wrong_addr", rs(&Bx, 32, F_UNREG, SIG_X86));
	CASE("unregister_wrong_len", rs(&A, 64, F_UNREG, SIG_X86));
	CASE("unregister_null", rs(NULL, 32, F_UNREG, SIG_X86));
	CASE("order_unregister_wrong_addr_wrong_sig", rs(&Bx, 32, F_UNREG, SIG_X86 + 1));
	CASE("order_unregister_wrong_len_wrong_sig", rs(&A, 64, F_UNREG, SIG_X86 + 1));
	CASE("order_unregister_flags3_wrong_sig", rs(&A, 32, F_UNREG | 2, SIG_X86 + 1));
	CASE("unregister_flags_minus1", rs(&A, 32, -1, SIG_X86));
	CASE("still_registered_after_failures", rs(&A, 32, 0, SIG_X86));

	/* ---- unregister: which fields are reset, which untouched ---- */
	A.flags = 0x77;                   /* not read outside a critical section */
	A.pad = 0x88;
	A.rseq_cs = (uint64_t)(uintptr_t)&Bx; /* never evaluated before the unregister returns */
	r = rs(&A, 32, F_UNREG, SIG_X86);
	OUT(P, "unregister_ok", ",\"result\":\"%s\",\"cpu_id_start\":%u,\"cpu_id\":%d,\"node_id\":%u,"
				"\"mm_cid\":%u,\"flags\":%u,\"pad\":%u,\"rseq_cs_untouched\":%s",
	    r, A.cpu_id_start, (int)A.cpu_id, A.node_id, A.mm_cid, A.flags, A.pad,
	    B(A.rseq_cs == (uint64_t)(uintptr_t)&Bx));
	A.rseq_cs = 0;
	sched_yield();
	OUT(P, "fields_stay_after_unregister", ",\"cpu_id_start\":%u,\"cpu_id\":%d",
	    A.cpu_id_start, (int)A.cpu_id);
	CASE("unregister_twice", rs(&A, 32, F_UNREG, SIG_X86));
	/* unregistration does not block a later registration elsewhere */
	CASE("register_other_after_unregister", rs(&Bx, 32, 0, SIG_X86));
	CASE("unregister_other", rs(&Bx, 32, F_UNREG, SIG_X86));
	CASE("register_again_other_sig", rs(&A, 32, 0, 0x12345678));
	CASE("unregister_again_other_sig", rs(&A, 32, F_UNREG, 0x12345678));
	return 0;
}
