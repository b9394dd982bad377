import AgentGatePolicy
import CSupport
import Glibc

/// execve and execveat. exec can't be performed on the agent's behalf, so after deciding on
/// the resolved program the kernel is told to continue. The program is resolved and decided
/// on both as named and as resolved (a symlink can't launder a denied program).
enum ExecHandler {
    /// The most argv read: the kernel's own ceiling, so nothing it would run is refused. Its
    /// strings and pointers (argv and envp together) fit in a quarter of RLIMIT_STACK, never
    /// more than 6 MiB (bprm_stack_limits: _STK_LIM / 4 * 3), so argv holds at most 6 MiB of
    /// strings and fewer than 2^20 of them (each takes a byte and an 8-byte pointer at least).
    static let maxArgvBytes = 6 << 20
    static let maxArgs = 1 << 20

    static func handle(_ call: TrappedCall, family: SyscallFamily, scratch: ThreadScratch) {
        let n = call.notification, core = call.core
        // Claimed first, before any response: once this exec is answered the command may
        // exec again on another receiver thread.
        let isSessionCommand = core.claimSessionCommandExec()
        let syscall = call.syscall, process = call.process
        let isAt: Bool
        if case .execveat = family { isAt = true } else { isAt = false }
        let dirfd = isAt ? n.intArg(0) : AT_FDCWD
        let pathAddress = isAt ? n.arg(1) : n.arg(0)
        let argvAddress = isAt ? n.arg(2) : n.arg(1)
        let atFlags = isAt ? Int32(truncatingIfNeeded: n.arg(4)) : 0

        let length = agentgate_read_string(n.tid, pathAddress, scratch.path, ThreadScratch.pathCapacity)
        guard length >= 0 else {
            guard core.listener.isValid(n.id) else { return }
            let errno = Int32(-length)
            call.deny(Refusal(errno, "program path unreadable"), action: .exec, target: "?")
            return
        }
        let path = String(cBuffer: scratch.path, count: length)
        let rawPath = RawPath(cBuffer: scratch.path, count: length)
        let emptyPath = path.isEmpty && atFlags & Int32(AGENTGATE_AT_EMPTY_PATH) != 0
        let base = AgentDirectory.open(tid: n.tid, dirfd: dirfd, path: emptyPath ? "." : path)
        defer { base.close() }
        guard core.listener.isValid(n.id) else { return }
        if base.error != 0 {
            call.deny(Refusal(base.error, "bad directory fd"), action: .exec, target: path)
            return
        }

        // Resolve the program as the kernel will (O_PATH: no side effects), with the agent's
        // credentials, from its cwd or dirfd.
        let prepared = scratch.prepared
        let lookupFlags = UInt64(atFlags & AT_SYMLINK_NOFOLLOW != 0 ? O_NOFOLLOW : 0)
        let acting = core.actAsAgent(tid: n.tid)
        let outcome = core.prepare(prepared, base: base.fd, path: rawPath, flags: lookupFlags, resolve: 0,
                                   tid: n.tid, tgid: process.tgid, emptyPath: emptyPath)
        core.restoreIdentity(acting.saved)
        defer { agentgate_open_release(prepared) }
        // No such program (a missing file or directory on its path): the kernel fails the exec
        // before reading argv, and nothing runs, so the call gets that errno with no decision to
        // make or record (as mkdir of an existing name gets EEXIST). An execvp PATH search tries
        // every entry: only the exec that runs is recorded. When the agent's credentials can't
        // be taken on, the lookup was the supervisor's, and the path is decided as before.
        if case .failed(let errno) = outcome, errno == ENOENT || errno == ENOTDIR, acting.refusal == nil {
            core.listener.fail(n.id, errno: errno)
            return
        }

        let argv = readArgv(tid: n.tid, address: argvAddress)
        guard core.listener.isValid(n.id) else { return }
        guard case .success(let rawArgs) = argv else {
            if case .failure(let failure) = argv {
                call.deny(failure, action: .exec, target: path)
            }
            return
        }
        let args = rawArgs.map(\.text)
        let named = emptyPath ? base.path() : PathLexical.absolute(path, base: base.path())
        var rc: Int32 = 0
        var resolved = ""
        switch outcome {
        case .prepared(let name): resolved = name
        case .failed(let errno): rc = -errno
        case .refused(let target, let reason):
            var entry = DecisionRecorder.Entry.denied(syscall: syscall, action: .exec, target: target, reason: reason, errno: EACCES)
            entry.argv = args
            DenialExplanation.failExec(call, explain: !isSessionCommand, errno: EACCES, entry: entry)
            return
        }
        // argv and command rules see the argv, and inside `sh -c` strings.
        // argv[0] is the caller's free choice: the program's own paths stand for it.
        var details = call.policy.usesExecDetails ? ExecDetails(argv: args, programs: [named]) : nil
        guard rc == 0 else {
            let verdict = call.decide(.exec, target: named, n, exec: details)
            let errno = verdict.letsCallProceed ? -rc : verdict.errno(or: EACCES)
            let entry = DecisionRecorder.Entry(syscall: syscall, action: .exec, target: named, verdict: verdict, argv: args, errno: errno)
            if verdict.letsCallProceed {
                call.fail(errno, recording: entry)
            } else {
                DenialExplanation.failExec(call, explain: !isSessionCommand, errno: errno, entry: entry)
            }
            return
        }
        if let refusal = anonymousImageRefusal(prepared, name: resolved, call: call) {
            var entry = DecisionRecorder.Entry.denied(syscall: syscall, action: .exec, target: resolved, reason: refusal, errno: EACCES)
            entry.argv = args
            DenialExplanation.failExec(call, explain: !isSessionCommand, errno: EACCES, entry: entry)
            return
        }
        if details != nil, named != resolved { details = ExecDetails(argv: args, programs: [named, resolved]) }
        var verdict = call.decide(.exec, target: resolved, n, exec: details)
        if named != resolved {
            let asNamed = call.decide(.exec, target: named, n, exec: details)
            if asNamed.strictness > verdict.strictness { verdict = asNamed }
        }
        verdict = call.settled(call.rateLimited(verdict, .exec, target: resolved, n, exec: details), .exec, target: resolved, argv: args)
        // A person took their time: the program and its arguments must still be the ones they
        // were asked about, or the wait would make the exec window (see README) easy to hit.
        if verdict.reason == .askAnswered, verdict.letsCallProceed,
           let change = changedWhileAsking(n, scratch: scratch, pathAddress: pathAddress, argvAddress: argvAddress, dirfd: dirfd,
                                           path: rawPath, argv: rawArgs, emptyPath: emptyPath, atFlags: atFlags,
                                           image: ImageIdentity(prepared: prepared)) {
            call.deny(Refusal(EACCES, change), action: .exec, target: resolved, argv: args)
            return
        }
        guard verdict.letsCallProceed else {
            let errno = verdict.errno(or: EACCES)
            let entry = DecisionRecorder.Entry(syscall: syscall, action: .exec, target: resolved, verdict: verdict, argv: args, errno: errno)
            DenialExplanation.failExec(call, explain: !isSessionCommand, errno: errno, entry: entry)
            return
        }
        if let refusal = readRefusal(call, image: resolved) {
            var entry = DecisionRecorder.Entry.denied(syscall: syscall, action: .exec, target: resolved, reason: refusal, errno: EACCES)
            entry.argv = args
            DenialExplanation.failExec(call, explain: !isSessionCommand, errno: EACCES, entry: entry)
            return
        }
        // What the kernel will really run: a `#!` interpreter chain, or the program ld.so is
        // asked to load. Each must be allowed as an exec too.
        var image = ImageIdentity(prepared: prepared)
        // The name the kernel gives a `#!` interpreter for the script: the path as passed, or
        // /dev/fd/N[/path] for execveat relative to a dirfd.
        let scriptName = !isAt || rawPath.isAbsolute || dirfd == AT_FDCWD ? rawPath
            : emptyPath ? RawPath("/dev/fd/\(dirfd)") : RawPath(Array("/dev/fd/\(dirfd)/".utf8) + rawPath.bytes)
        let plan: ImagePlan
        switch inspectImage(fd: prepared.pointee.object_fd, resolved: resolved, scriptName: scriptName, argv: rawArgs, call: call,
                            tid: n.tid, tgid: process.tgid, id: n.id) {
        case .failed(let target, let errno, let reason):
            // What the kernel itself would answer (an interpreter that doesn't exist: ENOENT).
            var entry = DecisionRecorder.Entry.denied(syscall: syscall, action: .exec, target: target, reason: reason, errno: errno)
            entry.decision = .allow
            entry.argv = args
            call.fail(errno, recording: entry)
            return
        case .denied(let target, let innerVerdict, let reason):
            let errno = innerVerdict?.errno(or: EACCES) ?? EACCES
            var withArgv: DecisionRecorder.Entry
            if let innerVerdict {
                withArgv = DecisionRecorder.Entry(syscall: syscall, action: .exec, target: target, verdict: innerVerdict, argv: args, errno: errno)
            } else {
                withArgv = DecisionRecorder.Entry.denied(syscall: syscall, action: .exec, target: target, reason: reason, errno: EACCES)
                withArgv.argv = args
            }
            DenialExplanation.failExec(call, explain: !isSessionCommand, errno: errno, entry: withArgv)
            return
        case .allowed(let checked):
            plan = checked
            if let interpreterImage = checked.interpreterImage { image = interpreterImage }
        }
        // exec can't be performed for the agent: let the kernel continue, then check at the
        // process's next trapped call that the image it loaded is the one approved.
        // The arguments the new image really got must be the ones decided and recorded, byte for
        // byte: another thread could rewrite them between our read and the kernel's copy.
        let arguments = ImageVerifier.cmdline(plan.argv)
        // The bytes that later tell whether this exec happened must be readable now; an honest
        // process never hides them.
        // Read through the calling thread: the leader may have exited (pthread_exit).
        guard let before = ImageVerifier.execRandom(n.tid) else {
            call.deny(Refusal(EACCES, "the process hid the bytes that tell whether its exec happened"), action: .exec, target: resolved,
                      argv: args)
            return
        }
        guard core.images.hasRoom(for: image, tgid: process.tgid) else {
            // Every check slot is held by a live process: the exec can't be verified, so it fails.
            call.deny(Refusal(EAGAIN, "too many execs awaiting their image check"), action: .exec, target: resolved, argv: args)
            return
        }
        core.images.forgetLoaderProgram(process.tgid)
        core.images.expect(image, previous: ImageIdentity(path: "/proc/\(n.tid)/exe"), tgid: process.tgid, arguments: arguments,
                           loaderProgram: plan.loaderProgram, previousRandom: before)
        core.processes.invalidate(n.tid)
        core.processes.invalidate(process.tgid) // the leader's tid carries the new image after the exec
        core.contexts.recordExec(tid: n.tid, tgid: process.tgid, argv: args)
        // Continued by a tracer holding the thread, so the new image is checked before its
        // first instruction (ExecTracer); where that can't be, at its first trapped call.
        let job = ExecTracer.Job(call: call, tgid: process.tgid, program: resolved) { [verdict, resolved] note in
            call.allow(verdict: verdict, action: .exec, target: resolved, argv: args, note: note)
        }
        if !core.execTracer.submit(job) {
            call.allow(verdict: verdict, action: .exec, target: resolved, argv: args,
                       note: "image checked at its first trapped call: no tracer thread")
        }
    }

