// Small syscall wrappers, each in one place, so Swift never handles raw syscall numbers.
#include "CSupport.h"
#include "internal.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <termios.h>

// The buffer sizes Swift and C share (CSupport.h) must match what the kernel bounds.
_Static_assert(AGENTGATE_PATH_CAPACITY == PATH_MAX + 1, "a path argument plus one byte to detect an over-long one");
_Static_assert(AGENTGATE_NAME_CAPACITY == NAME_MAX + 1, "one path component and its NUL");
_Static_assert(AGENTGATE_SOCKADDR_CAPACITY == sizeof(struct sockaddr_storage), "the largest socket address");
_Static_assert(AGENTGATE_RESOLVED_CAPACITY >= PATH_MAX, "a resolved path");

int agentgate_pidfd_open(pid_t tid) {
    long fd = syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
    if (fd < 0 && errno == EINVAL) fd = syscall(SYS_pidfd_open, tid, 0); // before Linux 6.9
    return fd < 0 ? -errno : (int)fd;
}

int agentgate_pidfd_getfd(int pidfd, int fd) {
    // With the supervisor's own rights, also while acting as the agent (ptrace access).
    int suspended = agentgate_thread_suspend_credentials();
    long rc = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
    int err = errno;
    agentgate_thread_resume_credentials(suspended);
    return rc < 0 ? -err : (int)rc;
}

int agentgate_openat(int dirfd, const char *path, int flags, unsigned mode) {
    int fd = openat(dirfd, path, flags | O_CLOEXEC, mode);
    return fd < 0 ? -errno : fd;
}

ssize_t agentgate_readlinkat(int dirfd, const char *path, char *buf, size_t capacity) {
    if (capacity < 2) return -EINVAL;
    ssize_t n = readlinkat(dirfd, path, buf, capacity - 1);
    if (n < 0) return -errno;
    if ((size_t)n >= capacity - 1) return -ENAMETOOLONG;
    buf[n] = '\0';
    return n;
}

ssize_t agentgate_read_small_file(int dirfd, const char *path, char *buf, size_t capacity) {
    if (capacity < 2) return -EINVAL;
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    size_t total = 0;
    while (total < capacity - 1) {
        ssize_t n = read(fd, buf + total, capacity - 1 - total);
        if (n < 0) { if (errno == EINTR) continue; int err = errno; close(fd); return -err; }
        if (n == 0) break;
        total += (size_t)n;
    }
    close(fd);
    buf[total] = '\0';
    return (ssize_t)total;
}

void agentgate_close(int fd) {
    if (fd >= 0) close(fd); // Linux releases the fd even when close reports EINTR
}

int agentgate_connect(int fd, const void *addr, uint32_t len) {
    // No retry on EINTR: the supervisor interrupts a blocking connect on purpose when the agent's
    // syscall was interrupted, and a retried connect would report EALREADY.
    return connect(fd, (const struct sockaddr *)addr, len) == 0 ? 0 : -errno;
}

int agentgate_get_status_flags(int fd) {
    int flags = fcntl(fd, F_GETFL);
    return flags < 0 ? -errno : flags;
}

int agentgate_fstat_identity(int fd, uint64_t *dev, uint64_t *ino, unsigned *mode) {
    struct stat st;
    if (fstat(fd, &st) != 0) return -errno;
    *dev = st.st_dev; *ino = st.st_ino; *mode = st.st_mode;
    return 0;
}

int agentgate_stat_identity(const char *path, uint64_t *dev, uint64_t *ino) {
    struct stat st;
    if (stat(path, &st) != 0) return -errno;
    *dev = st.st_dev; *ino = st.st_ino;
    return 0;
}

int agentgate_poll_one(int fd, short events, int timeout_ms) {
    struct pollfd p = { fd, events, 0 };
    int rc = poll(&p, 1, timeout_ms);
    if (rc < 0) return -errno;
    return rc == 0 ? 0 : p.revents;
}

int agentgate_wait_any(pid_t pid, int nohang, int *code, int *status) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int options = WEXITED | WSTOPPED | WCONTINUED | (nohang ? WNOHANG : 0);
    int rc = waitid(pid > 0 ? P_PID : P_ALL, pid > 0 ? (id_t)pid : 0, &info, options);
    if (rc != 0) return -errno;
    *code = info.si_code;
    *status = info.si_status;
    return info.si_pid;
}

int agentgate_become_subreaper(void) {
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 ? 0 : -errno;
}

int agentgate_set_undumpable(void) {
    return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 ? 0 : -errno;
}

int agentgate_signalfd(const sigset_t *mask) {
    if (pthread_sigmask(SIG_BLOCK, mask, NULL) != 0) return -EINVAL;
    int fd = signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK);
    return fd < 0 ? -errno : fd;
}

