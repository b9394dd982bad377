import AgentGateReports
import AgentGateStore
import ArgumentParser
import Foundation
import Glibc

/// `agentgate audit …`: lists decided events (the default), or verifies the hash chains.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "List recorded decisions, or verify the audit trail.",
        subcommands: [AuditListCommand.self, AuditVerifyCommand.self], defaultSubcommand: AuditListCommand.self)
}

/// `agentgate audit [--session ID] [--decision D] [--action A] [--since T] [--grep TEXT] [--json|--jsonl] [-f]`
struct AuditListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List recorded decisions (the default `agentgate audit`).",
        discussion: """
        Each line: ✓ allow, ✗ deny, ? ask, ! log; the local time; the action; the decision ("would deny" in \
        audit mode); the argv for exec, else the target; and for anything not allowed, the rule and reason: \
        (rule ID: REASON). Syscalls on an unsupervised route name the route: syscall deny socket(AF_PACKET) — \
        raw_sockets. Line breaks show as ⏎, tabs as ⇥, other control characters as \\u{…}.
        """)

    @OptionGroup var database: DatabaseOption
    @Option(help: "Only this session (an id or a unique prefix).") var session: String?
    @Option(help: "Only this decision (allow, deny, ask, log).") var decision: String?
    @Option(help: "Only this action (exec, fs_read, fs_write, net_egress, syscall).") var action: String?
    @Option(help: "Only events since: a duration (30s, 15m, 2h, 7d) or an ISO-8601 time.") var since: String?
    @Option(help: "Only events whose target, argv, executable, reason or intent contains TEXT (any case).")
    var grep: String?
    @Flag(help: "A JSON array.") var json = false
    @Flag(help: "One JSON object per line.") var jsonl = false
    @Flag(name: [.customShort("f"), .long], help: "Follow a live session (the latest one without --session) until it ends.")
    var follow = false

    func validate() throws {
        if json && jsonl { throw ValidationError("--json and --jsonl are exclusive") }
        if json && follow { throw ValidationError("--json prints one array; use --jsonl with -f") }
        if let since { _ = try AuditTime.argument(since) }
    }

    func run() throws {
        let store = try database.open()
        defer { store.close() }
        // exec and syscall are told apart as shown: older supervisors recorded refusals on
        // unsupervised routes as execs (see AuditFormat.shownAction).
        let shownAction = action == "exec" || action == "syscall" ? action : nil
        var query = AuditStore.EventQuery(
            decision: decision.map(RecordedDecision.init(text:)), action: action == "syscall" ? nil : action.map(RecordedAction.init(text:)),
            since: try since.map { try AuditTime.argument($0) }, text: grep)
        if let session {
            query.sessionID = try DatabaseOption.resolveSession(session, in: store)
        } else if follow {
            guard let latest = try store.latestSessionID() else {
                printError("no sessions to follow in \(store.path)", tool: "agentgate")
                throw ExitCode(2)
            }
            query.sessionID = latest
        }
        var first = true
        if json { print("[", terminator: "") }
        func emit(_ events: [StoredEvent]) {
            for stored in events where shownAction == nil || AuditFormat.shownAction(stored.event) == shownAction {
                if json {
                    print((first ? "\n" : ",\n") + AuditFormat.json(AuditFormat.jsonObject(stored)), terminator: "")
                } else if jsonl {
                    print(AuditFormat.json(AuditFormat.jsonObject(stored)))
                } else {
                    print(AuditFormat.line(stored.event))
                }
                first = false
            }
        }
        // Pages by row id, so a large database doesn't have to fit in memory.
        query.limit = 10_000
        var lastPrinted: Int64?
        while true {
            let page = try store.events(matching: query)
            emit(page)
            // Read aggregates (row id 0) ride along with the events of their time.
            let rows = page.filter { $0.event.readCount == nil }
            if let last = rows.last { lastPrinted = last.id }
            guard let last = rows.last, rows.count == query.limit else { break }
            query.afterID = last.id
            query.readsAfter = last.event.timeMicros
        }
        query.readsAfter = nil
        if json { print(first ? "]" : "\n]") }
        guard follow, let sessionID = query.sessionID else { return }
        // Following goes on from the last event printed: an event recorded between the pass
        // above and a fresh look for "the newest" was never printed.
        query.afterID = lastPrinted ?? query.afterID ?? 0
        fflush(nil)
        try Self.follow(store: store, sessionID: sessionID, query: &query, emit: emit)
    }

    /// Polls every 200 ms for new events until the session has ended (or ^C).
    static func follow(
        store: AuditStore, sessionID: String, query: inout AuditStore.EventQuery, emit: ([StoredEvent]) -> Void
    ) throws {
        if query.afterID == nil {
            query.afterID = try store.events(matching: .init(sessionID: sessionID)).last { $0.event.readCount == nil }?.id ?? 0
        }
        while true {
            let ended = try store.session(id: sessionID)?.endTimeMicros != nil
            // Read after checking the end: nothing is written to a session after its end.
            while true {
                let page = try store.events(matching: query)
                emit(page)
                let rows = page.filter { $0.event.readCount == nil }
                if let last = rows.last { query.afterID = last.id }
                if rows.count < (query.limit ?? Int.max) { break }
            }
            fflush(nil)
            if ended { return }
            usleep(200_000)
        }
    }
}

/// `agentgate audit verify [--session ID]`
struct AuditVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Check the hash chains; name the first broken link.",
        discussion: """
        Recomputes every event's and process record's hash along its session's chain, and every session \
        start, end and retention record along the global session chain: HMAC-SHA256 under the key beside \
        the database (<database>.key) for keyed sessions, SHA-256 for those recorded before it. Each \
        session head in <database>.anchors, written at each session's end, must match its end record. \
        Exit status 0 when every chain holds, 1 when a row was edited, deleted, inserted or reordered, a \
        chain was recomputed without the key, or a session doesn't match its anchor (the first broken link \
        is named), 2 when the database can't be read.
        """)

    @OptionGroup var database: DatabaseOption
    @Option(help: "Check this session's events and process records (the session chain is always checked).")
    var session: String?

    func run() throws {
        let store = try database.open()
        defer { store.close() }
        let sessionID = try session.map { try DatabaseOption.resolveSession($0, in: store) }
        let report = try store.verify(sessionID: sessionID)
        let pendingFallback = FileManager.default.fileExists(atPath: store.fallbackPath) ? store.fallbackPath : nil
        for line in report.summaryLines(sessionID: sessionID, pendingFallback: pendingFallback) { print(line) }
        if !report.isValid { throw ExitCode(1) }
    }
}