    /// Why an exec approved by a person is no longer the one they were asked about (its path
    /// or argv in the agent's memory, or the file the path leads to, changed while they
    /// decided), or nil when it is the same.
    static func changedWhileAsking(_ n: Notification, scratch: ThreadScratch, pathAddress: UInt64, argvAddress: UInt64,
                                   dirfd: Int32, path: RawPath, argv: [RawPath], emptyPath: Bool, atFlags: Int32,
                                   image: ImageIdentity) -> String? {
        let length = agentgate_read_string(n.tid, pathAddress, scratch.path, ThreadScratch.pathCapacity)
        let pathNow = length >= 0 ? RawPath(cBuffer: scratch.path, count: length) : nil
        let argvNow = readArgv(tid: n.tid, address: argvAddress)
        guard pathNow == path, case .success(let args) = argvNow, args == argv else {
            return "the program path or its arguments changed while the ask waited"
        }
        let base = AgentDirectory.open(tid: n.tid, dirfd: dirfd, path: emptyPath ? "." : path.text)
        defer { base.close() }
        var flags = Int32(AGENTGATE_O_PATH)
        if atFlags & AT_SYMLINK_NOFOLLOW != 0 { flags |= O_NOFOLLOW }
        let fd = emptyPath || base.error != 0 ? -1 : path.withCString { agentgate_openat(base.fd, $0, flags, 0) }
        defer { if fd >= 0 { agentgate_close(fd) } }
        let identity = emptyPath ? ImageIdentity(fd: base.fd) : fd >= 0 ? ImageIdentity(fd: fd) : nil
        guard base.error == 0, identity == image else {
            return "the file the program path leads to changed while the ask waited"
        }
        return nil
    }

