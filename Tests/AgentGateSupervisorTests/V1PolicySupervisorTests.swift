import Foundation
import Glibc
import Testing

/// agentgate v1 policies enforced on real processes: exec target_glob over command lines, and
/// scopes that are symlinks. Each denial is first shown to succeed bare.
@Suite(.serialized) struct V1PolicySupervisorTests {
    @Test func v1ExecGlobsMatchTheCommandLineOfEveryExec() throws {
        let h = try Harness()
        let policy = try h.policy("""
            default: allow
            rules:
              - match: {action: exec, target_glob: "ls -l*"}
                decision: deny
            """)
        let long = ["sh", "-c", "ls -la / >/dev/null && echo LISTED"]
        #expect(h.bare(long).stdout.contains("LISTED"))
        let denied = h.supervised(long, policy: policy)
        #expect(denied.status != 0 && !denied.stdout.contains("LISTED"), "\(denied)")
        let short = h.supervised(["sh", "-c", "ls / >/dev/null && echo LISTED"], policy: policy)
        #expect(short.status == 0 && short.stdout.contains("LISTED"), "\(short)")
        // A version 2 file matches the program only: the same rule never applies.
        let v2 = try h.policy("version: 2\ndefault: allow\nrules:\n  - match: {action: exec, target_glob: \"ls -l*\"}\n    decision: deny\n")
        #expect(h.supervised(long, policy: v2).stdout.contains("LISTED"))
    }

    @Test func aSymlinkedScopeAllowsWritesInsideItsRealDirectory() throws {
        let h = try Harness()
        let root = PolicyCommandTests.real(h.dir)
        try FileManager.default.createDirectory(atPath: root + "/real", withIntermediateDirectories: true)
        #expect(symlink(root + "/real", root + "/link") == 0)
        let policy = try h.policy("""
            default: allow
            rules:
              - match: {action: fs_write, target_glob: "\(root)/**"}
                decision: allow
                scope: \(root)/link
            """)
        let inside = h.supervised(["sh", "-c", "echo x > link/a.txt && echo WROTE"], policy: policy)
        #expect(inside.status == 0 && inside.stdout.contains("WROTE"), "\(inside)")
        #expect(FileManager.default.fileExists(atPath: root + "/real/a.txt"))
        #expect(h.bare(["sh", "-c", "echo x > outside.txt && echo WROTE"]).stdout.contains("WROTE"))
        let outside = h.supervised(["sh", "-c", "echo x > outside2.txt && echo WROTE"], policy: policy)
        #expect(outside.status != 0 && !outside.stdout.contains("WROTE"), "\(outside)")
    }
}
