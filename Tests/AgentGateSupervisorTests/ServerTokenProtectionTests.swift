import Foundation
import Testing

/// `agentgate serve`'s token answers asks over HTTP, and an agent may be allowed to reach
/// loopback: a supervised agent must not read it, whatever the policy allows.
@Suite struct ServerTokenProtectionTests {
    @Test("a supervised agent can't read agentgate serve's token, though the policy allows every read")
    func agentCannotReadTheServerToken() throws {
        let h = try Harness()
        let configuration = h.path("config")
        #expect(mkdir(configuration, 0o700) == 0 && mkdir(configuration + "/agentgate", 0o700) == 0)
        let token = configuration + "/agentgate/server.token"
        let secret = String(repeating: "5e", count: 32)
        #expect(FileManager.default.createFile(atPath: token, contents: Data((secret + "\n").utf8), attributes: [.posixPermissions: 0o600]))
        try h.write("allow-all.yaml", "version: 2\ndefault: allow\n")
        var environment = ProcessInfo.processInfo.environment
        environment["XDG_CONFIG_HOME"] = configuration

        // Bare, the same command reads it: the test can fail.
        let bare = h.run(["/bin/cat", token], environment: environment)
        #expect(bare.status == 0 && bare.stdout.contains(secret), "\(bare)")

        let supervised = h.run([Harness.supervisor, "--policy", h.path("allow-all.yaml"), "--db", h.db, "--", "/bin/cat", token],
                               environment: environment)
        #expect(supervised.status != 0 && !supervised.stdout.contains(secret), "\(supervised)")
        #expect(supervised.stderr.contains("Permission denied") || supervised.stderr.contains("denied"), "\(supervised)")
    }
}