    enum ImageCheck {
        case allowed(ImagePlan)
        case denied(target: String, verdict: Verdict?, reason: String)
        /// The exec fails as the kernel would fail it, with no decision against it.
        case failed(target: String, errno: Int32, reason: String)
    }

    static let loaderOptionsWithValue: Set<String> = ["--library-path", "--inhibit-rpath", "--audit", "--preload", "--argv0",
                                                      "--glibc-hwcaps-prefix", "--glibc-hwcaps-mask"]
    static let loaderFlags: Set<String> = ["--list", "--verify", "--inhibit-cache", "--list-tunables", "--list-diagnostics",
                                           "--help", "--version"]

    /// Why an image with no path in the file system (a memfd, a deleted file) may not run, or
    /// nil. Its only name is one the agent chose, so no path rule can decide it.
    static func anonymousImageRefusal(_ prepared: UnsafePointer<agentgate_open_prepared>, name: String, call: TrappedCall) -> String? {
        guard SupervisorCore.isAnonymous(prepared), !call.policy.allowedUnsupervised.contains(.anonymousExec) else { return nil }
        return "exec of an image with no path (\(name)) is denied by default (anonymous_exec)"
    }

    /// The dynamic loader is recognised by what it is, not by its name: an ELF shared object
    /// (ET_DYN with a DT_SONAME) that names no interpreter of its own, and so runs as the
    /// program and maps the program its arguments name. A static-pie program has no DT_SONAME.
    static func isDynamicLoader(_ elf: agentgate_elf_info) -> Bool {
        elf.is_elf && elf.elf_class == 2 && elf.type == 3 /* ET_DYN */ && !elf.has_interpreter && elf.has_soname
    }

