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
        /// The decided argv after argv[0], as NUL-terminated bytes: /proc/PID/cmdline must end
        /// with them once the exec completed. nil when no rule looks at argv.
        var arguments: [UInt8]?
        let previous: ImageIdentity
        /// The exec'ing process, to notice it has gone (its pid could be reused).
        let pidfd: Int32
    }
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
    }

    func closeAll() {
        let all = pending.withLock { table -> [Int32] in
            let fds = table.values.map(\.pidfd)
            count.subtract(table.count, ordering: .relaxed)
            table.removeAll()
            return fds
        }
        for fd in all { agentgate_close(fd) }
    }

    func expect(_ image: ImageIdentity, previous: ImageIdentity, tgid: pid_t, arguments: [UInt8]? = nil) {
        approved.withLock { _ = $0.insert(image) }
        let pidfd = pending.withLock { $0[tgid] == nil } ? agentgate_pidfd_open(tgid) : -1
        let unused: Int32 = pending.withLock { table -> Int32 in
            if var entry = table[tgid] {
                if !entry.expected.contains(image) { entry.expected.append(image) }
                entry.arguments = arguments
                table[tgid] = entry
                return pidfd
            }
            table[tgid] = Pending(expected: [image], arguments: arguments, previous: previous, pidfd: pidfd)
            count.add(1, ordering: .relaxed)
            return -1
        }
        agentgate_close(unused)
    }

    /// Whether the process behind a notification runs an image it may run. A process seen for
    /// the first time must run an approved image (this also catches children a swapped-in image
    /// forked before its own first trapped call); a process with an exec pending must run the
    /// image approved for it, or its old one if the exec hasn't happened or failed.
    /// Why the process behind a notification must not go on, or nil when it runs an image
    /// (and arguments) it may run. A process seen for the first time must run an approved
    /// image (this also catches children a swapped-in image forked before its own first
    /// trapped call); a process with an exec pending must run the image approved for it, with
    /// the arguments decided, or its old image if the exec hasn't happened or failed.
    func verify(tid: pid_t, tgid: pid_t, firstSeen: Bool) -> String? {
        if firstSeen {
            let running = ImageIdentity(path: "/proc/\(tid)/exe")
            if running.inode != 0 && !approved.withLock({ $0.contains(running) }) {
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
        if entry.expected.contains(running) {
            remove(tgid) // the exec completed as approved
            if let arguments = entry.arguments, !Self.cmdline(of: tgid, endsWith: arguments) {
                return "exec ran with arguments other than the ones decided; process killed"
            }
            return nil
        }
        // Not exec'd yet, or the exec failed.
        return running == entry.previous ? nil : "exec loaded an image other than the one approved; process killed"
    }

    /// argv after argv[0], each NUL-terminated, as /proc/PID/cmdline ends.
    static func cmdlineTail(_ argv: [String]) -> [UInt8] {
        var bytes: [UInt8] = []
        for argument in argv.dropFirst() {
            bytes += argument.utf8
            bytes.append(0)
        }
        return bytes
    }

    /// Whether the kernel's copy of the process's argv ends with `tail`.
    static func cmdline(of pid: pid_t, endsWith tail: [UInt8]) -> Bool {
        // argv[0] (and a `#!` interpreter's own words) come first; allow generously for them.
        let capacity = tail.count + 65536
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: capacity) { buffer -> Bool in
            let n = agentgate_read_small_file(AT_FDCWD, "/proc/\(pid)/cmdline", buffer.baseAddress!, capacity)
            // read_small_file fills at most capacity - 1 bytes: that many means truncated.
            guard n >= tail.count, n < capacity - 1 else { return false }
            let read = UnsafeRawBufferPointer(start: buffer.baseAddress, count: n)
            return tail.isEmpty || read.suffix(tail.count).elementsEqual(tail)
        }
    }

    private func remove(_ tgid: pid_t) {
        let removed = pending.withLock { table -> Pending? in
            guard let entry = table.removeValue(forKey: tgid) else { return nil }
            count.subtract(1, ordering: .relaxed)
            return entry
        }
        if let removed, removed.pidfd >= 0 { agentgate_close(removed.pidfd) }
    }
}
