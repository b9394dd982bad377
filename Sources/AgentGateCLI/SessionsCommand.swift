import AgentGateReports
import AgentGateStore
import ArgumentParser
import Foundation

/// `agentgate sessions [--agent A] [--since T] [--json]`
struct SessionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sessions", abstract: "List supervised sessions.")
    @OptionGroup var database: DatabaseOption
    @Option(help: "Only sessions of this agent.") var agent: String?
    @Option(help: "Only sessions started since: a duration (30s, 15m, 2h, 7d) or an ISO-8601 time.") var since: String?
    @Flag(help: "A JSON array.") var json = false

    func validate() throws {
        if let since { _ = try AuditTime.argument(since) }
    }

    func run() throws {
        let store = try database.open()
        defer { store.close() }
        let summaries = try store.sessionSummaries(agent: agent, since: try since.map { try AuditTime.argument($0) })
        if json {
            let objects = summaries.map { summary -> [String: Any] in
                var object = AuditFormat.sessionObject(summary.session)
                object["events"] = summary.eventCount
                object["denied"] = summary.deniedCount
                return object
            }
            print(AuditFormat.json(objects, pretty: true))
            return
        }
        if summaries.isEmpty {
            print("no sessions")
            return
        }
        let rows = summaries.map { summary -> [String] in
            let session = summary.session
            let status: String
            let duration: String
            if let end = session.endTimeMicros {
                status = session.exitStatus.map { "exit \($0)" } ?? "ended"
                duration = AuditTime.duration(micros: end - session.startTimeMicros)
            } else {
                status = "running"
                duration = "-"
            }
            let command = AuditFormat.printable(session.command.joined(separator: " "))
            return [session.id, session.agent + (session.mode == "audit" ? " (audit)" : ""),
                    AuditTime.dateTime(session.startTimeMicros), duration, status, "\(summary.eventCount)",
                    "\(summary.deniedCount)", command.count > 60 ? String(command.prefix(59)) + "…" : command]
        }
        printTable(header: ["SESSION", "AGENT", "STARTED", "DURATION", "STATUS", "EVENTS", "DENIED", "COMMAND"], rows: rows)
    }
}

/// Left-aligned columns, two spaces apart; the last column is not padded.
func printTable(header: [String], rows: [[String]], indent: String = "") {
    var widths = header.map(\.count)
    for row in rows {
        for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
    }
    for row in [header] + rows {
        var line = indent
        for (index, cell) in row.enumerated() {
            line += index == row.count - 1 ? cell : cell.padding(toLength: widths[index] + 2, withPad: " ", startingAt: 0)
        }
        print(line)
    }
}
