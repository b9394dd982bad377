import AgentGatePolicy
import AgentGateStore
import CSupport
import Glibc

/// Tells a process why its exec was denied: one line on its own stderr,
/// `agentgate: denied exec of /usr/bin/curl by rule no-curl: no downloads here`, written before
/// the failure reaches it, so it comes before the shell's own error. An agent that wraps
/// commands (`bash -c "source … && eval '…'"`) otherwise sees only an exit status. The policy's
/// `explain_denials: false` turns it off.
///
/// The line goes to the calling thread's fd 2 and nothing else: taken with pidfd_getfd (the
/// same open file, so the same offset, O_APPEND and terminal as the process's own writes),
/// and only when that fd is open for writing. It is written in one write of at most
/// `maxLineBytes` (below PIPE_BUF, so a pipe gets it whole or not at all, never spliced into
/// another writer's line).
///
/// An fd 2 can block a writer indefinitely (a full pipe nobody reads, a terminal stopped with
/// ^S, a FUSE file), so the write never runs on a receiver thread: it runs on a worker of
/// `SupervisorCore.blocking`, which the main loop interrupts as soon as the notification is
/// gone (the process was killed), and it is bounded besides: it waits at most
/// `writeTimeoutMilliseconds` for fd 2 to take the line (poll), then gives up and writes
/// nothing. Only a writer racing us to fill the pipe between that poll and the write can keep
/// the worker longer, and then only until the process that made the call is killed; other
/// notifications are answered meanwhile by the receivers and the other workers. When every
/// worker is busy the exec is denied without the line.
enum DenialExplanation {
    static let maxLineBytes = 512
    static let writeTimeoutMilliseconds = 500

    /// Fails the exec with `errno` and records `entry`, writing the explanation first when the
    /// policy asks for one. The session's own command gets none: its denial is reported by
    /// `agentgate-supervise` itself, naming the rule (`cannot execute …`).
    static func failExec(_ call: TrappedCall, explain: Bool, errno: Int32, entry: DecisionRecorder.Entry) {
        let n = call.notification, core = call.core
        let reason = entry.verdict?.reason
        // An interrupted or withdrawn ask isn't a denial the process sees: it restarts, or is gone.
        let explains = explain && call.policy.explainsDenials && entry.decision != .allow && (entry.verdict?.enforced ?? true)
            && reason != .askInterrupted && reason != .askWithdrawn
        if explains {
            let text = line(entry, policy: call.policy)
            let queued = core.blocking.run(n) {
                write(text, n, core: core)
                call.fail(errno, recording: entry)
            }
            if queued { return }
        }
        call.fail(errno, recording: entry)
    }

    /// How an ask ended in a denial, for the line.
    static func askPhrase(_ reason: VerdictReason?) -> String {
        switch reason {
        case .askAnswered: " (asked: denied)"
        case .askTimedOut: " (asked: nobody answered in time)"
        default: ""
        }
    }

    /// `agentgate: denied exec of PROGRAM by rule ID: REASON` (`by rule ID` for a rule without a
    /// reason; `agentgate: denied exec of PROGRAM: REASON` when no rule decided), with secrets
    /// redacted as the audit redacts them, control characters escaped, and cut to
    /// `maxLineBytes`.
    static func line(_ entry: DecisionRecorder.Entry, policy: Policy) -> String {
        var why: String
        if let index = entry.ruleIndex, policy.rules.indices.contains(index) {
            let rule = policy.rules[index]
            // As the recorder words it: the rule's reason, except for a path outside its scope.
            let reason = entry.verdict?.reason == .escapesScope ? entry.reason : (rule.reason ?? "")
            why = " by rule \(rule.displayID)"
            if !reason.isEmpty && reason != VerdictReason.matchedRule.text { why += ": " + reason }
            if entry.decision == .ask { why += " (ask: no approver)" }
            why += askPhrase(entry.verdict?.reason)
        } else if let index = entry.verdict?.limitIndex, policy.limits.indices.contains(index) {
            why = ": " + policy.limits[index].explanation + (entry.decision == .ask ? " (ask: no approver)" : "")
            why += askPhrase(entry.verdict?.reason)
        } else if entry.decision == .ask {
            why = ": no rule matched, and the default is ask, with no approver"
        } else if let reason = entry.verdict?.reason, reason.isAskOutcome {
            why = ": no rule matched, and the default is ask" + askPhrase(reason)
        } else {
            why = ": " + entry.reason
        }
        var program = printable(Redactor.redact(text: entry.target))
        why = printable(Redactor.redact(text: why))
        let lead = "agentgate: denied exec of "
        // The program gives way first, keeping its end (the name); then the reason is cut.
        let room = maxLineBytes - 1 - lead.utf8.count - min(why.utf8.count, maxLineBytes / 2)
        if program.utf8.count > room { program = "…" + suffix(program, bytes: room - "…".utf8.count) }
        var text = lead + program + why
        if text.utf8.count > maxLineBytes - 1 { text = prefix(text, bytes: maxLineBytes - 1 - "…".utf8.count) + "…" }
        return text + "\n"
    }

