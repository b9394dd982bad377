import AgentGateSupervisor
import ArgumentParser
import Foundation

/// Sends one control op to running sessions over their control sockets.
enum SessionControl {
    /// Exit status when a session can't be reached or refuses.
    static let failureStatus: Int32 = 1

    /// Sends `operation` to `session` (an id or a unique prefix), or to every session of the user
    /// with `all`, and prints what happened: `paused session 1f2e3d4c`.
    static func send(_ operation: ControlOperation, session: String?, all: Bool, done: String) throws {
        let directory = try controlDirectory()
        var sessions: [String]
        if all {
            sessions = directory.sessions()
            if sessions.isEmpty {
                print("no running sessions (no control sockets in \(directory.path))")
                return
            }
        } else {
            sessions = [try resolve(session ?? "", in: directory)]
        }
        var failed = false
        for id in sessions {
            guard let socket = directory.socketPath(session: id) else { continue }
            do {
                let response = try ControlClient.send(ControlRequest(op: operation.rawValue), to: socket)
                if response.ok {
                    print("\(done) session \(id)")
                } else {
                    printError("session \(id) refused: \(response.error ?? "no reason given")", tool: "agentgate")
                    failed = true
                }
            } catch {
                switch error.kind {
                case .notRunning:
                    // With --all, a socket left by a supervisor that was itself killed is no session.
                    if all { continue }
                    printError("no running session \(id) (\(error.description))", tool: "agentgate")
                case .unreachable, .noAnswer:
                    printError("session \(id): \(error.description)", tool: "agentgate")
                }
                failed = true
            }
        }
        if failed { throw ExitCode(failureStatus) }
    }
}

extension SessionControl {
    /// The user's control directory, or a printed error and exit status 1.
    static func controlDirectory() throws -> ControlDirectory {
        do {
            return try ControlDirectory.resolve(environment: ProcessInfo.processInfo.environment, create: false)
        } catch {
            printError(error.description, tool: "agentgate")
            throw ExitCode(failureStatus)
        }
    }

    /// The running session `id` names (an id or a unique prefix), or a printed error and exit status 1.
    static func resolve(_ id: String, in directory: ControlDirectory) throws -> String {
        switch directory.match(session: id) {
        case .found(let match): return match
        case .ambiguous(let matches):
            printError("\(id) matches several running sessions: \(matches.joined(separator: ", ")); give more of the id", tool: "agentgate")
            throw ExitCode(failureStatus)
        case .none:
            let socket = directory.socketPath(session: id) ?? directory.path + "/" + id + ".sock"
            printError("no running session \(id) (its control socket \(socket) doesn't exist)", tool: "agentgate")
            throw ExitCode(failureStatus)
        }
    }
}

/// `agentgate kill SESSION`
struct KillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kill", abstract: "End a running session's whole process tree.",
        discussion: "The supervisor records who killed the session, and exits with status 137.")
    @Argument(help: "The session id, as `agentgate sessions` shows it, or a unique prefix.") var session: String

    func run() throws {
        try SessionControl.send(.kill, session: session, all: false, done: "killed")
    }
}

/// The sessions `pause` and `resume` act on: one (by id or a unique prefix), or `--all`.
struct ControlledSessions: ParsableArguments {
    @Argument(help: "The session id, or a unique prefix.") var session: String?
    @Flag(help: "Every running session of this user.") var all = false

    func validate() throws {
        if all == (session != nil) { throw ValidationError("give either a SESSION or --all") }
    }

    func send(_ operation: ControlOperation, done: String) throws {
        try SessionControl.send(operation, session: session, all: all, done: done)
    }
}

/// `agentgate pause SESSION | --all`
struct PauseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause", abstract: "Hold every new trapped call of a running session until it is resumed.")
    @OptionGroup var sessions: ControlledSessions

    func run() throws { try sessions.send(.pause, done: "paused") }
}

/// `agentgate resume SESSION | --all`
struct ResumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume", abstract: "Let a paused session's trapped calls continue.")
    @OptionGroup var sessions: ControlledSessions

    func run() throws { try sessions.send(.resume, done: "resumed") }
}
