// Building the seccomp filter with libseccomp, in the parent, before any fork.
#include "CSupport.h"
#include "internal.h"
#include <seccomp.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <stddef.h>
#include <linux/audit.h>

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

int agentgate_syscall_name(int nr, char *buf, size_t capacity) {
    if (capacity == 0) return -EINVAL;
    char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    if (!name) return -ENOENT;
    size_t len = strlen(name);
    if (len >= capacity) len = capacity - 1;
    memcpy(buf, name, len);
    buf[len] = '\0';
    free(name);
    return (int)len;
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
    case AGENTGATE_ARG_EQ32: cmp.op = SCMP_CMP_MASKED_EQ; cmp.datum_a = 0xffffffffu; cmp.datum_b = value & 0xffffffffu; break;
    case AGENTGATE_ARG_NE: cmp.op = SCMP_CMP_NE; cmp.datum_a = value; break;
    default: return -EINVAL;
    }
    return seccomp_rule_add_array(filter->ctx, scmp_action(action, error), nr, 1, &cmp);
}

int agentgate_filter_add_equal_args(agentgate_filter *filter, int nr, agentgate_filter_action action, int error,
                                    const unsigned *args, const uint64_t *values, int count) {
    if (count < 1 || count > 6) return -EINVAL;
    struct scmp_arg_cmp cmp[6];
    memset(cmp, 0, sizeof cmp);
    for (int i = 0; i < count; i++) {
        cmp[i].arg = args[i];
        cmp[i].op = SCMP_CMP_MASKED_EQ; // int arguments: the kernel ignores the upper half
        cmp[i].datum_a = 0xffffffffu;
        cmp[i].datum_b = values[i] & 0xffffffffu;
    }
    return seccomp_rule_add_array(filter->ctx, scmp_action(action, error), nr, (unsigned)count, cmp);
}

int agentgate_filter_export(agentgate_filter *filter, int highest_known, agentgate_bpf *out) {
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
    // Prefix: on the native arch, a number above the highest known one and below the x32 bit
    // fails with ENOSYS; everything else falls through to libseccomp's program, whose relative
    // jumps are unaffected by instructions in front of it.
    struct sock_filter prefix[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 4),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, (uint32_t)highest_known, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
    };
    size_t prefix_count = sizeof prefix / sizeof prefix[0];
    size_t body_count = (size_t)size / sizeof(struct sock_filter);
    if (body_count + prefix_count > 0xffff) { close(fd); return -E2BIG; }
    struct sock_filter *code = malloc((prefix_count + body_count) * sizeof(struct sock_filter));
    if (!code) { close(fd); return -ENOMEM; }
    memcpy(code, prefix, sizeof prefix);
    ssize_t got = pread(fd, code + prefix_count, (size_t)size, 0);
    close(fd);
    if (got != size) { free(code); return -EIO; }
    out->program.len = (unsigned short)(prefix_count + body_count);
    out->program.filter = code;
    return 0;
}

void agentgate_bpf_free(agentgate_bpf *bpf) {
    free(bpf->program.filter);
    bpf->program.filter = NULL;
    bpf->program.len = 0;
}
