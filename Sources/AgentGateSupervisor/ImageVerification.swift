import CSupport
import Glibc
import Synchronization

/// A file's identity: device and inode.
struct ImageIdentity: Sendable, Hashable {
    let device: UInt64
    let inode: UInt64

    init(fd: Int32) {
        var dev: UInt64 = 0, ino: UInt64 = 0, mode: UInt32 = 0
        _ = agentgate_fstat_identity(fd, &dev, &ino, &mode)
        device = dev
        inode = ino
    }

    /// The object `agentgate_open_prepare` found, from the fstat it made (no second one).
    init(prepared: UnsafePointer<agentgate_open_prepared>) {
        let object = prepared.pointee
        if object.kind == AGENTGATE_OPEN_EXISTING && (object.object_device != 0 || object.object_inode != 0) {
            self.init(device: object.object_device, inode: object.object_inode)
        } else {
            self.init(fd: object.object_fd)
        }
    }

    init(device: UInt64, inode: UInt64) {
        self.device = device
        self.inode = inode
    }

    init(path: String) {
        var dev: UInt64 = 0, ino: UInt64 = 0
        _ = agentgate_stat_identity(path, &dev, &ino)
        device = dev
        inode = ino
    }
}

/// Images approved for an exec, checked at every later trapped call of that process (and of
/// processes it forks) until the image it runs has changed: the kernel re-reads the path after
/// CONTINUE, so another thread could have swapped it for a program never decided on. A process
/// found running anything else is killed before its call proceeds.
final class ImageVerifier: Sendable {
    private struct Pending: Sendable {
        var expected: [ImageIdentity]
        /// The decided argv as the new image gets it, NUL-terminated bytes: /proc/PID/cmdline
        /// must be exactly this once the exec completed.
        var arguments: [UInt8]?
        let previous: ImageIdentity
        /// The exec'ing process, to notice it has gone (its pid could be reused).
        let pidfd: Int32
        /// The 16 bytes at AT_RANDOM before the exec: the kernel fills them afresh at every
        /// execve, so they tell an exec that happened from one that didn't, even when the new
        /// image is the old one (nil when they can't be read).
        let previousRandom: [UInt8]?
        /// When the new image is the dynamic loader: the program it must open first.
        var loaderProgram: ImageIdentity?
    }
    /// Loaders whose program open is still due, by process: the first open must be that file.
    /// Each holds the process's pidfd, so entries of processes that have gone can be swept.
    private let loaderPrograms = Mutex<[pid_t: (program: ImageIdentity, pidfd: Int32)]>([:])
    private let loaderProgramCount = Atomic<Int>(0)
    private let pending = Mutex<[pid_t: Pending]>([:])
    private let count = Atomic<Int>(0)
    /// Every image an exec decision approved, and the supervisor's own (the agent's first
    /// process runs it until its exec). A process only gets an image by fork (its parent's) or
    /// by exec (decided), so a process seen for the first time running anything else descends
    /// from a swapped-in image, whenever that image made its own first trapped call.
    private let approved = Mutex<Set<ImageIdentity>>([ImageIdentity(path: "/proc/self/exe")])

    /// Pending checks beyond which those of exited processes are swept out, and the most that
    /// may be pending at once (each holds a pidfd). Past that, execs are refused (EAGAIN).
    static let sweepThreshold = 64
    static let capacity = 2048
    /// Distinct approved images remembered for the first-seen check.
    static let approvedCapacity = 1 << 18

    /// Whether a new exec can be checked. False when the table is full of live processes: the
    /// exec must then fail (EAGAIN) rather than go unchecked.
    func hasRoom(for image: ImageIdentity, tgid: pid_t) -> Bool {
        if count.load(ordering: .relaxed) >= Self.sweepThreshold { sweep() }
        let pendingFull = pending.withLock { $0[tgid] == nil && $0.count >= Self.capacity }
        let approvedFull = approved.withLock { !$0.contains(image) && $0.count >= Self.approvedCapacity }
        return !pendingFull && !approvedFull
    }

