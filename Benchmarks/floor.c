// The floor a seccomp user-notification supervisor can't go below: the command runs under a
// filter that traps open, openat, execve, execveat and connect to a listener, and every
// notification is answered SECCOMP_USER_NOTIF_FLAG_CONTINUE at once, with no decision, no
// memory read and no record (SYNC_WAKE_UP set, as the floor). Not a supervisor: the
// CONTINUE answer is exactly what a real one must never give for a path (docs/security.md).
//
//   floor [--default-wakeup] -- CMD [ARGS...]   exits with CMD's status
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

static int send_fd(int socket, int fd) {
    char data = 0;
    struct iovec iov = { &data, 1 };
    union { struct cmsghdr header; char space[CMSG_SPACE(sizeof(int))]; } control;
    memset(&control, 0, sizeof control);
    struct msghdr message = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space,
                              .msg_controllen = sizeof control.space };
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&message);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &fd, sizeof fd);
    return sendmsg(socket, &message, 0) == 1 ? 0 : -1;
}

static int receive_fd(int socket) {
    char data;
    struct iovec iov = { &data, 1 };
    union { struct cmsghdr header; char space[CMSG_SPACE(sizeof(int))]; } control;
    struct msghdr message = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space,
                              .msg_controllen = sizeof control.space };
    if (recvmsg(socket, &message, 0) != 1) return -1;
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&message);
    if (!cmsg || cmsg->cmsg_type != SCM_RIGHTS) return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(cmsg), sizeof fd);
    return fd;
}

int main(int argc, char **argv) {
    int first = 1, sync_wakeup = 1;
    if (first < argc && !strcmp(argv[first], "--default-wakeup")) { sync_wakeup = 0; first++; }
    if (first < argc && !strcmp(argv[first], "--")) first++;
    if (first >= argc) { fprintf(stderr, "usage: floor [--default-wakeup] -- CMD [ARGS...]\n"); return 2; }
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) { perror("socketpair"); return 125; }
    pid_t child = fork();
    if (child < 0) { perror("fork"); return 125; }
    if (child == 0) {
        close(pair[0]);
        struct sock_filter filter[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_open, 5, 0),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 4, 0),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_execve, 3, 0),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_execveat, 2, 0),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_connect, 1, 0),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        };
        struct sock_fprog program = { sizeof filter / sizeof filter[0], filter };
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) { perror("PR_SET_NO_NEW_PRIVS"); _exit(125); }
        int listener = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &program);
        if (listener < 0) { perror("seccomp"); _exit(125); }
        if (send_fd(pair[1], listener) != 0) { perror("sendmsg"); _exit(125); }
        close(listener);
        close(pair[1]);
        execvp(argv[first], argv + first);
        _exit(127);
    }
    close(pair[1]);
    int listener = receive_fd(pair[0]);
    close(pair[0]);
    if (listener < 0) { waitpid(child, NULL, 0); fprintf(stderr, "floor: no listener\n"); return 125; }
    if (sync_wakeup) ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, 0);
    struct seccomp_notif request;
    struct seccomp_notif_resp response;
    for (;;) {
        struct pollfd watched = { listener, POLLIN, 0 };
        if (poll(&watched, 1, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (watched.revents & POLLIN) {
            memset(&request, 0, sizeof request);
            if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &request) != 0) continue; // EINTR, ENOENT
            memset(&response, 0, sizeof response);
            response.id = request.id;
            response.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
            ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &response); // ENOENT: the caller is gone
            continue;
        }
        if (watched.revents & (POLLHUP | POLLERR)) break; // every task under the filter has exited
    }
    int status = 0;
    if (waitpid(child, &status, 0) < 0) return 125;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
