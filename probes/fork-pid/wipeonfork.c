/* wipeonfork.c — MADV_WIPEONFORK / MADV_KEEPONFORK / MADV_DONTFORK / MADV_DOFORK.
 * Sources: man-pages madvise(2) (semantics and EINVAL/ENOMEM), proc(5) (smaps VmFlags "wf",
 * "dc"); kernel mm/madvise.c (WIPEONFORK: EINVAL if vm_file or VM_SHARED; KEEPONFORK:
 * EINVAL on VM_DROPPABLE), kernel/fork.c dup_mmap (DONTCOPY VMAs skipped, WIPEONFORK VMAs
 * copied without pages), mm/mmap.c (MAP_DROPPABLE, Linux 6.11); LTP madvise10 (grandchild). */
#include "probe.h"
#include <sys/mman.h>

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#define MADV_KEEPONFORK 19
#endif
#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif
#define PG 4096

struct facts { int child_p0, child_p1, child_wf, gchild_p0, madv_errno; };
static struct facts *F;

/* Does the smaps entry containing addr list flag in VmFlags? */
static int vmflag(void *addr, const char *flag)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512]; int in = 0, found = 0;
    unsigned long a = (unsigned long)addr, lo, hi;
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) in = a >= lo && a < hi;
        else if (in && !strncmp(line, "VmFlags:", 8)) {
            char pat[8]; snprintf(pat, sizeof pat, " %s", flag);
            found = strstr(line, pat) != NULL; break;
        }
    }
    if (f) fclose(f);
    return found;
}
static unsigned char *anon(size_t n, int fill)
{
    unsigned char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(p, fill, n);
    return p;
}

static void wipe_and_keep(void)
{
    unsigned char *p = anon(2 * PG, 0x5a);
    int r = madvise(p, PG, MADV_WIPEONFORK);            /* first page only */
    if (r < 0) { refused("wipeonfork", "madvise(MADV_WIPEONFORK)", errno); return; }
    int wf = vmflag(p, "wf"), wf2 = vmflag(p + PG, "wf");
    memset(F, 0, sizeof *F);
    pid_t c = fork();
    if (c == 0) {
        F->child_p0 = p[0]; F->child_p1 = p[PG]; F->child_wf = vmflag(p, "wf");
        p[0] = 0x77;                                    /* setting kept: grandchild sees 0 again */
        pid_t g = fork();
        if (g == 0) { F->gchild_p0 = p[0]; _exit(0); }
        waitpid(g, NULL, 0);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    jbegin("wipeonfork");
    jbool("smaps_wf_on_page", wf); jbool("smaps_wf_on_neighbour", wf2);
    jint("child_byte", F->child_p0); jint("child_unadvised_page_byte", F->child_p1);
    jbool("child_smaps_wf", F->child_wf);
    jint("grandchild_byte_after_child_wrote_0x77", F->gchild_p0);
    jint("parent_byte", p[0]);
    jend();

    /* Kernel-enforced: a raw clone (no glibc) is wiped too; vfork shares memory (no dup_mmap). */
    long rc = syscall(SYS_clone, (long)SIGCHLD, 0L, 0L, 0L, 0L);
    if (rc == 0) { F->child_p0 = p[0]; _exit(0); }
    waitpid(rc, NULL, 0);
    int raw = F->child_p0;
    volatile int vf = -1;
    pid_t v = vfork();
    if (v == 0) { vf = p[0]; _exit(0); }
    waitpid(v, NULL, 0);
    jbegin("wipeonfork_other_creators");
    jint("raw_clone_child_byte", raw); jint("vfork_child_byte", vf);
    jend();

    r = madvise(p, PG, MADV_KEEPONFORK);
    c = fork();
    if (c == 0) { F->child_p0 = p[0]; _exit(0); }
    waitpid(c, NULL, 0);
    jbegin("keeponfork");
    jerr("madvise_keeponfork", r < 0 ? errno : 0);
    jbool("smaps_wf_after_keep", vmflag(p, "wf"));
    jint("child_byte", F->child_p0);
    jend();
}

static void errors(void)
{
    unsigned char *p = anon(2 * PG, 1);
    int fd = memfd_create("probe", 0);
    if (ftruncate(fd, 2 * PG)) {}
    void *filep = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    void *shm = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
#define TRY(call) (errno = 0, (call) < 0 ? errno : 0)
    unsigned char *hole = anon(3 * PG, 0);              /* [page][unmapped][page] */
    munmap(hole + PG, PG);
    int unmapped = TRY(madvise(hole + PG, PG, MADV_WIPEONFORK));
    int partly = TRY(madvise(hole, 3 * PG, MADV_WIPEONFORK));
    int partly_marked = vmflag(hole, "wf") && vmflag(hole + 2 * PG, "wf");
    /* [anon page][file page]: per-VMA application, anon part may be marked before EINVAL */
    unsigned char *mix = anon(2 * PG, 1);
    mmap(mix + PG, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0);
    jbegin("madvise_errors");
    jerr("wipe_file_private", TRY(madvise(filep, PG, MADV_WIPEONFORK)));
    jerr("wipe_shared_anon", TRY(madvise(shm, PG, MADV_WIPEONFORK)));
    jerr("wipe_unaligned", TRY(madvise(p + 1, PG, MADV_WIPEONFORK)));
    jerr("wipe_len_0", TRY(madvise(p, 0, MADV_WIPEONFORK)));
    jerr("wipe_len_unrounded_1", TRY(madvise(p + PG, 1, MADV_WIPEONFORK)));
    jbool("len_1_marks_whole_page", vmflag(p + PG, "wf"));
    jerr("wipe_unmapped", unmapped);
    jerr("wipe_partly_unmapped", partly);
    jbool("mapped_parts_marked_anyway", partly_marked);
    jerr("keep_file_private", TRY(madvise(filep, PG, MADV_KEEPONFORK)));
    jerr("bad_advice", TRY(madvise(p, PG, 12345)));
    jerr("wipe_anon_then_file", TRY(madvise(mix, 2 * PG, MADV_WIPEONFORK)));
    jbool("anon_part_marked_anyway", vmflag(mix, "wf"));
    jerr("dontfork_shared_anon", TRY(madvise(shm, PG, MADV_DONTFORK)));
    jend();

    unsigned char *d = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_DROPPABLE | MAP_ANONYMOUS, -1, 0);
    if (d == MAP_FAILED) { jbegin("map_droppable"); jerr("mmap_droppable", errno); jend(); return; }
    d[0] = 0x5a;
    int wf = vmflag(d, "wf");
    int keep = TRY(madvise(d, PG, MADV_KEEPONFORK));
    pid_t c = fork();
    if (c == 0) { F->child_p0 = d[0]; _exit(0); }
    waitpid(c, NULL, 0);
    jbegin("map_droppable");
    jerr("mmap_droppable", 0);
    jbool("smaps_wf", wf);
    jerr("keeponfork", keep);
    jint("child_byte", F->child_p0);
    jend();
}

