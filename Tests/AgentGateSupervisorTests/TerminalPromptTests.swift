import Foundation
import Glibc
import Testing

/// Asks at the terminal: the real supervisor on a real pseudo-terminal (driven as a person
/// would: wait for the text, press a key), and a full-screen program in tmux.
@Suite("Asks at the terminal")
struct TerminalPromptTests {
    static let policy = """
        # asks before every touch; this comment must survive
        ask_timeout: 120s
        default: allow
        rules:
          - match: {action: exec, target_glob: "touch"}
            decision: ask
            reason: every touch
        """

    // Commands run touch by its absolute path: a shell tries a denied command again in each
    // PATH directory (/usr/bin/touch, then /bin/touch), which asks again.

    /// Runs `command` under the supervisor as the foreground job of a new pseudo-terminal's
    /// session, then plays `steps` (`expect` text, then `send` keys) and reads until it ends.
    static let driver = """
        import fcntl, json, os, pty, select, signal, struct, sys, termios, time
        spec = json.loads(sys.argv[1])
        # As a terminal starts a program: no signal ignored or blocked (the test runner's are).
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(s, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        pid, fd = pty.fork()
        if pid == 0:
            os.closerange(3, 1024)
            os.execv(spec["argv"][0], spec["argv"])
        # Wide enough for the scratch directory's paths.
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 250, 0, 0))
        out = b""
        def more(deadline):
            global out
            if not select.select([fd], [], [], max(0, min(0.05, deadline - time.time())))[0]:
                return True
            try:
                data = os.read(fd, 4096)
            except OSError:
                return False
            out += data
            return bool(data)
        seen = 0
        failure = None
        for step in spec["steps"]:
            if "expect" in step:
                want = step["expect"].encode()
                deadline = time.time() + 90
                while out.find(want, seen) < 0 and time.time() < deadline and more(deadline):
                    pass
                if out.find(want, seen) < 0:
                    failure = "never saw " + step["expect"]
                    break
                seen = out.find(want, seen) + len(want)
            if "send" in step:
                time.sleep(0.1)  # a person's keys come apart; a burst is a terminal's reply
                os.write(fd, step["send"].encode())
            if step.get("hangUp"):
                os.close(fd)
                fd = None
                break
        if failure:
            os.kill(pid, signal.SIGKILL)
        deadline = time.time() + 90
        while fd is not None and time.time() < deadline and more(deadline):
            pass
        reaped, status = os.waitpid(pid, os.WNOHANG)
        while reaped == 0 and time.time() < deadline:
            time.sleep(0.05)
            reaped, status = os.waitpid(pid, os.WNOHANG)
        if reaped == 0:
            failure = failure or "the supervisor did not end"
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
        print(json.dumps({"status": os.waitstatus_to_exitcode(status), "failure": failure,
                          "output": out.decode(errors="replace")}))
        """

    struct Session: Decodable {
        let status: Int
        let failure: String?
        let output: String
    }

    struct Step: Encodable {
        var expect: String?
        var send: String?
        var hangUp: Bool?
        static func expect(_ text: String) -> Step { Step(expect: text) }
        static func send(_ keys: String) -> Step { Step(send: keys) }
        /// Closes the terminal (its master side), as closing a terminal window does.
        static let hangUp = Step(hangUp: true)
    }

    static let keys = "[a]llow once / [d]eny / [A]lways allow / [N]ever ?"

    static func onTerminal(_ h: Harness, _ command: [String], steps: [Step], policy: String = TerminalPromptTests.policy) throws -> Session {
        let policyPath = try h.protectedPolicy(policy)
        try h.write("driver.py", driver)
        struct Spec: Encodable {
            let argv: [String]
            let steps: [Step]
        }
        let spec = Spec(argv: [Harness.supervisor, "--policy", policyPath, "--db", h.db, "--"] + command, steps: steps)
        let json = String(decoding: try JSONEncoder().encode(spec), as: UTF8.self)
        // Rules saved into the user's own policy file go into the test's directory.
        var environment = ProcessInfo.processInfo.environment
        environment["XDG_CONFIG_HOME"] = h.path("config")
        // Generous: a loaded machine must not make an ask time out (a denial) before its key arrives.
        let result = h.run(["python3", h.path("driver.py"), json], environment: environment, timeout: 300)
        guard let session = try? JSONDecoder().decode(Session.self, from: Data(result.stdout.utf8)) else {
            throw HarnessError(message: "the pty driver failed: \(result.stdout)\(result.stderr)")
        }
        return session
    }

