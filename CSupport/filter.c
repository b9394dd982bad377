// Building the seccomp filter with libseccomp, in the parent, before any fork.
#include "CSupport.h"
#include "internal.h"
#include <seccomp.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

struct agentgate_filter {
    scmp_filter_ctx ctx;
};

agentgate_filter *agentgate_filter_create(int *out_error) {
    agentgate_filter *filter = calloc(1, sizeof(*filter));
    if (!filter) { *out_error = -ENOMEM; return NULL; }
    filter->ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!filter->ctx) { free(filter); *out_error = -ENOMEM; return NULL; }
    // Any syscall from a non-native ABI (i386 int 0x80; x32 numbers carry the native arch with
    // bit 30 set and libseccomp treats them as a foreign ABI) kills the process: those numbers
    // would otherwise bypass every rule written for x86_64.
    int rc = seccomp_attr_set(filter->ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (rc == 0) rc = seccomp_attr_set(filter->ctx, SCMP_FLTATR_CTL_NNP, 0); // the child sets NNP itself
    if (rc != 0) { seccomp_release(filter->ctx); free(filter); *out_error = rc; return NULL; }
    *out_error = 0;
    return filter;
}

void agentgate_filter_destroy(agentgate_filter *filter) {
    if (!filter) return;
    seccomp_release(filter->ctx);
    free(filter);
}

int agentgate_syscall_number(const char *name) {
    int nr = seccomp_syscall_resolve_name(name);
    return nr == __NR_SCMP_ERROR ? -1 : nr;
}

static uint32_t scmp_action(agentgate_filter_action action, int error) {
    switch (action) {
    case AGENTGATE_FILTER_NOTIFY: return SCMP_ACT_NOTIFY;
    case AGENTGATE_FILTER_ERRNO: return SCMP_ACT_ERRNO((uint16_t)error);
    case AGENTGATE_FILTER_KILL: return SCMP_ACT_KILL_PROCESS;
    }
    return SCMP_ACT_KILL_PROCESS;
}

int agentgate_filter_add(agentgate_filter *filter, int nr, agentgate_filter_action action, int error) {
    return seccomp_rule_add(filter->ctx, scmp_action(action, error), nr, 0);
}

int agentgate_filter_add_arg(agentgate_filter *filter, int nr, agentgate_filter_action action, int error,
                             unsigned arg, agentgate_arg_compare compare, uint64_t value, uint64_t mask) {
    struct scmp_arg_cmp cmp;
    memset(&cmp, 0, sizeof cmp);
    cmp.arg = arg;
    switch (compare) {
    case AGENTGATE_ARG_EQ: cmp.op = SCMP_CMP_EQ; cmp.datum_a = value; break;
    case AGENTGATE_ARG_MASKED_EQ: cmp.op = SCMP_CMP_MASKED_EQ; cmp.datum_a = mask; cmp.datum_b = value; break;
    case AGENTGATE_ARG_NE: cmp.op = SCMP_CMP_NE; cmp.datum_a = value; break;
    default: return -EINVAL;
    }
    return seccomp_rule_add_array(filter->ctx, scmp_action(action, error), nr, 1, &cmp);
}

int agentgate_filter_export(agentgate_filter *filter, agentgate_bpf *out) {
    memset(out, 0, sizeof *out);
    // libseccomp 2.5 exports to an fd only; a memfd keeps it in memory.
    int fd = memfd_create("agentgate-bpf", MFD_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = seccomp_export_bpf(filter->ctx, fd);
    if (rc != 0) { close(fd); return rc; }
    off_t size = lseek(fd, 0, SEEK_END);
    if (size <= 0 || size % sizeof(struct sock_filter) != 0 || size / sizeof(struct sock_filter) > 0xffff) {
        close(fd);
        return -EINVAL;
    }
    struct sock_filter *code = malloc((size_t)size);
    if (!code) { close(fd); return -ENOMEM; }
    ssize_t got = pread(fd, code, (size_t)size, 0);
    close(fd);
    if (got != size) { free(code); return -EIO; }
    out->program.len = (unsigned short)(size / sizeof(struct sock_filter));
    out->program.filter = code;
    return 0;
}

void agentgate_bpf_free(agentgate_bpf *bpf) {
    free(bpf->program.filter);
    bpf->program.filter = NULL;
    bpf->program.len = 0;
}
