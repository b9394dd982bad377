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
            let objects = summaries.map { summary in
                AuditFormat.sessionObject(summary.session, events: summary.eventCount, denied: summary.deniedCount)
            }
            print(AuditFormat.json(objects, pretty: true))
            return
        }
        if summaries.isEmpty {
            print("no sessions")
            return
        }
        let table = SessionListing.table(summaries.map { ($0.session, $0.eventCount, $0.deniedCount) })
        printTable(header: table.header, rows: table.rows)
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
