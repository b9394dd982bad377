import CSupport
import Glibc
import Synchronization

/// What the audit records about the process behind a notification.
struct ProcessFacts: Sendable {
    let tgid: pid_t
    let ppid: pid_t
    let executable: String
    /// Read from /proc just now: a process (or image) this supervisor hadn't seen before.
    var firstSeen = false
    /// /proc/TID/status as read for this very notification (only when `firstSeen`; never
    /// cached), so the notification's handler doesn't parse it again.
    var status: ProcStatus? = nil
}

/// Per-thread cache of /proc facts, so a process is read once and again only after it execs or
/// its thread id is reused. Liveness of a cached entry is checked with a pidfd (one poll), which
/// is far cheaper than reading /proc/PID/status on every notification.
final class ProcessTable: Sendable {
    private struct Entry {
        var info: ProcessFacts
        var pidfd: Int32
        var stale: Bool
    }
    private let entries = Mutex<[pid_t: Entry]>([:])
    /// Told when a thread id is seen afresh, so no context of an earlier process survives.
    private let contexts: ProcessContexts?

    init(contexts: ProcessContexts? = nil) {
        self.contexts = contexts
    }

    /// The cached or freshly read facts for `tid`. Callers check NOTIF_ID_VALID afterwards,
    /// before using them, like any read of the agent's state.
    func facts(for tid: pid_t) -> ProcessFacts {
        let cached: (info: ProcessFacts, pidfd: Int32, stale: Bool)? = entries.withLock { table in
            table[tid].map { ($0.info, $0.pidfd, $0.stale) }
        }
        var reused = false
        if let cached, cached.stale, cached.pidfd >= 0, agentgate_poll_one(cached.pidfd, Int16(POLLIN), 0) == 0 {
            // Stale after an exec, and its pidfd still names a live thread under this tid: read
            // the new image and keep the pidfd (a pidfd_open and a close fewer per exec).
            contexts?.forget(tid: tid, isNewProcess: false)
            var info = Self.read(tid: tid)
            entries.withLock { table in
                // Replaced meanwhile, or the thread was gone before its status could be read.
                guard table[tid]?.pidfd == cached.pidfd, info.status?.readOK == true else { return }
                var stored = info
                stored.status = nil
                table[tid] = Entry(info: stored, pidfd: cached.pidfd, stale: false)
            }
            info.firstSeen = true
            return info
        }
        if let cached, !cached.stale {
            let (info, pidfd) = (cached.info, cached.pidfd)
            // A pidfd polls readable once its thread has exited: the tid may have been reused.
            if pidfd < 0 || agentgate_poll_one(pidfd, Int16(POLLIN), 0) == 0 { return info }
            // Gone and not reused (a thread an exec reaped, whose notification is stale): what
            // was known of its process still holds, and the process is what a check must reach.
            if access("/proc/\(tid)", F_OK) != 0 { return info }
            reused = true
        }
        contexts?.forget(tid: tid, isNewProcess: reused)
        var info = Self.read(tid: tid)
        let pidfd = agentgate_pidfd_open(tid)
        guard pidfd >= 0 else {
            // Without a pidfd a reused tid couldn't be told apart later: don't cache.
            info.firstSeen = true
            return info
        }
        let old: Int32? = entries.withLock { table in
            let previous = table[tid]?.pidfd
            var cached = info
            cached.status = nil
            table[tid] = Entry(info: cached, pidfd: pidfd, stale: false)
            if table.count > Self.sweepThreshold { Self.sweep(&table, keeping: tid) }
            return previous
        }
        if let old, old >= 0 { agentgate_close(old) }
        info.firstSeen = true
        return info
    }

    /// After an allowed exec the image changes: read it again at the next notification.
    func invalidate(_ tid: pid_t) {
        entries.withLock { table in table[tid]?.stale = true }
    }

