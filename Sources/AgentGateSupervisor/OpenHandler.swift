import AgentGatePolicy
import CSupport
import Glibc

/// open, openat, openat2 and creat: performed by the supervisor. The path is resolved by the
/// kernel without side effects (O_PATH, or the parent directory for a create), the decision is
/// made on that resolved path, and then exactly that object is opened and its fd injected.
enum OpenHandler {
    private static let writeIntent = UInt64(O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND)

    /// Whether an fd opened with `flags` can be read: O_RDONLY or O_RDWR (O_WRONLY can't, nor
    /// access mode 3, which Linux keeps for ioctls).
    static func alsoReads(_ flags: UInt64) -> Bool {
        let mode = flags & UInt64(O_ACCMODE)
        return mode == UInt64(O_RDONLY) || mode == UInt64(O_RDWR)
    }

    struct Arguments {
        var dirfd: Int32
        var pathAddress: UInt64
        var flags: UInt64
        var mode: UInt64
        var resolve: UInt64
    }

    static func handle(_ call: TrappedCall, family: SyscallFamily, scratch: ThreadScratch) {
        let n = call.notification, core = call.core
        let args: Arguments
        switch decodeArguments(n, family: family) {
        case .success(let decoded): args = decoded
        case .failure(let failure):
            guard core.listener.isValid(n.id) else { return }
            call.deny(failure, action: .fsRead, target: "?")
            return
        }
        let isWrite = args.flags & UInt64(AGENTGATE_O_PATH) == 0 && args.flags & writeIntent != 0
        let action: ActionKind = isWrite ? .fsWrite : .fsRead

        let length = agentgate_read_string(n.tid, args.pathAddress, scratch.path, ThreadScratch.pathCapacity)
        guard length >= 0 else {
            guard core.listener.isValid(n.id) else { return }
            let errno = Int32(-length)
            call.deny(Refusal(errno, errno == ENAMETOOLONG ? "path argument too long" : "path argument unreadable"), action: action, target: "?")
            return
        }
        // The kernel's order: the flags (decodeArguments), the name (an empty one is ENOENT),
        // a free fd (EMFILE), then the directory fd and the lookup.
        if length == 0 {
            // Names nothing, so nothing is decided or recorded.
            guard core.listener.isValid(n.id) else { return }
            core.listener.fail(n.id, errno: ENOENT)
            return
        }
        let path = String(cBuffer: scratch.path, count: length)
        // RESOLVE_IN_ROOT resolves an absolute path inside the dirfd too.
        let inRoot = args.resolve & UInt64(AGENTGATE_RESOLVE_IN_ROOT) != 0
        let base = AgentDirectory.open(tid: n.tid, dirfd: args.dirfd, path: path, inRoot: inRoot)
        defer { base.close() }
        // The pid, its cwd, its fd table and the bytes just read are only meaningful while this
        // notification is pending: check before using any of them.
        guard core.listener.isValid(n.id) else { return }
        if base.error != 0 {
            if agentgate_fd_table_full(n.tid) == 1 {
                core.listener.fail(n.id, errno: EMFILE)
                return
            }
            let errno = base.error
            call.deny(Refusal(errno, "bad directory fd"), action: action, target: path)
            return
        }
        // Opened by the supervisor, which must not have more privilege than the agent. O_PATH
        // too: it continues in the kernel, but the path is resolved here first, and a lookup
        // made with more rights than the agent's would answer ENOENT where the agent gets
        // EACCES (telling what a directory it can't search holds).
        let acting = core.actAsAgent(tid: n.tid, status: call.process.status)
        defer { core.restoreIdentity(acting.saved) }
        if let refusal = acting.refusal {
            call.deny(Refusal(EACCES, refusal), action: action, target: path)
            return
        }
        perform(call, args: args, path: inRoot && path.hasPrefix("/") ? "." + path : path, base: base, action: action,
                agentStatus: acting.status, scratch: scratch)
    }