int agentgate_signalfd_read(int fd, int *from_process, int *sender_pid) {
    struct signalfd_siginfo info;
    ssize_t n = read(fd, &info, sizeof info);
    if (n < 0) return errno == EAGAIN ? 0 : -errno;
    if (n != sizeof info) return 0;
    int code = info.ssi_code;
    *from_process = (code == SI_USER || code == SI_QUEUE || code == SI_TKILL);
    *sender_pid = (int)info.ssi_pid;
    return (int)info.ssi_signo;
}

static void interrupt_handler(int signo) { (void)signo; }

int agentgate_install_interrupt_handler(int signo) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = interrupt_handler; // no SA_RESTART: blocked ioctls return EINTR
    sigemptyset(&sa.sa_mask);
    return sigaction(signo, &sa, NULL) == 0 ? 0 : -errno;
}

int agentgate_unshare_fs(void) { return unshare(CLONE_FS) == 0 ? 0 : -errno; }

int agentgate_fchdir(int fd) { return fchdir(fd) == 0 ? 0 : -errno; }

int agentgate_tcsetpgrp(int fd, pid_t pgrp) {
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTTOU); // a background caller would otherwise be stopped
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int rc = tcsetpgrp(fd, pgrp);
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc == 0 ? 0 : -err;
}

pid_t agentgate_tcgetpgrp(int fd) {
    pid_t pgrp = tcgetpgrp(fd);
    return pgrp < 0 ? -errno : pgrp;
}

int agentgate_terminal_columns(int fd) {
    struct winsize size;
    if (ioctl(fd, TIOCGWINSZ, &size) != 0) return -errno;
    return size.ws_col;
}

uint64_t agentgate_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void agentgate_sigset(sigset_t *set, const int *signals, int count) {
    sigemptyset(set);
    for (int i = 0; i < count; i++) sigaddset(set, signals[i]);
}

int agentgate_sigmask(int how, const sigset_t *set, sigset_t *old) {
    int rc = pthread_sigmask(how, set, old);
    return rc == 0 ? 0 : -rc;
}

int agentgate_thread_kill(uint64_t thread, int signo) {
    int rc = pthread_kill((pthread_t)thread, signo);
    return rc == 0 ? 0 : -rc;
}

uint64_t agentgate_thread_self(void) { return (uint64_t)pthread_self(); }

int64_t agentgate_raise_nofile(void) {
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return -errno;
    int64_t previous = (int64_t)lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    return previous;
}

ssize_t agentgate_getxattr(const char *path, const char *name, void *buf, size_t capacity) {
    ssize_t n = getxattr(path, name, buf, capacity);
    return n < 0 ? -errno : n;
}

int agentgate_mount_of(int fd, int *read_only, uint64_t *mount_id) {
    struct statvfs info;
    if (fstatvfs(fd, &info) != 0) return -errno;
    *read_only = (info.f_flag & ST_RDONLY) != 0;
    struct statx sx;
    if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &sx) != 0) return -errno;
    *mount_id = (sx.stx_mask & STATX_MNT_ID) ? sx.stx_mnt_id : 0;
    return 0;
}

int agentgate_journal_send(int fd, const char *path, const void *datagram, size_t length) {
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    size_t path_length = strlen(path);
    if (path_length >= sizeof address.sun_path) return -ENAMETOOLONG;
    memcpy(address.sun_path, path, path_length + 1);
    struct iovec vector = {.iov_base = (void *)datagram, .iov_len = length};
    struct msghdr message = {
        .msg_name = &address,
        .msg_namelen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_length + 1),
        .msg_iov = &vector,
        .msg_iovlen = 1,
    };
    ssize_t sent;
    do sent = sendmsg(fd, &message, MSG_NOSIGNAL); while (sent < 0 && errno == EINTR);
    if (sent >= 0) return 0;
    if (errno != EMSGSIZE && errno != ENOBUFS) return -errno;
    // Too big for one datagram: journald takes the bytes from a sealed memfd sent alone.
    int memory = memfd_create("agentgate-journal", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (memory < 0) return -errno;
    const char *next = datagram;
    size_t left = length;
    while (left > 0) {
        ssize_t written = write(memory, next, left);
        if (written < 0 && errno == EINTR) continue;
        if (written <= 0) {
            int error = written < 0 ? errno : EIO;
            close(memory);
            return -error;
        }
        next += written;
        left -= (size_t)written;
    }
    if (fcntl(memory, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
        int error = errno;
        close(memory);
        return -error;
    }
    union {
        struct cmsghdr header;
        char bytes[CMSG_SPACE(sizeof(int))];
    } control;
    memset(&control, 0, sizeof control);
    message.msg_iov = NULL;
    message.msg_iovlen = 0;
    message.msg_control = control.bytes;
    message.msg_controllen = sizeof control.bytes;
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &memory, sizeof(int));
    do sent = sendmsg(fd, &message, MSG_NOSIGNAL); while (sent < 0 && errno == EINTR);
    int error = sent < 0 ? errno : 0;
    close(memory);
    return -error;
}