    /// The loaders the system's own programs name in PT_INTERP (the supervisor's among them).
    /// Every dynamic program maps one, so it isn't decided as an exec of its own; any other
    /// PT_INTERP is.
    static let systemLoaders: Set<ImageIdentity> = {
        var loaders: Set<ImageIdentity> = []
        var elf = agentgate_elf_info()
        let own = agentgate_openat(AT_FDCWD, "/proc/self/exe", Int32(AGENTGATE_O_PATH), 0)
        if own >= 0 {
            if agentgate_elf_inspect(own, &elf) == 0, elf.has_interpreter {
                let path = withUnsafeBytes(of: &elf.interpreter) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                let identity = ImageIdentity(path: path)
                if identity.inode != 0 { loaders.insert(identity) }
            }
            agentgate_close(own)
        }
        for path in ["/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "/lib/ld-musl-x86_64.so.1"] {
            let identity = ImageIdentity(path: path)
            if identity.inode != 0 { loaders.insert(identity) }
        }
        return loaders
    }()

    /// What the kernel will map besides the program, for the image check after the exec.
    struct ImagePlan {
        /// The final `#!` interpreter: /proc/PID/exe shows it, not the script.
        var interpreterImage: ImageIdentity?
        /// When the image is the dynamic loader: the program it must open first.
        var loaderProgram: ImageIdentity?
        /// The argv the final image gets: the `#!` interpreters' words and the script's name in
        /// front of the arguments after argv[0], as the kernel builds it.
        var argv: [RawPath] = []
    }

