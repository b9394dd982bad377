import Foundation
import Glibc
import Testing

/// Bypasses and hangs found by hostile review, kept from coming back. Each shows first that
/// the forbidden effect is possible (bare, or before the agent changes itself).
@Suite(.serialized) struct ReviewRegressionTests {
    @Test func afterDroppingPrivilegesOpensAreNotMadeWithTheSupervisorsCredentials() throws {
        let h = try Harness()
        let policy = try h.policy("default: allow\nrules: []\n")
        let script = """
            import os
            def attempt(label):
                try:
                    open('/etc/shadow').read(1); print(label, 'read')
                except PermissionError:
                    print(label, 'denied')
            attempt('root')
            os.setgroups([]); os.setresgid(65534, 65534, 65534); os.setresuid(65534, 65534, 65534)
            attempt('nobody')
            """
        let bare = h.bare(["python3", "-c", script])
        #expect(bare.stdout == "root read\nnobody denied\n", "\(bare)")
        let supervised = h.supervised(["python3", "-c", script], policy: policy)
        #expect(supervised.stdout == "root read\nnobody denied\n", "\(supervised)")
    }

    @Test func aShebangArgumentCannotHandTheLoaderADeniedProgram() throws {
        let h = try Harness()
        try h.write("tool.sh", "#!/bin/sh\ntouch \"$0.marker\"\n", mode: 0o755)
        // ld.so runs its argument as a program: here a copy of sh running the tool script.
        _ = h.run(["cp", "/bin/dash", h.path("shell")])
        try h.write("s.sh", "#!/lib64/ld-linux-x86-64.so.2 \(h.path("shell"))\ntouch \(h.path("marker"))\n", mode: 0o755)
        let policy = try h.policy("""
            default: allow
            rules:
              - match: {action: exec, target_glob: "\(h.path("shell"))"}
                decision: deny
            """)
        #expect(h.bare([h.path("s.sh")]).status == 0 && h.exists("marker"))
        unlink(h.path("marker"))
        let supervised = h.supervised([h.path("s.sh")], policy: policy)
        #expect(supervised.status != 0 && !h.exists("marker"), "\(supervised)")
    }

    @Test func execOfAFIFODoesNotHangTheSupervisor() throws {
        let h = try Harness()
        let policy = try h.policy("default: allow\nrules: []\n")
        mkfifo(h.path("fifo"), 0o755)
        let script = "for i in 1 2 3; do (\"$1\" 2>/dev/null &); done; sleep 0.3; cat /etc/hostname > /dev/null && echo still-working"
        let supervised = h.supervised(["sh", "-c", script, "sh", h.path("fifo")], policy: policy, timeout: 30)
        #expect(supervised.stdout.contains("still-working"), "\(supervised)")
    }

    @Test func writingThroughProcSelfFdWorks() throws {
        let h = try Harness()
        let policy = try h.policy("default: allow\nrules: []\n")
        let supervised = h.supervised(["sh", "-c", "echo via-proc-self > /proc/self/fd/1"], policy: policy)
        #expect(supervised.status == 0 && supervised.stdout == "via-proc-self\n", "\(supervised)")
    }
}
