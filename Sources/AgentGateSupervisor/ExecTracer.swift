import CSupport
import Glibc
import Synchronization

/// Closes the exec window (docs/security.md): an exec decided "allow" is continued with its
/// thread held by ptrace, so the new image is checked before it runs one instruction.
///
/// Before the call is continued, a tracer thread seizes the exec'ing thread
/// (PTRACE_O_TRACEEXEC, PTRACE_O_EXITKILL) and interrupts it. The thread then stops exactly
/// once: at PTRACE_EVENT_EXEC when the exec succeeded, or at the interrupt's stop on its way
/// back to user space when it failed (any ptrace stop clears a pending interrupt). At that
/// stop the image is checked as `ImageVerifier.verify` checks it at a first trapped call; a
/// process running anything but the image decided is killed, still stopped. Then the tracer
/// detaches. Where the thread can't be seized (traced already, by the agent's own debugger or
/// strace; ptrace not permitted), the exec is continued unheld and its record says so, and why;
/// its image is then checked as the exec completes (`watch`), at the tracer's next ptrace call
/// on it (ProcessHandlers), or at its first trapped call, whichever comes first.
///
/// ptrace requests come from the tracer, so each check runs start to end on one of a few
/// threads started with the session (none is created on the agent's demand). A tracer waits
/// only for its own tracee (__WNOTHREAD, WNOWAIT for exits); the session's reaper leaves
/// ptrace stops and tracees' exits alone (`isTracerBusiness`).
final class ExecTracer: @unchecked Sendable {
    /// Checks that run at once; more wait their turn (their exec'ing threads wait meanwhile).
    static let threadCount = 8

    struct Job: Sendable {
        let call: TrappedCall
        let tgid: pid_t
        /// The program decided.
        let program: String
        /// Continues the call and records it; the note says when its image is checked after
        /// the fact (none: before its first instruction, the usual case).
        let respond: @Sendable (_ note: String?) -> Void
    }
    private struct State {
        var jobs: [Job] = []
        var stopping = false
    }
    private let state = Mutex(State())
    private let semaphore = CountingSemaphore()
    private let workers = SessionThreads()
    private let busy = Atomic<Int>(0)
    private let threadIDs = Mutex<[UInt64]>([])
    /// The tids (and their process's pid, which a thread's exec makes its own) being held.
    private let held = Mutex<[pid_t: Int]>([:])

    /// Starts the tracer threads, before the agent's first exec can be answered. Without any,
    /// execs are checked after the fact (each record says so).
    @discardableResult
    func start() -> Bool {
        workers.start(Self.threadCount) { [self] in work() }
    }

    /// Stops the threads; joins them unless one is still holding a check (a thread exits only
    /// when its tracee is gone or let go, and EXITKILL ends a tracee whose tracer exits).
    func stop() {
        state.withLock { $0.stopping = true }
        workers.stop(wake: { semaphore.signal() }, join: { busy.load(ordering: .relaxed) == 0 })
    }

    /// Hands the exec to a tracer, which answers it. Returns false when there is no tracer
    /// thread: the caller answers it itself, checked after the fact.
    func submit(_ job: Job) -> Bool {
        guard !workers.isEmpty else { return false }
        busy.add(1, ordering: .relaxed)
        state.withLock { $0.jobs.append(job) }
        semaphore.signal()
        return true
    }

    /// Interrupts every tracer's wait, to look at its tracee again: the reaper took a ptrace
    /// stop's report (it can't tell a tracee's new stop from a state it peeked at just before).
    func nudge() {
        for id in threadIDs.withLock({ $0 }) { _ = agentgate_thread_kill(id, BlockingOperations.interruptSignal) }
    }

    private func work() {
        threadIDs.withLock { $0.append(agentgate_thread_self()) }
        var unblock = sigset_t()
        var signal = BlockingOperations.interruptSignal
        agentgate_sigset(&unblock, &signal, 1)
        agentgate_sigmask(SIG_UNBLOCK, &unblock, nil)
        while true {
            semaphore.wait()
            let job: Job? = state.withLock { $0.jobs.isEmpty ? nil : $0.jobs.removeFirst() }
            guard let job else {
                if state.withLock({ $0.stopping }) { return }
                continue
            }
            check(job)
            busy.subtract(1, ordering: .relaxed)
        }
    }