    /// The audit's record of the asked exec(s) of touch: decision, answered_via, answered_by.
    static func askedRows(_ h: Harness) -> [[String]] {
        h.query("select decision, answered_via, answered_by from events where action = 'exec' and target like '%/touch' order by seq")
    }

    /// `alice (uid 1000)`, as the audit names the person at the terminal.
    static var userDescription: String {
        let uid = getuid()
        guard let entry = getpwuid(uid) else { return "uid \(uid)" }
        return "\(String(cString: entry.pointee.pw_name)) (uid \(uid))"
    }

    @Test func allowOnceRunsTheCommand() throws {
        let h = try Harness()
        let session = try Self.onTerminal(h, ["sh", "-c", "/usr/bin/touch \(h.path("marker")); echo touched=$?"], steps: [
            .expect("┌─ AgentGate · action paused ──────────────"), .expect("│ action : exec"),
            .expect("│ target : /usr/bin/touch \(h.path("marker"))"), .expect("│ rule   : 2 (ask: every touch)"),
            .expect("denied in "), .expect(Self.keys), .send("a\n"), .expect("touched=0"),
        ])
        #expect(session.failure == nil && session.status == 0, "\(session)")
        #expect(h.exists("marker"))
        #expect(Self.askedRows(h) == [["allow", "tty", Self.userDescription]])
    }

    @Test func denyFailsTheCommandAndOtherKeysDoNothing() throws {
        let h = try Harness()
        // The target carries an escape sequence (a window title, a bell): drawn escaped.
        let session = try Self.onTerminal(h, ["sh", "-c", "/usr/bin/touch \(h.path("marker")) \"$(printf 'x\\033]0;evil\\007y')\"; echo touched=$?"], steps: [
            // A terminal's reply to a colour query, which a process of the session can provoke:
            // one burst, with an `a` in it, dropped whole.
            .expect(Self.keys), .send("\u{1b}]11;rgb:aaaa/aaaa/aaaa\u{1b}\\"), .send("\u{1b}]52;c;AyAy\u{7}"),
            .send("x"), .send("\u{1b}[A"), .send("q"), .send("d"), .expect("touched="),
        ])
        #expect(session.failure == nil && session.status == 0, "\(session)")
        #expect(session.output.contains("│ target : /usr/bin/touch \(h.path("marker")) x\\u{1b}]0;evil\\u{7}y"), "\(session.output)")
        #expect(!session.output.contains("\u{1b}]0;evil"))
        #expect(session.output.contains("touched=126"), "\(session.output)")
        #expect(!h.exists("marker"))
        #expect(Self.askedRows(h) == [["deny", "tty", Self.userDescription]])
    }

    /// Always shows the rule first (`n` goes back), saves it on `y` before the ask rule, keeps the
    /// file's comments, and the same action then runs without asking.
    @Test func alwaysSavesTheRuleItShowedAndItAppliesAtOnce() throws {
        let h = try Harness()
        let one = h.path("one")
        let session = try Self.onTerminal(h, ["sh", "-c", "/usr/bin/touch \(one); echo first=$?; rm \(one); /usr/bin/touch \(one); echo again=$?"], steps: [
            .expect(Self.keys), .send("A"), .expect("The rule to save:"), .expect("[y] save and allow / [n] back ?"), .send("n"),
            .expect(Self.keys), .send("A"), .expect("[y] save and allow / [n] back ?"), .send("y"),
            .expect("first=0"), .expect("again=0"),
        ])
        #expect(session.failure == nil && session.status == 0, "\(session)")
        #expect(session.output.contains("│ covers : exec /usr/bin/touch \(one) *"), "\(session.output)")
        #expect(h.exists("one"))
        let saved = try String(contentsOfFile: h.path("policies/policy.yaml"), encoding: .utf8)
        #expect(saved.contains("# asks before every touch; this comment must survive"), "\(saved)")
        let rule = saved.range(of: "match: {action: exec, argv: [/usr/bin/touch, \(one), \"**\"]}")
        let ask = saved.range(of: "target_glob: \"touch\"")
        #expect(rule != nil && ask != nil && rule!.lowerBound < ask!.lowerBound, "\(saved)")
        // Asked once, by a person; the second touch was allowed by the saved rule.
        #expect(Self.askedRows(h) == [["allow", "tty", Self.userDescription], ["allow", "None", "None"]])
    }

