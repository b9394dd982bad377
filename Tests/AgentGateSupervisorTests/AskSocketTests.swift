import Foundation
import Glibc
import Testing

@testable import AgentGateSupervisor

extension ControlHarness {
    /// A policy that allows everything but asks before anything writes a file named `asked*`.
    func askingPolicy(timeout: String = "60s") throws -> String {
        try h.policy("""
            version: 2
            default: allow
            ask_timeout: \(timeout)
            rules:
              # Writes of asked* files wait for a person.
              - id: asked-files
                match: {action: fs_write, target_glob: "**/asked*"}
                decision: ask
                reason: writing an asked file
            """)
    }

    /// Starts `command` under `policy` as session `session`.
    func start(_ command: [String], session: String, policy: String) throws -> BackgroundRun {
        try BackgroundRun([Harness.supervisor, "--policy", policy, "--db", h.db, "--session", session, "--"] + command,
                          directory: h.dir, name: session, environment: environment)
    }

    /// A python agent that writes `asked` and then records the outcome in `asked.result`
    /// (`written`, or the error).
    static let writesAskedFile = ["python3", "-c", """
        import os
        try:
            open('asked', 'w').write('x')
            result = 'written'
        except OSError as e:
            result = 'error %d' % e.errno
        open('result', 'w').write(result)
        """]

    /// The pending asks `agentgate approvals --json` lists, once there are `count`.
    func pendingAsks(count: Int = 1, session: String? = nil) -> [[String: Any]] {
        var asks: [[String: Any]] = []
        _ = waitUntil {
            let listing = control(["approvals", "--json"] + (session.map { ["--session", $0] } ?? []))
            asks = listing.stdout.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            return asks.count >= count
        }
        return asks
    }

    func result() -> String? { try? String(contentsOfFile: h.path("result"), encoding: .utf8) }
}

/// Asks answered over the control socket (`agentgate approvals/approve/deny`), and the timeout.
@Suite(.serialized) struct AskSocketTests {
    @Test func anAskIsListedAndApprovedFromAnotherProcess() throws {
        let c = try ControlHarness()
        let run = try c.start(ControlHarness.writesAskedFile, session: "approved", policy: try c.askingPolicy())
        let asks = c.pendingAsks()
        #expect(asks.count == 1)
        let ask = try #require(asks.first)
        let id = try #require(ask["id"] as? String)
        #expect(ask["action"] as? String == "fs_write")
        #expect((ask["target"] as? String)?.hasSuffix("/asked") == true, "\(ask)")
        #expect(ask["session"] as? String == "approved")
        #expect((ask["pid"] as? Int ?? 0) > 0)
        #expect((ask["intent"] as? String)?.isEmpty == false)
        #expect((ask["rule"] as? String)?.contains("asked-files") == true)
        // What --always would save is shown before anything is saved.
        #expect((ask["always"] as? String)?.hasPrefix("allow fs_write \(c.h.dir)/asked (into ") == true, "\(ask)")
        #expect(c.result() == nil, "the write waits for the answer")

        let text = c.control(["approvals"])
        #expect(text.stdout.contains(id) && text.stdout.contains("fs_write"), "\(text.stdout)")

        let approve = c.control(["approve", id])
        #expect(approve.status == 0, "\(approve.stderr)")
        #expect(approve.stdout.contains("allowed once"), "\(approve.stdout)")
        #expect(run.wait(timeout: 30) == 0, "\(run.stderr)")
        #expect(c.result() == "written")
        let rows = c.h.query("select decision, answered_via, answered_by, reason from events where target like '%/asked'")
        #expect(rows.count == 1)
        #expect(rows.first?[0] == "allow" && rows.first?[1] == "socket", "\(rows)")
        #expect(rows.first?[2].contains("uid \(getuid())") == true, "\(rows)")
        #expect(rows.first?[3].contains("allowed once") == true, "\(rows)")

        let again = c.control(["approve", id])
        #expect(again.status == 1)
        #expect(again.stderr.contains("no pending ask \(id)") || again.stderr.contains("no running"), "\(again.stderr)")
    }

