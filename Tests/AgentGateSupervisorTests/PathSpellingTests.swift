import Foundation
import Glibc
import Testing

/// Paths reached by another spelling: a write through /proc/self/fd, and credentials under
/// a symlinked home.
@Suite("Paths reached through /proc/self/fd and symlinks", .serialized) struct PathSpellingTests {
    @Test func writingThroughProcSelfFdWorks() throws {
        let h = try Harness()
        let policy = try h.policy("default: allow\nrules: []\n")
        let supervised = h.supervised(["sh", "-c", "echo via-proc-self > /proc/self/fd/1"], policy: policy)
        #expect(supervised.status == 0 && supervised.stdout == "via-proc-self\n", "\(supervised)")
    }

    @Test func aSymlinkedHomeStillProtectsCredentials() throws {
        let h = try Harness()
        try FileManager.default.createDirectory(atPath: h.path("realhome/.ssh"), withIntermediateDirectories: true)
        try h.write("realhome/.ssh/id_rsa", "TOPSECRET\n")
        symlink(h.path("realhome"), h.path("home"))
        var env = ProcessInfo.processInfo.environment
        env["HOME"] = h.path("home")
        // Built-in policy (no --policy; no policy.yaml in the run directory).
        unlink(h.path("policy.yaml"))
        let bare = h.run(["cat", h.path("home/.ssh/id_rsa")], environment: env)
        #expect(bare.stdout.contains("TOPSECRET"))
        let supervised = h.run([Harness.supervisor, "--db", h.db, "--", "cat", h.path("home/.ssh/id_rsa")], environment: env)
        #expect(supervised.status != 0 && !supervised.stdout.contains("TOPSECRET"), "\(supervised)")
    }
}
