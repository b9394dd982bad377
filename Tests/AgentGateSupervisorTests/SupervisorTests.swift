import Foundation
import Glibc
import Testing

/// The supervisor's core behaviour, with real processes under the real filter. Every "denied"
/// case first shows that the same command does the forbidden thing when run bare.
@Suite(.serialized) struct SupervisorTests {
    @Test func deniedReadFailsWithEACCESAndAllowedReadWorks() throws {
        let h = try Harness()
        try FileManager.default.createDirectory(atPath: h.path("secret"), withIntermediateDirectories: true)
        try h.write("secret/key", "TOPSECRET\n")
        try h.write("public.txt", "hello\n")
        let policy = try h.policy("""
            default: allow
            rules:
              - match: {action: fs_read, target_glob: "\(h.dir)/secret/**"}
                decision: deny
            """)
        let read = ["python3", "-c", """
            import sys
            try:
                print(open(sys.argv[1]).read(), end='')
            except PermissionError as e:
                print('EACCES' if e.errno == 13 else 'other', file=sys.stderr); sys.exit(3)
            """]
        let bare = h.bare(read + [h.path("secret/key")])
        #expect(bare.status == 0 && bare.stdout.contains("TOPSECRET"))
        let denied = h.supervised(read + [h.path("secret/key")], policy: policy)
        #expect(denied.status == 3)
        #expect(denied.stderr.contains("EACCES"))
        #expect(!denied.stdout.contains("TOPSECRET") && !denied.stderr.contains("TOPSECRET"))
        let allowed = h.supervised(read + [h.path("public.txt")], policy: policy)
        #expect(allowed.status == 0 && allowed.stdout == "hello\n")
        // Through a symlink and a relative path the decision is the same.
        symlink(h.path("secret/key"), h.path("innocent"))
        let viaLink = h.supervised(read + ["innocent"], policy: policy)
        #expect(viaLink.status == 3 && !viaLink.stdout.contains("TOPSECRET"))
    }

    @Test func deniedWriteLeavesNoFile() throws {
        let h = try Harness()
        try FileManager.default.createDirectory(atPath: h.path("out"), withIntermediateDirectories: true)
        let policy = try h.policy("""
            default: allow
            rules:
              - match: {action: fs_write, target_glob: "\(h.dir)/out/**"}
                decision: deny
            """)
        let touch = ["sh", "-c", "echo data > \"$1\"", "sh"]
        #expect(h.bare(touch + [h.path("out/bare")]).status == 0)
        #expect(h.exists("out/bare"))
        let denied = h.supervised(touch + [h.path("out/denied")], policy: policy)
        #expect(denied.status != 0)
        #expect(!h.exists("out/denied"))
        // Truncating an existing file is a write too: content must survive.
        try h.write("out/keep", "original\n")
        _ = h.supervised(["sh", "-c", ": > \"$1\"", "sh", h.path("out/keep")], policy: policy)
        #expect(try String(contentsOfFile: h.path("out/keep"), encoding: .utf8) == "original\n")
        // An allowed write elsewhere works, with the agent's umask applied.
        let allowed = h.supervised(["sh", "-c", "umask 027; echo ok > \"$1\"", "sh", h.path("allowed")], policy: policy)
        #expect(allowed.status == 0 && h.exists("allowed"))
        var info = stat()
        stat(h.path("allowed"), &info)
        #expect(info.st_mode & 0o777 == 0o640)
    }

    @Test func deniedExecDoesNotRun() throws {
        let h = try Harness()
        try h.write("tool.sh", "#!/bin/sh\ntouch \"$1\"\n", mode: 0o755)
        let policy = try h.policy("""
            default: allow
            rules:
              - match: {action: exec, target_glob: "\(h.dir)/tool.sh"}
                decision: deny
            """)
        #expect(h.bare([h.path("tool.sh"), h.path("bare-marker")]).status == 0)
        #expect(h.exists("bare-marker"))
        let denied = h.supervised(["sh", "-c", "\"$1\" \"$2\"; echo status=$?", "sh", h.path("tool.sh"), h.path("marker")], policy: policy)
        #expect(denied.stdout.contains("status=126"))
        #expect(!h.exists("marker"))
        // Denied as the command itself: never runs, exit 126.
        let direct = h.supervised([h.path("tool.sh"), h.path("marker2")], policy: policy)
        #expect(direct.status == 126)
        #expect(!h.exists("marker2"))
    }

    @Test func deniedConnectNeverReachesListenerAllowedOneExchangesData() throws {
        let h = try Harness()
        let blocked = try LoopbackListener()
        let open = try LoopbackListener()
        defer { blocked.close(); open.close() }
        let policy = try h.policy("""
            default: allow
            rules:
              - match: {action: net_egress, target_glob: "127.0.0.1:\(blocked.port)"}
                decision: deny
            """)
        let client = ["python3", "-c", """
            import socket, sys
            s = socket.socket()
            try:
                s.connect(('127.0.0.1', int(sys.argv[1])))
            except OSError as e:
                print('refused', e.errno); sys.exit(3)
            s.sendall(b'hello-from-agent\\n')
            print(s.recv(5).decode(), end='')
            s.close()
            """]
        let bare = h.bare(client + [String(blocked.port)])
        #expect(bare.status == 0)
        blocked.drain()
        #expect(blocked.connections == 1)
        let denied = h.supervised(client + [String(blocked.port)], policy: policy)
        #expect(denied.status == 3)
        blocked.drain()
        #expect(blocked.connections == 1)
        let allowed = h.supervised(client + [String(open.port)], policy: policy)
        #expect(allowed.status == 0)
        #expect(allowed.stdout == "pong\n")
        open.drain()
        #expect(open.received.contains("hello-from-agent"))
    }

