import AgentGateStore
import Foundation

/// Everything an evidence pack holds.
public struct EvidencePack: Sendable {
    public var databasePath: String
    public var report: SessionReport
    public var events: [StoredEvent]
    public var verification: VerificationReport
    public var generatedAt: Int64

    /// Reads everything recorded about the session and verifies its chains.
    public static func load(id: String, store: AuditStore) throws -> EvidencePack {
        EvidencePack(
            databasePath: store.path, report: try SessionReport.load(id: id, store: store, deniedLimit: nil),
            events: try store.events(sessionID: id), verification: try store.verify(sessionID: id),
            generatedAt: AuditClock.nowMicros())
    }

    public var record: SessionRecord { report.record }

    /// The chain verification as the JSON pack writes it.
    public func verificationObject() -> [String: Any] {
        var object: [String: Any] = [
            "valid": verification.isValid, "events_verified": verification.eventsVerified,
            "process_links_verified": verification.processLinksVerified, "session_chain_links": verification.globalLinks,
            "problems": verification.problems.map(\.description),
            "session_has_end_record": !verification.openSessions.contains(record.id),
            "pre_v2_unchained": verification.unchainedSessions.contains(record.id),
        ]
        if let head = verification.headHash { object["session_chain_head"] = head }
        if let anchor = verification.anchorSeq { object["retention_anchor_seq"] = anchor }
        return object
    }

    /// The pack as JSON with sorted keys, one event per line.
    public func json() -> String {
        let session = AuditFormat.sessionObject(record, events: report.eventTotal, denied: report.deniedTotal)
        let counts = report.storedCounts.map { count -> [String: Any] in
            ["action": count.action.text, "decision": count.decision.text, "enforced": count.enforced, "count": count.count]
        }
        // Events are written one per line inside the array, so a large pack stays streamable.
        let head: [String: Any] = [
            "format": "agentgate-evidence", "version": 1, "generated_at": AuditTime.iso8601(generatedAt),
            "database": databasePath, "session": session, "verification": verificationObject(), "counts": counts,
            "processes": report.processes.map(AuditFormat.processObject),
        ]
        var text = AuditFormat.json(head, pretty: true)
        // Splice the events array in before the closing brace.
        if let close = text.lastIndex(of: "}") { text = String(text[..<close]) }
        while let last = text.last, last.isWhitespace { text.removeLast() }
        text += ",\n  \"events\" : ["
        for (index, stored) in events.enumerated() {
            text += (index == 0 ? "\n    " : ",\n    ") + AuditFormat.json(AuditFormat.jsonObject(stored))
        }
        text += events.isEmpty ? "]\n}\n" : "\n  ]\n}\n"
        return text
    }
}
