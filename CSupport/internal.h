// Kernel definitions newer than this machine's UAPI headers (linux-libc-dev 6.1), mirrored here.
#ifndef AGENTGATE_INTERNAL_H
#define AGENTGATE_INTERNAL_H
#include <linux/seccomp.h>
#include <linux/ioctl.h>
#include <stdint.h>
#include <fcntl.h>
#include "CSupport.h"

/// For what only the supervisor may do while a thread acts as the agent (taking the agent's
/// fds, reading its memory, following its own /proc magic links, which the kernel lets the
/// agent itself do whatever its dumpability): back to the thread's own identity. Returns true
/// when it was acting as someone, for agentgate_thread_resume_credentials.
bool agentgate_thread_suspend_credentials(void);
void agentgate_thread_resume_credentials(bool suspended);

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, uint64_t)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

#include <asm/socket.h>
#include <poll.h>
#include <sys/socket.h>
_Static_assert(AGENTGATE_SO_PEERCRED == SO_PEERCRED, "SO_PEERCRED");
_Static_assert(AGENTGATE_POLLRDHUP == POLLRDHUP, "POLLRDHUP");
_Static_assert(AGENTGATE_SCM_CREDENTIALS == SCM_CREDENTIALS, "SCM_CREDENTIALS");
_Static_assert(AGENTGATE_PIDFD_NONBLOCK == O_NONBLOCK, "PIDFD_NONBLOCK");
_Static_assert(AGENTGATE_PIDFD_THREAD == O_EXCL, "PIDFD_THREAD");
#ifdef SO_PEERPIDFD
_Static_assert(AGENTGATE_SO_PEERPIDFD == SO_PEERPIDFD, "SO_PEERPIDFD");
_Static_assert(AGENTGATE_SO_PASSPIDFD == SO_PASSPIDFD, "SO_PASSPIDFD");
#endif

// The structs we hand to the kernel must have the layout the kernel expects.
_Static_assert(sizeof(struct seccomp_data) == 64, "struct seccomp_data layout");
_Static_assert(sizeof(struct seccomp_notif) == 80, "struct seccomp_notif layout");
_Static_assert(sizeof(struct seccomp_notif_resp) == 24, "struct seccomp_notif_resp layout");
_Static_assert(sizeof(struct seccomp_notif_addfd) == 24, "struct seccomp_notif_addfd layout");
_Static_assert(__builtin_offsetof(struct seccomp_notif, data) == 16, "seccomp_notif.data offset");
_Static_assert(__builtin_offsetof(struct seccomp_notif_addfd, newfd_flags) == 20, "addfd.newfd_flags offset");
#endif
