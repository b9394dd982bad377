// Processes and their handles: what a pidfd (or a /proc/PID directory fd) refers to, signals
// sent through one, the peer of a unix socket, and the pids under /proc listed without opening
// a new fd. Each kernel interface is wrapped once here.
#include "CSupport.h"
#include "internal.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <elf.h>
#include <linux/capability.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>

#define PROC_SUPER_MAGIC_VALUE 0x9fa0

int agentgate_pidfd_open_flags(pid_t pid, unsigned flags) {
    long fd = syscall(SYS_pidfd_open, pid, flags);
    return fd < 0 ? -errno : (int)fd;
}

int agentgate_pidfd_send_signal(int pidfd, int sig, const void *info, unsigned flags) {
    long rc = syscall(SYS_pidfd_send_signal, pidfd, sig, info, flags);
    return rc < 0 ? -errno : 0;
}

// The number after "Pid:" in /proc/self/fdinfo/FD, which pidfds (anon-inode or pidfs) carry.
static int fdinfo_pid(int fd, pid_t *out) {
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    int file = open(path, O_RDONLY | O_CLOEXEC);
    if (file < 0) return -errno;
    ssize_t n = read(file, text, sizeof text - 1);
    int err = errno;
    close(file);
    if (n < 0) return -err;
    text[n] = '\0';
    const char *line = strstr(text, "\nPid:");
    if (!line) return -EBADF;
    *out = (pid_t)strtol(line + 5, NULL, 10);
    return 0;
}

int agentgate_process_handle_target(int fd, pid_t *pid, bool *is_proc_directory) {
    *pid = 0;
    *is_proc_directory = false;
    struct statfs fs;
    if (fstatfs(fd, &fs) != 0) return -errno;
    if (fs.f_type == PROC_SUPER_MAGIC_VALUE) {
        // pidfd_send_signal also takes a /proc/PID directory: the pid is its name.
        struct stat st;
        if (fstat(fd, &st) != 0) return -errno;
        if (!S_ISDIR(st.st_mode)) return -EBADF;
        char link[64], target[256];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n < 0) return -errno;
        target[n] = '\0';
        if (strncmp(target, "/proc/", 6) != 0) return -EBADF;
        char *end = NULL;
        long value = strtol(target + 6, &end, 10);
        if (end == target + 6 || *end != '\0' || value <= 0) return -EBADF;
        *pid = (pid_t)value;
        *is_proc_directory = true;
        return 0;
    }
    pid_t found = 0;
    int rc = fdinfo_pid(fd, &found);
    if (rc < 0) return rc;
    *pid = found > 0 ? found : 0; // -1: the process has exited (and been reaped)
    return 0;
}

int agentgate_socket_inode(int fd, uint64_t *inode) {
    struct stat st;
    if (fstat(fd, &st) != 0) return -errno;
    if (!S_ISSOCK(st.st_mode)) return -ENOTSOCK;
    *inode = st.st_ino;
    return 0;
}

int agentgate_unix_peer_inode(uint64_t inode, uint64_t *peer) {
    *peer = 0;
    if (inode > UINT32_MAX) return -EINVAL; // unix_diag addresses sockets by a 32-bit inode
    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0) return -errno;
    struct {
        struct nlmsghdr header;
        struct unix_diag_req request;
    } message;
    memset(&message, 0, sizeof message);
    message.header.nlmsg_len = sizeof message;
    message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    message.header.nlmsg_flags = NLM_F_REQUEST;
    message.request.sdiag_family = AF_UNIX;
    message.request.udiag_states = (uint32_t)-1;
    message.request.udiag_ino = (uint32_t)inode;
    message.request.udiag_show = UDIAG_SHOW_PEER;
    message.request.udiag_cookie[0] = (uint32_t)-1; // INET_DIAG_NOCOOKIE: any socket with this inode
    message.request.udiag_cookie[1] = (uint32_t)-1;
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    if (sendto(nl, &message, sizeof message, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
        int err = errno;
        close(nl);
        return -err;
    }
    long buffer[1024];
    ssize_t n;
    do { n = recv(nl, buffer, sizeof buffer, 0); } while (n < 0 && errno == EINTR);
    int err = errno;
    close(nl);
    if (n < 0) return -err;
    struct nlmsghdr *reply = (struct nlmsghdr *)buffer;
    if (!NLMSG_OK(reply, (size_t)n)) return -EIO;
    if (reply->nlmsg_type == NLMSG_ERROR) {
        struct nlmsgerr *failure = NLMSG_DATA(reply);
        return failure->error < 0 ? failure->error : -ENOENT;
    }
    if (reply->nlmsg_type != SOCK_DIAG_BY_FAMILY) return -EIO;
    struct unix_diag_msg *diag = NLMSG_DATA(reply);
    size_t attributes_length = reply->nlmsg_len - NLMSG_LENGTH(sizeof *diag);
    struct rtattr *attribute = (struct rtattr *)(diag + 1);
    for (; RTA_OK(attribute, attributes_length); attribute = RTA_NEXT(attribute, attributes_length)) {
        if (attribute->rta_type == UNIX_DIAG_PEER && RTA_PAYLOAD(attribute) >= sizeof(uint32_t)) {
            *peer = *(uint32_t *)RTA_DATA(attribute);
            return 0;
        }
    }
    return -ENOTCONN;
}

