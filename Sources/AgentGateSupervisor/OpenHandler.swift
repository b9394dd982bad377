import AgentGatePolicy
import CSupport
import Glibc

/// open, openat, openat2 and creat: performed by the supervisor. The path is resolved by the
/// kernel without side effects (O_PATH, or the parent directory for a create), the decision is
/// made on that resolved path, and then exactly that object is opened and its fd injected.
enum OpenHandler {
    private static let writeIntent = UInt64(O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND)

    struct Arguments {
        var dirfd: Int32
        var pathAddress: UInt64
        var flags: UInt64
        var mode: UInt64
        var resolve: UInt64
    }

    static func handle(_ n: Notification, family: SyscallFamily, core: SupervisorCore, scratch: ThreadScratch) {
        let syscall = core.table.name(of: n.number)
        let process = core.processes.info(for: n.tid)
        let args: Arguments
        switch decodeArguments(n, family: family) {
        case .success(let decoded): args = decoded
        case .failure(let failure):
            guard core.listener.isValid(n.id) else { return }
            core.listener.fail(n.id, errno: failure.errno)
            core.recorder.record(.denied(syscall: syscall, action: .fsRead, target: "?", reason: failure.reason, errno: failure.errno),
                                 notification: n, process: process, respondedAt: agentgate_monotonic_ns())
            return
        }
        let isWrite = args.flags & UInt64(AGENTGATE_O_PATH) == 0 && args.flags & writeIntent != 0
        let action: ActionKind = isWrite ? .fsWrite : .fsRead

        let length = agentgate_read_string(n.tid, args.pathAddress, scratch.path, ThreadScratch.pathCapacity)
        guard length >= 0 else {
            guard core.listener.isValid(n.id) else { return }
            let errno = Int32(-length)
            core.listener.fail(n.id, errno: errno)
            let reason = errno == ENAMETOOLONG ? "path argument too long" : "path argument unreadable"
            core.recorder.record(.denied(syscall: syscall, action: action, target: "?", reason: reason, errno: errno),
                                 notification: n, process: process, respondedAt: agentgate_monotonic_ns())
            return
        }
        let path = String(cBuffer: scratch.path, count: length)
        let base = AgentDirectory.open(tid: n.tid, dirfd: args.dirfd, path: path)
        defer { base.close() }
        // The pid, its cwd, its fd table and the bytes just read are only meaningful while this
        // notification is pending: check before using any of them.
        guard core.listener.isValid(n.id) else { return }
        if base.error != 0 {
            let errno = base.error
            core.listener.fail(n.id, errno: errno)
            core.recorder.record(.denied(syscall: syscall, action: action, target: path, reason: "bad directory fd", errno: errno),
                                 notification: n, process: process, respondedAt: agentgate_monotonic_ns())
            return
        }
        // O_PATH continues in the kernel under the agent's own credentials; everything else is
        // opened by the supervisor, which must not have more privilege than the agent.
        let acting = args.flags & UInt64(Int32(AGENTGATE_O_PATH)) == 0 ? core.actAsAgent(tid: n.tid) : (saved: nil, refusal: nil)
        defer { core.restoreIdentity(acting.saved) }
        if let refusal = acting.refusal {
            core.listener.fail(n.id, errno: EACCES)
            core.recorder.record(.denied(syscall: syscall, action: action, target: path, reason: refusal, errno: EACCES),
                                 notification: n, process: process, respondedAt: agentgate_monotonic_ns())
            return
        }
        perform(n, args: args, path: path, base: base, action: action, syscall: syscall,
                process: process, core: core, scratch: scratch)
    }