    /// Checks the `#!` chain (as the kernel follows it, up to 4 deep), the ELF interpreter, and
    /// the dynamic loader's program. `scriptName` is the name the kernel hands a `#!`
    /// interpreter: the path as the agent gave it, not as resolved. Every name is resolved from
    /// its bytes, as the kernel and ld.so will resolve it.
    static func inspectImage(fd: Int32, resolved: String, scriptName: RawPath, argv: [RawPath], call: TrappedCall,
                             tid: pid_t, tgid: pid_t, id: UInt64) -> ImageCheck {
        let core = call.core
        let prepared = UnsafeMutablePointer<agentgate_open_prepared>.allocate(capacity: 1)
        defer { prepared.deallocate() }
        // Relative interpreter and loader program names are opened from the process's working
        // directory (the kernel's open_exec, ld.so's own open).
        // Opened when first needed: most names are absolute.
        var openedCWD: AgentDirectory? = nil
        defer { openedCWD?.close() }
        func cwd() -> AgentDirectory {
            if let openedCWD { return openedCWD }
            let opened = AgentDirectory.open(tid: tid, dirfd: AT_FDCWD, path: ".")
            openedCWD = opened
            return opened
        }
        func base(for name: RawPath) -> Int32 { name.isAbsolute ? AT_FDCWD : cwd().fd }
        var currentFD = fd
        var ownedFD: Int32 = -1
        defer { agentgate_close(ownedFD) }
        var plan = ImagePlan()
        var currentPath = resolved
        var currentName = scriptName
        // The argv the final image sees: the kernel puts the interpreter (as written on the `#!`
        // line), its optional argument and the script's name (as given to execve) in front of
        // the script's own arguments.
        // (The kernel gives an exec with an empty argv one empty argument, since Linux 5.18.)
        var effectiveArgv = argv.isEmpty ? [RawPath([])] : argv
        // The final image's ELF facts, when they came with its first bytes (one reopening).
        var elfRead: (rc: Int32, info: agentgate_elf_info)? = nil
        for _ in 0..<5 {
            let line: (interpreter: RawPath, argument: RawPath?)?
            var head = [CChar](repeating: 0, count: 257)
            var headELF = agentgate_elf_info()
            var inspected: Int32 = 1
            let headCount = agentgate_image_read(currentFD, &head, head.count, &headELF, &inspected)
            elfRead = inspected == 1 ? nil : (inspected, headELF)
            switch parseShebang(head, count: headCount) {
            case .success(let found): line = found
            case .failure(.unreadable(let errno)):
                // An execute-only file (mode 0711) runs for its user, but the kernel reads it
                // regardless and a supervisor with that user's rights can't: what it would run
                // can't be checked.
                let why = errno == EACCES ? "it is execute-only, and the supervisor has the agent's rights" : "errno \(errno)"
                return .denied(target: currentPath, verdict: nil,
                               reason: "can't read \(currentPath) to check for a #! interpreter (\(why))")
            }
            guard let (interpreter, argument) = line else { break }
            effectiveArgv = [interpreter] + (argument.map { [$0] } ?? []) + [currentName] + effectiveArgv.dropFirst()
            let interpreterPath: String
            switch prepareAsAgent(core, prepared, base: base(for: interpreter), path: interpreter, tid: tid, tgid: tgid) {
            case .prepared(let name): interpreterPath = name
            case .failed(let errno):
                return .failed(target: interpreter.text, errno: errno, reason: "the #! interpreter of \(currentPath) doesn't resolve")
            case .refused(let target, let reason):
                return .denied(target: target, verdict: nil, reason: reason)
            }
            if let refusal = anonymousImageRefusal(prepared, name: interpreterPath, call: call) {
                agentgate_open_release(prepared)
                return .denied(target: interpreterPath, verdict: nil, reason: refusal)
            }
            let verdict = call.decide(.exec, target: interpreterPath, tid: tid, id: id,
                                      exec: call.policy.usesExecDetails ? ExecDetails(argv: effectiveArgv.map(\.text), programs: [interpreterPath]) : nil)
            guard verdict.letsCallProceed else {
                agentgate_open_release(prepared)
                return .denied(target: interpreterPath, verdict: verdict, reason: "")
            }
            if let refusal = readRefusal(call, image: interpreterPath) {
                agentgate_open_release(prepared)
                return .denied(target: interpreterPath, verdict: nil, reason: refusal)
            }
            agentgate_close(ownedFD)
            ownedFD = prepared.pointee.object_fd
            prepared.pointee.object_fd = -1
            agentgate_open_release(prepared)
            currentFD = ownedFD
            elfRead = nil
            currentPath = interpreterPath
            currentName = interpreter
            plan.interpreterImage = ImageIdentity(fd: ownedFD)
        }
        // What binfmt_elf will do with the final image: map the interpreter PT_INTERP names, or,
        // when the image is the loader itself, map the program its arguments name.
        var elf = elfRead?.info ?? agentgate_elf_info()
        let inspected = elfRead?.rc ?? agentgate_elf_inspect(currentFD, &elf)
        if inspected < 0 && inspected != -EACCES {
            return .denied(target: currentPath, verdict: nil, reason: "can't read \(currentPath) to check its ELF interpreter (errno \(-inspected))")
        }
        if elf.is_elf, elf.elf_class == 2, elf.has_interpreter {
            let interpreter = withUnsafeBytes(of: &elf.interpreter) { RawPath(bytes: $0.prefix { $0 != 0 }) }
            if let check = checkElfInterpreter(interpreter, effectiveArgv: effectiveArgv, prepared: prepared, call: call,
                                               tid: tid, tgid: tgid, id: id) {
                return check
            }
        }
        if isDynamicLoader(elf) {
            // `ld.so PROG` maps PROG with no execve of PROG: decide it as an exec of PROG.
            var index = 1
            var program: RawPath? = nil
            while index < effectiveArgv.count {
                let arg = effectiveArgv[index].text
                if loaderOptionsWithValue.contains(arg) { index += 2; continue }
                if loaderFlags.contains(arg) { index += 1; continue }
                if arg.hasPrefix("--") { return .denied(target: currentPath, verdict: nil, reason: "unknown ld.so option \(arg)") }
                program = effectiveArgv[index]
                break
            }
            if let program {
                let outcome = prepareAsAgent(core, prepared, base: base(for: program), path: program, tid: tid, tgid: tgid)
                var target = PathLexical.absolute(program.text, base: cwd().path())
                // ld.so opens its program itself, later, by this name: that first open must find
                // this very file (the name could be swapped meanwhile), or nothing at all when
                // there is no such file now.
                plan.loaderProgram = ImageIdentity(device: 0, inode: 0)
                switch outcome {
                case .prepared(let name):
                    target = name
                    if let refusal = anonymousImageRefusal(prepared, name: target, call: call) {
                        agentgate_open_release(prepared)
                        return .denied(target: target, verdict: nil, reason: refusal)
                    }
                    plan.loaderProgram = ImageIdentity(prepared: prepared)
                case .failed: break
                case .refused(let path, let reason): return .denied(target: path, verdict: nil, reason: reason)
                }
                agentgate_open_release(prepared)
                let verdict = call.decide(.exec, target: target, tid: tid, id: id,
                                          exec: call.policy.usesExecDetails
                                              ? ExecDetails(argv: effectiveArgv[index...].map(\.text), programs: [target]) : nil)
                if !verdict.letsCallProceed { return .denied(target: target, verdict: verdict, reason: "") }
            }
        }
        plan.argv = effectiveArgv
        return .allowed(plan)
    }

