// The exec check's ptrace side (ExecTracer.swift): hold an exec'ing thread at the new image's
// first instruction (PTRACE_EVENT_EXEC), or at its return to user space when the exec failed
// (the PTRACE_INTERRUPT stop), then let it go. Every call is made by the tracing thread.
#include "CSupport.h"
#include "internal.h"
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif

int agentgate_exec_trace_attach(pid_t tid) {
    // EXITKILL: a tracer that goes (the supervisor dies) takes the tracee with it, so it never
    // runs an image nobody checked.
    long options = PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL;
    if (ptrace(PTRACE_SEIZE, tid, NULL, (void *)options) != 0) return -errno;
    // The thread sits in the seccomp wait (killable once received, WAIT_KILLABLE_RECV), which
    // the interrupt doesn't end; it traps on the way back to user space unless the exec event
    // stop comes first (any ptrace stop clears a pending interrupt trap).
    if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) != 0) return -errno;
    return 0;
}

int agentgate_exec_trace_peek(pid_t pid, int nohang, int *code, int *status) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    // __WNOTHREAD: this thread's tracees only (it has no children); WNOWAIT: an exit the
    // supervisor's reaper must see stays for it. EINTR is returned: a nudge to look again.
    // pid 0: any of them (P_PID would never see a thread's exec: the task then changes pid,
    // and a waiter for the old one is neither woken nor told ECHILD).
    idtype_t type = pid > 0 ? P_PID : P_ALL;
    int options = WEXITED | WSTOPPED | __WALL | __WNOTHREAD | WNOWAIT | (nohang ? WNOHANG : 0);
    if (waitid(type, (id_t)(pid > 0 ? pid : 0), &info, options) != 0) return -errno;
    if (info.si_code == CLD_TRAPPED) {
        // A stop is taken (not an exit: those may be the reaper's). Until the exec stop of a
        // thread that took its leader's pid is waited for, the kernel answers every ptrace
        // request for it with ESRCH (looks_like_a_spurious_pid).
        siginfo_t taken;
        memset(&taken, 0, sizeof taken);
        while (waitid(P_PID, (id_t)info.si_pid, &taken, WSTOPPED | __WALL | __WNOTHREAD | WNOHANG) != 0 && errno == EINTR) {}
    }
    *code = info.si_code;
    *status = info.si_status;
    return info.si_pid;
}

int agentgate_exec_trace_reap(pid_t pid) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int rc;
    do { rc = waitid(P_PID, (id_t)pid, &info, WEXITED | __WALL | __WNOTHREAD | WNOHANG); } while (rc != 0 && errno == EINTR);
    return rc == 0 ? 0 : -errno;
}

int agentgate_exec_trace_stop(pid_t pid, int *event, int *signo) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (ptrace(PTRACE_GETSIGINFO, pid, NULL, &info) != 0) return -errno;
    *signo = info.si_signo;
    // An event stop's si_code is its signal | event << 8 (SIGTRAP, or the stop signal of a
    // group stop, PTRACE_EVENT_STOP); a signal's own si_code is never that large (the kernel's
    // are small, and a process may only queue negative ones).
    *event = info.si_code > 0 ? (info.si_code & 0xffff) >> 8 : 0;
    return 0;
}

int agentgate_exec_trace_detach(pid_t pid, int signo) {
    return ptrace(PTRACE_DETACH, pid, NULL, (void *)(long)signo) == 0 ? 0 : -errno;
}

int agentgate_wait_peek(int *code, int *status) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int rc = waitid(P_ALL, 0, &info, WEXITED | WSTOPPED | WCONTINUED | WNOHANG | WNOWAIT);
    if (rc != 0) return -errno;
    *code = info.si_code;
    *status = info.si_status;
    return info.si_pid;
}