    @Test func neverSavesADenyRule() throws {
        let h = try Harness()
        let two = h.path("two")
        let session = try Self.onTerminal(h, ["sh", "-c", "/usr/bin/touch \(two); echo first=$?; /usr/bin/touch \(two); echo again=$?"], steps: [
            .expect(Self.keys), .send("N"), .expect("[y] save and deny / [n] back ?"), .send("y"),
            .expect("first=126"), .expect("again=126"),
        ])
        #expect(session.failure == nil && session.status == 0, "\(session)")
        #expect(!h.exists("two"))
        let saved = try String(contentsOfFile: h.path("policies/policy.yaml"), encoding: .utf8)
        #expect(saved.contains("# asks before every touch; this comment must survive"))
        #expect(saved.contains("match: {action: exec, argv: [/usr/bin/touch, \(two), \"**\"]}") && saved.contains("decision: deny"), "\(saved)")
        #expect(Self.askedRows(h) == [["deny", "tty", Self.userDescription], ["deny", "None", "None"]])
    }

    /// For a path, Always can cover the file's whole directory instead (`w`), shown before saving.
    @Test func alwaysForAPathCanCoverItsDirectory() throws {
        let h = try Harness()
        try FileManager.default.createDirectory(atPath: h.path("out"), withIntermediateDirectories: true)
        let policy = """
            # writes under out/ are asked about
            ask_timeout: 120s
            default: allow
            rules:
              - match: {action: fs_write, target_glob: "\(h.path("out"))/**"}
                decision: ask
            """
        let session = try Self.onTerminal(h, ["sh", "-c", "echo 1 > \(h.path("out/a")); echo first=$?; echo 2 > \(h.path("out/b")); echo second=$?"], steps: [
            .expect("│ action : fs_write"), .expect(Self.keys), .send("A"), .expect("[y] save and allow / [w] whole directory / [n] back ?"),
            .send("w"), .expect("[y] save and allow / [w] this file only / [n] back ?"), .send("y"),
            .expect("first=0"), .expect("second=0"),
        ], policy: policy)
        #expect(session.failure == nil && session.status == 0, "\(session)")
        #expect(h.exists("out/a") && h.exists("out/b"))
        let saved = try String(contentsOfFile: h.path("policies/policy.yaml"), encoding: .utf8)
        #expect(saved.contains("# writes under out/ are asked about") && saved.contains("decision: allow"), "\(saved)")
        let rows = h.query("select answered_via from events where action = 'fs_write' and target like '%/out/%' order by seq")
        #expect(rows == [["tty"], ["None"]], "\(rows)")
    }

    /// The terminal goes away while the prompt holds it and the agent is stopped: the session
    /// still ends (the agent is continued and gets the hangup), nothing is left behind.
    @Test func closingTheTerminalWhileAskingEndsTheSession() throws {
        let h = try Harness()
        let marker = "\(Int.random(in: 100_000_000...999_999_999))"
        let session = try Self.onTerminal(h, ["sh", "-c", "/usr/bin/touch \(h.path("one")); exec sleep \(marker)"], steps: [
            .expect(Self.keys), .hangUp,
        ])
        #expect(session.failure == nil, "\(session)")
        let deadline = Date().addingTimeInterval(10)
        var left = Self.processes(withCommandLine: ["sleep", marker])
        while !left.isEmpty && Date() < deadline {
            usleep(50_000)
            left = Self.processes(withCommandLine: ["sleep", marker])
        }
        #expect(left.isEmpty, "the agent outlived its terminal")
        for pid in left { kill(pid, SIGKILL) }
        #expect(!h.exists("one"))
    }