    @Test func aDeniedAskFailsTheCallWithEACCES() throws {
        let c = try ControlHarness()
        let run = try c.start(ControlHarness.writesAskedFile, session: "denied", policy: try c.askingPolicy())
        let id = try #require(c.pendingAsks().first?["id"] as? String)
        let deny = c.control(["deny", id])
        #expect(deny.status == 0, "\(deny.stderr)")
        #expect(run.wait(timeout: 30) == 0, "\(run.stderr)")
        #expect(c.result() == "error \(EACCES)")
        #expect(!c.h.exists("asked"))
        let rows = c.h.query("select decision, answered_via from events where target like '%/asked'")
        #expect(rows == [["deny", "socket"]], "\(rows)")
    }

    @Test func anUnansweredAskIsDeniedAtTheTimeout() throws {
        let c = try ControlHarness()
        let started = Date()
        let run = try c.start(ControlHarness.writesAskedFile, session: "timed-out", policy: try c.askingPolicy(timeout: "2s"))
        #expect(c.pendingAsks().count == 1)
        #expect(run.wait(timeout: 30) == 0, "\(run.stderr)")
        #expect(Date().timeIntervalSince(started) >= 2)
        #expect(c.result() == "error \(EACCES)")
        #expect(run.stderr.contains("agentgate approve"), "the ask is announced on the log: \(run.stderr)")
        let rows = c.h.query("select decision, answered_via, answered_by, reason from events where target like '%/asked'")
        #expect(rows.count == 1)
        #expect(rows.first?[0] == "deny" && rows.first?[1] == "timeout" && rows.first?[2] == "None", "\(rows)")
        #expect(rows.first?[3].contains("nobody answered within 2 s") == true, "\(rows)")
    }

    @Test func anAskBlocksOnlyTheAskingProcess() throws {
        let c = try ControlHarness()
        // The parent keeps creating files (allowed, trapped) while its child waits in an ask.
        let script = """
            import os, time
            child = os.fork()
            if child == 0:
                try:
                    open('asked', 'w').write('x')
                    open('result', 'w').write('written')
                finally:
                    os._exit(0)
            n = 0
            while not os.path.exists('stop'):
                open('free-%d' % n, 'w').close()
                n += 1
                time.sleep(0.01)
            os.waitpid(child, 0)
            """
        let run = try c.start(["python3", "-c", script], session: "sibling", policy: try c.askingPolicy())
        let id = try #require(c.pendingAsks().first?["id"] as? String)
        func freeFiles() -> Int { ((try? FileManager.default.contentsOfDirectory(atPath: c.h.dir)) ?? []).filter { $0.hasPrefix("free-") }.count }
        let before = freeFiles()
        #expect(waitUntil { freeFiles() >= before + 20 }, "the sibling's trapped calls go on while the ask waits")
        #expect(c.result() == nil)
        #expect(c.control(["approve", id]).status == 0)
        #expect(waitUntil { c.result() == "written" })
        try c.h.write("stop", "")
        #expect(run.wait(timeout: 30) == 0, "\(run.stderr)")
    }

    @Test func concurrentAsksAreListedAndAnsweredSeparately() throws {
        let c = try ControlHarness()
        let script = """
            import os
            pids = []
            for name in ('asked-a', 'asked-b', 'asked-c'):
                pid = os.fork()
                if pid == 0:
                    try:
                        open(name, 'w').close()
                    except OSError:
                        pass
                    os._exit(0)
                pids.append(pid)
            for pid in pids:
                os.waitpid(pid, 0)
            """
        let run = try c.start(["python3", "-c", script], session: "queued", policy: try c.askingPolicy())
        let asks = c.pendingAsks(count: 3)
        #expect(asks.count == 3)
        #expect(Set(asks.compactMap { $0["id"] as? String }).count == 3)
        for ask in asks {
            let id = try #require(ask["id"] as? String)
            let allow = (ask["target"] as? String)?.hasSuffix("asked-b") != true
            #expect(c.control([allow ? "approve" : "deny", id]).status == 0)
        }
        #expect(run.wait(timeout: 30) == 0, "\(run.stderr)")
        #expect(c.h.exists("asked-a") && !c.h.exists("asked-b") && c.h.exists("asked-c"))
    }