    private static func perform(_ call: TrappedCall, args: Arguments, path: String, base: AgentDirectory,
                                action: ActionKind, agentStatus: ProcStatus?, scratch: ThreadScratch) {
        let n = call.notification, core = call.core, process = call.process
        // The agent's controlling terminal, when /dev/tty names another than the supervisor's.
        var terminal: (path: RawPath, device: UInt64)? = nil
        for _ in 0..<4 {
            let prepared = scratch.prepared
            // Resolved from the agent's own bytes (still in scratch.path), not from the text.
            let outcome = terminal.map {
                core.prepare(prepared, base: AT_FDCWD, path: $0.path, flags: args.flags, resolve: 0, tid: n.tid, tgid: process.tgid,
                             writing: action == .fsWrite)
            } ?? core.prepare(prepared, base: base.fd, cPath: scratch.path, flags: args.flags, resolve: args.resolve,
                              tid: n.tid, tgid: process.tgid, writing: action == .fsWrite)
            if let terminal, case .prepared = outcome, prepared.pointee.device_number != terminal.device {
                // Its node isn't that terminal: there's nothing the agent's /dev/tty could be.
                agentgate_open_release(prepared)
                core.listener.fail(n.id, errno: ENXIO)
                return
            }
            let resolved: String
            switch outcome {
            case .failed(let rc):
                // The kernel couldn't resolve it, so the call fails whatever the policy says,
                // with the kernel's own answer (stat, which isn't supervised, tells the same).
                failedLookup(call, action: action, target: PathLexical.absolute(path, base: base.path()), errno: rc)
                return
            case .refused(let target, let reason):
                call.deny(Refusal(EACCES, reason), action: action, target: target)
                return
            case .prepared(let name):
                resolved = name
            }
            // A dynamic loader run as a program opens that program first: it must be the file
            // decided at its exec, whatever its name means now.
            if let refusal = core.images.loaderOpenRefusal(tgid: process.tgid, opened: ImageIdentity(prepared: prepared)) {
                agentgate_open_release(prepared)
                call.deny(Refusal(EACCES, refusal), action: .exec, target: resolved)
                return
            }
            if args.flags & UInt64(Int32(AGENTGATE_O_PATH)) != 0 {
                // An O_PATH fd gives no access to content, and everything done with it later
                // (openat with it as dirfd, reopening it through /proc, execveat) is trapped and
                // decided on its resolved path. ADDFD can't install O_PATH files, so the kernel
                // performs this open itself.
                agentgate_open_release(prepared)
                let verdict = call.decide(action, target: resolved, n)
                call.finish(verdict: verdict, action: action, target: resolved, errno: verdict.letsCallProceed ? nil : verdict.errno(or: EACCES))
                return
            }
            if prepared.pointee.device_number != 0, prepared.pointee.file_type == UInt32(S_IFCHR),
               let route = SupervisorCore.deviceRoutes[prepared.pointee.device_number],
               !call.policy.allowedUnsupervised.contains(route) {
                // A device that does what a denied syscall does (see SupervisorCore.deviceRoutes).
                agentgate_open_release(prepared)
                call.deny(Refusal(EPERM, "\(route.rawValue): unsupervised, denied by default (this device)"), action: action, target: resolved)
                return
            }
            if let reason = call.protectedReason(resolved, isWrite: action == .fsWrite) {
                agentgate_open_release(prepared)
                call.deny(Refusal(EACCES, reason), action: action, target: resolved)
                return
            }
            var verdict = call.decide(action, target: resolved, n)
            var decided = action
            // An fd opened to write that can also read (O_RDWR; O_RDONLY with O_CREAT, O_TRUNC or
            // O_APPEND) is a read too: `cat <> .env` under a rule that denies reading .env only
            // (found by review on 2026-12-07). A rule's denial of the read refuses the open; a
            // policy's default for reads doesn't overrule the write's own decision.
            if verdict.letsCallProceed && action == .fsWrite && Self.alsoReads(args.flags) {
                let read = call.decide(.fsRead, target: resolved, n)
                if !read.letsCallProceed && read.ruleIndex != nil {
                    (verdict, decided) = (read, .fsRead)
                } else if !read.enforced {
                    // Learning (audit mode): the read is recorded as well, so that a policy
                    // suggested from the session allows it (/dev/null opened O_RDWR).
                    call.record(.init(syscall: call.syscall, action: .fsRead, target: resolved, verdict: read))
                }
            }
            guard verdict.letsCallProceed else {
                agentgate_open_release(prepared)
                let errno = verdict.errno(or: EACCES)
                call.finish(verdict: verdict, action: decided, target: resolved, errno: errno)
                return
            }
            if terminal == nil, prepared.pointee.file_type == UInt32(S_IFCHR), prepared.pointee.device_number == ControllingTerminal.device {
                switch ControllingTerminal.of(n.tid) {
                case .supervisors:
                    break // the supervisor's /dev/tty is the agent's terminal
                case .none:
                    agentgate_open_release(prepared)
                    call.finish(verdict: verdict, action: action, target: resolved, errno: ENXIO)
                    return
                case .other(let path, let device):
                    // Opened (and decided) as the terminal device it is.
                    agentgate_open_release(prepared)
                    terminal = (path, device)
                    continue
                }
            }
            let isCreate = prepared.pointee.kind != AGENTGATE_OPEN_EXISTING
            if hasSideEffects(prepared, flags: args.flags) && agentgate_fd_table_full(n.tid) == 1 {
                // The kernel takes the fd number first and fails with EMFILE before it creates,
                // truncates or opens anything (do_sys_openat2): so must we, not create the file
                // and then fail to install it.
                agentgate_open_release(prepared)
                call.finish(verdict: verdict, action: action, target: resolved, errno: EMFILE)
                return
            }
            let umask: UInt32 = isCreate ? (agentStatus ?? call.agentStatus()).umask : 0
            let mayBlock = prepared.pointee.kind == AGENTGATE_OPEN_EXISTING
                && prepared.pointee.file_type == UInt32(S_IFIFO)
                && args.flags & UInt64(O_NONBLOCK | Int32(AGENTGATE_O_PATH)) == 0
            if mayBlock {
                // Opening a FIFO waits for the other end: do it on a thread of its own.
                finishOnOwnThread(prepared, call, args: args, umask: umask, target: resolved, verdict: verdict, action: action)
                return
            }
            // An O_NOFOLLOW open of a regular file is made by name (see agentgate_open_finish):
            // no rename by the agent may swap the name meanwhile.
            let byName = prepared.pointee.kind == AGENTGATE_OPEN_EXISTING && prepared.pointee.parent_fd >= 0
            let fd = byName ? core.namespaceLock.withLock { _ in agentgate_open_finish(prepared, args.flags, args.mode, umask, false) }
                : agentgate_open_finish(prepared, args.flags, args.mode, umask, false)
            if fd == -EWOULDBLOCK && prepared.pointee.kind == AGENTGATE_OPEN_EXISTING {
                // The open would wait (a lease being broken, a device): finish it on a thread
                // of its own so no other notification waits behind it.
                finishOnOwnThread(prepared, call, args: args, umask: umask, target: resolved, verdict: verdict, action: action)
                return
            }
            agentgate_open_release(prepared)
            if fd == -EAGAIN { continue } // a symlink was swapped in after the decision: decide again
            deliver(fd: fd, call, args: args, target: resolved, verdict: verdict, action: action)
            return
        }
        call.deny(Refusal(ELOOP, "path kept changing during the open"), action: action, target: path)
    }

