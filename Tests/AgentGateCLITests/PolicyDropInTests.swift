@testable import AgentGateCLI
@testable import AgentGateSupervisor
import AgentGatePolicy
import Foundation
import Glibc
import Testing

/// policy.d: drop-in files read after the policy in name order, trusted like an implicit policy,
/// and read again on reload.
@Suite("policy.d drop-ins")
struct PolicyDropInTests {
    /// A configuration directory of its own (XDG_CONFIG_HOME), with a policy and a policy.d.
    struct Configuration {
        let root: String
        var directory: String { root + "/agentgate" }
        var dropIns: String { directory + "/policy.d" }
        var environment: [String: String] { ["HOME": "/nonexistent", "XDG_CONFIG_HOME": root] }

        init() throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("agentgate-dropin-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: root + "/agentgate/policy.d", withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o755])
            try write("policy.yaml", """
                version: 2
                default: allow
                rules:
                  - id: main-rule
                    match: {action: fs_read, target_glob: /srv/main/**}
                    decision: deny
                """)
        }

        func write(_ name: String, _ text: String, mode: Int = 0o644) throws {
            let path = directory + "/" + name
            try text.write(toFile: path + ".tmp", atomically: false, encoding: .utf8)
            chmod(path + ".tmp", mode_t(mode))
            rename(path + ".tmp", path)
        }

        func load() throws(PolicyLoadError) -> LoadedPolicy {
            try LoadedPolicy.resolve(nil, variables: .current(agent: nil, environment: environment), environment: environment)
        }

        func remove() { try? FileManager.default.removeItem(atPath: root) }
    }

    static func rule(_ id: String, _ glob: String, _ decision: String = "deny") -> String {
        "rules:\n  - id: \(id)\n    match: {action: fs_read, target_glob: \"\(glob)\"}\n    decision: \(decision)\n"
    }

    @Test("drop-ins are read after the policy, in name order; dotfiles and other names are not")
    func ordering() throws {
        let c = try Configuration()
        defer { c.remove() }
        try c.write("policy.d/20-team.yaml", Self.rule("team", "/srv/team/**"))
        try c.write("policy.d/10-base.yaml", Self.rule("base", "/srv/base/**"))
        try c.write("policy.d/.30-editor.yaml", Self.rule("hidden", "/srv/hidden/**"))
        try c.write("policy.d/40-notes.yml.bak", "not: yaml")
        let loaded = try c.load()
        #expect(loaded.policy.rules.map(\.displayID) == ["main-rule", "base", "team"])
        #expect(loaded.dropIns == [c.dropIns + "/10-base.yaml", c.dropIns + "/20-team.yaml"])
        #expect(loaded.files.contains(c.dropIns + "/20-team.yaml"), "the supervisor protects every file read")
        #expect(loaded.announcement.hasSuffix("then policy.d: \(c.dropIns)/10-base.yaml, \(c.dropIns)/20-team.yaml"))
        #expect(PolicyDropIns.ordered(["b.yaml", "a.yaml", "A.yaml", ".x.yaml", "c.yml", ".yaml"]) == ["A.yaml", "a.yaml", "b.yaml"])
    }

    @Test("a drop-in others may write, or a symlink out of policy.d, stops the load")
    func trust() throws {
        let c = try Configuration()
        defer { c.remove() }
        try c.write("policy.d/10-open.yaml", Self.rule("open", "/srv/x/**"), mode: 0o666)
        #expect(throws: PolicyLoadError.self) { try c.load() }
        do { _ = try c.load() } catch { #expect(error.message.contains("others may write to it (mode 666)"), "\(error)") }
        try c.write("policy.d/10-open.yaml", Self.rule("open", "/srv/x/**"), mode: 0o644)
        #expect(try c.load().dropIns.count == 1)
        try Self.rule("outside", "/srv/y/**").write(toFile: c.root + "/outside.yaml", atomically: false, encoding: .utf8)
        symlink(c.root + "/outside.yaml", c.dropIns + "/20-link.yaml")
        do { _ = try c.load(); Issue.record("a symlink out of policy.d was loaded") } catch {
            #expect(error.message.contains("leads out of"), "\(error)")
        }
        unlink(c.dropIns + "/20-link.yaml")
        chmod(c.dropIns, 0o777)
        do { _ = try c.load(); Issue.record("a policy.d others may write was loaded") } catch {
            #expect(error.message.contains("others may write to it (mode 777)"), "\(error)")
        }
    }

    @Test("a drop-in may not set what only the top-level policy sets")
    func topLevelOnly() throws {
        let c = try Configuration()
        defer { c.remove() }
        try c.write("policy.d/10-mode.yaml", "mode: audit\n")
        do { _ = try c.load(); Issue.record("loaded") } catch {
            #expect(error.file == c.dropIns + "/10-mode.yaml")
            #expect(error.message.contains("may only be set in the top-level policy"), "\(error)")
        }
    }

    @Test("reload reads a replaced drop-in, and refuses one added during the session")
    func reload() throws {
        let c = try Configuration()
        defer { c.remove() }
        try c.write("policy.d/10-base.yaml", Self.rule("base", "/srv/base/**"))
        let loaded = try c.load()
        guard let source = loaded.reloadSource(variables: .current(agent: nil, environment: c.environment), environment: c.environment) else {
            Issue.record("no reload source")
            return
        }
        #expect(source.files.contains(c.dropIns + "/10-base.yaml"))
        try c.write("policy.d/10-base.yaml", Self.rule("base-v2", "/srv/base/**"))
        switch source.load() {
        case .success(let reloaded): #expect(reloaded.policy.rules.map(\.displayID) == ["main-rule", "base-v2"])
        case .failure(let failure): Issue.record("\(failure)")
        }
        try c.write("policy.d/20-new.yaml", Self.rule("new", "/srv/new/**"))
        switch source.load() {
        case .success: Issue.record("a drop-in added during the session was loaded")
        case .failure(let failure): #expect(failure.description.contains("was not part of the policy when the session started"))
        }
    }
}
