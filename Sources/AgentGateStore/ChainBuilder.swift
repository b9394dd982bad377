#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One row the writer has redacted, encoded and chained, ready for SQLite or the fallback file.
enum ChainedRow: Sendable {
    case event(EventColumns, hash: String)
    case processStart(ProcessStartColumns, hash: String)
    case processExit(ProcessExitColumns, hash: String)
    /// Aggregated allowed reads (schema v8): one link for the set and its entries.
    case readSet(ReadSetColumns, entries: [ReadEntryColumns], hash: String)

    var seq: Int64 {
        switch self {
        case .event(let columns, _): columns.seq
        case .processStart(let columns, _): columns.seq
        case .processExit(let columns, _): columns.seq
        case .readSet(let columns, _, _): columns.seq
        }
    }

    var hash: String {
        switch self {
        case .event(_, let hash), .processStart(_, let hash), .processExit(_, let hash), .readSet(_, _, let hash): hash
        }
    }
}

/// Chains one session's records in record order: redaction, encoding, SHA-256 or (keyed)
/// HMAC-SHA256.
struct ChainBuilder: Sendable {
    let sessionID: String
    /// Links so far (the last one's `seq`).
    private(set) var count: Int64
    private(set) var lastHash: [UInt8]
    /// The latest image of each pid: its start link, which its exit refers to.
    private var openProcesses: [Int32: (seq: Int64, hash: String)] = [:]
    private var encoder: AuditChain.Encoder
    /// The key's id when the chain is keyed (for the session's anchor).
    let keyID: String?
    /// Allowed reads folded since the last flush (`DecisionEvent.isAggregatedRead`).
    private(set) var reads = ReadAggregator()
    /// The last capability set encoded: a session's processes mostly share one.
    private var lastCapabilities: (names: [String], json: String) = ([], "[]")
    /// The policy the session started with (`sessions.policy_sha256`): events and read sets
    /// decided under it store `sessionPolicyMark` instead of its 64 hex digits, and read back
    /// as the session's. nil (unknown) stores every row's in full.
    let sessionPolicySHA256: String?
    /// What `policy_sha256` holds in a row decided under its session's own policy: never a
    /// SHA-256. The row's hash covers the SHA-256 it stands for, not the mark, so the row's
    /// own link (which the anchors pin) still fixes its policy: an edit of the session's
    /// `policy_sha256` breaks every marked row. NULL stays "not recorded" (rows before v3).
    static let sessionPolicyMark = "="

    init(sessionID: String, key: AuditKey? = nil, count: Int64 = 0, lastHash: [UInt8]? = nil, sessionPolicySHA256: String? = nil) {
        self.sessionID = sessionID
        self.sessionPolicySHA256 = sessionPolicySHA256.flatMap { $0.isEmpty ? nil : $0 }
        self.count = count
        self.lastHash = lastHash ?? AuditChain.sessionGenesis(sessionID, key: key)
        encoder = AuditChain.Encoder(domain: "", previous: [], key: key)
        keyID = key?.id
    }

    /// What a row stores for the policy it was decided under (after its hash is computed).
    private func storedPolicy(_ sha256: String?) -> String? {
        if let sha256, sha256 == sessionPolicySHA256 { return Self.sessionPolicyMark }
        return sha256
    }

    /// The policy a stored row was decided under, as its hash covers it: the mark resolved to
    /// the session's `policy_sha256`. A mark in a session without one stays the mark, which no
    /// writer hashes, so the row fails verification.
    static func hashedPolicy(_ stored: String?, sessionPolicySHA256: String) -> String? {
        stored == sessionPolicyMark && !sessionPolicySHA256.isEmpty ? sessionPolicySHA256 : stored
    }

    private mutating func capabilitiesJSON(_ names: [String]) -> String {
        if names != lastCapabilities.names { lastCapabilities = (names, AuditJSON.encode(names)) }
        return lastCapabilities.json
    }

    /// The chain's state for the session's end record.
    func end(endTimeMicros: Int64, exitStatus: Int32) -> SessionEndColumns {
        SessionEndColumns(
            id: sessionID, endTime: endTimeMicros, exitStatus: Int64(exitStatus), linkCount: count,
            lastHash: AuditChain.hex(lastHash))
    }

    mutating func event(_ event: DecisionEvent) -> ChainedRow {
        count += 1
        var columns = EventColumns(
            sessionID: sessionID, seq: count, time: event.timeMicros, pid: Int64(event.pid), ppid: Int64(event.ppid),
            executable: Redactor.redact(text: event.executable), syscall: event.syscall, action: event.action.text,
            target: Redactor.redact(text: event.target),
            argv: event.argv.map { AuditJSON.encode(Redactor.redact(argv: $0)) },
            decision: event.decision.text, ruleIndex: event.ruleIndex.map(Int64.init), ruleID: event.ruleID,
            // The intent quotes the argv: it loses what the argv loses (`--password x`).
            reason: event.reason, intent: event.intent.map(Redactor.redact(commandText:)),
            notable: event.notable ? 1 : 0, enforced: event.enforced ? 1 : 0,
            errno: event.errno.map(Int64.init), latency: event.latencyMicros, policySHA256: event.policySHA256,
            answeredVia: event.answeredVia, answeredBy: event.answeredBy.map(Redactor.redact(text:)),
            source: event.source.columnText)
        lastHash = AuditChain.hash(inPlace: &columns, previous: lastHash, encoder: &encoder)
        columns.policySHA256 = storedPolicy(columns.policySHA256)
        return .event(columns, hash: AuditChain.hex(lastHash))
    }

