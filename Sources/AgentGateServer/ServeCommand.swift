import AgentGateCLI
import ArgumentParser
import Foundation
import Logging
import Synchronization

/// `agentgate` with the server's commands: `serve` and `token` (kept out of AgentGateCLI so that
/// only this module and the `agentgate` executable build Hummingbird).
public struct AgentGateServingCommand: ParsableCommand {
    public static let configuration: CommandConfiguration = {
        var configuration = AgentGateCommand.configuration
        configuration.ungroupedSubcommands += [ServeCommand.self, TokenCommand.self]
        return configuration
    }()

    public init() {}
}

/// `agentgate serve [--listen 127.0.0.1:9100] [--db FILE] [--policy FILE]`
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Serve the HTTP API, the dashboard and Prometheus metrics.",
        discussion: """
        Reads the audit database (read-only) and talks to running sessions over their control sockets; \
        supervisors decide and record whether or not it runs. Reads are open on loopback; approve, deny, \
        kill, pause, resume and reload need `Authorization: Bearer TOKEN` (`agentgate token` prints it; \
        it is created at first start, mode 0600). With a --listen address off loopback every request needs \
        the token. The API is described at /api/v1/openapi.json.
        """)

    @Option(help: "Address and port to listen on (port 0: any free port).") var listen = "127.0.0.1:9100"
    @Option(help: "SQLite database (default: $AGENTGATE_DB or $XDG_DATA_HOME/agentgate/agentgate.db).") var db: String?
    @Option(help: "Policy /api/v1/check decides with (default: as `agentgate check` finds it).") var policy: String?
    @Option(help: "Token file (default: server.token in the configuration directory `agentgate paths` shows).") var tokenFile: String?

    func validate() throws {
        guard ListenAddress(listen) != nil else {
            throw ValidationError("--listen must be HOST:PORT, such as 127.0.0.1:9100 or [::1]:9100")
        }
    }

    func run() throws {
        let address = ListenAddress(listen)!
        let environment = ProcessInfo.processInfo.environment
        let token: ServerToken
        do throws(ServerToken.Failure) {
            token = try ServerToken.loadOrCreate(at: tokenFile ?? ServerToken.defaultPath(environment))
        } catch {
            FileHandle.standardError.write(Data("agentgate: \(error.description)\n".utf8))
            throw ExitCode(1)
        }
        let settings = ServerSettings(listen: address, databasePath: AgentGatePaths.database(db), token: token, policy: policy,
                                      environment: environment)
        if settings.tokenRequiredForReads {
            FileHandle.standardError.write(Data(("agentgate: warning: listening on \(address), off loopback: anyone who can reach it "
                + "sees the port; every request needs the bearer token, and it travels in clear text (no TLS)\n").utf8))
        }
        var logger = Logger(label: "agentgate-serve")
        logger.logLevel = .warning
        let outcome = ServeOutcome()
        let done = DispatchSemaphore(value: 0)
        Task {
            do {
                try await APIServer.run(settings, logger: logger) { port in
                    let shown = address.host.contains(":") ? "[\(address.host)]" : address.host
                    FileHandle.standardOutput.write(Data(
                        "agentgate serve: listening on http://\(shown):\(port) (database \(settings.databasePath), token \(token.path))\n".utf8))
                }
            } catch {
                outcome.error.withLock { $0 = error }
            }
            done.signal()
        }
        done.wait()
        if let error = outcome.error.withLock({ $0 }) {
            FileHandle.standardError.write(Data("agentgate: serve: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// How the server's task ended, for the thread waiting on it.
final class ServeOutcome: Sendable {
    let error = Mutex<(any Error)?>(nil)
}

/// `agentgate token`: prints the server's bearer token (creating it if there is none yet).
struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Print the bearer token `agentgate serve` requires for changes.",
        discussion: "The token is in server.token in the configuration directory (`agentgate paths`), mode 0600.")
    @Option(help: "Token file (default: server.token in the configuration directory).") var tokenFile: String?

    func run() throws {
        do throws(ServerToken.Failure) {
            print(try ServerToken.loadOrCreate(at: tokenFile ?? ServerToken.defaultPath()).value)
        } catch {
            FileHandle.standardError.write(Data("agentgate: \(error.description)\n".utf8))
            throw ExitCode(1)
        }
    }
}
