// Spawning the agent under the filter. After fork the child makes only async-signal-safe calls.
#include "CSupport.h"
#include "internal.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sched.h>
#include <linux/sched.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>

// The child's report to the parent over the status socket. On success the listener travels
// with it as SCM_RIGHTS.
struct child_report {
    int stage;   // agentgate_spawn_stage
    int value;   // 0 on success, errno on failure
    int killable;
};

static void child_write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) { if (errno == EINTR) continue; return; }
        p += n; len -= (size_t)n;
    }
}

static void child_fail(int status_fd, int stage, int err) {
    struct child_report report = { stage, err, 0 };
    child_write_all(status_fd, &report, sizeof report);
    _exit(127);
}

static void child_message(const char *a, const char *b, const char *c) {
    child_write_all(2, "agentgate-supervise: ", 21);
    child_write_all(2, a, strlen(a));
    child_write_all(2, b, strlen(b));
    child_write_all(2, c, strlen(c));
    child_write_all(2, "\n", 1);
}

// The relay: reads the listener's number from the child, sends the listener to the supervisor
// with SCM_RIGHTS, and exits (0 when sent).
__attribute__((noreturn))
static void relay_main(int status_fd, int from_child) {
    int handoff[2];
    size_t got = 0;
    while (got < sizeof handoff) {
        ssize_t n = read(from_child, (char *)handoff + got, sizeof handoff - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) _exit(1); // the child failed before it had a listener
        got += (size_t)n;
    }
    struct child_report report = { AGENTGATE_SPAWN_OK, 0, handoff[1] };
    struct iovec iov = { &report, sizeof report };
    union { char buffer[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    memset(&control, 0, sizeof control);
    struct msghdr message = { .msg_iov = &iov, .msg_iovlen = 1,
                              .msg_control = control.buffer, .msg_controllen = sizeof control.buffer };
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &handoff[0], sizeof(int));
    ssize_t sent;
    do { sent = sendmsg(status_fd, &message, MSG_NOSIGNAL); } while (sent < 0 && errno == EINTR);
    _exit(sent == (ssize_t)sizeof report ? 0 : 1);
}

// Reaps the relay; returns its exit status, or -1.
static int wait_for_relay(pid_t relay) {
    int status = 0;
    while (waitpid(relay, &status, __WALL) < 0) { if (errno != EINTR) return -1; }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

__attribute__((noreturn))
static void child_main(const agentgate_spawn_config *config, pid_t parent, int status_fd, int ack_fd) {
    // Own process group, so the terminal's job control and `kill(0, …)` from the agent address
    // the agent's group and never the supervisor.
    setpgid(0, 0);
    // Die with the supervisor; the filter alone would make trapped calls fail, this ends the rest.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    // Handlers are reset by exec; only dispositions the supervisor set to "ignore" would leak
    // into the agent. Signals the user's shell ignored (nohup) stay ignored.
    for (int i = 0; i < config->reset_count; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        sigaction(config->reset_signals[i], &sa, NULL);
    }
    if (config->nofile_soft_limit >= 0) {
        struct rlimit lim;
        if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
            lim.rlim_cur = (rlim_t)config->nofile_soft_limit;
            setrlimit(RLIMIT_NOFILE, &lim);
        }
    }
    // Limits are set before the filter: setrlimit is prlimit64 underneath, which is trapped, and
    // nothing answers the child's notifications until the handshake is done.
    if (config->nproc_limit >= 0) {
        struct rlimit lim = { (rlim_t)config->nproc_limit, (rlim_t)config->nproc_limit };
        struct rlimit old;
        // Never raise a limit the user set lower.
        if (getrlimit(RLIMIT_NPROC, &old) == 0 && old.rlim_max < lim.rlim_max) lim.rlim_max = old.rlim_max;
        if (lim.rlim_cur > lim.rlim_max) lim.rlim_cur = lim.rlim_max;
        if (setrlimit(RLIMIT_NPROC, &lim) != 0) child_fail(status_fd, AGENTGATE_SPAWN_LIMITS, errno);
    }
    if (config->realtime_forbidden) {
        // Without CAP_SYS_NICE a process can't raise these again: no SCHED_FIFO/RR spin loops.
        struct rlimit zero = { 0, 0 };
        if (setrlimit(RLIMIT_RTPRIO, &zero) != 0 || setrlimit(RLIMIT_RTTIME, &zero) != 0)
            child_fail(status_fd, AGENTGATE_SPAWN_LIMITS, errno);
    }
    if (config->core_dumps_forbidden) {
        struct rlimit zero = { 0, 0 };
        if (setrlimit(RLIMIT_CORE, &zero) != 0) child_fail(status_fd, AGENTGATE_SPAWN_LIMITS, errno);
    }
    if (config->oom_score_adj_floor >= -1000) {
        // Under memory pressure the kernel ends the agent before the supervisor or the desktop.
        int fd = open("/proc/self/oom_score_adj", O_RDWR | O_CLOEXEC);
        if (fd >= 0) {
            char text[16];
            ssize_t n = read(fd, text, sizeof text - 1);
            int current = 0;
            if (n > 0) {
                text[n] = '\0';
                current = (int)strtol(text, NULL, 10);
            }
            if (current < config->oom_score_adj_floor) {
                char value[16];
                int len = 0;
                int v = config->oom_score_adj_floor;
                char digits[12];
                int d = 0;
                int negative = v < 0;
                unsigned magnitude = negative ? (unsigned)(-v) : (unsigned)v;
                do { digits[d++] = (char)('0' + magnitude % 10); magnitude /= 10; } while (magnitude && d < 11);
                if (negative) value[len++] = '-';
                while (d > 0) value[len++] = digits[--d];
                if (pwrite(fd, value, (size_t)len, 0) < 0) { /* best effort: raising it is a courtesy */ }
            }
            close(fd);
        }
    }
    // Dumpable, as exec will make the agent anyway: a supervisor with no more than the agent's
    // uid reads the agent's memory, which needs it.
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) child_fail(status_fd, AGENTGATE_SPAWN_NO_NEW_PRIVS, errno);

    // The listener goes to the supervisor as SCM_RIGHTS, which needs no ptrace rights over the
    // child. sendmsg is trapped under the filter, and nobody could answer it yet: the message
    // is sent by a relay, a process sharing this fd table that is created before the filter
    // (so it isn't under it), and that exits before the agent's program runs.
    int relay_pipe[2];
    if (pipe2(relay_pipe, O_CLOEXEC) != 0) child_fail(status_fd, AGENTGATE_SPAWN_PIPE, errno);
    long relay = syscall(SYS_clone, CLONE_FILES | SIGCHLD, 0, NULL, NULL, 0);
    if (relay < 0) child_fail(status_fd, AGENTGATE_SPAWN_FORK, errno);
    if (relay == 0) relay_main(status_fd, relay_pipe[0]);

    int killable = 1;
    unsigned long flags = SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    long listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &config->filter->program);
    if (listener < 0 && errno == EINVAL) {
        killable = 0; // kernels before 5.19
        listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                           &config->filter->program);
    }
    if (listener < 0) {
        int err = errno;
        close(relay_pipe[1]); // the relay reads end-of-file and exits
        wait_for_relay((pid_t)relay);
        child_fail(status_fd, AGENTGATE_SPAWN_SECCOMP, err);
    }
    int handoff[2] = { (int)listener, killable };
    child_write_all(relay_pipe[1], handoff, sizeof handoff);
    close(relay_pipe[1]);
    if (wait_for_relay((pid_t)relay) != 0) child_fail(status_fd, AGENTGATE_SPAWN_GETFD, EPIPE);
    close((int)listener); // in flight or received: the listener never reaches the agent
    close(relay_pipe[0]);
    // Wait until the parent holds the listener: any trapped call before that would deadlock.
    char ack = 0;
    ssize_t n;
    do { n = read(ack_fd, &ack, 1); } while (n < 0 && errno == EINTR);
    if (n != 1 || ack != 'G') _exit(127);
    close(ack_fd);
    sigprocmask(SIG_SETMASK, config->child_mask, NULL);

    execve(config->path, config->argv, config->envp);
    // The supervisor says why (it knows when the policy refused the exec): the errno goes back
    // over the status socket, which it reads once the child is gone.
    struct child_report report = { AGENTGATE_SPAWN_EXEC, errno, 0 };
    child_write_all(status_fd, &report, sizeof report);
    close(status_fd);
    _exit(report.value == ENOENT ? 127 : 126);
}

