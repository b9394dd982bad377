import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A session's chain head as it was when the session ended, kept outside the database.
public struct AuditAnchor: Sendable, Equatable {
    public var sessionID: String
    /// The session chain's length (the last link's `seq`).
    public var lastSeq: Int64
    /// The last link's hash (hex); the session's genesis when it recorded nothing.
    public var headHash: String
    /// When the session ended, µs since the Unix epoch.
    public var timeMicros: Int64
    /// The key the chain is keyed with; nil for an unkeyed chain.
    public var keyID: String?

    public init(sessionID: String, lastSeq: Int64, headHash: String, timeMicros: Int64, keyID: String?) {
        self.sessionID = sessionID
        self.lastSeq = lastSeq
        self.headHash = headHash
        self.timeMicros = timeMicros
        self.keyID = keyID
    }
}

/// `<database>.anchors`: one JSON line per ended session (its id, last sequence, head hash,
/// time and key id), appended (O_APPEND) when the session ends, whether its end reached the
/// database or the fallback file. Protected from the agent as the database is; a rewrite of
/// the database that truncates or replaces a session's chain no longer matches its line.
/// Where systemd's journal runs, the same line also goes to the journal (`AuditJournal`).
public enum AuditAnchors {
    /// The line for `anchor`, without its newline.
    static func line(_ anchor: AuditAnchor) -> String {
        var line = "{\"session\":"
        AuditJSON.appendQuoted(anchor.sessionID, to: &line)
        line += ",\"last_seq\":\(anchor.lastSeq),\"head\":\"\(anchor.headHash)\",\"time\":\(anchor.timeMicros),\"key_id\":"
        if let keyID = anchor.keyID { AuditJSON.appendQuoted(keyID, to: &line) } else { line += "null" }
        return line + "}"
    }

    /// Parses one line; nil when it isn't an anchor.
    static func parse(_ line: Substring) -> AuditAnchor? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let session = object["session"] as? String, let lastSeq = (object["last_seq"] as? NSNumber)?.int64Value,
              let head = object["head"] as? String, let time = (object["time"] as? NSNumber)?.int64Value
        else { return nil }
        return AuditAnchor(sessionID: session, lastSeq: lastSeq, headHash: head, timeMicros: time, keyID: object["key_id"] as? String)
    }

    /// Appends `anchor` to the file at `path` (created 0600) in one write, and syncs it. A
    /// line an earlier append left torn (a full disk) is ended first, so that it doesn't take
    /// this one with it; two appenders both ending it leave an empty line, which is skipped.
    public static func append(_ anchor: AuditAnchor, to path: String) throws(StoreError) {
        let descriptor = open(path, O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw StoreError(code: .fallbackWriteFailed, path: path, message: "opening the anchor file failed", systemErrno: errno)
        }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var info = stat()
        if fstat(descriptor, &info) == 0, info.st_size > 0 {
            var last: UInt8 = 0
            if pread(descriptor, &last, 1, info.st_size - 1) == 1, last != UInt8(ascii: "\n") { bytes.append(UInt8(ascii: "\n")) }
        }
        bytes.append(contentsOf: (line(anchor) + "\n").utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(descriptor) == 0 else {
            throw StoreError(code: .fallbackWriteFailed, path: path, message: "writing the anchor file failed",
                             systemErrno: written < 0 ? errno : EIO)
        }
    }

    /// The anchors in the file at `path`, and the numbers (1-based) of lines that aren't one;
    /// nil when there is no file.
    public static func read(path: String) throws(StoreError) -> (anchors: [AuditAnchor], malformedLines: [Int])? {
        guard let data = FileManager.default.contents(atPath: path) else {
            if access(path, F_OK) != 0 && errno == ENOENT { return nil }
            throw StoreError(code: .cannotOpen, path: path, message: "reading the anchor file failed", systemErrno: errno)
        }
        var anchors: [AuditAnchor] = []
        var malformed: [Int] = []
        for (index, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.isEmpty { continue }
            if let anchor = parse(line) { anchors.append(anchor) } else { malformed.append(index + 1) }
        }
        return (anchors, malformed)
    }
}