    private func check(_ job: Job) {
        let n = job.call.notification
        hold([n.tid, job.tgid], by: 1)
        let attached = agentgate_exec_trace_attach(n.tid)
        guard attached == 0 else {
            hold([n.tid, job.tgid], by: -1)
            job.respond(Self.fallbackNote(errno: -attached))
            watch(job)
            return
        }
        job.respond(nil)
        follow(job, tid: n.tid)
        hold([n.tid, job.tgid], by: -1)
    }

    /// How long an exec continued without the hold is watched for its completion.
    static let watchNanoseconds: UInt64 = 50_000_000

    /// An exec continued without the hold (the agent traces the process itself): its image is
    /// checked as soon as the exec has completed (AT_RANDOM refilled), for a short while. A
    /// process its tracer stops at the exec (PTRACE_TRACEME, PTRACE_O_TRACEEXEC) is then
    /// checked before it runs; the tracer's resuming ptrace call checks it too
    /// (ProcessHandlers), and so does its first trapped call. One its tracer lets run straight
    /// on may run a few instructions first, and is then killed and recorded: never silently.
    private func watch(_ job: Job) {
        let tgid = job.tgid
        let images = job.call.core.images
        let deadline = agentgate_monotonic_ns() + Self.watchNanoseconds
        while agentgate_monotonic_ns() < deadline {
            // Read through the process's pid: an exec from a thread gives that thread the pid.
            if let refusal = images.verifyCompletedExec(tgid) {
                recordKill(job, pid: tgid, reason: refusal + " (checked as its exec completed: the agent traces it)")
                return
            }
            guard images.pendingExec(tgid).pending else { return } // checked, or gone
            if images.forgetIfExited(tgid) {
                // Gone before its image could be read: what ran can't be known, but it is said.
                let entry = DecisionRecorder.Entry(
                    syscall: job.call.syscall, action: .exec, target: job.program, decision: .log,
                    reason: "the process exited before its new image could be checked (the agent traces it): what ran is unknown")
                job.call.core.recorder.record(entry, notification: job.call.notification, process: job.call.process,
                                              respondedAt: agentgate_monotonic_ns(), policy: job.call.policyVersion)
                return
            }
            usleep(100)
        }
    }

    private func hold(_ pids: [pid_t], by change: Int) {
        held.withLock { table in
            for pid in Set(pids) {
                let count = table[pid, default: 0] + change
                table[pid] = count > 0 ? count : nil
            }
        }
    }

    /// Waits (at most 2 s) while a check holds `pid`.
    func waitUntilReleased(_ pid: pid_t) {
        let deadline = agentgate_monotonic_ns() + 2_000_000_000
        while held.withLock({ $0[pid] != nil }) && agentgate_monotonic_ns() < deadline { usleep(200) }
    }

    static func fallbackNote(errno: Int32) -> String {
        let why: String
        switch errno {
        case EPERM: why = "the process is traced already, or ptrace is not permitted"
        case ESRCH: why = "the thread was gone"
        default: why = "ptrace failed"
        }
        return "image checked at its first trapped call: \(why) (\(String(cString: strerror(errno))))"
    }