    @Test func theAgentCannotAnswerItsOwnAsk() throws {
        let c = try ControlHarness()
        let policy = try c.askingPolicy()
        // One process waits in the ask; another, in the same session, tries to answer it with
        // `agentgate approve` and with a raw connect to the socket, once the test gives it the id.
        let attempts = """
            python3 -c "$1" &
            while [ ! -s id ]; do sleep 0.05; done
            "$AGENTGATE_CLI" approve "$(cat id)" > approve.out 2>&1; echo "approve=$?" > attempts
            python3 -c 'import socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(sys.argv[1]); s.sendall(("{\\"op\\": \\"approve\\", \\"id\\": \\"%s\\"}\\n" % sys.argv[2]).encode())
                print("connect=" + s.recv(4096).decode().strip())
            except OSError as e:
                print("connect=refused " + str(e))' "$2" "$(cat id)" >> attempts
            echo done >> attempts
            wait
            """
        let run = try c.start(["sh", "-c", attempts, "sh", ControlHarness.writesAskedFile[2], c.socket("self-answer")],
                              session: "self-answer", policy: policy)
        let id = try #require(c.pendingAsks().first?["id"] as? String)
        try c.h.write("id", id)
        #expect(waitUntil { ((try? String(contentsOfFile: c.h.path("attempts"), encoding: .utf8)) ?? "").contains("done") })
        let attemptsText = (try? String(contentsOfFile: c.h.path("attempts"), encoding: .utf8)) ?? ""
        #expect(attemptsText.contains("approve=1"), "\(attemptsText)")
        #expect(attemptsText.contains("connect=refused"), "\(attemptsText)")
        #expect(c.result() == nil, "the ask is still waiting")
        #expect(c.pendingAsks().first?["id"] as? String == id)

        // The same answer from outside the session works.
        let approve = c.control(["approve", id])
        #expect(approve.status == 0, "\(approve.stderr)")
        #expect(run.wait(timeout: 30) == 0, "\(run.stderr)")
        #expect(c.result() == "written")
        let answeredBy = c.h.query("select answered_via from events where target like '%/asked'")
        #expect(answeredBy == [["socket"]])
    }

    @Test func signalsReachAnAskingProcess() throws {
        let c = try ControlHarness()
        // The handler runs while the open waits (the wait is interrupted as the kernel would
        // interrupt a blocking call); the restarted open takes up the same ask, same id.
        let script = """
            import os, signal
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGALRM])  # the test runner's mask is inherited
            def handler(signum, frame):
                open('alarm-%d' % len([f for f in os.listdir('.') if f.startswith('alarm-')]), 'w').close()
            signal.signal(signal.SIGALRM, handler)
            signal.setitimer(signal.ITIMER_REAL, 0.3, 0.3)
            try:
                open('asked', 'w').write('x')
                result = 'written'
            except OSError as e:
                result = 'error %d' % e.errno
            signal.setitimer(signal.ITIMER_REAL, 0)
            open('result', 'w').write(result)
            """
        let run = try c.start(["python3", "-c", script], session: "signalled", policy: try c.askingPolicy())
        let id = try #require(c.pendingAsks().first?["id"] as? String, "\(run.stderr)")
        #expect(waitUntil { c.h.exists("alarm-2") }, "the signal handler runs while the call waits in the ask")
        let asks = c.pendingAsks()
        #expect(asks.count == 1 && asks.first?["id"] as? String == id, "\(asks)")
        #expect(c.control(["approve", id]).status == 0)
        #expect(run.wait(timeout: 30) == 0, "\(run.stderr)")
        #expect(c.result() == "written")
        // The interrupted waits are not decisions: only the answer is recorded.
        #expect(c.h.query("select decision, answered_via from events where target like '%/asked'") == [["allow", "socket"]])
    }