    @Test func exitStatusAndSignalDeathPropagate() throws {
        let h = try Harness()
        let policy = try h.policy("default: allow\nrules: []\n")
        #expect(h.supervised(["sh", "-c", "exit 7"], policy: policy).status == 7)
        // The test runner may start us with SIGTERM ignored or blocked (inherited, as it should be): reset it.
        let term = ["python3", "-c", "import os,signal; signal.signal(signal.SIGTERM, signal.SIG_DFL); signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM]); os.kill(os.getpid(), signal.SIGTERM)"]
        #expect(h.bare(term).status == 143)
        #expect(h.supervised(term, policy: policy).status == 143)
        #expect(h.supervised(["sh", "-c", "kill -KILL $$"], policy: policy).status == 137)
        #expect(h.supervised(["true"], policy: policy).status == 0)
        let missing = h.supervised(["no-such-command-xyz"], policy: policy)
        #expect(missing.status == 127)
    }

    @Test func descendantsAreSupervised() throws {
        let h = try Harness()
        try h.write("secret", "TOPSECRET\n")
        let policy = try h.policy("""
            default: allow
            rules:
              - match: {action: fs_read, target_glob: "\(h.dir)/secret"}
                decision: deny
            """)
        // fork, then exec, two levels deep: the grandchild's read is still denied.
        let bare = h.bare(["sh", "-c", "sh -c 'cat \"$1\"' sh \"$1\"", "sh", h.path("secret")])
        #expect(bare.stdout.contains("TOPSECRET"))
        let script = "import os,sys\npid=os.fork()\nif pid==0:\n    os.execvp('cat',['cat',sys.argv[1]])\n_,st=os.waitpid(pid,0)\nsys.exit(os.waitstatus_to_exitcode(st))\n"
        try h.write("fork.py", script)
        let result = h.supervised(["sh", "-c", "python3 \"$1\" \"$2\"", "sh", h.path("fork.py"), h.path("secret")], policy: policy)
        #expect(result.status != 0)
        #expect(!result.stdout.contains("TOPSECRET"))
        let rows = h.query("select count(*) from events where action='fs_read' and decision='deny' and target='\(h.path("secret"))'")
        #expect(rows.first?.first == "1")
    }

    @Test func databaseHoldsSessionAndEvents() throws {
        let h = try Harness()
        try h.write("in.txt", "x\n")
        let policy = try h.policy("""
            default: allow
            rules:
              - match: {action: fs_write, target_glob: "\(h.dir)/nope"}
                decision: deny
            """)
        let result = h.supervised(["sh", "-c", "cat in.txt > /dev/null; echo > nope; exit 4"], policy: policy,
                                  extra: ["--agent", "test-agent", "--session", "s-123"])
        #expect(result.status == 4)
        let sessions = h.query("select id, agent, cwd, policy_path, length(policy_sha256), exit_status, end_time > start_time, command from sessions")
        #expect(sessions.count == 1)
        if let s = sessions.first {
            #expect(s[0] == "s-123" && s[1] == "test-agent" && s[2] == h.dir && s[3] == policy)
            #expect(s[4] == "64" && s[5] == "4" && s[6] == "1")
            #expect(s[7].contains("exit 4"))
        }
        let execs = h.query("select syscall, decision, target, argv from events where action='exec' order by id")
        #expect(execs.first?[0] == "execve" && execs.first?[1] == "allow" && execs.first?[2] == "/usr/bin/dash", "\(execs)")
        #expect(execs.contains { $0[2].hasSuffix("/cat") })
        let read = h.query("select decision, pid > 0, ppid > 0, executable, latency_us >= 0 from \(Harness.decisions) where action='fs_read' and target='\(h.path("in.txt"))'")
        #expect(read.first?[0] == "allow" && read.first?[1] == "1" && read.first?[2] == "1" && read.first?[3].hasSuffix("cat") == true)
        let denied = h.query("select decision, rule_index, errno from events where action='fs_write' and target='\(h.path("nope"))'")
        #expect(denied.first == ["deny", "0", "13"])
    }

    @Test func brokenPolicyExitsTwoWithPositionAndNeverRuns() throws {
        let h = try Harness()
        let policy = try h.policy("""
            default: deny
            rules:
              - match: {action: exe, target_glob: "*"}
                decision: allow
            """)
        let result = h.supervised(["touch", h.path("marker")], policy: policy)
        #expect(result.status == 2)
        #expect(result.stderr.contains("policy.yaml:3:"))
        #expect(!h.exists("marker"))
        let duplicate = try h.policy("default: deny\ndefault: allow\nrules: []\n")
        let dup = h.supervised(["touch", h.path("marker")], policy: duplicate)
        #expect(dup.status == 2 && dup.stderr.contains("policy.yaml:") && dup.stderr.contains("duplicate"))
        #expect(!h.exists("marker"))
    }

    @Test func nothingRunsWhenTheFilterCannotBeInstalled() throws {
        let h = try Harness()
        let policy = try h.policy("default: allow\nrules: []\n")
        // Bare, the inner command runs.
        #expect(h.bare(["touch", h.path("bare-marker")]).status == 0 && h.exists("bare-marker"))
        // Nested: the outer filter already has a listener, so the inner supervisor's child can't
        // install its own (EBUSY). The inner command must never run.
        // The inner supervisor gets its own policy: the outer one protects its own from the agent.
        try h.write("inner.yaml", "default: allow\nrules: []\n")
        let result = h.supervised([Harness.supervisor, "--policy", h.path("inner.yaml"), "--db", h.path("inner.db"), "--", "touch", h.path("marker")],
                                  policy: policy)
        #expect(result.status == 125)
        #expect(result.stderr.contains("seccomp filter"))
        #expect(!h.exists("marker"))
    }
}