    /// An open whose path the kernel can't resolve (ENOENT, ENOTDIR, ELOOP, EACCES on a
    /// directory…). The kernel takes the fd number before it looks the path up, so an agent at
    /// its fd limit gets EMFILE first.
    private static func failedLookup(_ call: TrappedCall, action: ActionKind, target: String, errno: Int32) {
        let n = call.notification
        if agentgate_fd_table_full(n.tid) == 1 {
            call.core.listener.fail(n.id, errno: EMFILE)
            return
        }
        call.failUnresolved(action: action, target: target, errno: errno)
    }

    /// Whether opening the prepared object does something even if its fd then can't be
    /// installed: creating or truncating a file, or opening a FIFO (its other end sees it), a
    /// device or a socket. Plain opens of existing files and directories have no effect of their
    /// own, so an fd table at its limit is found by the injection failing (EMFILE) instead, at
    /// no cost to every open.
    private static func hasSideEffects(_ prepared: UnsafePointer<agentgate_open_prepared>, flags: UInt64) -> Bool {
        guard prepared.pointee.kind == AGENTGATE_OPEN_EXISTING else { return true }
        let type = prepared.pointee.file_type
        if type == UInt32(S_IFREG) { return flags & UInt64(O_TRUNC) != 0 }
        return type != UInt32(S_IFDIR)
    }

    /// Finishes an open that may wait (a FIFO, a lease being broken) on a thread of its own, so
    /// no other notification waits behind it. Takes ownership of the prepared object fd; when no
    /// thread can be had, the agent's call fails with EAGAIN.
    private static func finishOnOwnThread(_ prepared: UnsafeMutablePointer<agentgate_open_prepared>, _ call: TrappedCall,
                                          args: Arguments, umask: UInt32, target: String, verdict: Verdict, action: ActionKind) {
        let copy = prepared.pointee
        prepared.pointee.object_fd = -1 // ownership moves to the worker
        let started = call.core.blocking.run(call.notification) {
            var owned = copy
            let fd = agentgate_open_finish(&owned, args.flags, args.mode, umask, true)
            agentgate_open_release(&owned)
            deliver(fd: fd, call, args: args, target: target, verdict: verdict, action: action)
        }
        if !started {
            var owned = copy
            agentgate_open_release(&owned)
            deliver(fd: -EAGAIN, call, args: args, target: target, verdict: verdict, action: action)
        }
    }