    static func processes(withCommandLine argv: [String]) -> [pid_t] {
        let wanted = Array(argv.joined(separator: "\0").utf8) + [0]
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { pid_t($0) }.filter { pid in
            (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))).map { Array($0) == wanted } ?? false
        }
    }

    /// The prompt stops the terminal's foreground group while it asks, so asks queue up from
    /// processes outside it (here, sessions of their own) that keep running meanwhile.
    @Test func concurrentAsksAreShownOneAtATimeWithTheQueue() throws {
        let h = try Harness()
        let session = try Self.onTerminal(h, ["sh", "-c", "setsid -w sh -c '/usr/bin/touch \(h.path("one")) & /usr/bin/touch \(h.path("two")) & wait'; echo both-done"], steps: [
            .expect("1 more waiting · denied in "), .expect(Self.keys), .send("a"),
            .expect(Self.keys), .send("a"), .expect("both-done"),
        ])
        #expect(session.failure == nil && session.status == 0, "\(session)")
        #expect(h.exists("one") && h.exists("two"))
        #expect(Self.askedRows(h) == [["allow", "tty", Self.userDescription], ["allow", "tty", Self.userDescription]])
    }

    /// A full-screen program keeps drawing from one thread while another runs an asked
    /// command: the prompt hides its screen, and afterwards it is back and still running.
    @Test func aFullScreenProgramSurvivesThePrompt() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") else {
            try Test.cancel("tmux is not installed")
        }
        let h = try Harness()
        let policy = try h.policy(Self.policy)
        try h.write("fullscreen.py", """
            import curses, os, signal, sys, threading
            marker, go, quit = sys.argv[1:4]
            redraw = threading.Event()
            # Redraws on SIGWINCH, as full-screen programs do.
            signal.signal(signal.SIGWINCH, lambda *_: redraw.set())
            def run_asked():
                # fork, not vfork: this process stops whole while the prompt holds the terminal.
                pid = os.fork()
                if pid == 0:
                    try:
                        os.execv("/usr/bin/touch", ["touch", marker])
                    finally:
                        os._exit(126)
                os.waitpid(pid, 0)
            def main(screen):
                curses.curs_set(0)
                asked = None
                tick = 0
                while not os.path.exists(quit):
                    if redraw.is_set():
                        redraw.clear()
                        screen.clear()
                    screen.addstr(0, 0, "FULLSCREEN-AGENT top line")
                    screen.addstr(5, 10, "the agent's middle text")
                    screen.addstr(10, 0, "tick %d" % tick)
                    screen.addstr(11, 0, "marker " + ("present" if os.path.exists(marker) else "absent"))
                    screen.refresh()
                    if asked is None and os.path.exists(go):
                        asked = threading.Thread(target=run_asked)
                        asked.start()
                    tick += 1
                    curses.napms(30)
            curses.wrapper(main)
            """)
        let server = "agentgate-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        func tmux(_ arguments: [String]) -> Harness.Result { h.run(["tmux", "-L", server] + arguments, timeout: 30) }
        let command = "\(Harness.supervisor) --policy \(policy) --db \(h.db) -- python3 \(h.path("fullscreen.py")) \(h.path("marker")) \(h.path("go")) \(h.path("quit")); echo $? > \(h.path("status"))"
        // The server must not hold the test's pipes (it would inherit every descriptor open in
        // the test process, other tests' pipes too), nor its blocked and ignored signals.
        let detached = """
            import os, signal, sys
            os.closerange(3, 1 << 16)
            fd = os.open("/dev/null", os.O_RDWR)
            for n in (0, 1, 2):
                os.dup2(fd, n)
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU):
                signal.signal(s, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            os.execvp("tmux", sys.argv[1:])
            """
        // An interactive shell runs the session as a job, as at a terminal: the supervisor then
        // follows the agent's job-control stops, and must not follow the prompt's own.
        let started = h.run(["python3", "-c", detached, "tmux", "-L", server, "new-session", "-d", "-x", "200", "-y", "30",
                             "bash", "--norc", "--noprofile", "-i"], timeout: 30)
        try #require(started.status == 0, "\(started.stderr)")
        // Ended by its pid too, should kill-server not be heard; tmux leaves its socket behind.
        let serverInfo = tmux(["display-message", "-p", "#{pid} #{socket_path}"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let serverPID = pid_t(serverInfo.prefix { $0 != " " }) ?? 0
        let socketPath = String(serverInfo.drop { $0 != " " }.dropFirst())
        defer {
            _ = tmux(["kill-server"])
            if serverPID > 0 && kill(serverPID, 0) == 0 { kill(serverPID, SIGKILL) }
            if socketPath.hasPrefix("/") { unlink(socketPath) }
        }
        _ = tmux(["send-keys", "-l", command])
        _ = tmux(["send-keys", "Enter"])
        func screen() -> String { tmux(["capture-pane", "-p"]).stdout }
        func waitFor(_ what: (String) -> Bool) -> String? {
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                let text = screen()
                if what(text) { return text }
                usleep(50_000)
            }
            return nil
        }
        let before = waitFor { $0.contains("FULLSCREEN-AGENT top line") && $0.contains("tick ") }
        #expect(before?.contains("the agent's middle text") == true, "\(screen())")
        // The program runs the asked command from a thread of its own while it keeps drawing.
        try h.write("go", "")
        let during = waitFor { $0.contains(Self.keys) }
        try #require(during != nil, "no prompt: \(screen())")
        #expect(during!.contains("┌─ AgentGate · action paused") && during!.contains("│ target : touch \(h.path("marker"))"))
        #expect(!during!.contains("FULLSCREEN-AGENT"), "\(during!)")
        _ = tmux(["send-keys", "a"])
        let after = waitFor { $0.contains("FULLSCREEN-AGENT top line") && $0.contains("marker present") }
        try #require(after != nil, "the program's screen did not come back: \(screen())")
        #expect(after!.contains("the agent's middle text") && !after!.contains("AgentGate · action paused"), "\(after!)")
        // It keeps running: its tick goes on.
        let tick = { (text: String) -> Int in
            text.split(separator: "\n").first { $0.hasPrefix("tick ") }.flatMap { Int($0.dropFirst(5)) } ?? -1
        }
        let first = tick(after!)
        #expect(waitFor { tick($0) > first + 5 } != nil, "\(screen())")
        try h.write("quit", "")
        let deadline = Date().addingTimeInterval(30)
        while !h.exists("status") && Date() < deadline { usleep(50_000) }
        #expect((try? String(contentsOfFile: h.path("status"), encoding: .utf8)) == "0\n")
        #expect(Self.askedRows(h) == [["allow", "tty", Self.userDescription]])
    }
}

