import Foundation
import Glibc
import Testing

/// Control cases for the adversarial suite: real tools keep working under a restrictive policy
/// (default deny; exec allowed; reads of the system and the test dir; writes only to the test
/// dir, /tmp and a few devices; egress only to the test's own listener).
struct ControlFixture {
    let h: Harness
    let listener: LoopbackListener
    let policy: String
    /// HOME is the test dir, so git and friends find no user configuration.
    let environment: [String: String]

    init(_ name: String = #function) throws {
        h = try Harness(name)
        listener = try LoopbackListener()
        // python3 may be a pyenv shim (a shell script under ~/.pyenv): its tree must be readable.
        var extraReads: [String] = []
        let which = h.bare(["sh", "-c", "command -v python3"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        if let range = which.range(of: "/.pyenv/") { extraReads.append(String(which[..<range.upperBound]) + "**") }
        let prefix = h.bare(["python3", "-c", "import sys; print(sys.base_prefix)"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        if prefix.hasPrefix("/") && !prefix.hasPrefix("/usr") { extraReads.append(prefix + "/**") }
        let reads = ["/usr/**", "/etc/**", "/lib*/**", "/bin/**", "/sbin/**", "/proc/**", "/sys/**", "/dev/**", "\(h.dir)/**"] + extraReads
        let writes = ["\(h.dir)/**", "/tmp/**", "/dev/null", "/dev/tty", "/dev/urandom"]
        var yaml = "default: deny\nrules:\n  - match: {action: exec}\n    decision: allow\n"
        for glob in reads { yaml += "  - match: {action: fs_read, target_glob: \"\(glob)\"}\n    decision: allow\n" }
        for glob in writes { yaml += "  - match: {action: fs_write, target_glob: \"\(glob)\"}\n    decision: allow\n" }
        yaml += "  - match: {action: net_egress, target_glob: \"127.0.0.1:\(listener.port)\"}\n    decision: allow\n"
        policy = try h.policy(yaml)
        // The policy lets /tmp be written but not read back, as listed in the spec; compilers
        // read their temporaries back, so those go to the test dir.
        try h.mkdir("tmp")
        environment = Harness.environment(adding: ["HOME": h.dir, "TMPDIR": h.path("tmp"), "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"])
    }

    func supervised(_ command: [String], timeout: Double = 120) -> Harness.Result {
        h.run(h.supervisedArgv(command, policy: policy), environment: environment, timeout: timeout)
    }
}

extension AdversarialTests {
    @Suite("Adversarial controls: real tools under a restrictive policy") struct Controls {
        @Test("git init, add and commit")
        func gitWorks() throws {
            let f = try ControlFixture()
            try f.h.mkdir("repo")
            try f.h.write("repo/README", "hello from the agent\n")
            let script = """
                set -e
                cd repo
                git init -q .
                git add README
                git -c user.name=Agent -c user.email=agent@example.com commit -q -m 'first commit'
                git log --oneline
                git cat-file -p HEAD:README
                """
            let r = f.supervised(["sh", "-c", script])
            #expect(r.status == 0, "\(r)")
            #expect(r.stdout.contains("first commit") && r.stdout.contains("hello from the agent"), "\(r)")
        }

        @Test("compile a C program with cc and run it")
        func ccWorks() throws {
            let f = try ControlFixture()
            try f.h.write("hello.c", "#include <stdio.h>\nint main(void) { printf(\"compiled-and-ran %d\\n\", 6 * 7); return 0; }\n")
            let r = f.supervised(["sh", "-c", "cc -O1 -o hello hello.c && ./hello"])
            #expect(r.status == 0, "\(r)")
            #expect(r.stdout.contains("compiled-and-ran 42"), "\(r)")
        }

        @Test("python3 imports json, sqlite3 and http.client")
        func pythonWorks() throws {
            let f = try ControlFixture()
            let r = f.supervised(["python3", "-c", "import json, sqlite3, http.client; print('imports-ok', json.dumps([1]), sqlite3.sqlite_version_info[0])"])
            #expect(r.status == 0, "\(r)")
            #expect(r.stdout.contains("imports-ok [1] 3"), "\(r)")
        }

        @Test("an O_PATH fd of an allowed directory can be opened and used as a dirfd")
        func oPathDirFDWorks() throws {
            let f = try ControlFixture()
            try f.h.write("data.txt", "read-through-opath-dirfd\n")
            let script = "import os, sys; d = os.open(sys.argv[1], os.O_PATH | os.O_DIRECTORY); fd = os.open('data.txt', os.O_RDONLY, dir_fd=d); print(os.read(fd, 100).decode(), end='')"
            let r = f.supervised(["python3", "-c", script, f.h.dir])
            #expect(r.status == 0 && r.stdout == "read-through-opath-dirfd\n", "\(r)")
        }

        @Test("O_TMPFILE, then linkat(fd, \"\", AT_EMPTY_PATH) gives it a name in an allowed dir")
        func tmpfileLinkWorks() throws {
            let f = try ControlFixture()
            let bin = try AdversarialBinaries.get()
            try f.h.copy(bin.helper, to: "adv")
            try f.h.mkdir("out")
            let r = f.supervised([f.h.path("adv"), "fsop", "tmpfile-link", "out", "out/named", "empty-path"])
            #expect(r.stdout.contains("op=tmpfile-link rc=0 errno=0") && f.h.read("out/named") == "PWNED\n", "\(r)")
        }

        @Test("an allowed connect exchanges data; another port is refused by the default deny")
        func allowedConnectWorks() throws {
            let f = try ControlFixture()
            let other = try LoopbackListener()
            defer { other.close(); f.listener.close() }
            let bin = try AdversarialBinaries.get()
            try f.h.copy(bin.helper, to: "adv")
            let r = f.supervised([f.h.path("adv"), "connect", "127.0.0.1", String(f.listener.port)])
            #expect(r.status == 0 && r.stdout.contains("op=connect rc=0") && r.stdout.contains("reply=pong"), "\(r)")
            let refused = f.supervised([f.h.path("adv"), "connect", "127.0.0.1", String(other.port)])
            #expect(refused.stdout.contains("op=connect rc=-1 errno=13"), "\(refused)")
            f.listener.drain()
            other.drain()
            #expect(f.listener.received.contains("HELLO-FROM-AGENT"), "the listener got: \(f.listener.received)")
            #expect(other.connections == 0)
        }
    }
}
