import AgentGatePolicy
import CSupport
import Glibc

/// unlink, rename, mkdir, link, chmod, chown, truncate, utimes, xattrs…: every path is resolved
/// by the kernel first (the object as an O_PATH fd, or the entry as its parent directory's fd
/// and a name), decided on as resolved, and then the very same syscall is made by the
/// supervisor with `/proc/self/fd/N` or `/proc/self/fd/N/name` in place of each path, so it
/// acts on exactly what was decided whatever the agent changes meanwhile.
enum MutationHandler {
    /// A resolved operand: the path to hand the kernel, and what was decided on.
    private struct Resolved {
        var fd: Int32
        var safePath: [CChar]
        var target: String
        var isDirectory: Bool
        /// The object is a symlink (an entry not followed, or an fd of one).
        var isSymlink = false
        /// Resolved as a directory entry (parent and name), not as an object.
        var isEntry = false
        /// For an entry operand: whether the name is there (as anything, a dangling link too).
        var exists = false
        /// For an entry operand: the final component is ".", ".." or "/" (agentgate_entry_type).
        var lastType = AGENTGATE_ENTRY_NAME
        /// For an entry operand: the name was written with a trailing slash.
        var trailingSlash = false
        /// For an entry operand: the agent may not search its parent (the lookup's EACCES).
        var searchDenied = false
    }

    /// The errno the kernel fails an unlink or rename with after looking its names up and before
    /// it checks any permission (do_unlinkat, do_renameat2): a name to remove or move away that
    /// isn't there (ENOENT), "name/" that isn't a directory (ENOTDIR, or EISDIR for unlink), an
    /// existing destination under RENAME_NOREPLACE (EEXIST). nil when the call can go on to be
    /// decided. rmdir of a non-directory is left to the decision: the kernel checks the
    /// permission first there (may_delete).
    private static func lookupFailure(_ syscall: String, flags: Int32, operands r: [Resolved]) -> Int32? {
        let isUnlink = (syscall == "unlink" || syscall == "unlinkat") && flags & Int32(AGENTGATE_AT_REMOVEDIR) == 0
        let isRemoveDirectory = syscall == "rmdir" || syscall == "unlinkat" && !isUnlink
        let isRename = syscall == "rename" || syscall == "renameat" || syscall == "renameat2"
        guard isUnlink || isRemoveDirectory || isRename, let source = r.first, source.isEntry else { return nil }
        if source.searchDenied { return EACCES }
        if !source.exists { return ENOENT }
        if isUnlink && source.trailingSlash { return source.isDirectory ? EISDIR : ENOTDIR }
        guard isRename, r.count == 2, r[1].isEntry else { return nil }
        let destination = r[1]
        if destination.searchDenied { return EACCES }
        let renameFlags = syscall == "renameat2" ? flags : 0
        if renameFlags & 1 /* RENAME_NOREPLACE */ != 0 && destination.exists { return EEXIST }
        if renameFlags & 2 /* RENAME_EXCHANGE */ != 0 {
            if !destination.exists { return ENOENT }
            if (source.trailingSlash && !source.isDirectory) || (destination.trailingSlash && !destination.isDirectory) { return ENOTDIR }
            return nil
        }
        if !source.isDirectory && (source.trailingSlash || destination.trailingSlash) { return ENOTDIR }
        return nil
    }

    /// The syscalls that take AT_EMPTY_PATH: the object is then the fd itself.
    private static let acceptsEmptyPath: Set<String> = ["linkat", "fchmodat2", "fchownat", "utimensat"]

    /// The AT_* (or RENAME_*) flags each call accepts: any other bit fails it with EINVAL before
    /// any path is looked at, as the kernel checks them first.
    private static let validFlags: [String: Int32] = [
        "unlinkat": Int32(AGENTGATE_AT_REMOVEDIR),
        "renameat2": 1 | 2 | 4, // RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT
        "linkat": Int32(AGENTGATE_AT_SYMLINK_FOLLOW | AGENTGATE_AT_EMPTY_PATH),
        "fchmodat2": Int32(AGENTGATE_AT_SYMLINK_NOFOLLOW | AGENTGATE_AT_EMPTY_PATH),
        "fchownat": Int32(AGENTGATE_AT_SYMLINK_NOFOLLOW | AGENTGATE_AT_EMPTY_PATH),
        "utimensat": Int32(AGENTGATE_AT_SYMLINK_NOFOLLOW | AGENTGATE_AT_EMPTY_PATH),
    ]

