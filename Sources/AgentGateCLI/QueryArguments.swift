import AgentGateReports
import AgentGateStore
import ArgumentParser
import Foundation

/// `--db FILE`, else $AGENTGATE_DB, else the supervisor's default path.
struct DatabaseOption: ParsableArguments {
    @Option(help: "SQLite database (default: $AGENTGATE_DB or $XDG_DATA_HOME/agentgate/agentgate.db).")
    var db: String?

    var path: String { AgentGatePaths.database(db) }

    /// Opens the database for queries: read-write when possible (so an old schema is
    /// upgraded), else read-only. Exits 2 when there is none or it can't be opened.
    func open() throws -> AuditStore {
        let path = self.path
        guard FileManager.default.fileExists(atPath: path) else {
            printError("no audit database at \(path)", tool: "agentgate")
            throw ExitCode(2)
        }
        do throws(StoreError) {
            return try AuditStore(path: path)
        } catch let writable {
            guard writable.code == .readOnly || writable.code == .cannotOpen || writable.code == .sqlite else {
                printError("cannot open the audit database: \(writable)", tool: "agentgate")
                throw ExitCode(2)
            }
            do { return try AuditStore(path: path, readOnly: true) } catch {
                printError("cannot open the audit database: \(writable)", tool: "agentgate")
                throw ExitCode(2)
            }
        }
    }

    /// The one session `idOrPrefix` names (a full id or a unique prefix); exits 2 otherwise.
    static func resolveSession(_ idOrPrefix: String, in store: AuditStore) throws -> String {
        let matches = try store.sessionIDs(matching: idOrPrefix)
        if matches.count == 1 { return matches[0] }
        if matches.isEmpty {
            printError("no session \"\(idOrPrefix)\" in \(store.path)", tool: "agentgate")
        } else {
            printError("\"\(idOrPrefix)\" matches several sessions: \(matches.joined(separator: ", "))", tool: "agentgate")
        }
        throw ExitCode(2)
    }
}

extension AuditTime {
    /// A `--since` or `--older-than` argument in µs; an unreadable one is a usage error.
    static func argument(_ text: String) throws -> Int64 {
        do throws(AuditTimeError) {
            return try since(text)
        } catch {
            throw ValidationError(error.description)
        }
    }
}

/// `body`, with a session that vanished between resolving its id and reading it (removed by
/// `agentgate clean` meanwhile) ending the command with status 2, as a session not found does.
func exitingTwoWhenGone<Result>(_ body: () throws -> Result) throws -> Result {
    do {
        return try body()
    } catch is SessionReport.NotFound {
        throw ExitCode(2)
    }
}