int agentgate_spawn(const agentgate_spawn_config *config, agentgate_spawned *out, int *stage) {
    memset(out, 0, sizeof *out);
    out->pidfd = -1; out->listener = -1; out->exec_report = -1;
    int status_pipe[2], ack_pipe[2];
    // A socket, not a pipe: the listener comes back over it as SCM_RIGHTS.
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, status_pipe) != 0) { *stage = AGENTGATE_SPAWN_PIPE; return -errno; }
    if (pipe2(ack_pipe, O_CLOEXEC) != 0) {
        int err = errno;
        close(status_pipe[0]); close(status_pipe[1]);
        *stage = AGENTGATE_SPAWN_PIPE; return -err;
    }
    pid_t parent = getpid();
    pid_t pid = -1;
    int placed = 0; // leading cgroup_procs entries the child was created in
    if (config->cgroup_directory_fd >= 0 && config->cgroup_count > 0) {
        // Like fork (no CLONE_VM, same stack), but born in the session's cgroup. The child runs
        // the same async-signal-safe code; glibc's fork handlers don't run, and none is needed.
        struct clone_args args;
        memset(&args, 0, sizeof args);
        args.flags = CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)config->cgroup_directory_fd;
        args.exit_signal = SIGCHLD;
        pid = (pid_t)syscall(SYS_clone3, &args, sizeof args);
        // Any failure (ENOSYS before Linux 5.7 or under a filter that hides clone3, such as an
        // outer supervisor's): fork, and the write below says what is wrong with the cgroup.
        if (pid >= 0) placed = 1;
    }
    if (pid < 0) pid = fork();
    if (pid < 0) {
        int err = errno;
        close(status_pipe[0]); close(status_pipe[1]); close(ack_pipe[0]); close(ack_pipe[1]);
        *stage = AGENTGATE_SPAWN_FORK; return -err;
    }
    if (pid == 0) {
        close(status_pipe[0]);
        close(ack_pipe[1]);
        child_main(config, parent, status_pipe[1], ack_pipe[0]);
    }
    close(status_pipe[1]);
    close(ack_pipe[0]);
    setpgid(pid, pid); // also done by the child; whichever runs first wins the race harmlessly

    int err = 0;
    struct child_report report;
    int pidfd = -1, listener = -1;
    struct iovec iov = { &report, sizeof report };
    union { char buffer[CMSG_SPACE(sizeof(int) * 4)]; struct cmsghdr align; } control;
    struct msghdr message = { .msg_iov = &iov, .msg_iovlen = 1,
                              .msg_control = control.buffer, .msg_controllen = sizeof control.buffer };
    ssize_t got;
    do { got = recvmsg(status_pipe[0], &message, MSG_CMSG_CLOEXEC); } while (got < 0 && errno == EINTR);
    if (got < 0) err = errno;
    // Take every fd that came, whatever else is wrong, so none is left open.
    if (got > 0) {
        for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
            if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
            size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < count; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(header) + i * sizeof(int), sizeof fd);
                if (listener < 0) listener = fd; else close(fd);
            }
        }
    }
    if (got != (ssize_t)sizeof report || (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        *stage = AGENTGATE_SPAWN_HANDSHAKE; err = err ? err : EPIPE;
    } else if (report.stage != AGENTGATE_SPAWN_OK) {
        *stage = report.stage; err = report.value ? report.value : EPIPE;
    } else if (listener < 0) {
        *stage = AGENTGATE_SPAWN_GETFD; err = EPIPE;
    } else {
        pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0) { *stage = AGENTGATE_SPAWN_PIDFD; err = errno; }
    }
    for (int i = placed; err == 0 && i < config->cgroup_count; i++) {
        // Before exec: nothing the agent runs may start outside the session's cgroup.
        int fd = open(config->cgroup_procs[i], O_WRONLY | O_CLOEXEC);
        if (fd < 0) { *stage = AGENTGATE_SPAWN_CGROUP; err = errno; break; }
        char text[16];
        int len = snprintf(text, sizeof text, "%d", (int)pid);
        errno = 0;
        if (write(fd, text, (size_t)len) != len) { *stage = AGENTGATE_SPAWN_CGROUP; err = errno ? errno : EIO; }
        close(fd);
    }
    if (err == 0 && config->terminal_fd >= 0) {
        agentgate_tcsetpgrp(config->terminal_fd, pid); // best effort: the shell may not be ours
    }
    if (err == 0) {
        char go = 'G';
        if (write(ack_pipe[1], &go, 1) != 1) { *stage = AGENTGATE_SPAWN_HANDSHAKE; err = errno ? errno : EPIPE; }
    }
    close(ack_pipe[1]);
    if (err != 0) {
        close(status_pipe[0]);
        // Nothing may run unsupervised: make sure the child is gone.
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        if (listener >= 0) close(listener);
        if (pidfd >= 0) close(pidfd);
        return -err;
    }
    out->pid = pid;
    out->pidfd = pidfd;
    out->listener = listener;
    out->killable_recv = report.killable != 0;
    out->exec_report = status_pipe[0];
    *stage = AGENTGATE_SPAWN_OK;
    return 0;
}

int agentgate_spawn_exec_error(int exec_report) {
    struct child_report report;
    ssize_t got;
    do { got = recv(exec_report, &report, sizeof report, MSG_DONTWAIT); } while (got < 0 && errno == EINTR);
    if (got != (ssize_t)sizeof report || report.stage != AGENTGATE_SPAWN_EXEC) return 0;
    return report.value ? report.value : EIO;
}
