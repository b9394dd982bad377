// Reading the target's memory. Callers must check SECCOMP_IOCTL_NOTIF_ID_VALID afterwards and
// before using the bytes: the pid may have died and been reused in between.
#include "internal.h"
#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#define AGENTGATE_PAGE 4096u

static ssize_t read_some(pid_t pid, uint64_t addr, void *buf, size_t len) {
    struct iovec local = { buf, len };
    struct iovec remote = { (void *)(uintptr_t)addr, len };
    ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    return n < 0 ? -errno : n;
}

static ssize_t read_string(pid_t pid, uint64_t addr, char *buf, size_t capacity) {
    if (capacity < 2) return -EINVAL;
    if (addr == 0) return -EFAULT;
    size_t total = 0;
    // Read up to each page boundary: a string may end just before an unmapped page.
    while (total < capacity - 1) {
        uint64_t at = addr + total;
        size_t chunk = AGENTGATE_PAGE - (size_t)(at % AGENTGATE_PAGE);
        if (chunk > capacity - 1 - total) chunk = capacity - 1 - total;
        ssize_t n = read_some(pid, at, buf + total, chunk);
        if (n < 0) return n;
        if (n == 0) return -EFAULT;
        char *nul = memchr(buf + total, '\0', (size_t)n);
        if (nul) { size_t len = (size_t)(nul - buf); buf[len] = '\0'; return (ssize_t)len; }
        total += (size_t)n;
        if ((size_t)n < chunk) return -EFAULT;
    }
    buf[capacity - 1] = '\0';
    return -ENAMETOOLONG;
}

static int read_memory(pid_t pid, uint64_t addr, void *buf, size_t len) {
    if (len == 0) return 0;
    if (addr == 0) return -EFAULT;
    size_t total = 0;
    while (total < len) {
        ssize_t n = read_some(pid, addr + total, (char *)buf + total, len - total);
        if (n < 0) return (int)n;
        if (n == 0) return -EFAULT;
        total += (size_t)n;
    }
    return 0;
}

// The agent's memory is read and written with the supervisor's own rights, also while a
// thread acts as the agent (a process that changed its ids is no longer dumpable, and only
// the supervisor's CAP_SYS_PTRACE reaches it).
ssize_t agentgate_read_string(pid_t pid, uint64_t addr, char *buf, size_t capacity) {
    bool suspended = agentgate_thread_suspend_credentials();
    ssize_t n = read_string(pid, addr, buf, capacity);
    agentgate_thread_resume_credentials(suspended);
    return n;
}

int agentgate_read_memory(pid_t pid, uint64_t addr, void *buf, size_t len) {
    bool suspended = agentgate_thread_suspend_credentials();
    int rc = read_memory(pid, addr, buf, len);
    agentgate_thread_resume_credentials(suspended);
    return rc;
}

int agentgate_write_memory(pid_t pid, uint64_t addr, const void *buf, size_t len) {
    bool suspended = agentgate_thread_suspend_credentials();
    struct iovec local = { (void *)buf, len };
    struct iovec remote = { (void *)(uintptr_t)addr, len };
    ssize_t n = process_vm_writev(pid, &local, 1, &remote, 1, 0);
    int err = errno;
    agentgate_thread_resume_credentials(suspended);
    if (n < 0) return -err;
    return (size_t)n == len ? 0 : -EFAULT;
}