    /// Why the policy keeps `image` from being loaded, or nil. The kernel maps a program, a
    /// `#!` interpreter and an ELF interpreter into the process, where it can read them:
    /// loading a file is reading it (found by review on 2026-12-07: an LD_PRELOAD library read
    /// the bytes of a program whose reading was denied). Only a rule's read denial counts (an
    /// ask is asked): a policy's default for reads doesn't overrule an allowed exec.
    static func readRefusal(_ call: TrappedCall, image: String) -> String? {
        let read = call.decide(.fsRead, target: image, call.notification)
        guard !read.letsCallProceed, read.ruleIndex != nil else { return nil }
        return "running it maps \(image) into memory, and the policy denies reading it"
    }

    /// core.prepare of an image the exec will load (a `#!` interpreter, PT_INTERP, ld.so's
    /// program), looked up with the agent's rights: a lookup with more would answer ENOENT
    /// where the agent gets EACCES, telling it what a directory it can't search holds. When its
    /// rights can't be taken on, the name is refused rather than looked up with the supervisor's.
    private static func prepareAsAgent(_ core: SupervisorCore, _ prepared: UnsafeMutablePointer<agentgate_open_prepared>,
                                       base: Int32, path: RawPath, tid: pid_t, tgid: pid_t) -> SupervisorCore.PrepareOutcome {
        let acting = core.actAsAgent(tid: tid)
        defer { core.restoreIdentity(acting.saved) }
        if let refusal = acting.refusal {
            return .refused(target: path.text, reason: "\(path.text) can't be looked up with the agent's rights: \(refusal)")
        }
        return core.prepare(prepared, base: base, path: path, flags: 0, resolve: 0, tid: tid, tgid: tgid)
    }

    /// PT_INTERP: the kernel opens it by name during the exec, after every decision, and once the
    /// new image runs nothing reliable shows which file it mapped. So its name must mean now what
    /// it will mean then: one of the system's loader paths, or a canonical path (no symlinks)
    /// whose every directory entry the policy denies the agent to write. Returns nil when the
    /// exec may go on, else the outcome.
    private static func checkElfInterpreter(_ interpreter: RawPath, effectiveArgv: [RawPath],
                                            prepared: UnsafeMutablePointer<agentgate_open_prepared>, call: TrappedCall,
                                            tid: pid_t, tgid: pid_t, id: UInt64) -> ImageCheck? {
        let core = call.core
        guard interpreter.isAbsolute else {
            return .denied(target: interpreter.text, verdict: nil, reason: "the ELF interpreter \(interpreter.text) is a relative path")
        }
        let interpreterPath: String
        switch prepareAsAgent(core, prepared, base: AT_FDCWD, path: interpreter, tid: tid, tgid: tgid) {
        case .prepared(let name): interpreterPath = name
        case .failed(let errno):
            return .failed(target: interpreter.text, errno: errno, reason: "the ELF interpreter \(interpreter.text) doesn't resolve")
        case .refused(let target, let reason): return .denied(target: target, verdict: nil, reason: reason)
        }
        defer { agentgate_open_release(prepared) }
        if let refusal = anonymousImageRefusal(prepared, name: interpreterPath, call: call) {
            return .denied(target: interpreterPath, verdict: nil, reason: refusal)
        }
        let identity = ImageIdentity(prepared: prepared)
        if let refusal = readRefusal(call, image: interpreterPath) {
            return .denied(target: interpreterPath, verdict: nil, reason: refusal)
        }
        if systemLoaderPaths.contains(interpreter.bytes) && systemLoaders.contains(identity) { return nil }
        let verdict = call.decide(.exec, target: interpreterPath, tid: tid, id: id,
                                  exec: call.policy.usesExecDetails ? ExecDetails(argv: effectiveArgv.map(\.text), programs: [interpreterPath]) : nil)
        guard verdict.letsCallProceed else { return .denied(target: interpreterPath, verdict: verdict, reason: "") }
        // Every entry the name passes through, symlinks included (/lib -> usr/lib on merged-/usr
        // systems, where musl's loader is /lib/ld-musl-x86_64.so.1), as the kernel will walk it:
        // none may be one the agent could replace.
        guard let entries = entriesWalked(interpreter.text), entries.last == interpreterPath else {
            return .denied(target: interpreterPath, verdict: nil,
                           reason: "the ELF interpreter \(interpreter.text) could not be walked to the file it names")
        }
        for entry in entries where call.decide(.fsWrite, target: entry, tid: tid, id: id).decision.allows {
            return .denied(target: interpreterPath, verdict: nil,
                           reason: "the ELF interpreter's path could be changed by the agent (\(entry) is writable)")
        }
        return nil
    }

