import AgentGatePolicy
import AgentGateSupervisor
import ArgumentParser
import Foundation
import Glibc

/// `agentgate paths`: where this user's database, configuration and control sockets are, what
/// chose each, and the directories a system service uses.
struct PathsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paths",
        abstract: "Print where AgentGate keeps its database, configuration and control sockets.",
        discussion: """
            For a user: $XDG_DATA_HOME/agentgate (~/.local/share/agentgate), $XDG_CONFIG_HOME/agentgate \
            (~/.config/agentgate) and $XDG_RUNTIME_DIR/agentgate. For a system service: the directories \
            systemd hands it with StateDirectory=, ConfigurationDirectory= and RuntimeDirectory= \
            (/var/lib/agentgate, /etc/agentgate and /run/agentgate in the units AgentGate ships).
            """)

    @Flag(help: "Print as JSON.") var json = false

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let data = AgentGatePaths.dataDirectory(environment)
        let database = AgentGatePaths.databaseLocation(nil, environment: environment)
        let configuration = AgentGatePaths.configurationDirectory(environment)
        let policy = Self.policyInForce(environment)
        let runtime: AgentGatePaths.Location
        do {
            let directory = try ControlDirectory.resolve(environment: environment, create: false)
            runtime = AgentGatePaths.Location(path: directory.path, source: Self.runtimeSource(directory.path, environment))
        } catch {
            printError(error.description, tool: "agentgate")
            throw ExitCode(1)
        }
        let rows: [(String, AgentGatePaths.Location)] = [
            ("data", data), ("database", database), ("config", configuration), ("policy", policy), ("runtime", runtime),
        ]
        let system: [(String, String)] = [
            ("data", AgentGatePaths.systemDataDirectory), ("database", AgentGatePaths.systemDataDirectory + "/agentgate.db"), ("config", AgentGatePaths.systemConfigurationDirectory),
            ("policy", AgentGatePaths.systemPolicyFile), ("runtime", AgentGatePaths.systemRuntimeDirectory),
        ]
        // policy.d: every directory, and the files read from it (or why they can't be).
        var dropIns: [(directory: String, files: [String])] = LoadedPolicy.dropInDirectories(environment).map { ($0, []) }
        var dropInProblem: String?
        do {
            let files = try LoadedPolicy.dropInFiles(environment)
            for index in dropIns.indices { dropIns[index].files = files.filter { $0.hasPrefix(dropIns[index].directory + "/") } }
        } catch {
            dropInProblem = error.description
        }
        if json {
            var user: [String: Any] = [:]
            for (name, location) in rows { user[name] = ["path": location.path, "source": location.source] }
            user["policy.d"] = dropIns.map { ["path": $0.directory, "files": $0.files] as [String: Any] }
            if let dropInProblem { user["policy.d error"] = dropInProblem }
            var systemObject: [String: Any] = [:]
            for (name, path) in system { systemObject[name] = path }
            let data = try JSONSerialization.data(withJSONObject: ["current": user, "system": systemObject],
                                                  options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        for (name, location) in rows {
            print("\(name.padding(toLength: 9, withPad: " ", startingAt: 0))\(location.path)  (\(location.source))")
        }
        for (directory, files) in dropIns {
            let exists = access(directory, F_OK) == 0
            let said = !exists ? "absent" : files.isEmpty ? "no *.yaml files" : files.map { String($0.dropFirst(directory.count + 1)) }.joined(separator: ", ")
            print("policy.d \(directory)  (\(said))")
        }
        if let dropInProblem { print("policy.d error: \(dropInProblem)") }
        print("\nfor system services (StateDirectory=, ConfigurationDirectory=, RuntimeDirectory=agentgate):")
        for (name, path) in system { print("\(name.padding(toLength: 9, withPad: " ", startingAt: 0))\(path)") }
    }

    /// The policy a session started here would load, found the way `agentgate-supervise` finds it.
    static func policyInForce(_ environment: [String: String]) -> AgentGatePaths.Location {
        let candidates = LoadedPolicy.implicitFiles(environment)
        switch PolicyLookup.locate(named: nil, environment: environment, implicitFiles: candidates,
                                   exists: { access($0, F_OK) == 0 }) {
        case .named(let file): return .init(path: file, source: "--policy")
        case .environment(let file): return .init(path: file, source: "$\(PolicyLookup.environmentVariable)")
        case .implicit(let file):
            return .init(path: file, source: file == AgentGatePaths.systemPolicyFile ? "the system's configuration" : "your configuration")
        case .none:
            return .init(path: "builtin:default.yaml", source: "built in; none of \(candidates.joined(separator: ", ")) exists")
        }
    }

    static func runtimeSource(_ path: String, _ environment: [String: String]) -> String {
        if let named = environment["AGENTGATE_RUNTIME_DIR"], !named.isEmpty { return "$AGENTGATE_RUNTIME_DIR" }
        if let systemd = environment["RUNTIME_DIRECTORY"]?.split(separator: ":").first, path == String(systemd) { return "$RUNTIME_DIRECTORY" }
        if let runtime = environment["XDG_RUNTIME_DIR"], path.hasPrefix(runtime) { return "$XDG_RUNTIME_DIR" }
        return "no usable $XDG_RUNTIME_DIR"
    }
}