extension AuditStore {
    /// Anchors the end of a session: its line in `<database>.anchors`, and in the journal
    /// where one runs. Returns what went wrong, for a warning; nil when the file took it.
    public func anchor(sessionID: String, lastSeq: Int64, headHash: String, keyID: String?) -> String? {
        let anchor = AuditAnchor(sessionID: sessionID, lastSeq: lastSeq, headHash: headHash,
                                 timeMicros: AuditClock.nowMicros(), keyID: keyID)
        AuditJournal.send(anchor)
        do throws(StoreError) {
            try AuditAnchors.append(anchor, to: files.anchors)
            return nil
        } catch {
            // Like the records: kept beside the spill file, and moved at the next import.
            if let spill = files.anchorSpill, (try? AuditFallbackFile.append(AuditAnchors.line(anchor) + "\n", to: spill)) != nil {
                return "the session's chain head went to \(spill), not to \(files.anchors) (\(error)); "
                    + "the next start moves it there"
            }
            return "the session's chain head could not be anchored: \(error)"
        }
    }

    /// Appends the chain heads that went to `anchorSpill` to the anchor file, under the
    /// spill's lock (an ending session appends to it meanwhile), then removes the spill. A
    /// line that isn't an anchor is moved too, so verify reports it rather than it vanishing.
    /// What the anchor file refuses stays for the next time.
    func takeSpilledAnchors() {
        guard let spill = files.anchorSpill else { return }
        try? AuditFallbackFile.moveLines(from: spill, to: files.anchors)
    }

    /// Compares each anchored session (or only `only`) with its end record: the same length
    /// and head, or a problem saying which was rewritten. Sessions removed by retention
    /// (`removed`) are expected to be gone.
    func verifyAnchors(sessions: [String: SessionRow], removed: Set<String>, only: String?, report: inout VerificationReport) {
        report.anchorPath = files.anchors
        let file: (anchors: [AuditAnchor], malformedLines: [Int])?
        do throws(StoreError) {
            file = try AuditAnchors.read(path: files.anchors)
        } catch {
            report.add(ChainProblem(table: "anchors", row: files.anchors, sessionID: nil, seq: nil,
                                    message: "can't be read: \(error)"))
            return
        }
        guard let file else { return }
        for line in file.malformedLines {
            report.add(ChainProblem(table: "anchors", row: "line \(line)", sessionID: nil, seq: nil,
                                    message: "is not an anchor line"))
        }
        for anchor in file.anchors {
            if let only, anchor.sessionID != only { continue }
            report.anchorsChecked += 1
            func problem(_ message: String) {
                report.add(ChainProblem(table: "sessions", row: anchor.sessionID, sessionID: anchor.sessionID, seq: nil,
                                        message: message))
            }
            guard let session = sessions[anchor.sessionID] else {
                if !removed.contains(anchor.sessionID) {
                    problem("is anchored in \(files.anchors) but missing from the database: deleted")
                }
                continue
            }
            guard session.endTime != nil, let count = session.linkCount, let head = session.lastHash else {
                problem("is anchored as ended (\(anchor.lastSeq) links ending in \(Self.short(anchor.headHash))) but has no end record: its end was removed")
                continue
            }
            if count != anchor.lastSeq || head != anchor.headHash {
                problem("its end record (\(count) links ending in \(Self.short(head))) doesn't match its anchor (\(anchor.lastSeq) links ending in \(Self.short(anchor.headHash))): "
                        + (count < anchor.lastSeq ? "its last \(anchor.lastSeq - count) links were removed" : "its chain was rewritten"))
            }
            if anchor.keyID != session.keyID {
                problem("was anchored " + (anchor.keyID.map { "keyed with \($0)" } ?? "unkeyed") + ", but is stored "
                        + (session.keyID.map { "keyed with \($0)" } ?? "unkeyed") + ": rewritten")
            }
        }
    }
}