    /// Signals every process the table holds a pidfd for that is still alive (the whole
    /// thread group of each): exact, whatever else has happened to /proc or the pid space.
    func signalAll(_ signal: Int32) {
        entries.withLock { table in
            for entry in table.values where entry.pidfd >= 0 && agentgate_poll_one(entry.pidfd, Int16(POLLIN), 0) == 0 {
                if agentgate_pidfd_send_signal(entry.pidfd, signal, nil, 2 /* PIDFD_SIGNAL_THREAD_GROUP */) == -EINVAL {
                    _ = agentgate_pidfd_send_signal(entry.pidfd, signal, nil, 0)
                }
            }
        }
    }

    func closeAll() {
        entries.withLock { table in
            for entry in table.values where entry.pidfd >= 0 { agentgate_close(entry.pidfd) }
            table.removeAll()
        }
    }

    /// Entries beyond which exited threads are swept out.
    static let sweepThreshold = 4096
    /// Entries (each holding a pidfd) beyond which live ones are dropped too: they are read
    /// again at their next notification. Keeps the supervisor's fd table well below its limit
    /// whatever the agent forks.
    static let capacity = 8192

    private static func sweep(_ table: inout [pid_t: Entry], keeping: pid_t) {
        for (tid, entry) in table where entry.pidfd < 0 || agentgate_poll_one(entry.pidfd, Int16(POLLIN), 0) != 0 {
            if entry.pidfd >= 0 { agentgate_close(entry.pidfd) }
            table[tid] = nil
        }
        guard table.count > capacity else { return }
        for (tid, entry) in table where tid != keeping {
            if entry.pidfd >= 0 { agentgate_close(entry.pidfd) }
            table[tid] = nil
            if table.count <= capacity / 2 { break }
        }
    }

    /// Entries (each with its pidfd) held now.
    var count: Int { entries.withLock { $0.count } }

    /// Drops entries of threads that have exited (called periodically).
    func sweepExited() {
        entries.withLock { table in
            for (tid, entry) in table where entry.pidfd >= 0 && agentgate_poll_one(entry.pidfd, Int16(POLLIN), 0) != 0 {
                agentgate_close(entry.pidfd)
                table[tid] = nil
            }
        }
    }

    /// Reads Tgid and PPid from /proc/TID/status and the executable from /proc/TID/exe.
    static func read(tid: pid_t) -> ProcessFacts {
        var status = ProcStatus(tid: tid)
        let executable = readLink("/proc/\(tid)/exe") ?? "?"
        if status.tgid == 0 { status.tgid = tid }
        return ProcessFacts(tgid: status.tgid, ppid: status.ppid, executable: executable, status: status)
    }

    static func readLink(_ path: String) -> String? {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(AGENTGATE_RESOLVED_CAPACITY)) { buffer in
            let n = agentgate_readlinkat(AT_FDCWD, path, buffer.baseAddress!, buffer.count)
            guard n >= 0 else { return nil }
            return String(cBuffer: buffer.baseAddress!, count: n)
        }
    }
}

/// Fields of /proc/PID/stat, counted after the parenthesised command name (which may hold
/// spaces): 0 is the state, 1 the parent pid, 2 the process group.
enum ProcStat {
    /// The field, or -1 when the process can't be read (it doesn't exist, or has gone).
    static func field(_ index: Int, of pid: pid_t) -> pid_t {
        guard pid > 0 else { return -1 }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: 1024) { buffer -> pid_t in
            let n = agentgate_read_small_file(AT_FDCWD, "/proc/\(pid)/stat", buffer.baseAddress!, buffer.count)
            guard n > 0 else { return -1 }
            let text = String(cBuffer: buffer.baseAddress!, count: n)
            guard let close = text.lastIndex(of: ")") else { return -1 }
            let fields = text[text.index(after: close)...].split(separator: " ")
            return fields.count > index ? pid_t(fields[index]) ?? -1 : -1
        }
    }
}

/// The fields of /proc/TID/status the supervisor (and `agentgate check`, for its own) uses.
public struct ProcStatus: Sendable {
    public var tgid: pid_t = 0
    public var ppid: pid_t = 0
    public var umask: UInt32 = 0o022
    public var uids: [UInt32] = []
    public var gids: [UInt32] = []
    public var groups: [UInt32] = []
    public var capEff: UInt64 = 0
    public var capPrm: UInt64 = 0
    public var readOK = false

