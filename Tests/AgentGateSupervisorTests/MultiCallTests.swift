import Foundation
import Glibc
import Testing

/// The `agentgate` binary is also `agentgate-supervise` when run by that name (the Debian
/// package ships one binary and a symlink): the name picks the command.
@Suite struct MultiCallTests {
    static var agentgate: String {
        URL(fileURLWithPath: Harness.supervisor).deletingLastPathComponent().appendingPathComponent("agentgate").path
    }

    @Test func agentgateRunByTheNameAgentgateSuperviseSupervises() throws {
        let h = try Harness()
        defer { try? FileManager.default.removeItem(atPath: h.dir) }
        try FileManager.default.createDirectory(atPath: h.path("bin"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: h.path("bin/agentgate-supervise"), withDestinationPath: Self.agentgate)
        let link = h.path("bin/agentgate-supervise")

        let help = h.run([link, "--help"])
        #expect(help.status == 0 && help.stdout.contains("USAGE: agentgate-supervise"), "\(help.stdout)")
        let session = h.run([link, "--quiet", "--db", h.db, "--", "sh", "-c", "cat /etc/hostname >/dev/null; exit 3"])
        #expect(session.status == 3, "\(session.stderr)")
        let sessions = h.run([Self.agentgate, "sessions", "--db", h.db])
        #expect(sessions.status == 0 && sessions.stdout.contains("sh"), "\(sessions.stdout)\(sessions.stderr)")
        // Usage errors are the supervisor's, exit 2.
        let wrong = h.run([link, "--no-such-option", "--", "true"])
        #expect(wrong.status == 2 && wrong.stderr.contains("agentgate-supervise"), "\(wrong.stderr)")
    }

    @Test func anyOtherNameIsAgentgate() throws {
        let h = try Harness()
        defer { try? FileManager.default.removeItem(atPath: h.dir) }
        try FileManager.default.createSymbolicLink(atPath: h.path("ag"), withDestinationPath: Self.agentgate)
        let help = h.run([h.path("ag"), "--help"])
        #expect(help.status == 0 && help.stdout.contains("USAGE: agentgate <subcommand>"), "\(help.stdout)")
        let check = h.run([h.path("ag"), "check", "--", "true"])
        #expect(check.status == 0 && check.stdout.contains("decision: allow"), "\(check.stdout)\(check.stderr)")
    }
}
