// The seccomp user-notification ioctls, each wrapped once.
#include "CSupport.h"
#include "internal.h"
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <fcntl.h>
#include <sys/syscall.h>

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

int agentgate_notif_id_valid(int listener, uint64_t id) {
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) != 0) return -errno;
    return 0;
}

// A failure held back on this thread until its decision has been echoed (see
// agentgate_notif_defer_failures).
static __thread int defer_failures;
static __thread int deferred_listener = -1;
static __thread uint64_t deferred_id;
static __thread int deferred_error;

static int send_response(int listener, uint64_t id, int64_t value, int error);

void agentgate_notif_defer_failures(int on) { defer_failures = on; }

int agentgate_notif_flush_deferred(void) {
    if (deferred_listener < 0) return 0;
    int listener = deferred_listener;
    deferred_listener = -1;
    return send_response(listener, deferred_id, 0, deferred_error);
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
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) != 0) return -errno;
    return 0;
}

int agentgate_notif_continue(int listener, uint64_t id) {
    struct seccomp_notif_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.id = id;
    resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) != 0) return -errno;
    return 0;
}

int agentgate_notif_addfd(int listener, uint64_t id, int fd, int cloexec, int target_fd, int send) {
    struct seccomp_notif_addfd addfd;
    memset(&addfd, 0, sizeof addfd);
    addfd.id = id;
    addfd.srcfd = (uint32_t)fd;
    addfd.newfd_flags = cloexec ? O_CLOEXEC : 0;
    if (target_fd >= 0) { addfd.flags |= SECCOMP_ADDFD_FLAG_SETFD; addfd.newfd = (uint32_t)target_fd; }
    if (send) addfd.flags |= SECCOMP_ADDFD_FLAG_SEND;
    int rc = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd);
    return rc < 0 ? -errno : rc;
}

int agentgate_notif_set_sync_wakeup(int listener) {
    uint64_t flags = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP;
    // The ioctl takes the flags by value.
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, flags) != 0) return -errno;
    return 0;
}