    /// What the kernel answers from the arguments alone, before it copies a name or looks at a
    /// directory fd: invalid flags (EINVAL), a mode of no file type (mknod), a negative length
    /// (truncate), an xattr's flags or name, an empty symlink target, and utimensat's times
    /// that change nothing (0, with no lookup at all). Nil when the call goes on. Nothing read
    /// here is used for a decision; the caller checks the notification before answering.
    private static func earlyAnswer(_ call: TrappedCall, spec: MutationSpec) -> Int32? {
        let n = call.notification, syscall = call.syscall
        let flags = spec.flagsArg.map { Int32(truncatingIfNeeded: n.arg($0)) } ?? 0
        switch syscall {
        case "utimensat":
            if n.arg(2) != 0 {
                var times = [Int64](repeating: 0, count: 4)
                let rc = times.withUnsafeMutableBytes { agentgate_read_memory(n.tid, n.arg(2), $0.baseAddress, 32) }
                if rc != 0 { return -rc }
                if times[1] == Int64(AGENTGATE_UTIME_OMIT) && times[3] == Int64(AGENTGATE_UTIME_OMIT) { return 0 }
            }
            if n.arg(1) == 0 {
                // utimensat(fd, NULL, …) takes no flags; utimensat(AT_FDCWD, NULL, …) has no name.
                if n.intArg(0) != AT_FDCWD { return flags != 0 ? EINVAL : nil }
                return flags & ~(validFlags[syscall] ?? 0) != 0 ? EINVAL : EFAULT
            }
        case "futimesat":
            // No name and no dirfd: a name is needed, and NULL isn't one.
            if n.arg(1) == 0 && n.intArg(0) == AT_FDCWD { return EFAULT }
        case "mknod", "mknodat":
            let mode = UInt32(truncatingIfNeeded: n.arg(syscall == "mknod" ? 1 : 2))
            switch mode & UInt32(S_IFMT) {
            case 0, UInt32(S_IFREG), UInt32(S_IFCHR), UInt32(S_IFBLK), UInt32(S_IFIFO), UInt32(S_IFSOCK): break
            case UInt32(S_IFDIR): return EPERM
            default: return EINVAL
            }
        case "truncate":
            if Int64(bitPattern: n.arg(1)) < 0 { return EINVAL }
        case "setxattr", "lsetxattr", "removexattr", "lremovexattr":
            if syscall.hasSuffix("setxattr") && Int32(truncatingIfNeeded: n.arg(4)) & ~Int32(3) != 0 { return EINVAL } // XATTR_CREATE, XATTR_REPLACE
            var name = [CChar](repeating: 0, count: 257)
            let length = agentgate_read_string(n.tid, n.arg(1), &name, name.count)
            if length == -Int(EFAULT) { return EFAULT }
            if length == 0 || length > 255 || length == -Int(ENAMETOOLONG) { return ERANGE } // XATTR_NAME_MAX
            if syscall.hasSuffix("setxattr") && n.arg(3) > 65536 { return E2BIG } // XATTR_SIZE_MAX
        case "symlink", "symlinkat":
            var target = [CChar](repeating: 0, count: 2)
            let length = agentgate_read_string(n.tid, n.arg(0), &target, target.count)
            if length == -Int(EFAULT) { return EFAULT }
            if length == 0 { return ENOENT }
        default:
            break
        }
        if let valid = validFlags[syscall] {
            // Invalid flags fail the call before anything is looked up or changed.
            let renameConflict = syscall == "renameat2" && flags & 2 != 0 && flags & (1 | 4) != 0
            if flags & ~valid != 0 || renameConflict { return EINVAL }
        }
        return nil
    }

    /// Whether operand `index` of `syscall` is an entry the call creates (filename_create in the
    /// kernel): an existing name fails it with EEXIST before any permission is checked.
    private static func createsEntry(_ syscall: String, operand index: Int) -> Bool {
        switch syscall {
        case "mkdir", "mkdirat", "mknod", "mknodat", "symlink", "symlinkat": return true
        case "link", "linkat": return index == 1
        default: return false
        }
    }

    /// Whether operand `index` of `syscall` names where a whole tree may appear: a new symlink,
    /// which may lead anywhere; a rename's destination (both names for RENAME_EXCHANGE) when
    /// what moves there is a directory or a symlink; a hard link's new name when what is linked
    /// is a symlink (linkat without AT_SYMLINK_FOLLOW links the symlink itself; found by a review
    /// on 2026-12-07). Every path below that name then reaches the tree's files, which no
    /// decision on them allowed. A regular file renamed or linked into place (git's HEAD.lock
    /// to HEAD) brings nothing below it.
    private static func placesTree(_ syscall: String, flags: Int32, operand index: Int, resolved: [Resolved]) -> Bool {
        func carriesTree(_ operand: Int) -> Bool {
            operand < resolved.count && (resolved[operand].isDirectory || resolved[operand].isSymlink)
        }
        switch syscall {
        case "symlink", "symlinkat": return true
        case "rename", "renameat", "link", "linkat": return index == 1 && carriesTree(0)
        case "renameat2": return index == 1 ? carriesTree(0) : flags & 2 != 0 && carriesTree(1)
        default: return false
        }
    }

