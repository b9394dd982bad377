import Foundation
import Glibc
import Testing

@testable import AgentGateSupervisor

/// A private runtime directory per test, so `--all` reaches only this test's sessions.
struct ControlHarness {
    let h: Harness
    let environment: [String: String]

    init(_ name: String = #function) throws {
        h = try Harness(name)
        let runtime = h.path("run")
        mkdir(runtime, 0o700)
        var environment = ProcessInfo.processInfo.environment
        environment["XDG_RUNTIME_DIR"] = runtime
        environment["AGENTGATE_CLI"] = Harness.agentgate
        environment["XDG_CONFIG_HOME"] = h.path("config") // where rules saved from asks may go
        self.environment = environment
    }

    var socketDirectory: String { h.path("run/agentgate") }

    func socket(_ session: String) -> String { socketDirectory + "/" + session + ".sock" }

    /// Starts `command` under the supervisor as session `session`.
    func start(_ command: [String], session: String) throws -> BackgroundRun {
        let policy = try h.policy("default: allow\nrules: []\n")
        return try BackgroundRun([Harness.supervisor, "--policy", policy, "--db", h.db, "--session", session, "--"] + command,
                                 directory: h.dir, name: session, environment: environment)
    }

    /// `agentgate ARGS` with this test's runtime directory.
    func control(_ arguments: [String]) -> Harness.Result {
        h.run([Harness.agentgate] + arguments, environment: environment)
    }

    /// A python agent that writes `ready`, waits for the file `go`, then opens `marker` for
    /// writing (a trapped call).
    func waiter(_ suffix: String = "") -> [String] {
        let script = """
            import os, sys, time
            open('ready\(suffix)', 'w').close()
            while not os.path.exists('go\(suffix)'):
                time.sleep(0.02)
            open('marker\(suffix)', 'w').write('x')
            """
        return ["python3", "-c", script]
    }
}

/// `agentgate kill / pause / resume` over each session's control socket, and that the session
/// itself can't use it.
@Suite(.serialized) struct SessionControlTests {
    @Test func killEndsTheWholeTreeAndIsRecorded() throws {
        let c = try ControlHarness()
        let run = try c.start(["sh", "-c", "(sleep 300 & echo $! > grandchild.pid; wait) & wait"], session: "killed-tree")
        #expect(waitUntil { (try? String(contentsOfFile: c.h.path("grandchild.pid"), encoding: .utf8))?.hasSuffix("\n") == true })
        let grandchild = pid_t((try String(contentsOfFile: c.h.path("grandchild.pid"), encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines))!
        #expect(kill(grandchild, 0) == 0)
        #expect(FileManager.default.fileExists(atPath: c.socket("killed-tree")))

        let result = c.control(["kill", "killed"]) // a unique prefix
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("killed session killed-tree"))
        #expect(run.wait(timeout: 30) == 137)
        #expect(run.stderr.contains("was killed by"), "\(run.stderr)")
        #expect(kill(grandchild, 0) != 0 && errno == ESRCH)
        #expect(!FileManager.default.fileExists(atPath: c.socket("killed-tree")), "the socket is removed at exit")
        let rows = c.h.query("select action, decision, reason from events where syscall = 'agentgate kill'")
        #expect(rows.count == 1)
        #expect(rows.first?[0] == "syscall" && rows.first?[1] == "deny")
        #expect(rows.first?[2].contains("with agentgate kill") == true)

        let again = c.control(["kill", "killed-tree"])
        #expect(again.status == 1)
        #expect(again.stderr.contains("no running session killed-tree"), "\(again.stderr)")
    }

    @Test func pauseHoldsTrappedCallsUntilResume() throws {
        let c = try ControlHarness()
        let run = try c.start(c.waiter(), session: "paused")
        #expect(waitUntil { c.h.exists("ready") })
        let pause = c.control(["pause", "paused"])
        #expect(pause.status == 0, "\(pause.stderr)")
        try c.h.write("go", "")
        // An observation window, not a synchronisation: the agent's open of `marker` must not
        // complete while the session is paused. Without the pause it completes in milliseconds.
        #expect(!waitUntil(timeout: 1.5) { c.h.exists("marker") }, "a trapped open completed while paused")
        let resume = c.control(["resume", "paused"])
        #expect(resume.status == 0, "\(resume.stderr)")
        #expect(waitUntil { c.h.exists("marker") })
        #expect(run.wait(timeout: 30) == 0)
        let recorded = c.h.query("select syscall from events where action = 'syscall' and syscall like 'agentgate %' order by id").map { $0[0] }
        #expect(recorded == ["agentgate pause", "agentgate resume"])
    }

