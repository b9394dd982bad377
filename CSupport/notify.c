// The seccomp user-notification ioctls, each wrapped once.
#include "CSupport.h"
#include "internal.h"
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <pthread.h>

int agentgate_notif_sizes_check(void) {
    struct seccomp_notif_sizes sizes;
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) != 0) return -errno;
    // A kernel with larger structs would write past ours on RECV.
    if (sizes.seccomp_notif > sizeof(struct seccomp_notif) ||
        sizes.seccomp_notif_resp > sizeof(struct seccomp_notif_resp) ||
        sizes.seccomp_data > sizeof(struct seccomp_data)) return -EOVERFLOW;
    return 0;
}

int agentgate_notif_recv(int listener, struct seccomp_notif *req) {
    memset(req, 0, sizeof *req); // the kernel rejects a non-zero request with EINVAL
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, req) != 0) return -errno;
    return 0;
}

// Every ioctl but RECV is retried on EINTR. The kernel takes the notification lock with
// mutex_lock_interruptible, so a worker interrupted on purpose (BlockingOperations) could
// otherwise read a pending notification as gone (ID_VALID) or drop its one reply (SEND): the
// agent would then wait forever. Failing there changes nothing, so a retry is always right.
static int notify_ioctl(int listener, unsigned long request, void *argument) {
    int rc;
    do { rc = ioctl(listener, request, argument); } while (rc != 0 && errno == EINTR);
    return rc != 0 ? -errno : 0;
}

int agentgate_notif_id_valid(int listener, uint64_t id) {
    return notify_ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id);
}

// A failure held back on this thread until its decision has been echoed (see
// agentgate_notif_defer_failures).
static __thread bool defer_failures;
static __thread int deferred_listener = -1;
static __thread uint64_t deferred_id;
static __thread int deferred_error;

static int send_response(int listener, uint64_t id, int64_t value, int error);

void agentgate_notif_defer_failures(bool on) { defer_failures = on; }

int agentgate_notif_flush_deferred(void) {
    return agentgate_notif_flush_deferred_interrupted(0);
}

int agentgate_notif_flush_deferred_interrupted(int eintr_becomes) {
    if (deferred_listener < 0) return 0;
    int listener = deferred_listener;
    deferred_listener = -1;
    int error = deferred_error == EINTR && eintr_becomes > 0 ? eintr_becomes : deferred_error;
    return send_response(listener, deferred_id, 0, error);
}

int agentgate_notif_send(int listener, uint64_t id, int64_t value, int error) {
    if (defer_failures && error) {
        agentgate_notif_flush_deferred(); // never more than one held
        deferred_listener = listener;
        deferred_id = id;
        deferred_error = error;
        return 0;
    }
    return send_response(listener, id, value, error);
}

static int send_response(int listener, uint64_t id, int64_t value, int error) {
    struct seccomp_notif_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.id = id;
    resp.val = error ? 0 : value;
    resp.error = error ? -error : 0;
    return notify_ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

int agentgate_notif_continue(int listener, uint64_t id) {
    struct seccomp_notif_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.id = id;
    resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    return notify_ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

int agentgate_notif_addfd(int listener, uint64_t id, int fd, bool cloexec, int target_fd, bool send) {
    struct seccomp_notif_addfd addfd;
    memset(&addfd, 0, sizeof addfd);
    addfd.id = id;
    addfd.srcfd = (uint32_t)fd;
    addfd.newfd_flags = cloexec ? O_CLOEXEC : 0;
    if (target_fd >= 0) { addfd.flags |= SECCOMP_ADDFD_FLAG_SETFD; addfd.newfd = (uint32_t)target_fd; }
    if (send) addfd.flags |= SECCOMP_ADDFD_FLAG_SEND;
    // With every signal blocked: ADDFD waits interruptibly for the agent's thread to install the
    // fd, and a signal there withdraws the request. With FLAG_SEND the notification has already
    // been marked as answered by then, so the agent's call would return 0 and no fd (seen in
    // kernel/seccomp.c, seccomp_notify_addfd). The wait ends anyway when the agent dies (-ESRCH).
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &saved);
    int rc;
    do { rc = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd); } while (rc < 0 && errno == EINTR);
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    return rc < 0 ? -err : rc;
}

// The soft limit `resource` of thread `tid`'s process, UINT64_MAX for none: prlimit, else the
// line `label` of /proc/TID/limits (prlimit needs the agent's uids, /proc/PID/limits does not).
static int soft_limit(pid_t tid, int resource, const char *label, uint64_t *out) {
    struct rlimit limit;
    if (prlimit(tid, resource, NULL, &limit) == 0) {
        *out = limit.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)limit.rlim_cur;
        return 0;
    }
    char path[64], text[4096];
    snprintf(path, sizeof path, "/proc/%d/limits", (int)tid);
    ssize_t n = agentgate_read_small_file(AT_FDCWD, path, text, sizeof text);
    if (n < 0) return (int)n;
    const char *line = strstr(text, label);
    if (!line) return -EIO;
    line += strlen(label);
    while (*line == ' ') line++;
    char *end;
    unsigned long long soft = strtoull(line, &end, 10);
    *out = end == line ? UINT64_MAX : (uint64_t)soft; // "unlimited"
    return 0;
}

int agentgate_file_size_limit(pid_t tid, uint64_t *out) {
    return soft_limit(tid, RLIMIT_FSIZE, "Max file size", out);
}

int agentgate_tgkill(pid_t tgid, pid_t tid, int signal) {
    return syscall(SYS_tgkill, tgid, tid, signal) == 0 ? 0 : -errno;
}

int agentgate_fd_table_full(pid_t tid) {
    // The limit is the process's.
    uint64_t soft;
    int rc = soft_limit(tid, RLIMIT_NOFILE, "Max open files", &soft);
    if (rc < 0) return rc;
    struct rlimit limit = { .rlim_cur = soft == UINT64_MAX ? RLIM_INFINITY : (rlim_t)soft };
    if (limit.rlim_cur >= (rlim_t)1 << 31) return 0;
    char directory[64];
    snprintf(directory, sizeof directory, "/proc/%d/fd", (int)tid);
    // Since Linux 6.2 the directory's size is the number of open fds: fewer than the limit
    // means a free number below it, which is what the kernel's allocation looks for.
    struct stat info;
    if (stat(directory, &info) != 0) return -errno;
    if (info.st_size > 0 && (unsigned long long)info.st_size < (unsigned long long)limit.rlim_cur) return 0;
    // Else count the numbers below the limit (fds above it may be open from before it was lowered).
    DIR *fds = opendir(directory);
    if (!fds) return -errno;
    unsigned long long below = 0;
    struct dirent *entry;
    while ((entry = readdir(fds)) != NULL) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
        if (strtoull(entry->d_name, NULL, 10) < (unsigned long long)limit.rlim_cur) below++;
    }
    closedir(fds);
    return below >= (unsigned long long)limit.rlim_cur ? 1 : 0;
}

int agentgate_notif_set_sync_wakeup(int listener) {
    uint64_t flags = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP;
    // The ioctl takes the flags by value.
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, flags) != 0) return -errno;
    return 0;
}