    private static func perform(_ n: Notification, args: Arguments, path: String, base: AgentDirectory,
                                action: ActionKind, syscall: String, process: ProcessInfo,
                                core: SupervisorCore, scratch: ThreadScratch) {
        for _ in 0..<4 {
            let prepared = scratch.prepared
            // Resolved from the agent's own bytes (still in scratch.path), not from the text.
            switch core.prepare(prepared, base: base.fd, cPath: scratch.path, flags: args.flags, resolve: args.resolve,
                                tid: n.tid, tgid: process.tgid, writing: action == .fsWrite) {
            case .failed(let rc):
                // The kernel couldn't resolve it. Name it lexically; don't reveal what a denied
                // path holds (e.g. ENOENT vs EACCES) when the policy denies that name.
                let target = LexicalPath.absolute(path, base: base.path())
                let verdict = core.decide(action, target: target, n)
                let errno = verdict.enforcedAllow ? rc : verdict.errno(or: EACCES)
                core.listener.fail(n.id, errno: errno)
                core.recorder.record(.init(syscall: syscall, action: action, target: target, verdict: verdict, errno: errno),
                                     notification: n, process: process, respondedAt: agentgate_monotonic_ns())
                return
            case .refused(let target, let reason):
                core.listener.fail(n.id, errno: EACCES)
                core.recorder.record(.denied(syscall: syscall, action: action, target: target, reason: reason, errno: EACCES),
                                     notification: n, process: process, respondedAt: agentgate_monotonic_ns())
                return
            case .prepared:
                break
            }
            let resolved = SupervisorCore.objectName(prepared)
            // A dynamic loader run as a program opens that program first: it must be the file
            // decided at its exec, whatever its name means now.
            if let refusal = core.images.loaderOpenRefusal(tgid: process.tgid, opened: ImageIdentity(fd: prepared.pointee.object_fd)) {
                agentgate_open_release(prepared)
                core.listener.fail(n.id, errno: EACCES)
                core.recorder.record(.denied(syscall: syscall, action: .exec, target: resolved, reason: refusal, errno: EACCES),
                                     notification: n, process: process, respondedAt: agentgate_monotonic_ns())
                return
            }
            if args.flags & UInt64(Int32(AGENTGATE_O_PATH)) != 0 {
                // An O_PATH fd gives no access to content, and everything done with it later
                // (openat with it as dirfd, reopening it through /proc, execveat) is trapped and
                // decided on its resolved path. ADDFD can't install O_PATH files, so the kernel
                // performs this open itself.
                agentgate_open_release(prepared)
                let verdict = core.decide(action, target: resolved, n)
                if verdict.enforcedAllow {
                    core.listener.continueSyscall(n.id)
                } else {
                    core.listener.fail(n.id, errno: verdict.errno(or: EACCES))
                }
                core.recorder.record(.init(syscall: syscall, action: action, target: resolved, verdict: verdict,
                                           errno: verdict.enforcedAllow ? nil : verdict.errno(or: EACCES)),
                                     notification: n, process: process, respondedAt: agentgate_monotonic_ns())
                return
            }
            if prepared.pointee.device_number != 0, prepared.pointee.file_type == UInt32(S_IFCHR),
               let route = SupervisorCore.deviceRoutes[prepared.pointee.device_number],
               !core.policy.allowedUnsupervised.contains(route) {
                // A device that does what a denied syscall does (see SupervisorCore.deviceRoutes).
                agentgate_open_release(prepared)
                core.listener.fail(n.id, errno: EPERM)
                core.recorder.record(.denied(syscall: syscall, action: action, target: resolved,
                                             reason: "\(route.rawValue): unsupervised, denied by default (this device)", errno: EPERM),
                                     notification: n, process: process, respondedAt: agentgate_monotonic_ns())
                return
            }
            if let reason = core.protectedReason(resolved, isWrite: action == .fsWrite) {
                agentgate_open_release(prepared)
                core.listener.fail(n.id, errno: EACCES)
                core.recorder.record(.denied(syscall: syscall, action: action, target: resolved, reason: reason, errno: EACCES),
                                     notification: n, process: process, respondedAt: agentgate_monotonic_ns())
                return
            }
            let verdict = core.decide(action, target: resolved, n)
            guard verdict.enforcedAllow else {
                agentgate_open_release(prepared)
                let errno = verdict.errno(or: EACCES)
                core.listener.fail(n.id, errno: errno)
                core.recorder.record(.init(syscall: syscall, action: action, target: resolved, verdict: verdict, errno: errno),
                                     notification: n, process: process, respondedAt: agentgate_monotonic_ns())
                return
            }
            let isCreate = prepared.pointee.kind != Int32(AGENTGATE_OPEN_EXISTING.rawValue)
            if hasSideEffects(prepared, flags: args.flags) && agentgate_fd_table_full(n.tid) == 1 {
                // The kernel takes the fd number first and fails with EMFILE before it creates,
                // truncates or opens anything (do_sys_openat2): so must we, not create the file
                // and then fail to install it.
                agentgate_open_release(prepared)
                core.listener.fail(n.id, errno: EMFILE)
                core.recorder.record(.init(syscall: syscall, action: action, target: resolved, verdict: verdict, errno: EMFILE),
                                     notification: n, process: process, respondedAt: agentgate_monotonic_ns())
                return
            }
            let umask: UInt32 = isCreate ? ProcStatus(tid: n.tid).umask : 0
            let mayBlock = prepared.pointee.kind == Int32(AGENTGATE_OPEN_EXISTING.rawValue)
                && prepared.pointee.file_type == UInt32(S_IFIFO)
                && args.flags & UInt64(O_NONBLOCK | Int32(AGENTGATE_O_PATH)) == 0
            if mayBlock {
                // Opening a FIFO waits for the other end: do it on a thread of its own.
                finishOnOwnThread(prepared, n, args: args, umask: umask, target: resolved, verdict: verdict,
                                  action: action, syscall: syscall, process: process, core: core)
                return
            }
            let fd = agentgate_open_finish(prepared, args.flags, args.mode, umask, 0)
            if fd == -EWOULDBLOCK && prepared.pointee.kind == Int32(AGENTGATE_OPEN_EXISTING.rawValue) {
                // The open would wait (a lease being broken, a device): finish it on a thread
                // of its own so no other notification waits behind it.
                finishOnOwnThread(prepared, n, args: args, umask: umask, target: resolved, verdict: verdict,
                                  action: action, syscall: syscall, process: process, core: core)
                return
            }
            agentgate_open_release(prepared)
            if fd == -EAGAIN { continue } // a symlink was swapped in after the decision: decide again
            deliver(fd: fd, n, args: args, target: resolved, verdict: verdict, action: action,
                    syscall: syscall, process: process, core: core)
            return
        }
        core.listener.fail(n.id, errno: ELOOP)
        core.recorder.record(.denied(syscall: syscall, action: action, target: path, reason: "path kept changing during the open", errno: ELOOP),
                             notification: n, process: process, respondedAt: agentgate_monotonic_ns())
    }

