import AgentGatePolicy
import CSupport
import Glibc

/// execve and execveat. exec can't be performed on the agent's behalf, so after deciding on
/// the resolved program the kernel is told to continue. The program is resolved and decided
/// on both as named and as resolved (a symlink can't launder a denied program).
enum ExecHandler {
    /// Refuse to inspect more argv than this; the kernel's own limit is about a quarter of the stack.
    static let maxArgvBytes = 4 << 20
    static let maxArgs = 1 << 17

    static func handle(_ n: Notification, family: SyscallFamily, core: SupervisorCore, scratch: ThreadScratch) {
        let syscall = core.table.name(of: n.number)
        let process = core.processes.info(for: n.tid)
        let isAt = family == .execveat
        let dirfd = isAt ? n.intArg(0) : AT_FDCWD
        let pathAddress = isAt ? n.arg(1) : n.arg(0)
        let argvAddress = isAt ? n.arg(2) : n.arg(1)
        let atFlags = isAt ? Int32(truncatingIfNeeded: n.arg(4)) : 0

        let length = agentgate_read_string(n.tid, pathAddress, scratch.path, ThreadScratch.pathCapacity)
        let argv = readArgv(tid: n.tid, address: argvAddress)
        guard length >= 0 else {
            guard core.listener.isValid(n.id) else { return }
            let errno = Int32(-length)
            core.listener.fail(n.id, errno: errno)
            core.recorder.record(.denied(syscall: syscall, action: .exec, target: "?", reason: "program path unreadable", errno: errno),
                                 notification: n, process: process, respondedAt: agentgate_monotonic_ns())
            return
        }
        let path = String(cBuffer: scratch.path, count: length)
        let emptyPath = path.isEmpty && atFlags & Int32(AGENTGATE_AT_EMPTY_PATH) != 0
        let base = AgentDirectory.open(tid: n.tid, dirfd: dirfd, path: emptyPath ? "." : path)
        defer { base.close() }
        guard core.listener.isValid(n.id) else { return }

        guard case .success(let args) = argv else {
            if case .failure(let failure) = argv {
                core.listener.fail(n.id, errno: failure.errno)
                core.recorder.record(.denied(syscall: syscall, action: .exec, target: path, reason: failure.reason, errno: failure.errno),
                                     notification: n, process: process, respondedAt: agentgate_monotonic_ns())
            }
            return
        }
        if base.error != 0 {
            core.listener.fail(n.id, errno: base.error)
            core.recorder.record(.denied(syscall: syscall, action: .exec, target: path, reason: "bad directory fd", errno: base.error),
                                 notification: n, process: process, respondedAt: agentgate_monotonic_ns())
            return
        }

        // Resolve the program as the kernel will (O_PATH: no side effects).
        let prepared = scratch.prepared
        let lookupFlags = UInt64(atFlags & AT_SYMLINK_NOFOLLOW != 0 ? O_NOFOLLOW : 0)
        let rc = agentgate_open_prepare(base.fd, emptyPath ? "." : path, lookupFlags, 0, prepared)
        defer { agentgate_open_release(prepared) }
        let named = emptyPath ? base.path() : LexicalPath.absolute(path, base: base.path())
        guard rc == 0 else {
            let verdict = core.policy.evaluate(.exec, target: named)
            let errno = verdict.enforcedAllow ? -rc : EACCES
            core.listener.fail(n.id, errno: errno)
            core.recorder.record(.init(syscall: syscall, action: .exec, target: named, verdict: verdict, argv: args, errno: errno),
                                 notification: n, process: process, respondedAt: agentgate_monotonic_ns())
            return
        }
        let resolved = String(cBuffer: agentgate_open_resolved(prepared), count: prepared.pointee.resolved_len)
        var verdict = core.policy.evaluate(.exec, target: resolved)
        if named != resolved {
            let asNamed = core.policy.evaluate(.exec, target: named)
            if asNamed.strictness > verdict.strictness { verdict = asNamed }
        }
        guard verdict.enforcedAllow else {
            core.listener.fail(n.id, errno: EACCES)
            core.recorder.record(.init(syscall: syscall, action: .exec, target: resolved, verdict: verdict, argv: args, errno: EACCES),
                                 notification: n, process: process, respondedAt: agentgate_monotonic_ns())
            return
        }
        core.processes.invalidate(n.tid)
        core.listener.continueSyscall(n.id)
        core.recorder.record(.init(syscall: syscall, action: .exec, target: resolved, verdict: verdict, argv: args),
                             notification: n, process: process, respondedAt: agentgate_monotonic_ns())
    }

    struct ArgvFailure: Error {
        let errno: Int32
        let reason: String
    }

    /// Reads the argv array and its strings. Over-long or unreadable argv is an error, never
    /// a guess.
    static func readArgv(tid: pid_t, address: UInt64) -> Result<[String], ArgvFailure> {
        if address == 0 { return .success([]) }
        var result: [String] = []
        var total = 0
        var pointers = [UInt64](repeating: 0, count: 64)
        var index = 0
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: 131_073)
        defer { buffer.deallocate() }
        while true {
            let rc = pointers.withUnsafeMutableBytes {
                agentgate_read_memory(tid, address + UInt64(index * 8), $0.baseAddress, 64 * 8)
            }
            var count = 64
            if rc != 0 {
                // The array may end just before an unmapped page: read pointer by pointer.
                count = 0
                for i in 0..<64 {
                    let one = pointers.withUnsafeMutableBytes {
                        agentgate_read_memory(tid, address + UInt64((index + i) * 8), $0.baseAddress! + i * 8, 8)
                    }
                    if one != 0 { break }
                    count += 1
                    if pointers[i] == 0 { break }
                }
                if count == 0 { return .failure(ArgvFailure(errno: EFAULT, reason: "argv unreadable")) }
            }
            for i in 0..<count {
                let pointer = pointers[i]
                if pointer == 0 { return .success(result) }
                let n = agentgate_read_string(tid, pointer, buffer, 131_073)
                if n == -Int(ENAMETOOLONG) { return .failure(ArgvFailure(errno: E2BIG, reason: "argument too long to inspect")) }
                if n < 0 { return .failure(ArgvFailure(errno: EFAULT, reason: "argv unreadable")) }
                total += n + 1
                if total > maxArgvBytes || result.count >= maxArgs {
                    return .failure(ArgvFailure(errno: E2BIG, reason: "argv too long to inspect"))
                }
                result.append(String(cBuffer: buffer, count: n))
            }
            if count < 64 { return .failure(ArgvFailure(errno: EFAULT, reason: "argv unreadable")) }
            index += 64
        }
    }
}

extension Verdict {
    /// Orders verdicts so the stricter of two wins: deny > ask > allow.
    var strictness: Int {
        switch decision {
        case .allow: return 0
        case .ask: return 1
        default: return 2
        }
    }
}