static void dontfork(void)
{
    unsigned char *q = anon(PG, 0x5a);
    int r = madvise(q, PG, MADV_DONTFORK);
    if (r < 0) { refused("dontfork", "madvise(MADV_DONTFORK)", errno); return; }
    int dc = vmflag(q, "dc");
    madvise(q, PG, MADV_WIPEONFORK);                    /* independent flag; DONTFORK wins */
    int both = vmflag(q, "dc") && vmflag(q, "wf");
    pid_t c = fork();
    if (c == 0) {
        F->madv_errno = madvise(q, PG, MADV_NORMAL) < 0 ? errno : 0;
        F->child_p0 = q[0];                             /* expected: SIGSEGV */
        _exit(0);
    }
    int code, sig; wait_status(c, &code, &sig);
    jbegin("dontfork");
    jbool("smaps_dc", dc); jbool("smaps_dc_and_wf", both);
    jerr("child_madvise_on_range", F->madv_errno);
    jstr("child_read_signal", signame(sig));
    jint("parent_byte", q[0]);
    jend();

    madvise(q, PG, MADV_KEEPONFORK);
    r = madvise(q, PG, MADV_DOFORK);
    c = fork();
    if (c == 0) { F->child_p0 = q[0]; _exit(0); }
    wait_status(c, &code, &sig);
    jbegin("dofork");
    jerr("madvise_dofork", r < 0 ? errno : 0);
    jstr("child_read_signal", signame(sig));
    jint("child_byte", F->child_p0);
    jend();
}

int main(void)
{
    PROBE = "wipeonfork";
    F = shared_page();
    wipe_and_keep();
    errors();
    dontfork();
    return 0;
}