    /// Releases the checks of processes that have exited (their pid may be reused).
    func sweep() {
        let released = pending.withLock { table -> [Int32] in
            var closed: [Int32] = []
            // An entry without a pidfd can't be told apart from a reused pid: it stays until its
            // process's next notification, as before.
            for (tgid, entry) in table where entry.pidfd >= 0 && agentgate_poll_one(entry.pidfd, Int16(POLLIN), 0) != 0 {
                closed.append(entry.pidfd)
                table[tgid] = nil
                count.subtract(1, ordering: .relaxed)
            }
            return closed
        }
        for fd in released { agentgate_close(fd) }
        guard loaderProgramCount.load(ordering: .relaxed) > 0 else { return }
        let gone = loaderPrograms.withLock { table -> [Int32] in
            var closed: [Int32] = []
            for (tgid, entry) in table where entry.pidfd < 0 || agentgate_poll_one(entry.pidfd, Int16(POLLIN), 0) != 0 {
                closed.append(entry.pidfd)
                table[tgid] = nil
                loaderProgramCount.subtract(1, ordering: .relaxed)
            }
            return closed
        }
        for fd in gone { agentgate_close(fd) }
    }

    /// Whether an exec check is pending for `tgid`, and the AT_RANDOM bytes from before it.
    func pendingExec(_ tgid: pid_t) -> (pending: Bool, previousRandom: [UInt8]?) {
        guard count.load(ordering: .relaxed) > 0 else { return (false, nil) }
        return pending.withLock { table in table[tgid].map { (true, $0.previousRandom) } ?? (false, nil) }
    }

    /// For a process whose exec was continued without the ptrace hold: once that exec has
    /// completed (AT_RANDOM refilled, read through the new image), checks it as `verify` does
    /// and returns its refusal (the process is killed). nil while nothing is pending for `tgid`,
    /// the exec hasn't completed, or the image passed.
    func verifyCompletedExec(_ tgid: pid_t) -> String? {
        let (isPending, previous) = pendingExec(tgid)
        guard isPending, let now = Self.execRandom(tgid), previous.map({ $0 != now }) ?? true else { return nil }
        return verify(tid: tgid, tgid: tgid, firstSeen: false, isValid: { true })
    }

    /// Whether `tgid` has exited with its exec check still pending; the check is then
    /// forgotten (its pid may be reused).
    func forgetIfExited(_ tgid: pid_t) -> Bool {
        guard let entry = pending.withLock({ $0[tgid] }), entry.pidfd >= 0,
              agentgate_poll_one(entry.pidfd, Int16(POLLIN), 0) != 0 else { return false }
        remove(tgid)
        return true
    }

    /// Whether any exec check is pending (cheap: no lock).
    var hasPendingChecks: Bool { count.load(ordering: .relaxed) > 0 }

    /// Pending exec checks, loader programs due and approved images, held now.
    var counts: (pendingChecks: Int, loaderPrograms: Int, approvedImages: Int) {
        (pending.withLock { $0.count }, loaderPrograms.withLock { $0.count }, approved.withLock { $0.count })
    }

    func closeAll() {
        for fd in pending.withLock({ Self.empty(&$0, count: count, pidfd: \.pidfd) }) { agentgate_close(fd) }
        for fd in loaderPrograms.withLock({ Self.empty(&$0, count: loaderProgramCount, pidfd: \.pidfd) }) { agentgate_close(fd) }
    }

    /// Empties a table of held pidfds, keeping its count right; returns the pidfds to close.
    private static func empty<Value>(_ table: inout [pid_t: Value], count: borrowing Atomic<Int>, pidfd: (Value) -> Int32) -> [Int32] {
        let fds = table.values.map(pidfd)
        count.subtract(table.count, ordering: .relaxed)
        table.removeAll()
        return fds
    }

