import AgentGateReports
import ArgumentParser

/// `agentgate show SESSION`: one session on a terminal.
struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Summarise one session: command, duration, exit status, counts, denials, process tree.")

    @OptionGroup var database: DatabaseOption
    @Argument(help: "The session: an id or a unique prefix (see `agentgate sessions`).") var session: String
    @Option(help: "Denied events to list.") var denials = 50
    @Flag(help: "Show the whole process tree (by default a large one is folded).") var all = false

    func run() throws {
        let store = try database.open()
        defer { store.close() }
        let id = try DatabaseOption.resolveSession(session, in: store)
        let summary = try exitingTwoWhenGone { try SessionReport.load(id: id, store: store, deniedLimit: denials) }
        for line in summary.text(treeLimits: all ? nil : .folded) { print(line) }
    }
}
