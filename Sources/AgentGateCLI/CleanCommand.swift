import AgentGateReports
import AgentGateStore
import ArgumentParser
import Foundation

/// `agentgate clean --older-than 30d [--dry-run]`: retention.
struct CleanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clean",
        abstract: "Remove sessions that ended before a cutoff, with their events and process records.",
        discussion: """
        A session counts as ended at its recorded end, or, when its supervisor died without one, at its last \
        event. The session chain stays verifiable: the removed sessions' links stay (marked pruned) behind a \
        retention record that lists them, and `agentgate audit verify` starts from that anchor.
        """)

    @OptionGroup var database: DatabaseOption
    @Option(help: "Age: a duration (30s, 15m, 2h, 30d, 8w) or an ISO-8601 time.") var olderThan: String
    @Flag(help: "Only say what would be removed.") var dryRun = false

    func validate() throws {
        _ = try AuditTime.argument(olderThan)
    }

    func run() throws {
        let store = try database.open()
        defer { store.close() }
        let cutoff = try AuditTime.argument(olderThan)
        let report = try store.removeSessions(endedBefore: cutoff, dryRun: dryRun)
        let verb = dryRun ? "would remove" : "removed"
        print("\(verb) \(report.sessionIDs.count) sessions (\(report.eventsRemoved) events, \(report.processesRemoved) process records) that ended before \(AuditTime.dateTime(cutoff))")
    }
}