    public init(tid: pid_t) {
        // Parsed as bytes, with no String made: a process seen for the first time (each exec)
        // reads this file once or twice, and it is ~1.5 KB of lines the supervisor mostly skips.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 8192) { buffer in
            let n = agentgate_read_small_file(AT_FDCWD, "/proc/\(tid)/status", buffer.baseAddress!, buffer.count)
            guard n > 0 else { return }
            readOK = true
            parse(UnsafeBufferPointer(rebasing: buffer[..<n]))
        }
    }

    /// The fields from the text of a /proc/TID/status (`Key:\tvalue` lines).
    mutating func parse(_ text: UnsafeBufferPointer<UInt8>) {
        var lineStart = 0
        while lineStart < text.count {
            var lineEnd = lineStart
            while lineEnd < text.count && text[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
            var colon = lineStart
            while colon < lineEnd && text[colon] != UInt8(ascii: ":") { colon += 1 }
            if colon < lineEnd {
                let key = UnsafeBufferPointer(rebasing: text[lineStart..<colon])
                let value = UnsafeBufferPointer(rebasing: text[(colon + 1)..<lineEnd])
                switch key.count {
                case 3 where Self.equal(key, "Uid"): uids = Self.numbers(value)
                case 3 where Self.equal(key, "Gid"): gids = Self.numbers(value)
                case 4 where Self.equal(key, "Tgid"): tgid = pid_t(truncatingIfNeeded: Self.number(value, radix: 10) ?? 0)
                case 4 where Self.equal(key, "PPid"): ppid = pid_t(truncatingIfNeeded: Self.number(value, radix: 10) ?? 0)
                case 5 where Self.equal(key, "Umask"): umask = UInt32(truncatingIfNeeded: Self.number(value, radix: 8) ?? 0o022)
                case 6 where Self.equal(key, "Groups"): groups = Self.numbers(value)
                case 6 where Self.equal(key, "CapEff"): capEff = Self.number(value, radix: 16) ?? 0
                case 6 where Self.equal(key, "CapPrm"): capPrm = Self.number(value, radix: 16) ?? 0
                default: break
                }
            }
            lineStart = lineEnd + 1
        }
    }

    private static func equal(_ bytes: UnsafeBufferPointer<UInt8>, _ key: StaticString) -> Bool {
        key.utf8CodeUnitCount == bytes.count && memcmp(bytes.baseAddress!, key.utf8Start, bytes.count) == 0
    }

    private static func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }

    /// The one number a value holds (blanks around it), or nil when it holds anything else.
    private static func number(_ value: UnsafeBufferPointer<UInt8>, radix: UInt64) -> UInt64? {
        var start = 0, end = value.count
        while start < end && isBlank(value[start]) { start += 1 }
        while end > start && isBlank(value[end - 1]) { end -= 1 }
        return parseNumber(value, start..<end, radix: radix)
    }

    /// The blank-separated decimal numbers of a value; what isn't one is skipped.
    private static func numbers(_ value: UnsafeBufferPointer<UInt8>) -> [UInt32] {
        var result: [UInt32] = []
        var index = 0
        while index < value.count {
            while index < value.count && isBlank(value[index]) { index += 1 }
            let start = index
            while index < value.count && !isBlank(value[index]) { index += 1 }
            if index > start, let number = parseNumber(value, start..<index, radix: 10), number <= UInt64(UInt32.max) {
                result.append(UInt32(number))
            }
        }
        return result
    }

    private static func parseNumber(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, radix: UInt64) -> UInt64? {
        guard !range.isEmpty, range.count <= 16 || radix != 16, range.count <= 20 else { return nil }
        var result: UInt64 = 0
        for index in range {
            let byte = bytes[index]
            let digit: UInt64
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt64(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt64(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt64(byte - UInt8(ascii: "A") + 10)
            default: return nil
            }
            guard digit < radix else { return nil }
            let (shifted, overflow) = result.multipliedReportingOverflow(by: radix)
            guard !overflow else { return nil }
            let (sum, carry) = shifted.addingReportingOverflow(digit)
            guard !carry else { return nil }
            result = sum
        }
        return result
    }
}

extension Substring {
    func trimmingCharacters() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return s
    }
}
