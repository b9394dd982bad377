@testable import AgentGateCLI
import AgentGatePolicy
@testable import AgentGateSupervisor
import Foundation
import Glibc
import Testing

/// Where things live: XDG for a user, systemd's directories for a system service.
struct PathsTests {
    @Test func userPathsFollowXDGThenHome() {
        let home = ["HOME": "/home/alice"]
        #expect(AgentGatePaths.database(nil, environment: home) == "/home/alice/.local/share/agentgate/agentgate.db")
        #expect(AgentGatePaths.configurationDirectory(home).path == "/home/alice/.config/agentgate")
        let xdg = home.merging(["XDG_DATA_HOME": "/data", "XDG_CONFIG_HOME": "/conf"]) { $1 }
        #expect(AgentGatePaths.databaseLocation(nil, environment: xdg) == .init(path: "/data/agentgate/agentgate.db", source: "$XDG_DATA_HOME"))
        #expect(AgentGatePaths.configurationDirectory(xdg) == .init(path: "/conf/agentgate", source: "$XDG_CONFIG_HOME"))
        // A relative XDG directory is ignored, as the XDG specification says.
        #expect(AgentGatePaths.database(nil, environment: home.merging(["XDG_DATA_HOME": "data"]) { $1 })
                == "/home/alice/.local/share/agentgate/agentgate.db")
    }

    @Test func systemServicePathsComeFromSystemd() {
        let service = ["HOME": "/root", "XDG_DATA_HOME": "/data", "STATE_DIRECTORY": "/var/lib/agentgate:/var/lib/other",
                       "CONFIGURATION_DIRECTORY": "/etc/agentgate"]
        #expect(AgentGatePaths.databaseLocation(nil, environment: service)
                == .init(path: "/var/lib/agentgate/agentgate.db", source: "$STATE_DIRECTORY"))
        #expect(AgentGatePaths.databaseDirectoryRoot(service) == "/var/lib/agentgate")
        #expect(AgentGatePaths.configurationDirectory(service).path == "/etc/agentgate")
        // The user's configuration is then the system's: tried once.
        #expect(LoadedPolicy.implicitFiles(service) == ["/etc/agentgate/policy.yaml"])
        // A named database still wins.
        #expect(AgentGatePaths.database("/x.db", environment: service) == "/x.db")
        #expect(AgentGatePaths.database(nil, environment: service.merging(["AGENTGATE_DB": "/y.db"]) { $1 }) == "/y.db")
    }

    @Test func theSystemPolicyIsTriedAfterTheUsersAndBeforeTheBuiltIn() {
        let environment = ["HOME": "/home/alice"]
        let files = LoadedPolicy.implicitFiles(environment)
        #expect(files == ["/home/alice/.config/agentgate/policy.yaml", "/etc/agentgate/policy.yaml"])
        #expect(PolicyLookup.locate(named: nil, environment: environment, implicitFiles: files, exists: { _ in true })
                == .implicit("/home/alice/.config/agentgate/policy.yaml"))
        #expect(PolicyLookup.locate(named: nil, environment: environment, implicitFiles: files,
                                    exists: { $0 == "/etc/agentgate/policy.yaml" }) == .implicit("/etc/agentgate/policy.yaml"))
        #expect(PolicyLookup.locate(named: nil, environment: environment, implicitFiles: files, exists: { _ in false }) == .none)
        #expect(PolicyLookup.locate(named: nil, environment: environment.merging(["AGENTGATE_POLICY": "/p.yaml"]) { $1 },
                                    implicitFiles: files, exists: { _ in true }) == .environment("/p.yaml"))
    }

    @Test func aUserPolicyIsLoadedFromTheConfigurationDirectory() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("agentgate-paths-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/agentgate", withIntermediateDirectories: true)
        try "version: 2\ndefault: deny\n".write(toFile: root + "/agentgate/policy.yaml", atomically: true, encoding: .utf8)
        let environment = ["HOME": "/nonexistent", "XDG_CONFIG_HOME": root]
        let loaded = try LoadedPolicy.resolve(nil, variables: .current(agent: nil, environment: environment), environment: environment)
        #expect(loaded.origin == .userConfiguration)
        #expect(loaded.announcement.contains("your configuration"))
    }

    @Test func runtimeDirectoryNamedOrFromSystemd() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("agentgate-run-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        #expect(try ControlDirectory.resolve(environment: ["AGENTGATE_RUNTIME_DIR": root + "/named"], create: true).path == root + "/named")
        #expect(try ControlDirectory.resolve(environment: ["RUNTIME_DIRECTORY": root + "/sd"], create: true).path == root + "/sd")
        #expect(throws: ControlDirectory.Unusable.self) { try ControlDirectory.resolve(environment: ["AGENTGATE_RUNTIME_DIR": "rel"], create: true) }
        // Open to others: refused, as every control directory is.
        try FileManager.default.createDirectory(atPath: root + "/open", withIntermediateDirectories: false, attributes: [.posixPermissions: 0o755])
        #expect(throws: ControlDirectory.Unusable.self) { try ControlDirectory.resolve(environment: ["AGENTGATE_RUNTIME_DIR": root + "/open"], create: true) }
    }

    @Test func controlCommandsAlsoFindSystemServiceSessions() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("agentgate-sys-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        for (name, mode) in [("own", 0o700), ("nightly", 0o700), ("open", 0o755)] {
            try FileManager.default.createDirectory(atPath: root + "/" + name, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: mode])
        }
        try Data().write(to: URL(fileURLWithPath: root + "/nightly/feed.sock"))
        try Data().write(to: URL(fileURLWithPath: root + "/own/mine.sock"))
        // A directory open to others is not trusted with sessions; the caller's own is not listed twice.
        let found = ControlDirectory.systemSessionDirectories(in: root, excluding: root + "/own")
        #expect(found == [root + "/nightly"])
        let directory = ControlDirectory(path: root + "/own", alsoSearched: found)
        #expect(directory.sessions() == ["feed", "mine"])
        #expect(directory.socketPath(session: "feed") == root + "/nightly/feed.sock")
        #expect(directory.socketPath(session: "mine") == root + "/own/mine.sock")
        #expect(directory.socketPath(session: "new") == root + "/own/new.sock")
        // The same session in two directories that aren't the user's own: named by neither.
        try FileManager.default.createDirectory(atPath: root + "/other", withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o700])
        try Data().write(to: URL(fileURLWithPath: root + "/other/feed.sock"))
        let twice = ControlDirectory(path: root + "/own", alsoSearched: [root + "/nightly", root + "/other"])
        #expect(twice.socketPath(session: "feed") == nil)
        // One in the user's own directory wins.
        try Data().write(to: URL(fileURLWithPath: root + "/own/feed.sock"))
        #expect(twice.socketPath(session: "feed") == root + "/own/feed.sock")
        // Someone else's directory is used only by root.
        if getuid() == 0 {
            try FileManager.default.createDirectory(atPath: root + "/alice", withIntermediateDirectories: false,
                                                    attributes: [.posixPermissions: 0o700, .ownerAccountID: 65534])
            #expect(ControlDirectory.systemSessionDirectories(in: root, excluding: "").contains(root + "/alice"))
        }
    }
}