int agentgate_getsockopt(int fd, int level, int name, void *value, uint32_t *length) {
    socklen_t len = *length;
    if (getsockopt(fd, level, name, value, &len) != 0) return -errno;
    *length = len;
    return 0;
}

int agentgate_proc_pids(int proc_fd, pid_t *pids, size_t capacity, size_t *count) {
    // getdents64 on an fd the caller already holds: listing /proc needs no new fd, so it still
    // works when the supervisor's fd table is full.
    *count = 0;
    if (lseek(proc_fd, 0, SEEK_SET) < 0) return -errno;
    char buffer[8192] __attribute__((aligned(8)));
    int truncated = 0;
    while (1) {
        long n = syscall(SYS_getdents64, proc_fd, buffer, sizeof buffer);
        if (n < 0) return -errno;
        if (n == 0) break;
        long offset = 0;
        while (offset < n) {
            struct agentgate_dirent64 {
                uint64_t d_ino;
                int64_t d_off;
                unsigned short d_reclen;
                unsigned char d_type;
                char d_name[];
            } *entry = (void *)(buffer + offset);
            offset += entry->d_reclen;
            char *end = NULL;
            long pid = strtol(entry->d_name, &end, 10);
            if (end == entry->d_name || *end != '\0' || pid <= 0) continue;
            if (*count < capacity) pids[(*count)++] = (pid_t)pid;
            else truncated = 1;
        }
    }
    return truncated ? -ENOBUFS : 0;
}

int agentgate_lower_capabilities(const int *capabilities, int count, agentgate_capability_state *saved) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &header, data) != 0) return -errno;
    for (int i = 0; i < 2; i++) saved->effective[i] = data[i].effective;
    for (int i = 0; i < count; i++) {
        int cap = capabilities[i];
        if (cap < 0 || cap >= 64) continue;
        data[cap / 32].effective &= ~(1u << (cap % 32));
    }
    header.version = _LINUX_CAPABILITY_VERSION_3;
    header.pid = 0;
    return syscall(SYS_capset, &header, data) == 0 ? 0 : -errno;
}

int agentgate_restore_capabilities(const agentgate_capability_state *saved) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &header, data) != 0) return -errno;
    for (int i = 0; i < 2; i++) data[i].effective = saved->effective[i];
    header.version = _LINUX_CAPABILITY_VERSION_3;
    header.pid = 0;
    return syscall(SYS_capset, &header, data) == 0 ? 0 : -errno;
}

int agentgate_socket_without_capabilities(int domain, int type, int protocol, const int *capabilities, int count) {
    // Capabilities are per thread: lower the effective set of this thread only, create the
    // socket (its file records these credentials, which netlink checks on every request that
    // changes something), and raise them again.
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct saved[2], lowered[2];
    if (syscall(SYS_capget, &header, saved) != 0) return -errno;
    memcpy(lowered, saved, sizeof saved);
    for (int i = 0; i < count; i++) {
        int cap = capabilities[i];
        if (cap < 0 || cap >= 64) continue;
        lowered[cap / 32].effective &= ~(1u << (cap % 32));
    }
    if (syscall(SYS_capset, &header, lowered) != 0) return -errno;
    int fd = socket(domain, type, protocol);
    int err = errno;
    header.version = _LINUX_CAPABILITY_VERSION_3;
    header.pid = 0;
    if (syscall(SYS_capset, &header, saved) != 0) {
        // Can't happen (the permitted set is unchanged), but never go on with lowered caps
        // silently: the caller sees the failure.
        if (fd >= 0) close(fd);
        return -EPERM;
    }
    return fd < 0 ? -err : fd;
}

int agentgate_exec_random(pid_t pid, uint8_t out[16]) {
    // AT_RANDOM points at 16 bytes the kernel fills afresh at every execve: whether they changed
    // tells whether an exec happened, even when the new image is the old one.
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/auxv", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    uint64_t auxv[2 * 64];
    ssize_t n = read(fd, auxv, sizeof auxv);
    int err = errno;
    close(fd);
    if (n < 0) return -err;
    uint64_t address = 0;
    for (ssize_t i = 0; i + 1 < n / 8; i += 2) {
        if (auxv[i] == AT_NULL) break;
        if (auxv[i] == AT_RANDOM) { address = auxv[i + 1]; break; }
    }
    if (address == 0) return -ENOENT;
    // One call in the usual case (the same ptrace access check as /proc/PID/mem).
    struct iovec local = { out, 16 }, remote = { (void *)(uintptr_t)address, 16 };
    if (process_vm_readv(pid, &local, 1, &remote, 1, 0) == 16) return 0;
    // Otherwise through /proc/PID/mem, which reads like a debugger (FOLL_FORCE): a page the
    // process made PROT_NONE is still read, so hiding the bytes takes unmapping its own stack.
    snprintf(path, sizeof path, "/proc/%d/mem", (int)pid);
    int mem = open(path, O_RDONLY | O_CLOEXEC);
    if (mem < 0) return -errno;
    ssize_t got = pread(mem, out, 16, (off_t)address);
    err = errno;
    close(mem);
    if (got < 0) return -err;
    return got == 16 ? 0 : -EFAULT;
}