/// Without a terminal an ask waits for the control socket or its timeout, and only the asking
/// process waits.
@Suite("Asks pause only the asking process")
struct AskPausesOnlyItsCallTests {
    @Test func aSiblingKeepsRunningWhileAnAskWaits() throws {
        let h = try Harness()
        let policy = try h.policy("""
            ask_timeout: 2s
            default: allow
            rules:
              - match: {action: exec, target_glob: "touch"}
                decision: ask
            """)
        // The sibling appends to a file (a trapped open each round) until the asked touch returns.
        // (An absolute path: a shell tries a denied command again in each PATH directory.)
        let script = """
            (while [ ! -e done ]; do echo >> rounds; done) &
            /usr/bin/touch asked; echo asked=$?; wc -l < rounds > during; : > done; wait
            """
        let result = h.supervised(["sh", "-c", script], policy: policy, timeout: 60)
        #expect(result.stdout.contains("asked=126"), "\(result.stdout)\(result.stderr)")
        #expect(!h.exists("asked"))
        let during = Int((try? String(contentsOfFile: h.path("during"), encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
        #expect(during > 20, "the sibling made only \(during) rounds while the ask waited")
        #expect(h.query("select decision, answered_via from events where action = 'exec' and target like '%/touch'") == [["deny", "timeout"]])
    }
}