    /// Whether operand `index` of `syscall` names an entry to create, remove or rename, rather
    /// than an object reached without following a final symlink (lchown, the source of a link).
    /// A final ".", ".." or "/" there makes the kernel fail the call whatever the permissions.
    private static func namesEntryOnly(_ syscall: String, operand index: Int) -> Bool {
        switch syscall {
        case "unlink", "unlinkat", "rmdir", "rename", "renameat", "renameat2": return true
        default: return createsEntry(syscall, operand: index)
        }
    }

    static func handle(_ call: TrappedCall, spec: MutationSpec, scratch: ThreadScratch) {
        let n = call.notification, core = call.core, syscall = call.syscall
        if let fdArg = spec.fdArg {
            handleDescriptor(call, fdArg: fdArg, memory: spec.memory)
            return
        }
        if let answer = earlyAnswer(call, spec: spec) {
            guard core.listener.isValid(n.id) else { return }
            if answer == 0 { core.listener.succeed(n.id, value: 0) } else { core.listener.fail(n.id, errno: answer) }
            return
        }
        if (syscall == "utimensat" || syscall == "futimesat") && n.arg(1) == 0 {
            // No name: the times of the dirfd's own file (utimensat(fd, NULL, …), futimesat too).
            handleDescriptor(call, fdArg: 0, memory: [.fixed(arg: 2, bytes: 32)])
            return
        }
        let flags = spec.flagsArg.map { Int32(truncatingIfNeeded: n.arg($0)) } ?? 0

        // Read every path and pointer argument, and open every base directory, before the
        // single ID_VALID check that makes them trustworthy.
        var paths: [String] = []
        var rawPaths: [RawPath] = []
        var bases: [AgentDirectory] = []
        defer { for base in bases { base.close() } }
        var failure: Refusal? = nil
        var emptyName = false
        for operand in spec.operands {
            let length = agentgate_read_string(n.tid, n.arg(operand.pathArg), scratch.path, ThreadScratch.pathCapacity)
            if length < 0 {
                failure = Refusal(Int32(-length), length == -Int(ENAMETOOLONG) ? "path argument too long" : "path argument unreadable")
                break
            }
            let path = String(cBuffer: scratch.path, count: length)
            let dirfd = operand.dirfdArg.map { n.intArg($0) } ?? AT_FDCWD
            let emptyPath = path.isEmpty && flags & Int32(AGENTGATE_AT_EMPTY_PATH) != 0 && acceptsEmptyPath.contains(syscall)
            if path.isEmpty && !emptyPath {
                // The kernel refuses an empty name as it copies it, before any directory fd. It
                // names nothing, so nothing is decided or recorded.
                emptyName = true
                break
            }
            paths.append(path)
            rawPaths.append(RawPath(cBuffer: scratch.path, count: length))
            bases.append(AgentDirectory.open(tid: n.tid, dirfd: dirfd, path: emptyPath ? "." : path))
        }
        if emptyName {
            guard core.listener.isValid(n.id) else { return }
            core.listener.fail(n.id, errno: ENOENT)
            return
        }
        var copies: [[UInt8]?] = []
        if failure == nil {
            for argument in spec.memory {
                switch copy(argument, n) {
                case .success(let bytes): copies.append(bytes)
                case .failure(let error): failure = error
                }
                if failure != nil { break }
            }
        }
        guard core.listener.isValid(n.id) else { return }
        if let failure {
            call.deny(failure, action: .fsWrite, target: paths.first ?? "?")
            return
        }
        if let modeArg = spec.createModeArg, syscall.hasPrefix("mknod") {
            // A device node reaches a disk or kernel memory under a name of the agent's choosing.
            // A character device 0:0 is a whiteout (overlayfs), which reaches no device and
            // which the kernel lets anyone make.
            let type = UInt32(truncatingIfNeeded: n.arg(modeArg)) & UInt32(S_IFMT)
            let isWhiteout = type == UInt32(S_IFCHR) && UInt32(truncatingIfNeeded: n.arg(modeArg + 1)) == 0
            if (type == UInt32(S_IFBLK) || type == UInt32(S_IFCHR)) && !isWhiteout && !call.policy.allowedUnsupervised.contains(.kernel) {
                call.deny(Refusal(EPERM, "device nodes are denied by default"), action: .fsWrite, target: paths.first ?? "?")
                return
            }
        }
        let acting = core.actAsAgent(tid: n.tid, status: call.process.status)
        defer { core.restoreIdentity(acting.saved) }
        if let refusal = acting.refusal {
            call.deny(Refusal(EACCES, refusal), action: .fsWrite, target: paths.first ?? "?")
            return
        }

        // A person is never waited for under the namespace lock (every other mutation would wait
        // too): an operand the policy asks about sends the call out of the lock to ask, then back
        // to resolve and decide again, with the answer for that very target.
        var answers: [String: Verdict] = [:]
        for _ in 0..<4 {
            var asking: AskedOperand?
            core.namespaceLock.withLock { _ in
                decideAndPerform(call, spec: spec, flags: flags, paths: paths, rawPaths: rawPaths, bases: bases, copies: copies,
                                 agentStatus: acting.status, scratch: scratch, answers: answers, asking: &asking)
            }
            guard let asking else { return }
            answers[asking.key] = call.settled(asking.verdict, asking.kind, target: asking.target, argv: nil)
        }
        call.deny(Refusal(EACCES, "the paths kept changing while a person was asked"), action: .fsWrite, target: paths.first ?? "?")
    }