    /// Writes `text` to the fd 2 of the thread behind `n`, if that is open for writing and
    /// takes it within the time bound. Runs on a blocking-operations worker.
    static func write(_ text: String, _ n: Notification, core: SupervisorCore) {
        let pidfd = agentgate_pidfd_open(n.tid)
        guard pidfd >= 0 else { return }
        defer { agentgate_close(pidfd) }
        // Still pending, so the pidfd names the very thread that made the call.
        guard core.listener.isValid(n.id) else { return }
        let fd = agentgate_pidfd_getfd(pidfd, STDERR_FILENO)
        guard fd >= 0 else { return } // fd 2 is closed
        defer { agentgate_close(fd) }
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, flags & Int32(AGENTGATE_O_PATH) == 0, flags & O_ACCMODE != O_RDONLY else { return }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return }
        // Not to a socket: a message sent by the supervisor carries its credentials
        // (SO_PASSCRED, /dev/log), which would lend the agent's text the supervisor's uid.
        let isSocket = info.st_mode & S_IFMT == S_IFSOCK
        guard !isSocket else { return }
        // Written as the agent (its fsuid and capabilities: no CAP_FSETID keeping a set-id bit).
        let acting = core.actAsAgent(tid: n.tid)
        defer { core.restoreIdentity(acting.saved) }
        guard acting.refusal == nil else { return }
        let deadline = agentgate_monotonic_ns() + UInt64(writeTimeoutMilliseconds) * 1_000_000
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let now = agentgate_monotonic_ns()
                guard now < deadline else { return }
                let events = agentgate_poll_one(fd, Int16(POLLOUT), Int32((deadline - now + 999_999) / 1_000_000))
                if events == -EINTR && core.listener.isValid(n.id) { continue }
                // Timed out, interrupted because the call is gone, or fd 2 can't be written.
                guard events > 0, Int16(truncatingIfNeeded: events) & Int16(POLLOUT) != 0 else { return }
                // A pipe or terminal shares its O_NONBLOCK with the process, so it isn't
                // changed: poll said there is room.
                let written = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    let error = Glibc.errno
                    if error == EAGAIN || (error == EINTR && core.listener.isValid(n.id)) { continue }
                    return
                }
                offset += written
            }
        }
    }

    /// Control characters, line breaks and bidirectional overrides as \u{…}: the line stays one
    /// line, and a program name can't rewrite the terminal it is shown on.
    static func printable(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var result = ""
        for scalar in text.unicodeScalars {
            if needsEscape(scalar) { result += "\\u{\(String(scalar.value, radix: 16))}" } else { result.unicodeScalars.append(scalar) }
        }
        return result
    }

    private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        return value < 0x20 || (0x7f..<0xa0).contains(value) || (0x2028...0x2029).contains(value)
            || (0x202a...0x202e).contains(value) || (0x2066...0x2069).contains(value)
            || value == 0x200e || value == 0x200f || value == 0x061c
    }

    /// The longest start of `text` within `bytes` UTF-8 bytes, cut between scalars.
    private static func prefix(_ text: String, bytes: Int) -> String {
        var result = ""
        var count = 0
        for scalar in text.unicodeScalars {
            count += scalar.utf8.count
            if count > bytes { break }
            result.unicodeScalars.append(scalar)
        }
        return result
    }

    /// The longest end of `text` within `bytes` UTF-8 bytes, cut between scalars.
    private static func suffix(_ text: String, bytes: Int) -> String {
        var scalars: [Unicode.Scalar] = []
        var count = 0
        for scalar in text.unicodeScalars.reversed() {
            count += scalar.utf8.count
            if count > bytes { break }
            scalars.append(scalar)
        }
        var result = ""
        result.unicodeScalars.append(contentsOf: scalars.reversed())
        return result
    }
}
