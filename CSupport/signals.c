// Whether a thread waiting in a notification has a signal the kernel has routed to it.
//
// The filter is installed with SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: once the supervisor has
// received a notification, the agent's thread waits killably, so a non-fatal signal stays
// pending (with TIF_SIGPENDING set on the thread it was routed to) until the supervisor
// answers. For a call the supervisor performs that may block (a FIFO open, a connect, a send),
// the supervisor must then end the call itself, as the kernel would have interrupted it: it
// answers -ERESTARTSYS, and the thread's return to user space delivers the signal, restarts
// the call (SA_RESTART, or no handler) or fails it with EINTR, exactly as without the
// supervisor. That answer is only safe on the thread the signal was routed to: a thread without
// TIF_SIGPENDING would return 512 to its program. So this says yes only when the kernel's
// routing (kernel/signal.c, complete_signal) leaves no doubt:
//   - a thread-directed signal (tgkill) the thread doesn't block;
//   - a process-directed signal the thread doesn't block, when the thread is the group leader
//     (complete_signal tries the leader first, and a sleeping leader without TIF_SIGPENDING
//     always takes it), or when every other live thread blocks it.
// In any other case another thread may take the signal and this thread's call goes on, as it
// would without the supervisor.
#include "CSupport.h"
#include "internal.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct task_signals {
    pid_t tgid;
    char state;
    uint64_t pending, shared, blocked;
} task_signals;

static int read_task_signals(const char *path, task_signals *out) {
    char text[4096];
    ssize_t n = agentgate_read_small_file(AT_FDCWD, path, text, sizeof text);
    if (n < 0) return (int)n;
    memset(out, 0, sizeof *out);
    int found = 0;
    for (char *line = text; line && *line; ) {
        char *next = strchr(line, '\n');
        if (next) *next++ = '\0';
        char *colon = strchr(line, ':');
        if (colon) {
            *colon = '\0';
            const char *value = colon + 1;
            while (*value == ' ' || *value == '\t') value++;
            if (!strcmp(line, "Tgid")) { out->tgid = (pid_t)strtol(value, NULL, 10); found |= 1; }
            else if (!strcmp(line, "State")) { out->state = value[0]; found |= 2; }
            else if (!strcmp(line, "SigPnd")) { out->pending = strtoull(value, NULL, 16); found |= 4; }
            else if (!strcmp(line, "ShdPnd")) { out->shared = strtoull(value, NULL, 16); found |= 8; }
            else if (!strcmp(line, "SigBlk")) { out->blocked = strtoull(value, NULL, 16); found |= 16; }
        }
        line = next;
    }
    return found == 31 ? 0 : -EIO;
}

int agentgate_thread_signal_routed(pid_t tid) {
    return agentgate_thread_signal_routed_ignoring(tid, 0);
}

int agentgate_thread_signal_routed_ignoring(pid_t tid, uint64_t ignored) {
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
    task_signals self;
    int rc = read_task_signals(path, &self);
    if (rc < 0) return rc;
    self.blocked |= ignored;
    if (self.pending & ~self.blocked) return 1;
    uint64_t shared = self.shared & ~self.blocked;
    if (!shared) return 0;
    if (self.tgid == tid) return 1;
    snprintf(path, sizeof path, "/proc/%d/task", (int)self.tgid);
    DIR *tasks = opendir(path);
    if (!tasks) return -errno;
    int routed = 1;
    struct dirent *entry;
    while ((entry = readdir(tasks)) != NULL) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
        pid_t other = (pid_t)strtol(entry->d_name, NULL, 10);
        if (other == tid) continue;
        snprintf(path, sizeof path, "/proc/%d/task/%d/status", (int)self.tgid, (int)other);
        task_signals sibling;
        if (read_task_signals(path, &sibling) < 0) continue; // gone
        if (sibling.state == 'Z' || sibling.state == 'X') continue; // an exited leader takes none
        if (shared & ~sibling.blocked) { routed = 0; break; }
    }
    closedir(tasks);
    return routed;
}