    /// An operand the policy asks about, decided after the answer.
    struct AskedOperand {
        let kind: ActionKind
        let target: String
        let verdict: Verdict

        var key: String { Self.key(kind, target) }
        static func key(_ kind: ActionKind, _ target: String) -> String { kind.name + "\u{0}" + target }
    }

    /// Resolves, decides and performs; runs under the namespace lock. Every operand is resolved
    /// before any is decided, as the kernel looks up every path before it acts: a missing
    /// parent of the second path is answered as the kernel answers it, whatever the first is.
    /// `agentStatus`: the agent's /proc/TID/status when it was read for this notification.
    /// `answers`: the answers given for operands asked about; `asking` is set, with nothing
    /// answered or performed, when one must be asked about first.
    private static func decideAndPerform(_ call: TrappedCall, spec: MutationSpec, flags: Int32, paths: [String], rawPaths: [RawPath],
                                         bases: [AgentDirectory], copies: [[UInt8]?], agentStatus: ProcStatus?, scratch: ThreadScratch,
                                         answers: [String: Verdict], asking: inout AskedOperand?) {
        let n = call.notification, core = call.core, syscall = call.syscall, process = call.process
        /// The verdict, or nil when a person must be asked first (`asking`).
        func decide(_ kind: ActionKind, _ target: String) -> Verdict? {
            if !answers.isEmpty, let answered = answers[AskedOperand.key(kind, target)] { return answered }
            let verdict = call.decideBeforeAsking(kind, target: target, n)
            guard verdict.decision == .ask && verdict.enforced else { return verdict }
            asking = AskedOperand(kind: kind, target: target, verdict: verdict)
            return nil
        }
        var resolved: [Resolved] = []
        defer { for r in resolved { agentgate_close(r.fd) } }
        for (index, operand) in spec.operands.enumerated() {
            let base = bases[index]
            if base.error != 0 {
                respond(call, errno: base.error, target: paths[index], verdict: nil, reason: "bad directory fd")
                return
            }
            let emptyPath = paths[index].isEmpty && flags & Int32(AGENTGATE_AT_EMPTY_PATH) != 0 && acceptsEmptyPath.contains(syscall)
            var kind: PathOperandKind
            switch operand.kind {
            case _ where emptyPath: kind = .object // AT_EMPTY_PATH: the fd itself
            case .objectUnless(let flag): kind = flags & flag != 0 ? .noFollow : .object
            case .entryUnless(let flag): kind = flags & flag != 0 || emptyPath ? .object : .entry
            default: kind = emptyPath ? .object : operand.kind
            }
            // "link/" names what the link points to: the kernel follows a final symlink when a
            // slash comes after it, so the decision must be on that object too.
            if kind == .noFollow { kind = rawPaths[index].hasTrailingSlash ? .object : .entry }
            var outcome = resolve(rawPaths[index], base: base, kind: kind, emptyPath: emptyPath, scratch: scratch,
                                  core: core, tid: n.tid, tgid: process.tgid)
            if case .resolved(let entry) = outcome, entry.lastType != AGENTGATE_ENTRY_NAME,
               !namesEntryOnly(syscall, operand: index) {
                // ".", ".." or "/" reached without following (lchown("."), the source of a
                // link): the object is that directory.
                agentgate_close(entry.fd)
                outcome = resolve(rawPaths[index], base: base, kind: .object, emptyPath: false, scratch: scratch,
                                  core: core, tid: n.tid, tgid: process.tgid, dots: true)
            }
            switch outcome {
            case .failed(let errno):
                // The kernel can't resolve it (ENOTDIR for "file/", ENOENT…).
                call.failUnresolved(action: .fsWrite, target: PathLexical.absolute(paths[index], base: base.path()), errno: errno)
                return
            case .refused(let target, let reason):
                respond(call, errno: EACCES, target: target, verdict: nil, reason: reason)
                return
            case .resolved(let r):
                resolved.append(r)
            }
        }

        // A final ".", ".." or "/" where an entry is created, removed or renamed: the kernel
        // fails the call before it checks a permission or changes anything (EEXIST, EISDIR,
        // EBUSY, EINVAL or ENOTEMPTY, by call). It is made as it is, with nothing to decide:
        // `tar` creates "." with mkdirat and expects EEXIST.
        let inert = resolved.contains { $0.lastType != AGENTGATE_ENTRY_NAME }

        // A name to remove or move that isn't there fails before any permission is checked;
        // only a rename across mounts (EXDEV) and a read-only mount (EROFS) fail earlier.
        if !inert, let errno = lookupFailure(syscall, flags: flags, operands: resolved) {
            var readOnly: Int32 = 0, mount: UInt64 = 0, otherReadOnly: Int32 = 0, otherMount: UInt64 = 0
            var answer = errno
            if agentgate_mount_of(resolved[0].fd, &readOnly, &mount) != 0 {
                answer = EIO // can't tell: the call fails either way, never performed
            } else if resolved.count == 2, agentgate_mount_of(resolved[1].fd, &otherReadOnly, &otherMount) == 0, otherMount != mount {
                answer = EXDEV
            } else if readOnly != 0 {
                answer = EROFS
            }
            core.listener.fail(n.id, errno: answer)
            return
        }

        // Decide each operand.
        var verdicts: [Verdict] = []
        for (index, operand) in spec.operands.enumerated() where !inert {
            let r = resolved[index]
            // A name that is already there can't be created: the kernel answers EEXIST before
            // it checks any permission, and so does the supervisor, with no decision to make or
            // record (stat, which isn't supervised, tells the same), the supervisor's own files
            // and directories included. `mkdir -p` and recursive mkdirs (Node's gives up on any
            // other errno) then pass through existing directories the policy doesn't let the
            // agent write. A link's source is looked up first: it must be there for EEXIST to
            // be the answer.
            if r.exists && createsEntry(syscall, operand: index) && resolved[..<index].allSatisfy({ !$0.isEntry || $0.exists }) {
                core.listener.fail(n.id, errno: EEXIST)
                return
            }
            if let reason = call.protectedReason(r.target, isWrite: true) {
                respond(call, errno: EACCES, target: r.target, verdict: nil, reason: reason)
                return
            }
            guard var verdict = decide(.fsWrite, r.target) else { return }
            // renameat2(RENAME_EXCHANGE) moves the destination too: it's a source as well.
            let exchanges = syscall == "renameat2" && flags & 2 != 0
            if verdict.decision.allows && (operand.alsoRead || exchanges) {
                guard let read = decide(.fsRead, r.target) else { return }
                if !read.decision.allows { verdict = read }
                // Moving a directory moves everything under it: refuse when the policy
                // protects anything below it.
                else if r.isDirectory && spec.operands.count == 2
                            && (call.policy.protectsDescendants(of: r.target) || core.holdsProtectedFile(r.target)
                                || call.policyVersion.symlinkAliases.holdsPlace(within: r.target)) {
                    respond(call, errno: EACCES, target: r.target, verdict: nil,
                            reason: "the directory holds paths the policy protects")
                    return
                }
            }
            // A tree put in place at once (a directory renamed, a symlink made) where the policy
            // protects paths below: ~/.config is writable, ~/.config/git/config is not, and a
            // ready-made ~/.config renamed into place would bring one.
            if verdict.decision.allows && placesTree(syscall, flags: flags, operand: index, resolved: resolved)
                && (call.policy.protectsDescendants(of: r.target, kinds: [.fsWrite]) || core.holdsProtectedFile(r.target)) {
                respond(call, errno: EACCES, target: r.target, verdict: nil,
                        reason: "the policy protects paths below it, which a tree moved or linked there would fill")
                return
            }
            guard verdict.letsCallProceed else {
                respond(call, errno: verdict.errno(or: EACCES), target: r.target, verdict: verdict, reason: nil)
                return
            }
            verdicts.append(verdict)
        }

        if syscall == "truncate", let object = resolved.first {
            truncate(call, object: object, verdict: verdicts.last)
            return
        }
        // Perform the call with safe paths and copied memory in place of the agent's pointers.
        var args = (0..<6).map { n.arg($0) }
        let buffers = CBuffers()
        let pathPointers = resolved.map { buffers.copy($0.safePath.map { UInt8(bitPattern: $0) }) }
        let memoryPointers = copies.map { $0.map { buffers.copy($0) } }
        let result: Int = {
                for (index, operand) in spec.operands.enumerated() {
                    args[operand.pathArg] = UInt64(UInt(bitPattern: pathPointers[index]))
                    if let dirfdArg = operand.dirfdArg { args[dirfdArg] = UInt64(bitPattern: Int64(AT_FDCWD)) }
                }
                for (index, argument) in spec.memory.enumerated() {
                    let pointer = memoryPointers[index].map { UInt64(UInt(bitPattern: $0)) } ?? 0
                    switch argument {
                    case .string(let arg), .fixed(let arg, _), .sized(let arg, _): args[arg] = pointer
                    }
                }
                if let flagsArg = spec.flagsArg, acceptsEmptyPath.contains(syscall) {
                    var f = Int32(truncatingIfNeeded: args[flagsArg])
                    let emptyPath = paths[0].isEmpty && f & Int32(AGENTGATE_AT_EMPTY_PATH) != 0
                    f &= ~Int32(AGENTGATE_AT_EMPTY_PATH) // paths are never empty now
                    if emptyPath {
                        // The fd's object is reached through /proc/self/fd/N, which must be
                        // followed: linkat follows it only with AT_SYMLINK_FOLLOW, and
                        // AT_SYMLINK_NOFOLLOW would act on the magic link itself.
                        if syscall == "linkat" { f |= Int32(AGENTGATE_AT_SYMLINK_FOLLOW) } else { f &= ~Int32(AGENTGATE_AT_SYMLINK_NOFOLLOW) }
                    }
                    args[flagsArg] = UInt64(UInt32(bitPattern: f))
                }
                if let modeArg = spec.createModeArg, !(resolved.first.map { agentgate_has_default_acl($0.fd) } ?? false) {
                    // The umask, unless the directory has a default ACL, which then decides
                    // the mode instead (the supervisor's own umask is 0).
                    args[modeArg] &= ~UInt64((agentStatus ?? call.agentStatus()).umask) | ~UInt64(0o777)
                }
                return agentgate_syscall6(Int(n.number), args[0], args[1], args[2], args[3], args[4], args[5])
        }()
        let verdict = verdicts.last ?? Verdict(decision: .allow, ruleIndex: nil, reason: .matchedRule)
        if result < 0 { core.listener.fail(n.id, errno: Int32(-result)) } else { core.listener.succeed(n.id, value: Int64(result)) }
        if inert { return } // nothing was decided, and the kernel changed nothing
        call.record(.init(syscall: syscall, action: .fsWrite, target: resolved.map(\.target).joined(separator: " -> "),
                          verdict: verdict, errno: result < 0 ? Int32(-result) : nil))
    }