    /// The entries an absolute `path` passes through, in order, each named canonically: every
    /// directory, every symlink met (as the link itself) and the final file; or nil when the walk
    /// fails (a missing entry, ELOOP after 40 links). The supervisor's own view of the file
    /// system: the caller has already resolved the path for the agent and compares the end.
    static func entriesWalked(_ path: String) -> [String]? {
        var pending = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        pending.reverse()
        var current: [String] = []
        var entries: [String] = []
        var links = 0
        while let component = pending.popLast() {
            if component == "." { continue }
            if component == ".." { if !current.isEmpty { current.removeLast() }; continue }
            let entry = "/" + (current + [component]).joined(separator: "/")
            var info = stat()
            guard lstat(entry, &info) == 0 else { return nil }
            entries.append(entry)
            if info.st_mode & S_IFMT == S_IFLNK {
                links += 1
                guard links <= 40, let target = ProcessTable.readLink(entry) else { return nil }
                if target.hasPrefix("/") { current = [] }
                pending.append(contentsOf: target.split(separator: "/", omittingEmptySubsequences: true).map(String.init).reversed())
            } else {
                current.append(component)
            }
        }
        if entries.last != "/" + current.joined(separator: "/") { entries.append("/" + current.joined(separator: "/")) }
        return entries
    }

    /// The PT_INTERP names of the system's own programs, whose directories only root changes.
    static let systemLoaderPaths: Set<[UInt8]> = Set(["/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                                                      "/usr/lib64/ld-linux-x86-64.so.2", "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                                                      "/lib/ld-musl-x86_64.so.1"].map { Array($0.utf8) })

    /// The interpreter named on a `#!` line and its optional argument (the rest of the line, as
    /// the kernel passes it), or nil. Only regular files are read, through a non-blocking reopen.
    static func shebang(fd: Int32) -> (interpreter: RawPath, argument: RawPath?)? {
        guard case .success(let found) = readShebang(fd: fd) else { return nil }
        return found
    }

    enum ShebangError: Error { case unreadable(Int32) }

    /// As `shebang`, but a regular file that can't be read is an error, never "not a script":
    /// the kernel reads it regardless, and its interpreter must not run unchecked.
    static func readShebang(fd: Int32) -> Result<(interpreter: RawPath, argument: RawPath?)?, ShebangError> {
        var buffer = [CChar](repeating: 0, count: 257)
        let n = agentgate_read_head(fd, &buffer, buffer.count)
        return parseShebang(buffer, count: n)
    }

    /// The `#!` line in the first bytes of a file as `agentgate_read_head` returned them, read as
    /// binfmt_script reads it: from BINPRM_BUF_SIZE (256) bytes, zero past the file's end. No
    /// interpreter (only blanks, or a name running to the buffer's end without a newline, which
    /// the kernel takes as truncated) is "not a script": the exec goes on and the kernel answers
    /// ENOEXEC. The name ends at a blank or NUL; the argument is the rest of the line, blanks
    /// trimmed, up to a NUL (possibly empty, as the kernel passes it).
    static func parseShebang(_ buffer: [CChar], count n: Int) -> Result<(interpreter: RawPath, argument: RawPath?)?, ShebangError> {
        if n == -Int(EINVAL) { return .success(nil) } // not a regular file: the kernel refuses it anyway
        if n < 0 { return .failure(.unreadable(Int32(-n))) }
        guard n > 2, buffer[0] == 0x23, buffer[1] == 0x21 else { return .success(nil) } // "#!"
        let size = 256, last = size - 1
        var buf = [UInt8](repeating: 0, count: size)
        for i in 0..<min(n, size) { buf[i] = UInt8(bitPattern: buffer[i]) }
        func isBlank(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }
        func nextNonBlank(_ first: Int, _ end: Int) -> Int? {
            var i = first
            while i <= end { if !isBlank(buf[i]) { return i }; i += 1 }
            return nil
        }
        func nextTerminator(_ first: Int, _ end: Int) -> Int? {
            var i = first
            while i <= end { if isBlank(buf[i]) || buf[i] == 0 { return i }; i += 1 }
            return nil
        }
        // strnchr: the first newline, in the whole buffer, before any NUL.
        var lineEnd: Int? = nil
        for i in 0..<size {
            if buf[i] == 0 { break }
            if buf[i] == 0x0A { lineEnd = i; break }
        }
        if lineEnd == nil {
            guard let start = nextNonBlank(2, last), nextTerminator(start, last) != nil else { return .success(nil) }
            lineEnd = last
        }
        var end = lineEnd!
        while isBlank(buf[end - 1]) { end -= 1 } // buf[1] is "!", so this stops by 2
        guard let nameStart = nextNonBlank(2, end), nameStart != end else { return .success(nil) }
        let separator = nextTerminator(nameStart, end)
        let name = Array(buf[nameStart..<(separator ?? end)])
        var argument: RawPath?
        if let separator, buf[separator] != 0, let argumentStart = nextNonBlank(separator, end), argumentStart <= end {
            argument = RawPath(Array(buf[argumentStart..<end].prefix { $0 != 0 }))
        }
        return .success((RawPath(bytes: name[...]), argument))
    }

