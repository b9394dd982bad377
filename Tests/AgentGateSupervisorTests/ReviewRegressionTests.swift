import Foundation
import Glibc
import Testing

/// Bypasses and hangs found by hostile review, kept from coming back. Each shows first that
/// the forbidden effect is possible (bare, or before the agent changes itself).
@Suite(.serialized) struct ReviewRegressionTests {
    @Test func afterDroppingPrivilegesOpensAreNotMadeWithTheSupervisorsCredentials() throws {
        try TestUser.requireRoot("the agent drops root's privileges")
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

    /// After the agent drops privileges, calls the supervisor performs for it are made with the
    /// agent's new identity, exactly as the kernel would make them: allowed where the agent may,
    /// owned by the agent, and seen by peers as the agent.
    @Test(.enabled(if: getuid() == 0, "dropping privileges needs root"))
    func afterDroppingPrivilegesCallsAreMadeAsTheAgent() throws {
        let h = try Harness()
        let policy = try h.policy("default: allow\nrules: []\n")
        try h.mkdir("shared")
        chmod(h.path("shared"), 0o777)
        try h.write("root-only", "secret\n", mode: 0o600)
        let server = """
            import socket, struct, os, sys
            s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o777); s.listen(1)
            print("listening", flush=True)
            c, _ = s.accept()
            pid, uid, gid = struct.unpack("3i", c.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
            print("peer uid", uid, "gid", gid, flush=True)
            """
        try h.write("server.py", server)
        let socketPath = h.path("shared/peer.sock")
        let script = """
            import os, socket, stat
            os.setgroups([]); os.setresgid(65534, 65534, 65534); os.setresuid(65534, 65534, 65534)
            with open("\(h.path("shared/made"))", "w") as f: f.write("x")
            st = os.stat("\(h.path("shared/made"))"); print("made by", st.st_uid, st.st_gid)
            os.mkdir("\(h.path("shared/dir"))"); print("dir by", os.stat("\(h.path("shared/dir"))").st_uid)
            try:
                open("\(h.path("root-only"))").read(); print("root-only read")
            except PermissionError:
                print("root-only denied")
            s = socket.socket(socket.AF_UNIX); s.connect("\(socketPath)"); print("connected")
            """
        for (label, run) in [("bare", { h.bare(["/usr/bin/python3", "-c", script]) }),
                             ("supervised", { h.supervised(["/usr/bin/python3", "-c", script], policy: policy) })] {
            unlink(h.path("shared/made")); rmdir(h.path("shared/dir")); unlink(socketPath)
            let listener = try h.start(["/usr/bin/python3", h.path("server.py"), socketPath])
            try waitUntil("the server listens") { FileManager.default.fileExists(atPath: socketPath) }
            let r = run()
            let peer = listener.wait(timeout: 10)
            #expect(r.stdout == "made by 65534 65534\ndir by 65534\nroot-only denied\nconnected\n", "\(label): \(r)")
            #expect(peer.stdout.contains("peer uid 65534 gid 65534"), "\(label): \(peer)")
        }
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

    @Test func anAFUnspecUDPSendIsDecidedAsTheIPv4AddressItReaches() throws {
        let h = try Harness()
        let receiver = """
            import socket, sys
            r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); r.bind(("127.0.0.1", 0)); r.settimeout(1)
            port = r.getsockname()[1]
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            import ctypes, struct
            libc = ctypes.CDLL(None, use_errno=True)
            addr = struct.pack("<HH4s8x", 0, socket.htons(port), socket.inet_aton("127.0.0.1"))  # sin_family = AF_UNSPEC
            n = libc.sendto(s.fileno(), b"LEAK", 4, 0, addr, len(addr))
            try:
                print("received", r.recv(10).decode())
            except socket.timeout:
                print("nothing", n, ctypes.get_errno())
            """
        let policy = try h.policy("""
            default: allow
            rules:
              - match: {action: net_egress, target_glob: "127.0.0.1:*"}
                decision: deny
            """)
        #expect(h.bare(["python3", "-c", receiver]).stdout.contains("received LEAK"))
        let supervised = h.supervised(["python3", "-c", receiver], policy: policy)
        #expect(supervised.stdout.contains("nothing"), "\(supervised)")
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

    @Test func unixSocketsInsideProtectedDirectoriesCantBeUsedOrPlanted() throws {
        let h = try Harness()
        try FileManager.default.createDirectory(atPath: h.path("keys"), withIntermediateDirectories: true)
        let policy = try h.policy("""
            default: allow
            rules:
              - match: {target_glob: "\(h.dir)/keys/**"}
                decision: deny
            """)
        // A stand-in agent socket inside the protected directory.
        let server = "import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); time.sleep(8)"
        let serverProcess = Process()
        serverProcess.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        // Relative names: the test directory's absolute path is longer than sun_path allows.
        serverProcess.arguments = ["python3", "-c", server, "keys/agent.sock"]
        serverProcess.currentDirectoryURL = URL(fileURLWithPath: h.dir)
        try serverProcess.run()
        defer { serverProcess.terminate() }
        usleep(500_000)
        let client = "import socket,sys\ntry:\n socket.socket(socket.AF_UNIX).connect(sys.argv[1]); print('connected')\nexcept OSError as e: print('refused', e.errno)"
        #expect(h.bare(["python3", "-c", client, "keys/agent.sock"]).stdout.contains("connected"))
        let supervised = h.supervised(["python3", "-c", client, "keys/agent.sock"], policy: policy)
        #expect(supervised.stdout.contains("refused 13"), "\(supervised)")
        let plant = "import socket,sys\ntry:\n socket.socket(socket.AF_UNIX).bind(sys.argv[1]); print('planted')\nexcept OSError as e: print('refused', e.errno)"
        #expect(h.bare(["python3", "-c", plant, "keys/bare.sock"]).stdout.contains("planted"))
        let planted = h.supervised(["python3", "-c", plant, "keys/planted.sock"], policy: policy)
        #expect(planted.stdout.contains("refused 13") && !h.exists("keys/planted.sock"), "\(planted)")
    }

    @Test func aBoundUnixSocketKeepsTheNameTheAgentGaveIt() throws {
        // multiprocessing.Manager binds under a temp dir and connects to getsockname()'s answer.
        let h = try Harness()
        let policy = try h.policy("default: allow\nrules: []\n")
        let script = "import multiprocessing as m\nif __name__ == '__main__':\n    with m.Manager() as mg:\n        d = mg.dict(); d['k'] = 'v'; print(dict(d))"
        let supervised = h.supervised(["python3", "-c", script], policy: policy)
        #expect(supervised.status == 0 && supervised.stdout == "{'k': 'v'}\n", "\(supervised)")
    }
}
