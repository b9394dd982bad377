import AgentGateStore

extension VerificationReport {
    /// What `agentgate audit verify` says: the verdict (with the first broken link and up to 20
    /// more), then notes on what the chains can't vouch for. `sessionID` is the session checked
    /// (nil: every session); `pendingFallback` a fallback file holding records not yet imported.
    public func summaryLines(sessionID: String?, pendingFallback: String?) -> [String] {
        var lines: [String] = []
        let scope = sessionID.map { "session \($0)" } ?? "\(sessionsVerified) chained sessions"
        if isValid {
            lines.append("✓ audit trail verified: \(scope), \(eventsVerified) events, \(processLinksVerified) process records; "
                         + "session chain: \(globalLinks) links" + (headHash.map { ", head \($0)" } ?? "")
                         + (readSetsVerified > 0 ? "; read aggregates: \(readEntriesVerified) in \(readSetsVerified) sets" : ""))
        } else {
            lines.append("✗ audit trail BROKEN. First broken link: \(firstBrokenLink!)")
            let rest = problems.dropFirst()
            if !rest.isEmpty {
                lines.append("Also:")
                for problem in rest.prefix(20) { lines.append("  - \(problem)") }
                let more = rest.count - min(rest.count, 20) + unlistedProblems
                if more > 0 { lines.append("  … and \(more) more") }
            }
        }
        // Whether the key and the anchors vouch for the chains, beyond their own consistency.
        if let keyID {
            lines.append("key: \(keyID) (\(keyedSessions) keyed sessions, \(keyedLinks) keyed session chain links)"
                         + (unkeyedSessions > 0 ? "; \(unkeyedSessions) sessions were recorded before the key and are unkeyed (SHA-256 only)" : ""))
        } else {
            lines.append("key: none" + (keyProblem.map { " (\($0))" } ?? "")
                         + "; \(unkeyedSessions) sessions are unkeyed (SHA-256 only): anyone who can write the database can recompute them")
        }
        if let anchorPath {
            lines.append(anchorsChecked > 0
                ? "anchors: \(anchorsChecked) session heads in \(anchorPath) compared with the database"
                : "anchors: none in \(anchorPath) yet")
        }
        if !journalAvailable {
            lines.append("note: no systemd journal here (/run/systemd/journal/socket): the anchor file is the only copy of the heads")
        }
        if let anchorSeq {
            lines.append("note: the session chain starts at retention anchor seq \(anchorSeq) (older sessions were removed by agentgate clean)")
        }
        if !unchainedSessions.isEmpty {
            let ids = unchainedSessions.prefix(5).joined(separator: ", ") + (unchainedSessions.count > 5 ? ", …" : "")
            lines.append("note: \(unchainedSessions.count) sessions (\(unchainedEvents) events) were recorded before schema v2 and are unchained (pre-v2): \(ids)")
        }
        let open = sessionID.map { id in openSessions.filter { $0 == id } } ?? openSessions
        if !open.isEmpty {
            lines.append("note: \(open.count) sessions have no end record (still running, or the supervisor was killed); their last events are covered by the chain but not by an end record")
        }
        if let pendingFallback {
            lines.append("note: \(pendingFallback) holds records not yet imported; the next agentgate-supervise start imports them")
        }
        return lines
    }
}