    @Test func aKilledProcessWithdrawsItsAsk() throws {
        let c = try ControlHarness()
        // The child waits in the ask; the test ends it with SIGTERM (unblocked first: the test
        // runner's blocked signals are inherited), and the parent reports how it ended.
        let script = """
            import os, signal
            child = os.fork()
            if child == 0:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])
                open('asked', 'w').write('x')
                os._exit(0)
            open('waiting.pid', 'w').write(str(child))
            _, status = os.waitpid(child, 0)
            open('result', 'w').write('signal %d' % os.WTERMSIG(status) if os.WIFSIGNALED(status) else 'exit')
            """
        let run = try c.start(["python3", "-c", script], session: "withdrawn", policy: try c.askingPolicy())
        #expect(c.pendingAsks().count == 1)
        let pid = try #require(pid_t((try String(contentsOfFile: c.h.path("waiting.pid"), encoding: .utf8))))
        #expect(kill(pid, SIGTERM) == 0)
        #expect(run.wait(timeout: 30) == 0, "\(run.stderr)")
        #expect(c.result() == "signal \(SIGTERM)")
        #expect(!c.h.exists("asked"))
        #expect(c.h.query("select count(*) from events where target like '%/asked' and decision = 'allow'") == [["0"]])
    }

    /// An exec waits in its ask while another thread of the process rewrites the argument it
    /// was asked about (`flip`): the approved exec must not run with the new one.
    @Test(arguments: [false, true]) func anExecRewrittenDuringItsAskIsDenied(flip: Bool) throws {
        let c = try ControlHarness("execflip\(flip)")
        let policy = try c.h.policy("""
            version: 2
            default: allow
            rules:
              - match: {action: exec, argv: [echo, "**"]}
                decision: ask
            """)
        let script = """
            import ctypes, os, threading, time
            libc = ctypes.CDLL(None, use_errno=True)
            path = ctypes.create_string_buffer(b'/bin/echo')
            words = [ctypes.create_string_buffer(b'echo'), ctypes.create_string_buffer(b'asked-about')]
            argv = (ctypes.c_char_p * 3)(*[ctypes.cast(w, ctypes.c_char_p) for w in words], None)
            def flipper():
                while not os.path.exists('flip'):
                    time.sleep(0.02)
                ctypes.memmove(words[1], b'switched!!\\0', 12)
                open('flipped', 'w').close()
            threading.Thread(target=flipper, daemon=True).start()
            libc.execv(path, argv)
            open('result', 'w').write('error %d' % ctypes.get_errno())
            """
        let run = try c.start(["python3", "-c", script], session: "execflip\(flip)", policy: policy)
        let id = try #require(c.pendingAsks().first?["id"] as? String, "\(run.stderr)")
        if flip {
            try c.h.write("flip", "")
            #expect(waitUntil { c.h.exists("flipped") })
        }
        #expect(c.control(["approve", id]).status == 0)
        #expect(run.wait(timeout: 30) == 0, "\(run.stderr)")
        if flip {
            #expect(c.result() == "error \(EACCES)", "\(run.stdout)")
            #expect(!run.stdout.contains("switched"))
            #expect(c.h.query("select count(*) from events where reason like '%changed while the ask waited%'") == [["1"]])
        } else {
            #expect(run.stdout == "asked-about\n", "the same exec, unchanged, runs: \(run.stdout)")
        }
    }