    mutating func processStart(_ process: ProcessRecord) -> ChainedRow {
        count += 1
        var columns = ProcessStartColumns(
            sessionID: sessionID, seq: count, pid: Int64(process.pid), ppid: Int64(process.ppid),
            executable: Redactor.redact(text: process.executable), argv: AuditJSON.encode(Redactor.redact(argv: process.argv)),
            uid: Int64(process.uid), gid: Int64(process.gid), capabilities: capabilitiesJSON(process.capabilities),
            cgroup: process.cgroup, startTime: process.startTimeMicros)
        lastHash = AuditChain.hash(inPlace: &columns, previous: lastHash, encoder: &encoder)
        let hash = AuditChain.hex(lastHash)
        openProcesses[process.pid] = (count, hash)
        if openProcesses.count > Self.openProcessSweepThreshold {
            for pid in openProcesses.keys where kill(pid, 0) != 0 && errno == ESRCH { openProcesses[pid] = nil }
        }
        return .processStart(columns, hash: hash)
    }

    /// Open process images beyond which those of processes that are gone are dropped: the
    /// supervisor sees only its own children's exits, so a grandchild reaped by its parent
    /// never closes its entry. A reused pid replaces its entry, and this bounds the rest.
    static let openProcessSweepThreshold = 8192

    var openProcessCount: Int { openProcesses.count }

    /// Folds an allowed read into its process's aggregate; returns the read sets flushed when
    /// that filled the map (all of it is flushed then).
    mutating func aggregate(_ event: DecisionEvent) -> [ChainedRow] {
        reads.add(event)
        return reads.isFull ? flushReads() : []
    }

    /// Chains the aggregated reads of `pid` (at its exec or exit: the next image's reads are
    /// its own), or all of them: one read set per policy version, entries by process and first read.
    mutating func flushReads(pid: Int32? = nil, nowMicros: Int64 = AuditClock.nowMicros()) -> [ChainedRow] {
        let taken = reads.take(pid: pid)
        guard !taken.isEmpty else { return [] }
        var byPolicy: [String?: [ReadEntryColumns]] = [:]
        var order: [String?] = []
        var time = nowMicros
        for (pid, key, value) in taken {
            time = max(time, value.last)
            if byPolicy[key.policySHA256] == nil { order.append(key.policySHA256) }
            byPolicy[key.policySHA256, default: []].append(ReadEntryColumns(
                pid: Int64(pid), ppid: Int64(value.ppid), executable: Redactor.redact(text: value.executable),
                target: Redactor.redact(text: key.target), firstTime: value.first, lastTime: value.last, count: value.count,
                ruleIndex: key.ruleIndex.map(Int64.init), errno: key.errno.map(Int64.init)))
        }
        var rows: [ChainedRow] = []
        for policy in order {
            // By process, then by first read: a process's entries are one run, which its rows
            // store compactly (schema v9).
            let entries = (byPolicy[policy] ?? []).sorted {
                ($0.pid, $0.executable, $0.firstTime, $0.target, $0.ruleIndex ?? -1, $0.errno ?? -1)
                    < ($1.pid, $1.executable, $1.firstTime, $1.target, $1.ruleIndex ?? -1, $1.errno ?? -1)
            }
            count += 1
            var columns = ReadSetColumns(
                sessionID: sessionID, seq: count, time: time, policySHA256: policy, entryCount: Int64(entries.count),
                entriesDigest: ReadEntryColumns.digest(entries))
            lastHash = AuditChain.hash(inPlace: &columns, previous: lastHash, encoder: &encoder)
            columns.policySHA256 = storedPolicy(columns.policySHA256)
            rows.append(.readSet(columns, entries: entries, hash: AuditChain.hex(lastHash)))
        }
        return rows
    }

    /// nil when no image of `pid` was recorded (or its exit already was): nothing to fill.
    mutating func processExit(pid: Int32, timeMicros: Int64, exitStatus: Int32) -> ChainedRow? {
        guard let start = openProcesses.removeValue(forKey: pid) else { return nil }
        count += 1
        var columns = ProcessExitColumns(
            sessionID: sessionID, seq: count, startSeq: start.seq, startHash: start.hash, pid: Int64(pid),
            exitTime: timeMicros, exitStatus: Int64(exitStatus))
        lastHash = AuditChain.hash(inPlace: &columns, previous: lastHash, encoder: &encoder)
        return .processExit(columns, hash: AuditChain.hex(lastHash))
    }
}
