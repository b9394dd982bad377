import AgentGateStore
import ArgumentParser
import Foundation

/// `agentgate`: queries over the audit database.
public struct AgentGateCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "agentgate",
        abstract: "AgentGate: check policies and query what supervised agents did.",
        subcommands: [CheckCommand.self, PolicyCommand.self, InitCommand.self, AuditCommand.self, SessionsCommand.self])
    public init() {}
}

struct DatabaseOption: ParsableArguments {
    @Option(help: "SQLite database (default: $AGENTGATE_DB or $XDG_DATA_HOME/agentgate/agentgate.db).")
    var db: String?

    func open() throws -> AuditStore {
        let path = AgentGatePaths.database(db)
        guard FileManager.default.fileExists(atPath: path) else {
            printError("no audit database at \(path)", tool: "agentgate")
            throw ExitCode(2)
        }
        do { return try AuditStore(path: path) } catch {
            printError("cannot open the audit database: \(error)", tool: "agentgate")
            throw ExitCode(2)
        }
    }
}

/// `agentgate audit`: lists decided events.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit", abstract: "List recorded decisions.")
    @OptionGroup var database: DatabaseOption
    @Option(help: "Only this session.") var session: String?
    @Option(help: "Only this decision (allow, deny, ask).") var decision: String?
    @Option(help: "Only this action (exec, fs_read, fs_write, net_egress).") var action: String?
    @Flag(help: "One JSON object per line.") var jsonl = false

    func run() throws {
        let store = try database.open()
        defer { store.close() }
        let events = try store.events(sessionID: session)
        let formatter = DateFormatter()
        formatter.dateFormat = "HH:mm:ss"
        for stored in events {
            let event = stored.event
            if let decision, event.decision != decision { continue }
            if let action, event.action != action { continue }
            if jsonl {
                var object: [String: Any] = [
                    "id": stored.id, "session": stored.sessionID, "time_us": event.timeMicros, "pid": event.pid,
                    "ppid": event.ppid, "executable": event.executable, "syscall": event.syscall,
                    "action": event.action, "target": event.target, "decision": event.decision,
                    "reason": event.reason, "latency_us": event.latencyMicros,
                ]
                if let rule = event.ruleIndex { object["rule"] = rule }
                if let argv = event.argv { object["argv"] = argv }
                if let errno = event.errno { object["errno"] = errno }
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                continue
            }
            let mark = event.decision == "allow" ? "✓" : "✗"
            let time = formatter.string(from: Date(timeIntervalSince1970: Double(event.timeMicros) / 1_000_000))
            let what = event.action == "exec" ? (event.argv?.joined(separator: " ") ?? event.target) : event.target
            var line = "\(mark) \(time) \(event.action) \(event.decision) \(what)"
            if event.decision != "allow" {
                line += event.ruleIndex.map { " (rule \($0): \(event.reason))" } ?? " (\(event.reason))"
            }
            print(line)
        }
    }
}

/// `agentgate sessions`: lists sessions.
struct SessionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sessions", abstract: "List supervised sessions.")
    @OptionGroup var database: DatabaseOption

    func run() throws {
        let store = try database.open()
        defer { store.close() }
        for session in try store.sessions() {
            let status = session.exitStatus.map { "exit \($0)" } ?? "running"
            print("\(session.id)  \(session.agent)  \(status)  \(session.command.joined(separator: " "))")
        }
    }
}