    /// `approve --always` saves an allow rule before the ask rule (comments kept), in force at
    /// once: the same action of another process isn't asked again. `deny --never` likewise.
    @Test(arguments: [true, false]) func alwaysAndNeverSaveARule(always: Bool) throws {
        let c = try ControlHarness("saved\(always)")
        let policy = try c.h.protectedPolicy(try String(contentsOfFile: try c.askingPolicy(), encoding: .utf8))
        let before = try String(contentsOfFile: policy, encoding: .utf8)
        let script = """
            import os, sys
            def attempt(n):
                try:
                    open('asked', 'w').write('x')
                    return 'written'
                except OSError as e:
                    return 'error %d' % e.errno
            first = attempt(1)
            open('first', 'w').write(first)
            while not os.path.exists('again'):
                pass
            open('result', 'w').write(attempt(2))
            """
        let run = try c.start(["python3", "-c", script], session: "saved\(always)", policy: policy)
        let id = try #require(c.pendingAsks().first?["id"] as? String, "\(run.stderr)")
        let answer = c.control(always ? ["approve", id, "--always"] : ["deny", id, "--never"])
        #expect(answer.status == 0, "\(answer.stderr)")
        #expect(answer.stdout.contains("rule saved to \(policy)"), "\(answer.stdout)")
        #expect(waitUntil { c.h.exists("first") })
        try c.h.write("again", "")
        #expect(run.wait(timeout: 30) == 0, "\(run.stderr)")
        // The second write was decided by the saved rule, without an ask.
        #expect(c.result() == (always ? "written" : "error \(EACCES)"))
        let after = try String(contentsOfFile: policy, encoding: .utf8)
        #expect(after.contains("# Writes of asked* files wait for a person."), "comments survive: \(after)")
        let saved = try #require(after.range(of: "decision: \(always ? "allow" : "deny")"), "\(after)")
        let asking = try #require(after.range(of: "id: asked-files"))
        #expect(saved.lowerBound < asking.lowerBound, "the rule goes before the ask rule: \(after)")
        #expect(after.hasPrefix(String(before.prefix(40))))
        let rows = c.h.query("select decision, answered_via, rule_id from events where target like '%/asked' order by id")
        #expect(rows.count == 2, "\(rows)")
        #expect(rows.first?[1] == "socket")
        #expect(rows.last?[0] == (always ? "allow" : "deny") && rows.last?[1] == "None" && rows.last?[2] != "asked-files", "\(rows)")
        #expect(c.h.query("select count(*) from events where syscall = 'policy-reload'") == [["1"]])
    }

    /// A policy file in a directory the agent may write to is edited in place, and the lock and
    /// temporary files the save goes through (`.NAME.…` beside it) are off limits to the agent
    /// as the file is: it can't swap the new policy before the rename.
    @Test func theFilesASaveGoesThroughAreOffLimits() throws {
        let c = try ControlHarness("save-files")
        let policy = try c.askingPolicy()
        let attempts = """
            import os
            results = []
            for name in ('.policy.yaml.lock', '.policy.yaml.4242.x.0.tmp'):
                try:
                    os.close(os.open(name, os.O_WRONLY | os.O_CREAT, 0o600))
                    os.unlink(name)
                    results.append('made')
                except OSError as e:
                    results.append('error %d' % e.errno)
            open('attempts', 'w').write(' '.join(results))
            """
        // Without the supervisor, nothing stops it.
        #expect(c.h.run(["python3", "-c", attempts]).status == 0)
        #expect((try? String(contentsOfFile: c.h.path("attempts"), encoding: .utf8)) == "made made")
        let run = try c.start(["sh", "-c", "python3 -c \"$1\" && python3 -c \"$2\"", "sh", attempts, ControlHarness.writesAskedFile[2]],
                              session: "save-files", policy: policy)
        let id = try #require(c.pendingAsks().first?["id"] as? String, "\(run.stderr)")
        #expect((try? String(contentsOfFile: c.h.path("attempts"), encoding: .utf8)) == "error \(EACCES) error \(EACCES)")
        let answer = c.control(["approve", id, "--always"])
        #expect(answer.stdout.contains("rule saved to \(policy)"), "\(answer.stdout) \(answer.stderr)")
        #expect(run.wait(timeout: 30) == 0, "\(run.stderr)")
        #expect(c.result() == "written")
    }