    /// truncate(path, length) on the decided object. A lease on the file (F_SETLEASE, which the
    /// agent may take on its own files) makes truncate wait up to the lease-break time, and a
    /// receiver thread must never wait for the agent: a regular file is opened non-blocking
    /// first (breaking the lease without waiting), and when a lease is there the wait happens
    /// on a blocking-operation worker, outside the namespace lock.
    private static func truncate(_ call: TrappedCall, object: Resolved, verdict: Verdict?) {
        let n = call.notification, core = call.core
        let length = Int64(bitPattern: n.arg(1))
        let verdict = verdict ?? Verdict(decision: .allow, ruleIndex: nil, reason: .matchedRule)
        @Sendable func answer(_ result: Int) {
            call.reply(result, verdict: verdict, action: .fsWrite, target: object.target, recordedAs: "truncate")
        }
        var info = stat()
        guard fstat(object.fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            // Not a regular file: no lease can be there, and the kernel's answer (EISDIR, EINVAL)
            // comes at once.
            let result = object.safePath.withUnsafeBufferPointer { path in
                agentgate_syscall6(Int(n.number), UInt64(UInt(bitPattern: path.baseAddress)), n.arg(1), 0, 0, 0, 0)
            }
            answer(result)
            return
        }
        if length > Int64(info.st_size) {
            // Growing past the agent's RLIMIT_FSIZE: EFBIG and SIGXFSZ, as the kernel answers
            // the agent (the supervisor's own limit isn't the one that counts).
            var limit: UInt64 = .max
            if agentgate_file_size_limit(n.tid, &limit) == 0, limit != .max, UInt64(length) > limit {
                _ = agentgate_tgkill(call.process.tgid, n.tid, SIGXFSZ)
                answer(-Int(EFBIG))
                return
            }
        }
        let link = "/proc/self/fd/\(object.fd)"
        let fd = agentgate_openat(AT_FDCWD, link, O_WRONLY | O_NONBLOCK | O_NOCTTY, 0)
        if fd >= 0 {
            defer { agentgate_close(fd) }
            answer(Glibc.ftruncate(fd, off_t(length)) == 0 ? 0 : -Int(Glibc.errno))
            return
        }
        guard fd == -EWOULDBLOCK else { answer(Int(fd)); return }
        // A lease is being broken: wait for it on a worker, on a reference of our own to the file.
        let held = agentgate_openat(AT_FDCWD, link, Int32(AGENTGATE_O_PATH), 0)
        guard held >= 0 else { answer(Int(held)); return }
        let started = core.blocking.run(n) {
            let blocking = agentgate_openat(AT_FDCWD, "/proc/self/fd/\(held)", O_WRONLY | O_NOCTTY, 0)
            agentgate_close(held)
            guard blocking >= 0 else { answer(Int(blocking)); return }
            defer { agentgate_close(blocking) }
            answer(Glibc.ftruncate(blocking, off_t(length)) == 0 ? 0 : -Int(Glibc.errno))
        }
        if !started {
            agentgate_close(held)
            answer(-Int(EAGAIN))
        }
    }

