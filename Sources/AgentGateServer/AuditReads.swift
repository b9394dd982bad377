import AgentGateReports
import AgentGateStore
import Foundation

/// The audit database, read-only, through the queries `agentgate sessions`, `audit` and `show`
/// use. Each call opens its own connection (SQLite connections are not shared across threads).
struct AuditReads: Sendable {
    let path: String

    var exists: Bool { FileManager.default.fileExists(atPath: path) }

    /// Runs `body` on a read-only connection; nil when there is no database yet.
    func withStore<T>(_ body: (AuditStore) throws -> T) throws(APIError) -> T? {
        guard exists else { return nil }
        let store: AuditStore
        do {
            store = try AuditStore(path: path, readOnly: true)
        } catch {
            throw APIError(.database, "cannot open the audit database \(path): \(error)")
        }
        defer { store.close() }
        do {
            return try body(store)
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError(.database, "cannot read the audit database \(path): \(error)")
        }
    }

    /// The one session `idOrPrefix` names in `store`.
    static func resolveSession(_ idOrPrefix: String, in store: AuditStore) throws -> String {
        let matches = try store.sessionIDs(matching: idOrPrefix)
        if matches.count == 1 { return matches[0] }
        if matches.isEmpty { throw APIError(.notFound, "no session \(idOrPrefix)") }
        throw APIError(.ambiguous, "\(idOrPrefix) matches several sessions: \(matches.joined(separator: ", "))")
    }

    /// `since=` as `agentgate sessions --since` reads it.
    static func since(_ text: String?) throws(APIError) -> Int64? {
        guard let text else { return nil }
        do throws(AuditTimeError) {
            return try AuditTime.since(text)
        } catch {
            throw APIError(.badRequest, "since: \(error.description)")
        }
    }

    /// Sessions, newest first, as `sessions --json` writes them, each with `running` (and `paused`).
    func sessions(agent: String?, since: Int64?, running: Bool?, limit: Int, statuses: [String: SupervisorFleet.Status]) throws(APIError) -> [[String: Any]] {
        let summaries = try withStore { try $0.sessionSummaries(agent: agent, since: since) } ?? []
        var objects: [[String: Any]] = []
        for summary in summaries.reversed() {
            let status = statuses[summary.session.id]
            if let running, running != (status != nil) { continue }
            var object = AuditFormat.sessionObject(summary.session, events: summary.eventCount, denied: summary.deniedCount)
            object["running"] = status != nil
            if let status { object["paused"] = status.paused }
            objects.append(object)
            if objects.count >= limit { break }
        }
        return objects
    }

    /// One session as `agentgate show` reads it: record, counts, processes, recent denials.
    func session(_ idOrPrefix: String, statuses: [String: SupervisorFleet.Status]) throws(APIError) -> [String: Any] {
        let object: [String: Any]? = try withStore { store in
            let id = try Self.resolveSession(idOrPrefix, in: store)
            let report: SessionReport
            do {
                report = try SessionReport.load(id: id, store: store, deniedLimit: 50)
            } catch is SessionReport.NotFound {
                throw APIError(.notFound, "no session \(idOrPrefix)")
            }
            var session = AuditFormat.sessionObject(report.record, events: report.eventTotal, denied: report.deniedTotal)
            let status = statuses[id]
            session["running"] = status != nil
            if let status { session["paused"] = status.paused }
            let counts: [[String: Any]] = report.counts.map {
                ["action": $0.action.text, "decision": $0.decision.text, "enforced": $0.enforced, "count": $0.count]
            }
            return [
                "session": session, "counts": counts, "processes": report.processes.map(AuditFormat.processObject),
                "denied": report.denied.map(AuditFormat.jsonObject), "denied_total": report.deniedTotal,
            ]
        }
        guard let object else { throw APIError(.notFound, "no session \(idOrPrefix) (no audit database at \(path))") }
        return object
    }

    /// One page of a session's events after `after`, and the cursor for the next page.
    func events(session idOrPrefix: String, filter: EventFilter, after: Int64?, limit: Int) throws(APIError) -> [String: Any] {
        let page: [String: Any]? = try withStore { store in
            var query = filter.query
            query.sessionID = try Self.resolveSession(idOrPrefix, in: store)
            query.afterID = after
            query.limit = limit
            let events = try store.events(matching: query)
            let next: Any = events.count == limit ? events.last.map { $0.id } ?? NSNull() : NSNull()
            return ["events": events.filter(filter.shows).map(AuditFormat.jsonObject), "next_cursor": next]
        }
        guard let page else { throw APIError(.notFound, "no session \(idOrPrefix) (no audit database at \(path))") }
        return page
    }
}

/// `decision=` and `action=` as `agentgate audit` reads them: exec and syscall are told apart
/// as shown (older supervisors recorded refusals on unsupervised routes as execs).
struct EventFilter: Sendable {
    var decision: String?
    var action: String?
    var since: Int64?
    var text: String?
    var sessionID: String?

    static let decisions = ["allow", "deny", "ask", "log"]
    static let actions = ["exec", "fs_read", "fs_write", "net_egress", "syscall", "mcp"]

    var query: AuditStore.EventQuery {
        var query = AuditStore.EventQuery(decision: decision.map(RecordedDecision.init(text:)),
                                          action: action == "syscall" ? nil : action.map(RecordedAction.init(text:)),
                                          since: since, text: text)
        query.sessionID = sessionID
        return query
    }

    func shows(_ stored: StoredEvent) -> Bool {
        guard action == "exec" || action == "syscall" else { return true }
        return AuditFormat.shownAction(stored.event) == action
    }
}