    /// A file change asked about (performed under the supervisor's namespace lock) waits for its
    /// answer outside that lock: the sibling's own mkdirs and renames go on meanwhile.
    @Test func anAskedMkdirDoesNotHoldUpOtherChanges() throws {
        let c = try ControlHarness("asked-mkdir")
        let script = """
            import os, time
            child = os.fork()
            if child == 0:
                try:
                    os.mkdir('asked-dir')
                    open('result', 'w').write('made')
                except OSError as e:
                    open('result', 'w').write('error %d' % e.errno)
                os._exit(0)
            n = 0
            while not os.path.exists('stop'):
                os.mkdir('free-%d' % n)
                open('file-%d' % n, 'w').close()
                os.rename('file-%d' % n, 'moved-%d' % n)
                n += 1
                time.sleep(0.01)
            os.waitpid(child, 0)
            """
        let run = try c.start(["python3", "-c", script], session: "asked-mkdir", policy: try c.askingPolicy())
        let id = try #require(c.pendingAsks().first?["id"] as? String, "\(run.stderr)")
        func moved() -> Int { ((try? FileManager.default.contentsOfDirectory(atPath: c.h.dir)) ?? []).filter { $0.hasPrefix("moved-") }.count }
        let before = moved()
        #expect(waitUntil { moved() >= before + 20 }, "the sibling's mkdirs and renames go on while the ask waits")
        #expect(c.result() == nil)
        #expect(c.control(["approve", id]).status == 0)
        #expect(waitUntil { c.result() == "made" })
        try c.h.write("stop", "")
        #expect(run.wait(timeout: 30) == 0, "\(run.stderr)")
        #expect(c.h.query("select decision, answered_via from events where target like '%/asked-dir'") == [["allow", "socket"]])
    }

    @Test func answeringAnUnknownAskSaysSo() throws {
        let c = try ControlHarness()
        let run = try c.start(ControlHarness.writesAskedFile, session: "unknown-id", policy: try c.askingPolicy())
        let id = try #require(c.pendingAsks().first?["id"] as? String)
        let wrong = c.control(["approve", "zzzzz"])
        #expect(wrong.status == 1)
        #expect(wrong.stderr.contains("no pending ask zzzzz"), "\(wrong.stderr)")
        let badFlags = c.control(["approve", id, "--exact"])
        #expect(badFlags.status != 0)
        #expect(c.control(["deny", id]).status == 0)
        #expect(run.wait(timeout: 30) == 0)
    }
}

/// The channel `agentgate mcp` puts its asks on, and what the person is shown.
struct ParentAskChannelTests {
    @Test func anAnswerToAnEarlierRequestIsNeverTakenForALaterOne() throws {
        var pair: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        defer { close(pair[0]); close(pair[1]) }
        // A late answer to request 1 is already waiting when request 2 is put.
        for id: UInt64 in [1, 2] {
            let answer = ParentAskAnswer(id: id, allowed: id == 1, why: "answer \(id)", told: "answer \(id)")
            _ = ParentAskChannel.writeAll(pair[1], Array(try JSONEncoder().encode(answer)) + [0x0A])
        }
        let answer = try ParentAskChannel.ask(ParentAskRequest(id: 2, tool: "t", arguments: [:], waitSeconds: 0), fd: pair[0])
        #expect(answer.id == 2 && !answer.allowed)
        // No answer at all: a failure, by the deadline.
        let started = Date()
        #expect(throws: ParentAskChannel.Failure.self) {
            try ParentAskChannel.ask(ParentAskRequest(id: 3, tool: "t", arguments: [:], waitSeconds: -9), fd: pair[0])
        }
        #expect(Date().timeIntervalSince(started) < 5)
    }

    @Test func thePersonSeesShortValuesFirstAndHowManyWereHidden() {
        let padding = String(repeating: "a", count: 3000)
        let shown = ParentAskServer.shownArguments(tool: "read_file", arguments: ["a_note": padding, "path": "/home/u/.ssh/id_rsa",
                                                                                 "api_key": "x", "text": "key AKIAIOSFODNN7EXAMPLE"])
        let path = shown.firstIndex(of: "path=/home/u/.ssh/id_rsa"), note = shown.firstIndex { $0.hasPrefix("a_note=") }
        #expect(shown.first == "read_file" && path != nil && note != nil && path! < note!, "\(shown)")
        #expect(shown.contains("api_key=[REDACTED]") && shown.last == "[3 values redacted or cut]", "\(shown)")
        #expect(shown.allSatisfy { $0.utf8.count < 600 })
        #expect(ParentAskServer.shownArguments(tool: "echo", arguments: ["text": "hi"]) == ["echo", "text=hi"])
    }
}