    @Test func killWorksWhilePaused() throws {
        let c = try ControlHarness()
        let run = try c.start(c.waiter(), session: "paused-then-killed")
        #expect(waitUntil { c.h.exists("ready") })
        #expect(c.control(["pause", "paused-then-killed"]).status == 0)
        try c.h.write("go", "") // its open of `marker` is now held
        let kill = c.control(["kill", "paused-then-killed"])
        #expect(kill.status == 0, "\(kill.stderr)")
        #expect(run.wait(timeout: 30) == 137)
        #expect(!c.h.exists("marker"))
    }

    @Test func aControlDirectoryOpenToOthersIsRefused() throws {
        let c = try ControlHarness()
        mkdir(c.socketDirectory, 0o755)
        chmod(c.socketDirectory, 0o755)
        let policy = try c.h.policy("default: allow\nrules: []\n")
        let run = c.h.run([Harness.supervisor, "--policy", policy, "--db", c.h.db, "--", "sh", "-c", "echo ran > ran"],
                          environment: c.environment)
        #expect(run.status == 2)
        #expect(run.stderr.contains("refusing to use \(c.socketDirectory) for control sockets: its mode is 0755"), "\(run.stderr)")
        #expect(!c.h.exists("ran"))
        let pause = c.control(["pause", "--all"])
        #expect(pause.status == 1)
        #expect(pause.stderr.contains("open to group or others"), "\(pause.stderr)")
    }

    @Test func pauseAllReachesEverySession() throws {
        let c = try ControlHarness()
        let first = try c.start(c.waiter("1"), session: "first")
        let second = try c.start(c.waiter("2"), session: "second")
        #expect(waitUntil { c.h.exists("ready1") && c.h.exists("ready2") })
        let pause = c.control(["pause", "--all"])
        #expect(pause.status == 0, "\(pause.stderr)")
        #expect(pause.stdout.contains("paused session first") && pause.stdout.contains("paused session second"))
        try c.h.write("go1", "")
        try c.h.write("go2", "")
        // An observation window (see pauseHoldsTrappedCallsUntilResume).
        #expect(!waitUntil(timeout: 1.5) { c.h.exists("marker1") || c.h.exists("marker2") })
        #expect(c.control(["resume", "--all"]).status == 0)
        #expect(first.wait(timeout: 30) == 0)
        #expect(second.wait(timeout: 30) == 0)
        #expect(c.h.exists("marker1") && c.h.exists("marker2"))
    }

    @Test func aPeerOfAnotherUserIsRefused() throws {
        try TestUser.requireRoot("connecting as another uid")
        let c = try ControlHarness()
        let run = try c.start(c.waiter(), session: "guarded")
        #expect(waitUntil { c.h.exists("ready") })
        // Effective uid 65534 (what SO_PEERCRED reports), file-system uid 0 (so the 0700
        // directory and the 0600 socket can be reached): only the credentials check stands.
        let script = """
            import ctypes, os, socket, sys
            os.setresuid(0, 65534, 0)
            ctypes.CDLL(None).setfsuid(0)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sys.argv[1])
            try:
                s.sendall(b'{"op": "kill"}\\n')
            except OSError:
                pass  # refused before the request was read: the answer is still there to read
            print(s.recv(4096).decode())
            """
        let attempt = c.h.run(["python3", "-c", script, c.socket("guarded")])
        #expect(attempt.stdout.contains(#""ok":false"#), "\(attempt.stdout) \(attempt.stderr)")
        #expect(attempt.stdout.contains("permission denied"))
        #expect(waitUntil { run.stderr.contains("refused a connection") }, "\(run.stderr)")
        try c.h.write("go", "")
        #expect(run.wait(timeout: 30) == 0, "the session was not killed")
    }

    @Test func theSessionCannotControlItself() throws {
        let c = try ControlHarness()
        // The same attempts, from outside any session, work: pause, a raw connect, kill.
        let attempts = """
            "$AGENTGATE_CLI" pause "$1"; echo "pause=$?"
            python3 -c 'import socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(sys.argv[1]); s.sendall(b"{\\"op\\": \\"resume\\"}\\n"); print("connect=" + s.recv(4096).decode().strip())
            except OSError as e:
                print("connect=refused " + str(e))' "$2"
            "$AGENTGATE_CLI" kill "$1"; echo "kill=$?"
            rm -f "$2"; echo "remove=$?"
            """
        let target = try c.start(c.waiter(), session: "outside-target")
        #expect(waitUntil { c.h.exists("ready") })
        let bare = c.h.run(["sh", "-c", attempts, "sh", "outside-target", c.socket("outside-target")], environment: c.environment)
        #expect(bare.stdout.contains("pause=0"), "\(bare.stdout) \(bare.stderr)")
        #expect(bare.stdout.contains(#"connect={"ok":true"#), "\(bare.stdout)")
        #expect(bare.stdout.contains("kill=0"), "\(bare.stdout)")
        #expect(bare.stdout.contains("remove=0"), "\(bare.stdout)")
        #expect(target.wait(timeout: 30) == 137)

        // From inside: every attempt on its own session is refused, and the session runs on.
        let inside = try c.start(["sh", "-c", attempts + "\necho finished", "sh", "self", c.socket("self")], session: "self")
        #expect(inside.wait(timeout: 60) == 0, "\(inside.stderr)")
        #expect(inside.stdout.contains("pause=1"), "\(inside.stdout) \(inside.stderr)")
        #expect(inside.stdout.contains("connect=refused"), "\(inside.stdout)")
        #expect(inside.stdout.contains("kill=1"), "\(inside.stdout)")
        #expect(inside.stdout.contains("remove=1"), "the socket can't be removed from inside: \(inside.stdout)")
        #expect(inside.stdout.contains("finished"))
        #expect(!inside.stderr.contains("was killed by"))
        #expect(c.h.query("select count(*) from events where session_id = 'self' and syscall like 'agentgate %'").first?.first == "0")
    }