    /// fchmod, fchown, fsetxattr, fremovexattr, futimens: the agent's file is taken with
    /// pidfd_getfd (the object itself, whatever the fd number means later), decided as fs_write
    /// on its path, and changed through the supervisor's copy.
    static func handleDescriptor(_ call: TrappedCall, fdArg: Int, memory: [MemoryArgument]) {
        let n = call.notification, core = call.core
        let fd = OwnedFD.copy(of: n.intArg(fdArg), from: n.tid)
        var copies: [[UInt8]?] = []
        var failure: Refusal? = nil
        for argument in memory {
            switch copy(argument, n) {
            case .success(let bytes): copies.append(bytes)
            case .failure(let error): failure = error
            }
            if failure != nil { break }
        }
        guard core.listener.isValid(n.id) else { return }
        guard fd.raw >= 0 else {
            respond(call, errno: fd.raw == -EBADF ? EBADF : -fd.raw, target: "fd:\(n.intArg(fdArg))", verdict: nil, reason: "no such fd")
            return
        }
        if let failure {
            respond(call, errno: failure.code, target: "fd:\(n.intArg(fdArg))", verdict: nil, reason: failure.reason)
            return
        }
        let acting = core.actAsAgent(tid: n.tid)
        defer { core.restoreIdentity(acting.saved) }
        if let refusal = acting.refusal {
            respond(call, errno: EACCES, target: "fd:\(n.intArg(fdArg))", verdict: nil, reason: refusal)
            return
        }
        let target = SupervisorCore.descriptorName(fd.raw)
        if let reason = call.protectedReason(target, isWrite: true) {
            respond(call, errno: EACCES, target: target, verdict: nil, reason: reason)
            return
        }
        let verdict = call.decide(.fsWrite, target: target, n)
        guard verdict.letsCallProceed else {
            respond(call, errno: verdict.errno(or: EACCES), target: target, verdict: verdict, reason: nil)
            return
        }
        var args = (0..<6).map { n.arg($0) }
        let buffers = CBuffers()
        for (index, argument) in memory.enumerated() {
            let pointer = copies[index].map { UInt64(UInt(bitPattern: buffers.copy($0))) } ?? 0
            switch argument {
            case .string(let arg), .fixed(let arg, _), .sized(let arg, _): args[arg] = pointer
            }
        }
        let result = fd.withRaw { raw in
            args[fdArg] = UInt64(UInt32(bitPattern: raw))
            return agentgate_syscall6(Int(n.number), args[0], args[1], args[2], args[3], args[4], args[5])
        }
        call.reply(result, verdict: verdict, action: .fsWrite, target: target)
    }