    func expect(_ image: ImageIdentity, previous: ImageIdentity, tgid: pid_t, arguments: [UInt8]? = nil,
                loaderProgram: ImageIdentity? = nil, previousRandom random: [UInt8]?) {
        approved.withLock { _ = $0.insert(image) }
        let isNew = pending.withLock { $0[tgid] == nil }
        let pidfd = isNew ? agentgate_pidfd_open(tgid) : -1
        let unused: Int32 = pending.withLock { table -> Int32 in
            if var entry = table[tgid] {
                if !entry.expected.contains(image) { entry.expected.append(image) }
                entry.arguments = arguments
                entry.loaderProgram = loaderProgram
                table[tgid] = entry
                return pidfd
            }
            var entry = Pending(expected: [image], arguments: arguments, previous: previous, pidfd: pidfd, previousRandom: random)
            entry.loaderProgram = loaderProgram
            table[tgid] = entry
            count.add(1, ordering: .relaxed)
            return -1
        }
        agentgate_close(unused)
    }

    static func execRandom(_ pid: pid_t) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: 16)
        return agentgate_exec_random(pid, &bytes) == 0 ? bytes : nil
    }

    /// Checked at each open of a process whose loader's program is due: the first open must be
    /// the program decided at the exec. Returns why the open is refused, or nil. `opened` (an
    /// fstat) is looked at only then, not at every open.
    func loaderOpenRefusal(tgid: pid_t, opened: @autoclosure () -> ImageIdentity) -> String? {
        guard loaderProgramCount.load(ordering: .relaxed) > 0 else { return nil }
        guard let expected = loaderPrograms.withLock({ table -> (program: ImageIdentity, pidfd: Int32)? in
            guard let entry = table.removeValue(forKey: tgid) else { return nil }
            loaderProgramCount.subtract(1, ordering: .relaxed)
            return entry
        }) else { return nil }
        agentgate_close(expected.pidfd)
        return opened() == expected.program ? nil : "the loader opened a program other than the one decided at its exec"
    }

    /// Why the process behind a notification must not go on, or nil when it runs an image
    /// (and arguments) it may run. A process seen for the first time must run an approved
    /// image (this also catches children a swapped-in image forked before its own first
    /// trapped call); a process with an exec pending must run the image approved for it, with
    /// the arguments decided, or its old image if the exec hasn't happened or failed.
    ///
    /// Everything is read through the notifying thread, which sits in a syscall and so shares
    /// the process's memory (the leader may have exited), and `isValid` is asked after the
    /// reads and before any verdict: while that thread is still waiting, no exec of its process
    /// can have completed (an exec first ends every other thread), so the reads all saw one
    /// image. A notification that is no longer valid decides nothing; the check stays due.
    func verify(tid: pid_t, tgid: pid_t, firstSeen: Bool, isValid: () -> Bool) -> String? {
        if firstSeen {
            let running = ImageIdentity(path: "/proc/\(tid)/exe")
            if running.inode != 0 && !approved.withLock({ $0.contains(running) }) && isValid() {
                return "exec loaded an image other than the one approved; process killed"
            }
        }
        guard count.load(ordering: .relaxed) > 0 else { return nil }
        guard let entry = pending.withLock({ $0[tgid] }) else { return nil }
        if entry.pidfd >= 0 && agentgate_poll_one(entry.pidfd, Int16(POLLIN), 0) != 0 {
            remove(tgid) // that process has exited: its pid may belong to another now
            return nil
        }
        let running = ImageIdentity(path: "/proc/\(tid)/exe")
        // Has the exec happened? AT_RANDOM says so for certain.
        let now = Self.execRandom(tid)
        let argumentsAsDecided = entry.arguments.map { Self.cmdline(of: tid, is: $0) } ?? true
        guard isValid() else { return nil }
        // Unreadable bytes, or an unreadable image, with the thread still there: hidden on
        // purpose (an honest process never unmaps them, and a supervisor that may read a
        // process's memory may read these). The process goes.
        guard let now, running.inode != 0 else {
            return condemn(tgid, "the process hid the bytes that tell whether its exec happened; process killed")
        }
        let happened = entry.previousRandom.map { $0 != now } ?? true
        guard happened else {
            // Not exec'd yet, or the exec failed: the old image, with no loader program due.
            return running == entry.previous ? nil : condemn(tgid, "exec loaded an image other than the one approved; process killed")
        }
        guard entry.expected.contains(running) else {
            return condemn(tgid, "exec loaded an image other than the one approved; process killed")
        }
        if !argumentsAsDecided {
            return condemn(tgid, "exec ran with arguments other than the ones decided; process killed")
        }
        let pidfd = remove(tgid, keepingPidfd: entry.loaderProgram != nil)
        if let program = entry.loaderProgram {
            let replaced = loaderPrograms.withLock { table -> Int32? in
                let old = table.updateValue((program, pidfd), forKey: tgid)
                if old == nil { loaderProgramCount.add(1, ordering: .relaxed) }
                return old?.pidfd
            }
            if let replaced { agentgate_close(replaced) }
        } else {
            agentgate_close(pidfd)
        }
        return nil
    }

    /// argv, each argument NUL-terminated: what /proc/PID/cmdline holds once the exec is done.
    static func cmdline(_ argv: [RawPath]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(argv.reduce(0) { $0 + $1.bytes.count + 1 })
        for argument in argv {
            bytes += argument.bytes
            bytes.append(0)
        }
        return bytes
    }

    /// Whether the kernel's copy of the process's argv is exactly `expected`.
    static func cmdline(of pid: pid_t, is expected: [UInt8]) -> Bool {
        // One byte more than expected, so a longer argv shows.
        let capacity = expected.count + 2
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: capacity) { buffer -> Bool in
            let n = agentgate_read_small_file(AT_FDCWD, "/proc/\(pid)/cmdline", buffer.baseAddress!, capacity)
            guard n == expected.count else { return false }
            return UnsafeRawBufferPointer(start: buffer.baseAddress, count: n).elementsEqual(expected)
        }
    }

    /// Ends a process that failed its check, through the pidfd taken when its exec was decided
    /// (exact whichever of its threads is asking, even one the exec has already reaped), then
    /// forgets the check. Returns `reason`.
    private func condemn(_ tgid: pid_t, _ reason: String) -> String {
        // SIGKILL first, while the check is still pending: a check made meanwhile on another
        // thread (the agent's tracer resuming its tracee, ProcessHandlers) that found it gone
        // would let the call through, and the tracee could run its first instructions before
        // a kill sent after that. Sent under the table's lock, so the pidfd can't be closed
        // (and its number reused) by a concurrent removal in between.
        let signalled = pending.withLock { table -> Bool in
            guard let pidfd = table[tgid]?.pidfd, pidfd >= 0 else { return false }
            return agentgate_pidfd_send_signal(pidfd, SIGKILL, nil, 0) == 0
        }
        if !signalled { kill(tgid, SIGKILL) }
        agentgate_close(remove(tgid, keepingPidfd: true))
        return reason
    }

    /// Forgets a loader program still due for a process that has gone or exec'd again.
    func forgetLoaderProgram(_ tgid: pid_t) {
        guard loaderProgramCount.load(ordering: .relaxed) > 0 else { return }
        let removed = loaderPrograms.withLock { table -> Int32? in
            guard let entry = table.removeValue(forKey: tgid) else { return nil }
            loaderProgramCount.subtract(1, ordering: .relaxed)
            return entry.pidfd
        }
        if let removed { agentgate_close(removed) }
    }

    /// Removes a pending check; closes its pidfd unless the caller keeps it (and returns it).
    @discardableResult
    private func remove(_ tgid: pid_t, keepingPidfd: Bool = false) -> Int32 {
        let removed = pending.withLock { table -> Pending? in
            guard let entry = table.removeValue(forKey: tgid) else { return nil }
            count.subtract(1, ordering: .relaxed)
            return entry
        }
        guard let removed else { return -1 }
        if keepingPidfd { return removed.pidfd }
        agentgate_close(removed.pidfd)
        return -1
    }
}