    /// From the seized thread's stop to its release. Every way out leaves the process either
    /// checked and let go, or killed: never running unchecked, and never stopped for good.
    private func follow(_ job: Job, tid: pid_t) {
        let tgid = job.tgid
        // A thread other than the leader takes the leader's pid when its exec succeeds.
        var pid = tid
        var killed = false
        // Bounded: a stop is followed by a detach or a kill, and a killed tracee leaves its
        // stop at once; only its exit is waited for after that.
        for _ in 0..<20_000 {
            var code: Int32 = 0, status: Int32 = 0
            // Any tracee of this thread: the held thread, under its tid or (exec'd from a thread
            // other than the leader) its process's pid.
            var waited = agentgate_exec_trace_peek(0, 0, &code, &status)
            if waited > 0 && waited != tid && waited != tgid {
                // An exited tracee of an earlier check, left for the reaper (the session's own
                // child), comes first: look at this one by its pids until it is reaped.
                waited = agentgate_exec_trace_peek(tid, 1, &code, &status)
                if waited == 0 || waited == -ECHILD, tgid != tid { waited = agentgate_exec_trace_peek(tgid, 1, &code, &status) }
                if waited == 0 || waited == -ECHILD { usleep(200); continue }
            }
            if waited > 0 { pid = waited }
            if waited == -EINTR {
                // Nudged: the reaper may have taken this stop's report. A tracee in a ptrace
                // stop answers PTRACE_GETSIGINFO whether or not its stop was waited for.
                var event: Int32 = 0, signo: Int32 = 0
                guard agentgate_exec_trace_stop(pid, &event, &signo) == 0 else { continue }
                waited = pid
                code = Int32(CLD_TRAPPED)
            }
            if waited == -ECHILD { return } // gone (released by a sibling's exec, or reaped)
            guard waited > 0 else {
                // Can't happen (EINTR is retried): without a wait the tracee can't be followed.
                end(pid: pid, tgid: tgid)
                return
            }
            switch code {
            case Int32(CLD_EXITED), Int32(CLD_KILLED), Int32(CLD_DUMPED):
                // The session's own child (a leader whose parent is the supervisor) is the
                // reaper's to reap; any other exited tracee is reaped here, which lets its
                // parent see its exit.
                if !(pid == tgid && ProcStatus(tid: pid).ppid == getpid()) { _ = agentgate_exec_trace_reap(pid) }
                return
            case Int32(CLD_TRAPPED) where killed:
                usleep(100) // killed while stopped: it leaves the stop at once
            case Int32(CLD_TRAPPED):
                var event: Int32 = 0, signo: Int32 = 0
                guard agentgate_exec_trace_stop(pid, &event, &signo) == 0 else { continue } // left the stop (killed)
                if let refusal = job.call.core.images.verify(tid: pid, tgid: tgid, firstSeen: false, isValid: { true }) {
                    end(pid: pid, tgid: tgid)
                    killed = true
                    recordKill(job, pid: pid, reason: refusal + " before it ran")
                    continue
                }
                // Checked. A signal-delivery stop (not expected: the interrupt's stop comes
                // first) passes its signal on.
                if agentgate_exec_trace_detach(pid, event == 0 ? signo : 0) == 0 { return }
            default:
                // Not a state a tracee can be in before it is let go: end it.
                end(pid: pid, tgid: tgid)
                killed = true
            }
        }
        end(pid: pid, tgid: tgid)
    }

    /// Kills a tracee that can't be followed.
    private func end(pid: pid_t, tgid: pid_t) {
        kill(pid, SIGKILL)
        kill(tgid, SIGKILL)
    }

    private func recordKill(_ job: Job, pid: pid_t, reason: String) {
        Self.recordKill(job.call, pid: pid, reason: reason)
    }

    /// Records the kill of `pid`, whose image failed its check, against `call`.
    static func recordKill(_ call: TrappedCall, pid: pid_t, reason: String) {
        call.core.recorder.record(.denied(syscall: call.syscall, action: .exec,
                                          target: ProcessTable.readLink("/proc/\(pid)/exe") ?? "?",
                                          reason: reason, errno: EPERM),
                                  notification: call.notification, process: ProcessTable.read(tid: pid),
                                  respondedAt: agentgate_monotonic_ns(), policy: call.policyVersion)
    }

    /// Whether the session's reaper must leave a wait state alone: a ptrace stop, or the exit of
    /// a task that is not a process the supervisor parents (only a tracee is seen that way).
    /// Such states are the tracers' to take; the reaper looks again shortly.
    static func isTracerBusiness(pid: pid_t, code: Int32) -> Bool {
        if code == Int32(CLD_TRAPPED) { return true }
        guard code == Int32(CLD_EXITED) || code == Int32(CLD_KILLED) || code == Int32(CLD_DUMPED) else { return false }
        let status = ProcStatus(tid: pid)
        // Unreadable: taken by someone meanwhile; the next look tells.
        return status.tgid != 0 && (status.tgid != pid || status.ppid != getpid())
    }
}