    private static func respond(_ call: TrappedCall, errno: Int32, target: String, verdict: Verdict?, reason: String?) {
        call.fail(errno, action: .fsWrite, target: target, verdict: verdict, reason: reason ?? "denied")
    }

    private enum Resolution {
        case resolved(Resolved)
        case failed(errno: Int32)
        case refused(target: String, reason: String)
    }

    /// `dots`: the path ends in ".", ".." or "/" and names the directory itself.
    private static func resolve(_ path: RawPath, base: AgentDirectory, kind: PathOperandKind, emptyPath: Bool,
                                scratch: ThreadScratch, core: SupervisorCore, tid: pid_t, tgid: pid_t, dots: Bool = false) -> Resolution {
        if kind == .entry {
            var entry = agentgate_path_entry()
            let target: String
            switch core.resolveEntry(&entry, base: base.fd, path: path, tid: tid, tgid: tgid) {
            case .prepared(let name): target = name
            case .failed(let errno): return .failed(errno: errno)
            case .refused(let target, let reason): return .refused(target: target, reason: reason)
            }
            // The name stays bytes (a name needn't be UTF-8): the call is made on exactly these.
            let name: [CChar] = withUnsafeBytes(of: &entry.name) { raw in raw.prefix { $0 != 0 }.map { CChar(bitPattern: $0) } } + [0]
            if entry.last_type != AGENTGATE_ENTRY_NAME {
                // ".", ".." or "/": the kernel sees the same kind of final component in these.
                let dots = entry.last_type == AGENTGATE_ENTRY_DOTDOT ? ".." : "."
                let safe = entry.last_type == AGENTGATE_ENTRY_ROOT ? "/" : "/proc/self/fd/\(entry.parent_fd)/\(dots)"
                return .resolved(Resolved(fd: entry.parent_fd, safePath: Array(safe.utf8CString), target: target, isDirectory: true,
                                          isEntry: true, exists: true, lastType: entry.last_type))
            }
            var info = stat()
            let exists = fstatat(entry.parent_fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0
            // Looked up as the agent: a parent it may not search hides whether the name is there.
            let searchDenied = !exists && Glibc.errno == EACCES
            let isDirectory = exists && info.st_mode & S_IFMT == S_IFDIR
            let safe = Array("/proc/self/fd/\(entry.parent_fd)/".utf8CString.dropLast()) + name.dropLast()
                + (entry.trailing_slash ? [CChar(UInt8(ascii: "/"))] : []) + [0]
            return .resolved(Resolved(fd: entry.parent_fd, safePath: safe, target: target, isDirectory: isDirectory,
                                      isSymlink: exists && info.st_mode & S_IFMT == S_IFLNK,
                                      isEntry: true, exists: exists, trailingSlash: entry.trailing_slash, searchDenied: searchDenied))
        }
        let prepared = scratch.prepared
        let target: String
        switch core.prepare(prepared, base: base.fd, path: path, flags: 0, resolve: 0, tid: tid, tgid: tgid, emptyPath: emptyPath,
                            writing: true) {
        case .prepared(let name): target = name
        case .failed(let errno): return .failed(errno: errno)
        case .refused(let target, let reason): return .refused(target: target, reason: reason)
        }
        let fd = prepared.pointee.object_fd
        prepared.pointee.object_fd = -1
        let isDirectory = prepared.pointee.file_type == UInt32(S_IFDIR)
        let isSymlink = prepared.pointee.file_type == UInt32(S_IFLNK)
        agentgate_open_release(prepared)
        // A trailing slash makes even the no-follow calls (lchown, lsetxattr…) follow the final
        // link: /proc/self/fd/N/ is the directory decided on, never the magic link itself.
        // "/." for a directory named by ".", ".." or "/": its final component stays a dot, and
        // the search permission the kernel checks for it is checked here too.
        let safe = "/proc/self/fd/\(fd)" + (isDirectory && dots ? "/." : isDirectory && path.hasTrailingSlash ? "/" : "")
        return .resolved(Resolved(fd: fd, safePath: Array(safe.utf8CString), target: target, isDirectory: isDirectory,
                                  isSymlink: isSymlink))
    }

    private static func copy(_ argument: MemoryArgument, _ n: Notification) -> Result<[UInt8]?, Refusal> {
        switch argument {
        case .string(let arg):
            var buffer = [CChar](repeating: 0, count: ThreadScratch.pathCapacity)
            let length = agentgate_read_string(n.tid, n.arg(arg), &buffer, buffer.count)
            guard length >= 0 else { return .failure(Refusal(errno: Int32(-length), reason: "string argument unreadable")) }
            return .success(buffer[0...length].map { UInt8(bitPattern: $0) })
        case .fixed(let arg, let bytes):
            if n.arg(arg) == 0 { return .success(nil) }
            var buffer = [UInt8](repeating: 0, count: bytes)
            let rc = agentgate_read_memory(n.tid, n.arg(arg), &buffer, bytes)
            return rc == 0 ? .success(buffer) : .failure(Refusal(errno: -rc, reason: "argument unreadable"))
        case .sized(let arg, let sizeArg):
            // Every argument is hostile: compare before converting, so nothing can trap.
            guard n.arg(sizeArg) <= 65536 else { return .failure(Refusal(errno: E2BIG, reason: "value too large")) }
            let size = Int(n.arg(sizeArg))
            guard size <= 65536 else { return .failure(Refusal(errno: E2BIG, reason: "value too large")) }
            if size == 0 { return .success(n.arg(arg) == 0 ? nil : []) }
            var buffer = [UInt8](repeating: 0, count: size)
            let rc = agentgate_read_memory(n.tid, n.arg(arg), &buffer, size)
            return rc == 0 ? .success(buffer) : .failure(Refusal(errno: -rc, reason: "argument unreadable"))
        }
    }
}

/// C buffers that live as long as this object: arguments handed to a raw syscall.
final class CBuffers {
    private var pointers: [UnsafeMutableRawPointer] = []

    func copy(_ bytes: [UInt8]) -> UnsafeMutableRawPointer {
        let pointer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 8)
        if !bytes.isEmpty { bytes.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) } }
        pointers.append(pointer)
        return pointer
    }

    deinit { for pointer in pointers { pointer.deallocate() } }
}