    /// Reads the argv array and its strings. Over-long or unreadable argv is an error, never
    /// a guess.
    static func readArgv(tid: pid_t, address: UInt64) -> Result<[RawPath], Refusal> {
        if address == 0 { return .success([]) }
        var result: [RawPath] = []
        var total = 0
        var pointers = [UInt64](repeating: 0, count: 64)
        var index = 0
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: 131_073)
        defer { buffer.deallocate() }
        while true {
            let rc = pointers.withUnsafeMutableBytes {
                agentgate_read_memory(tid, address &+ UInt64(index * 8), $0.baseAddress, 64 * 8)
            }
            var count = 64
            if rc != 0 {
                // The array may end just before an unmapped page: read pointer by pointer.
                count = 0
                for i in 0..<64 {
                    let one = pointers.withUnsafeMutableBytes {
                        agentgate_read_memory(tid, address &+ UInt64((index + i) * 8), $0.baseAddress! + i * 8, 8)
                    }
                    if one != 0 { break }
                    count += 1
                    if pointers[i] == 0 { break }
                }
                if count == 0 { return .failure(Refusal(errno: EFAULT, reason: "argv unreadable")) }
            }
            // argv strings sit back to back on the new stack: read them in one go when they do,
            // string by string otherwise.
            var bulk: [UInt8] = []
            var bulkStart: UInt64 = 0
            if count > 0, pointers[0] != 0 {
                bulkStart = pointers[0]
                var last = pointers[0]
                for i in 0..<count where pointers[i] != 0 { last = max(last, pointers[i]) }
                let span = last &- bulkStart
                if last >= bulkStart && span < 60_000 {
                    let length = Int(span) + 4096 - Int((last &+ 4096) % 4096) // through the end of last's page
                    bulk = [UInt8](repeating: 0, count: length)
                    if agentgate_read_memory(tid, bulkStart, &bulk, length) != 0 { bulk = [] }
                }
            }
            for i in 0..<count {
                let pointer = pointers[i]
                if pointer == 0 { return .success(result) }
                if pointer >= bulkStart, pointer &- bulkStart < UInt64(bulk.count) {
                    let start = Int(pointer &- bulkStart)
                    if let end = bulk[start...].firstIndex(of: 0) {
                        total += end - start + 1
                        if total > maxArgvBytes || result.count >= maxArgs {
                            return .failure(Refusal(errno: E2BIG, reason: "argv too long to inspect"))
                        }
                        result.append(RawPath(bytes: bulk[start..<end]))
                        continue
                    }
                }
                let n = agentgate_read_string(tid, pointer, buffer, 131_073)
                if n == -Int(ENAMETOOLONG) { return .failure(Refusal(errno: E2BIG, reason: "argument too long to inspect")) }
                if n < 0 { return .failure(Refusal(errno: EFAULT, reason: "argv unreadable")) }
                total += n + 1
                if total > maxArgvBytes || result.count >= maxArgs {
                    return .failure(Refusal(errno: E2BIG, reason: "argv too long to inspect"))
                }
                result.append(RawPath(cBuffer: buffer, count: n))
            }
            if count < 64 { return .failure(Refusal(errno: EFAULT, reason: "argv unreadable")) }
            index += 64
        }
    }
}

extension Verdict {
    /// Orders verdicts so the stricter of two wins: deny > ask > log > allow.
    var strictness: Int {
        switch decision {
        case .allow: return 0
        case .log: return 1
        case .ask: return 2
        case .deny: return 3
        }
    }
}