    /// Whether opening the prepared object does something even if its fd then can't be
    /// installed: creating or truncating a file, or opening a FIFO (its other end sees it), a
    /// device or a socket. Plain opens of existing files and directories have no effect of their
    /// own, so an fd table at its limit is found by the injection failing (EMFILE) instead, at
    /// no cost to every open.
    private static func hasSideEffects(_ prepared: UnsafePointer<agentgate_open_prepared>, flags: UInt64) -> Bool {
        guard prepared.pointee.kind == Int32(AGENTGATE_OPEN_EXISTING.rawValue) else { return true }
        let type = prepared.pointee.file_type
        if type == UInt32(S_IFREG) { return flags & UInt64(O_TRUNC) != 0 }
        return type != UInt32(S_IFDIR)
    }

    /// Finishes an open that may wait (a FIFO, a lease being broken) on a thread of its own, so
    /// no other notification waits behind it. Takes ownership of the prepared object fd; when no
    /// thread can be had, the agent's call fails with EAGAIN.
    private static func finishOnOwnThread(_ prepared: UnsafeMutablePointer<agentgate_open_prepared>, _ n: Notification,
                                          args: Arguments, umask: UInt32, target: String, verdict: Verdict,
                                          action: ActionKind, syscall: String, process: ProcessInfo, core: SupervisorCore) {
        let copy = prepared.pointee
        prepared.pointee.object_fd = -1 // ownership moves to the worker
        let started = core.blocking.run(n) {
            var owned = copy
            let fd = agentgate_open_finish(&owned, args.flags, args.mode, umask, 1)
            agentgate_open_release(&owned)
            deliver(fd: fd, n, args: args, target: target, verdict: verdict, action: action,
                    syscall: syscall, process: process, core: core)
        }
        if !started {
            var owned = copy
            agentgate_open_release(&owned)
            deliver(fd: -EAGAIN, n, args: args, target: target, verdict: verdict, action: action,
                    syscall: syscall, process: process, core: core)
        }
    }

    /// Injects `fd` (or its errno) into the agent and records the decision.
    private static func deliver(fd: Int32, _ n: Notification, args: Arguments, target: String, verdict: Verdict,
                                action: ActionKind, syscall: String, process: ProcessInfo, core: SupervisorCore) {
        guard fd >= 0 else {
            core.listener.fail(n.id, errno: -fd)
            core.recorder.record(.init(syscall: syscall, action: action, target: target, verdict: verdict, errno: -fd),
                                 notification: n, process: process, respondedAt: agentgate_monotonic_ns())
            return
        }
        defer { agentgate_close(fd) }
        let cloexec = args.flags & UInt64(O_CLOEXEC) != 0
        var failure: Int32? = nil
        switch core.injection {
        case .addfdSend:
            let installed = core.listener.inject(n.id, fd: fd, cloexec: cloexec, send: true)
            if installed < 0 {
                failure = -installed
                // Not installed (EMFILE: the agent is at its fd limit): the kernel then leaves
                // the notification unanswered, and the agent would wait forever. Answer it.
                if installed != -ENOENT { core.listener.fail(n.id, errno: -installed) }
            }
        case .addfdThenSend:
            let reuse = core.hasLeakedFDs ? core.takeLeakedFD(for: n) : -1
            let installed = core.listener.inject(n.id, fd: fd, cloexec: cloexec, targetFD: reuse, send: false)
            if installed < 0 {
                failure = -installed
                if installed != -ENOENT { core.listener.fail(n.id, errno: -installed) }
            } else if core.listener.succeed(n.id, value: Int64(installed)) < 0 {
                // Interrupted between ADDFD and SEND: the fd is in the agent's table but the
                // agent will restart the call. Give the restarted call this same slot.
                core.rememberLeakedFD(installed, for: n)
                failure = ENOENT
            }
        }
        core.recorder.record(.init(syscall: syscall, action: action, target: target, verdict: verdict, errno: failure),
                             notification: n, process: process, respondedAt: agentgate_monotonic_ns())
    }