    /// An agent of another session (whose own supervisor doesn't protect this session's
    /// directory) reaches the socket, but may not resume the session or answer its asks: it
    /// runs under more seccomp filters than the supervisor.
    @Test func otherAgentsCantResume() throws {
        let c = try ControlHarness()
        let attempt = """
            import socket, sys
            for op in ('{"op": "resume"}', '{"op": "approve", "id": "00000"}'):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(sys.argv[1]); s.sendall(op.encode() + b"\\n"); print(s.recv(4096).decode().strip())
            """
        let target = try c.start(c.waiter(), session: "paused-target")
        #expect(waitUntil { c.h.exists("ready") })
        #expect(c.control(["pause", "paused-target"]).status == 0)
        // From outside any session: the resume is done (and the approve finds no such ask).
        let bare = c.h.run(["python3", "-c", attempt, c.socket("paused-target")], environment: c.environment)
        #expect(bare.stdout.contains(#"{"ok":true"#), "\(bare.stdout) \(bare.stderr)")
        #expect(!bare.stdout.contains("seccomp"), "\(bare.stdout)")
        #expect(c.control(["pause", "paused-target"]).status == 0)
        // From an agent of a second session with a runtime directory of its own.
        let other = c.h.path("other-run")
        mkdir(other, 0o700)
        var environment = c.environment
        environment["XDG_RUNTIME_DIR"] = other
        let policy = try c.h.policy("default: allow\nrules: []\n")
        let agent = c.h.run([Harness.supervisor, "-q", "--policy", policy, "--db", c.h.path("other.db"), "--session", "other", "--",
                             "python3", "-c", attempt, c.socket("paused-target")], environment: environment)
        #expect(agent.status == 0, "\(agent.stdout) \(agent.stderr)")
        let refusals = agent.stdout.split(separator: "\n").filter { $0.contains("is a supervised agent") }
        #expect(refusals.count == 2, "\(agent.stdout) \(agent.stderr)")
        // Still paused: the go file does not reach the marker until resumed from outside.
        FileManager.default.createFile(atPath: c.h.path("go"), contents: nil)
        usleep(300_000)
        #expect(!c.h.exists("marker"))
        #expect(c.control(["resume", "paused-target"]).status == 0)
        #expect(target.wait(timeout: 30) == 0)
        #expect(c.h.exists("marker"))
    }
}

/// The control directory's naming, without a supervisor.
@Suite struct ControlDirectoryTests {
    @Test func socketPathsAreOnlyNamedForPlainIds() {
        let directory = ControlDirectory(path: "/tmp/agentgate-1000")
        #expect(directory.socketPath(session: "1f2e3d4c-aaaa") == "/tmp/agentgate-1000/1f2e3d4c-aaaa.sock")
        for unusable in ["", ".hidden", "../escape", "a/b", "a\0b", String(repeating: "x", count: 100)] {
            #expect(directory.socketPath(session: unusable) == nil, "\(unusable)")
        }
    }

    @Test func sessionsAreFoundExactlyOrByAUniquePrefix() throws {
        let h = try Harness()
        for name in ["1f2e3d4c-one.sock", "1f2e9999-two.sock", "abc.sock", "abcd.sock", "not-a-socket.txt"] {
            try h.write(name, "")
        }
        let directory = ControlDirectory(path: h.dir)
        #expect(directory.sessions() == ["1f2e3d4c-one", "1f2e9999-two", "abc", "abcd"])
        #expect(directory.match(session: "1f2e3d") == .found("1f2e3d4c-one"))
        #expect(directory.match(session: "1f2e") == .ambiguous(["1f2e3d4c-one", "1f2e9999-two"]))
        #expect(directory.match(session: "abc") == .found("abc"), "an exact id wins over a longer one it prefixes")
        #expect(directory.match(session: "zzz") == .none)
    }
}