    /// Injects `fd` (or its errno) into the agent and records the decision.
    private static func deliver(fd: Int32, _ call: TrappedCall, args: Arguments, target: String, verdict: Verdict,
                                action: ActionKind) {
        let n = call.notification, core = call.core
        guard fd >= 0 else {
            call.finish(verdict: verdict, action: action, target: target, errno: -fd)
            return
        }
        var supervisorCopy = fd
        defer { if supervisorCopy >= 0 { agentgate_close(supervisorCopy) } }
        let cloexec = args.flags & UInt64(O_CLOEXEC) != 0
        // The supervisor's own copy of a writable fd must be gone before the agent runs on: the
        // agent may close its fd and exec the file at once, and the kernel refuses to exec a
        // file anyone holds open for writing (ETXTBSY). So a writable fd is installed first,
        // our copy closed, and only then the answer sent.
        let writable = args.flags & UInt64(O_ACCMODE) != UInt64(O_RDONLY)
        var failure: Int32? = nil
        switch core.injection {
        case .addfdSend where !writable:
            let installed = core.listener.inject(n.id, fd: fd, cloexec: cloexec, send: true)
            if installed < 0 {
                failure = -installed
                // Not installed (EMFILE: the agent is at its fd limit): the kernel then leaves
                // the notification unanswered, and the agent would wait forever. Answer it.
                if installed != -ENOENT { core.listener.fail(n.id, errno: -installed) }
            }
        case .addfdSend, .addfdThenSend:
            let reuse = core.hasLeakedFDs ? core.takeLeakedFD(for: n) : -1
            let installed = core.listener.inject(n.id, fd: fd, cloexec: cloexec, targetFD: reuse, send: false)
            agentgate_close(fd)
            supervisorCopy = -1
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
        call.record(.init(syscall: call.syscall, action: action, target: target, verdict: verdict, errno: failure))
    }

    /// openat2 checks every argument, in this order (the kernel's build_open_flags), before any
    /// path is looked up; open and openat ignore what they don't know.
    static func openHowFailure(flags raw: UInt64, mode: UInt64, resolve: UInt64) -> Refusal? {
        let flags = raw & ~UInt64(O_CLOEXEC)
        let tmpfile = UInt64(AGENTGATE_O_TMPFILE_BIT), directory = UInt64(AGENTGATE_O_DIRECTORY)
        if flags & ~UInt64(AGENTGATE_VALID_OPEN_FLAGS) != 0 { return .init(errno: EINVAL, reason: "open_how has unknown flags") }
        if resolve & ~UInt64(AGENTGATE_VALID_RESOLVE_FLAGS) != 0 { return .init(errno: EINVAL, reason: "open_how has unknown resolve flags") }
        let scoped = UInt64(AGENTGATE_RESOLVE_BENEATH | AGENTGATE_RESOLVE_IN_ROOT)
        if resolve & scoped == scoped { return .init(errno: EINVAL, reason: "RESOLVE_BENEATH with RESOLVE_IN_ROOT") }
        let creates = flags & (UInt64(O_CREAT) | tmpfile) != 0
        if creates ? mode & ~0o7777 != 0 : mode != 0 { return .init(errno: EINVAL, reason: "invalid open_how mode") }
        if flags & (directory | UInt64(O_CREAT)) == directory | UInt64(O_CREAT) { return .init(errno: EINVAL, reason: "O_CREAT with O_DIRECTORY") }
        if flags & tmpfile != 0 && (flags & directory == 0 || flags & UInt64(O_ACCMODE) == UInt64(O_RDONLY)) {
            return .init(errno: EINVAL, reason: "invalid O_TMPFILE")
        }
        let path = UInt64(AGENTGATE_O_PATH)
        if flags & path != 0 && flags & ~UInt64(AGENTGATE_O_PATH_FLAGS) != 0 { return .init(errno: EINVAL, reason: "O_PATH with other flags") }
        if resolve & UInt64(AGENTGATE_RESOLVE_CACHED) != 0 && flags & (UInt64(O_TRUNC | O_CREAT) | tmpfile) != 0 {
            return .init(errno: EAGAIN, reason: "RESOLVE_CACHED can't create or truncate")
        }
        return nil
    }

    private static func decodeArguments(_ n: Notification, family: SyscallFamily) -> Result<Arguments, Refusal> {
        func flags(_ raw: UInt64) -> UInt64 { UInt64(UInt32(truncatingIfNeeded: raw)) }
        /// open and openat: what the kernel's build_open_how keeps of the arguments (unknown
        /// flags cleared, O_PATH's companions only, a mode only for a create), then the same
        /// checks as openat2's, before the name is read.
        func legacy(dirfd: Int32, path: UInt64, rawFlags: UInt64, rawMode: UInt64) -> Result<Arguments, Refusal> {
            var kept = flags(rawFlags) & UInt64(AGENTGATE_VALID_OPEN_FLAGS)
            if kept & UInt64(AGENTGATE_O_PATH) != 0 { kept &= UInt64(AGENTGATE_O_PATH_FLAGS) }
            let creates = kept & (UInt64(O_CREAT) | UInt64(AGENTGATE_O_TMPFILE_BIT)) != 0
            if let failure = openHowFailure(flags: kept, mode: creates ? rawMode & 0o7777 : 0, resolve: 0) { return .failure(failure) }
            return .success(Arguments(dirfd: dirfd, pathAddress: path, flags: flags(rawFlags), mode: rawMode & 0o7777, resolve: 0))
        }
        switch family {
        case .open:
            return legacy(dirfd: AT_FDCWD, path: n.arg(0), rawFlags: n.arg(1), rawMode: n.arg(2))
        case .openat:
            return legacy(dirfd: n.intArg(0), path: n.arg(1), rawFlags: n.arg(2), rawMode: n.arg(3))
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
            if let failure = openHowFailure(flags: f, mode: mode, resolve: resolve) { return .failure(failure) }
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

    /// `inRoot`: openat2's RESOLVE_IN_ROOT, under which an absolute path is resolved inside the
    /// directory too.
    static func open(tid: pid_t, dirfd: Int32, path: String, inRoot: Bool = false) -> AgentDirectory {
        if path.hasPrefix("/") && !inRoot { return AgentDirectory(fd: AT_FDCWD, error: 0, owned: false) }
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

/// /dev/tty is the calling process's controlling terminal: opened by the supervisor, it would be
/// the supervisor's. It is the same terminal while the agent stays in the supervisor's session;
/// once the agent has left it (setsid), and maybe taken a terminal of its own (TIOCSCTTY, which
/// it makes itself), its /dev/tty is that terminal, or nothing (ENXIO).
///
/// What the supervisor can't reproduce: a session leader without a controlling terminal that
/// opens a terminal without O_NOCTTY gets it as its controlling terminal. The kernel does that
/// only for an open the process makes itself; an fd opened by the supervisor and injected never
/// does, and letting the agent's own open continue in the kernel would let it swap the path
/// after the decision. Programs that take a terminal with TIOCSCTTY (login_tty, forkpty, ssh,
/// script, tmux, expect) work as they do unsupervised.
enum ControllingTerminal {
    /// /dev/tty's device number (5, 0).
    static let device: UInt64 = 5 << 8

    enum Route {
        case supervisors
        case none
        /// The agent's terminal, by its device node and number.
        case other(RawPath, UInt64)
    }

    /// The controlling terminal of the thread `tid` (tty_nr, field 7 of /proc/TID/stat) against
    /// the supervisor's.
    static func of(_ tid: pid_t) -> Route {
        let agent = ProcStat.field(4, of: tid)
        let supervisor = ProcStat.field(4, of: getpid())
        if agent == supervisor { return .supervisors }
        guard agent > 0 else { return .none }
        let number = UInt32(bitPattern: agent)
        let major = (number >> 8) & 0xfff, minor = (number & 0xff) | ((number >> 12) & 0xfff00)
        let device = UInt64(number)
        // Pseudo-terminal slaves (majors 136-143) have no sysfs entry: /dev/pts/N.
        if (136...143).contains(major) { return .other(RawPath("/dev/pts/\((major - 136) * 256 + minor)"), device) }
        let uevent = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 512) { buffer -> String? in
            let n = agentgate_read_small_file(AT_FDCWD, "/sys/dev/char/\(major):\(minor)/uevent", buffer.baseAddress!, buffer.count)
            return n > 0 ? String(cBuffer: buffer.baseAddress!, count: n) : nil
        }
        guard let name = uevent?.split(separator: "\n").first(where: { $0.hasPrefix("DEVNAME=") })?.dropFirst(8), !name.isEmpty else {
            return .none
        }
        return .other(RawPath("/dev/" + name), device)
    }
}