    struct ArgumentFailure: Error {
        let errno: Int32
        let reason: String
    }

    private static func decodeArguments(_ n: Notification, family: SyscallFamily) -> Result<Arguments, ArgumentFailure> {
        func flags(_ raw: UInt64) -> UInt64 { UInt64(UInt32(truncatingIfNeeded: raw)) }
        switch family {
        case .open:
            return .success(Arguments(dirfd: AT_FDCWD, pathAddress: n.arg(0), flags: flags(n.arg(1)), mode: n.arg(2) & 0o7777, resolve: 0))
        case .openat:
            return .success(Arguments(dirfd: n.intArg(0), pathAddress: n.arg(1), flags: flags(n.arg(2)), mode: n.arg(3) & 0o7777, resolve: 0))
        case .creat:
            return .success(Arguments(dirfd: AT_FDCWD, pathAddress: n.arg(0), flags: UInt64(O_CREAT | O_WRONLY | O_TRUNC),
                                      mode: n.arg(1) & 0o7777, resolve: 0))
        case .openat2:
            let size = n.arg(3)
            guard size >= 24 else { return .failure(.init(errno: EINVAL, reason: "open_how too small")) }
            guard size <= 4096 else { return .failure(.init(errno: E2BIG, reason: "open_how too large")) }
            var how = [UInt64](repeating: 0, count: Int((size + 7) / 8))
            let rc = how.withUnsafeMutableBytes { agentgate_read_memory(n.tid, n.arg(2), $0.baseAddress, Int(size)) }
            guard rc == 0 else { return .failure(.init(errno: -rc, reason: "open_how unreadable")) }
            // Unknown trailing fields must be zero, as the kernel requires.
            if how.count > 3, how[3...].contains(where: { $0 != 0 }) {
                return .failure(.init(errno: E2BIG, reason: "open_how has unknown fields"))
            }
            let (f, mode, resolve) = (how[0], how[1], how[2])
            guard f >> 32 == 0, mode & ~0o7777 == 0 else { return .failure(.init(errno: EINVAL, reason: "invalid open_how")) }
            if mode != 0 && f & UInt64(O_CREAT) == 0 && f & UInt64(AGENTGATE_O_TMPFILE) != UInt64(AGENTGATE_O_TMPFILE) {
                return .failure(.init(errno: EINVAL, reason: "open_how mode without O_CREAT"))
            }
            return .success(Arguments(dirfd: n.intArg(0), pathAddress: n.arg(1), flags: f, mode: mode, resolve: resolve))
        default:
            return .failure(.init(errno: ENOSYS, reason: "not an open"))
        }
    }
}

/// The directory a relative path is resolved against, opened in the supervisor: the agent's
/// cwd or its dirfd, through /proc/TID/cwd or /proc/TID/fd/N (one openat, the same object
/// pidfd_getfd would return). Absolute paths need none.
struct AgentDirectory {
    /// An O_PATH fd, or AT_FDCWD for absolute paths.
    let fd: Int32
    /// The errno for the agent when the directory can't be had (EBADF for a bad dirfd), else 0.
    let error: Int32
    let owned: Bool

    static func open(tid: pid_t, dirfd: Int32, path: String) -> AgentDirectory {
        if path.hasPrefix("/") { return AgentDirectory(fd: AT_FDCWD, error: 0, owned: false) }
        if dirfd != AT_FDCWD && dirfd < 0 { return AgentDirectory(fd: AT_FDCWD, error: EBADF, owned: false) }
        let link = dirfd == AT_FDCWD ? "/proc/\(tid)/cwd" : "/proc/\(tid)/fd/\(dirfd)"
        let fd = agentgate_openat(AT_FDCWD, link, Int32(AGENTGATE_O_PATH), 0)
        if fd < 0 { return AgentDirectory(fd: AT_FDCWD, error: fd == -ENOENT ? EBADF : -fd, owned: false) }
        return AgentDirectory(fd: fd, error: 0, owned: true)
    }

    /// The directory's path, for naming a target the kernel couldn't resolve.
    func path() -> String {
        guard owned else { return "/" }
        return ProcessTable.readLink("/proc/self/fd/\(fd)") ?? "/"
    }

    func close() { if owned { agentgate_close(fd) } }
}
