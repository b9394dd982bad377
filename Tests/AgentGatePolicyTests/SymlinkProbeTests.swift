import Testing
import AgentGatePolicy

/// The places a policy's file rules name, which the supervisor resolves to find symlinks that
/// would take protected files out of the rules' reach.
@Suite("Symlink probes")
struct SymlinkProbeTests {
    @Test("deny and ask file rules give their literal start, and a one-level wildcard's directory")
    func probes() throws {
        let p = try policy("""
            version: 2
            default: allow
            rules:
              - match: {action: fs_read, target_glob: "$HOME/.ssh/**"}
                decision: deny
              - match: {action: fs_write, target_glob: "$HOME/{.bashrc,.profile}"}
                decision: ask
              - match: {action: fs_write, target_glob: "$HOME/.*/**"}
                decision: deny
              - match: {target_glob: "$HOME/.aws/credentials"}
                decision: deny
              - match: {action: fs_read, target_glob: "$HOME/notes/**"}
                decision: allow
              - match: {action: exec, target_glob: "$HOME/bin/*"}
                decision: deny
              - match: {action: fs_read, target_glob: "**/.env"}
                decision: deny
            """)
        let probes = p.symlinkProbes.map { "\($0.path) \($0.entries ?? ($0.descends ? "**" : "-"))" }
        #expect(probes == ["/home/u/.ssh -", "/home/u/.ssh **", "/home/u/.bashrc -", "/home/u/.profile -", "/home/u -", "/home/u .*",
                           "/home/u/.aws/credentials -"], "\(probes)")
    }
}
