import Foundation
import Glibc
import Testing

/// Exec of unusual files: a loader handed a denied program by a #! line, and a FIFO, which
/// must not hang the supervisor. Each denial is first shown to succeed bare.
@Suite("Exec through loaders and of unusual files", .serialized) struct ExecUnusualFileTests {
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
        // The execs are left waiting on the FIFO; the fixed pause is the window for them to reach
        // the supervisor before the next call, which must still be served.
        let script = "for i in 1 2 3; do (\"$1\" 2>/dev/null &); done; sleep 0.3; cat /etc/hostname > /dev/null && echo still-working"
        let supervised = h.supervised(["sh", "-c", script, "sh", h.path("fifo")], policy: policy, timeout: 30)
        #expect(supervised.stdout.contains("still-working"), "\(supervised)")
    }

    /// The program's loader named through a directory symlink the agent can't replace (/lib ->
    /// usr/lib on merged-/usr systems; musl's loader is /lib/ld-musl-x86_64.so.1) runs; one
    /// named through a symlink in a directory the agent may write is refused (found by a review
    /// on 2026-12-07: every symlink was refused).
    @Test("an ELF interpreter reached through symlinks the agent can't change runs; through one it can, refused")
    func elfInterpreterThroughSymlinks() throws {
        let h = try Harness()
        try h.write("hello.c", "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n")
        let loader = "/lib64/ld-linux-x86-64.so.2"
        guard FileManager.default.fileExists(atPath: loader) else { try Test.cancel("no \(loader) here") }
        // Named with a ".." and through /lib, which is a symlink on merged-/usr systems.
        let throughLib = "/lib/x86_64-linux-gnu/../../lib64/ld-linux-x86-64.so.2"
        symlink(loader, h.path("ldlink"))
        for (name, interpreter) in [("system", throughLib), ("mine", h.path("ldlink"))] {
            let built = h.bare(["cc", "-o", h.path(name), h.path("hello.c"), "-Wl,--dynamic-linker=\(interpreter)"])
            #expect(built.status == 0, "\(built)")
            #expect(h.bare([h.path(name)]).stdout == "hello\n")
        }
        let policy = try h.policy("include: [agentgate:default]\n")
        let system = h.supervised([h.path("system")], policy: policy)
        #expect(system.status == 0 && system.stdout == "hello\n", "\(system)")
        let mine = h.supervised([h.path("mine")], policy: policy)
        #expect(mine.status == 126 && mine.stderr.contains("could be changed by the agent"), "\(mine)")
    }
}
