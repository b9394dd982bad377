import AgentGateReports
import AgentGateSupervisor
import ArgumentParser
import Foundation

/// Pending asks of the user's running sessions, read over their control sockets.
enum PendingAsks {
    /// Every pending ask of `session` (an id or a unique prefix), or of every running session,
    /// oldest first. Sessions that can't be reached are reported on stderr and skipped.
    static func list(session: String?) throws -> [AskListing] {
        let directory = try SessionControl.controlDirectory()
        let sessions = try session.map { [try SessionControl.resolve($0, in: directory)] } ?? directory.sessions()
        var asks: [AskListing] = []
        for id in sessions {
            guard let socket = directory.socketPath(session: id) else { continue }
            do {
                let response = try ControlClient.send(ControlRequest(op: ControlOperation.approvals.rawValue), to: socket)
                if response.ok {
                    // The asks are this socket's session's, whatever the answer says: a socket can
                    // claim to speak for another session, and `approve` must go where the ask was seen.
                    asks += (response.asks ?? []).map { ask in
                        var ask = ask
                        ask.session = id
                        return ask
                    }
                } else {
                    printError("session \(id) refused: \(response.error ?? "no reason given")", tool: "agentgate")
                }
            } catch {
                // A socket left by a supervisor that was itself killed is no session.
                if case .notRunning = error.kind, session == nil { continue }
                printError("session \(id): \(error.description)", tool: "agentgate")
            }
        }
        return asks.sorted { $0.ageSeconds > $1.ageSeconds }
    }

    /// Answers ask `id` in the session that has it (or in `session`), and prints what happened.
    static func answer(_ id: String, approve: Bool, save: Bool, breadth: AskBreadthOption, session: String?) throws {
        let directory = try SessionControl.controlDirectory()
        let holders = try list(session: session).filter { $0.id == id }.map(\.session)
        guard let holder = holders.first else {
            let scope = session.map { "session \($0)" } ?? "any running session"
            printError("no pending ask \(id) in \(scope) (`agentgate approvals` lists them)", tool: "agentgate")
            throw ExitCode(SessionControl.failureStatus)
        }
        guard holders.count == 1 else {
            printError("ask \(id) is pending in sessions \(holders.joined(separator: ", ")); say which with --session", tool: "agentgate")
            throw ExitCode(SessionControl.failureStatus)
        }
        guard let socket = directory.socketPath(session: holder) else { throw ExitCode(SessionControl.failureStatus) }
        let request = ControlRequest(op: (approve ? ControlOperation.approve : .deny).rawValue, id: id, always: save ? true : nil,
                                     breadth: save ? breadth.breadth : nil)
        do {
            let response = try ControlClient.send(request, to: socket, timeoutMilliseconds: 15_000)
            guard response.ok else {
                printError("session \(holder) refused: \(response.error ?? "no reason given")", tool: "agentgate")
                throw ExitCode(SessionControl.failureStatus)
            }
            print("session \(holder): \(response.message ?? (approve ? "approved" : "denied"))")
        } catch let failure as ControlClient.Failure {
            printError("session \(holder): \(failure.description)", tool: "agentgate")
            throw ExitCode(SessionControl.failureStatus)
        }
    }
}

/// `--exact` / `--directory`: how much a rule saved with `--always` or `--never` covers.
struct AskBreadthOption: ParsableArguments {
    @Flag(help: "The saved rule covers exactly this action (every argument of a command).") var exact = false
    @Flag(help: "The saved rule covers the path's directory and everything below it.") var directory = false

    var breadth: String { exact ? "exact" : directory ? "directory" : "usual" }

    func validate(saving: Bool, flag: String) throws {
        if exact && directory { throw ValidationError("give --exact or --directory, not both") }
        if (exact || directory) && !saving { throw ValidationError("--exact and --directory choose what \(flag) saves; add \(flag)") }
    }
}

/// `agentgate approvals [--session ID] [--json]`
struct ApprovalsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approvals", abstract: "List the actions running sessions are waiting on a person for.",
        discussion: "Answer one with `agentgate approve ID` or `agentgate deny ID`.")
    @Option(help: "Only this session (an id, or a unique prefix).") var session: String?
    @Flag(help: "One JSON object per pending ask.") var json = false

    func run() throws {
        let asks = try PendingAsks.list(session: session)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            for ask in asks { print(String(decoding: try encoder.encode(ask), as: UTF8.self)) }
            return
        }
        guard !asks.isEmpty else {
            print("no pending asks")
            return
        }
        for ask in asks {
            let target = AuditFormat.printable(ask.target)
            print("\(ask.id)  \(ask.ageSeconds)s ago (denied in \(ask.secondsLeft)s)  session \(ask.session)  pid \(ask.pid) "
                  + "(\(AuditFormat.printable(ask.executable)))")
            print("    \(ask.action) \(target)")
            print("    intent: \(AuditFormat.printable(ask.intent))")
            print("    rule:   \(AuditFormat.printable(ask.rule))")
            if let always = ask.always { print("    --always would save: \(AuditFormat.printable(always))") }
        }
    }
}

/// The ask `approve` and `deny` answer, and how much a rule they save covers.
struct AnsweredAsk: ParsableArguments {
    @Argument(help: "The ask's id, as `agentgate approvals` shows it.") var id: String
    @OptionGroup var breadth: AskBreadthOption
    @Option(help: "The session the ask belongs to (an id, or a unique prefix).") var session: String?

    func answer(approve: Bool, save: Bool) throws {
        try PendingAsks.answer(id, approve: approve, save: save, breadth: breadth, session: session)
    }
}

/// `agentgate approve ID [--always [--exact|--directory]] [--session ID]`
struct ApproveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve", abstract: "Let a paused action go ahead.",
        discussion: "With --always, a rule allowing the same action from now on is saved into the policy file.")
    @OptionGroup var ask: AnsweredAsk
    @Flag(help: "Also save a rule that allows the same action from now on.") var always = false

    func validate() throws { try ask.breadth.validate(saving: always, flag: "--always") }

    func run() throws { try ask.answer(approve: true, save: always) }
}

/// `agentgate deny ID [--never [--exact|--directory]] [--session ID]`
struct DenyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deny", abstract: "Refuse a paused action.",
        discussion: "With --never, a rule denying the same action from now on is saved into the policy file.")
    @OptionGroup var ask: AnsweredAsk
    @Flag(help: "Also save a rule that denies the same action from now on.") var never = false

    func validate() throws { try ask.breadth.validate(saving: never, flag: "--never") }

    func run() throws { try ask.answer(approve: false, save: never) }
}
