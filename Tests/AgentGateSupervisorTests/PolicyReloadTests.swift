import Foundation
import Glibc
import Testing

/// The supervisor reads its policy file again on SIGHUP and when the file changes; a policy
/// that fails to load leaves the one in force.
@Suite("Live policy reload")
struct PolicyReloadTests {
    static let allowing = """
        # the policy the session starts with; every read a row, so each shows its policy's hash
        default: allow
        audit: {reads: all}
        rules: []
        """

    static func denying(_ h: Harness) -> String {
        """
        # reloaded: the secret is off limits now
        default: allow
        audit: {reads: all}
        rules:
          - match: {action: fs_read, target_glob: "\(h.dir)/secret.txt"}
            decision: deny
            reason: reloaded rule
        """
    }

    /// An agent that opens secret.txt every 20 ms, printing `ok` or `denied`, until the marker
    /// file `stop` appears.
    static func startLoopingAgent(_ h: Harness, session: String) throws -> BackgroundRun {
        try h.write("secret.txt", "s3cret\n")
        try h.write("loop.py", """
            import os, sys, time
            secret, stop = sys.argv[1], sys.argv[2]
            while not os.path.exists(stop):
                try:
                    open(secret).close()
                    print("ok", flush=True)
                except PermissionError:
                    print("denied", flush=True)
                time.sleep(0.02)
            """)
        // As a shell starts it: SIGHUP not ignored, nothing blocked.
        let wrapper = """
            import os, signal, sys
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
                signal.signal(s, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            os.execv(sys.argv[1], sys.argv[1:])
            """
        let policy = h.path("policy.yaml")
        return try BackgroundRun(["/usr/bin/env", "python3", "-c", wrapper, Harness.supervisor, "--policy", policy,
                                  "--db", h.db, "--session", session, "--",
                                  "python3", h.path("loop.py"), h.path("secret.txt"), h.path("stop")],
                                 directory: h.dir, name: "supervisor")
    }

    /// Replaces the policy file the way editors do: write a new file, rename it over the old.
    static func replacePolicy(_ h: Harness, with text: String) throws {
        try h.write("policy.yaml.new", text)
        guard rename(h.path("policy.yaml.new"), h.path("policy.yaml")) == 0 else {
            throw HarnessError(message: "rename failed: \(errno)")
        }
    }

    static func lines(_ run: BackgroundRun) -> [Substring] { run.stdout.split(separator: "\n") }

    /// Ends the agent through its marker file and checks the session ended cleanly.
    static func stop(_ h: Harness, _ run: BackgroundRun) throws {
        try h.write("stop", "")
        #expect(run.wait(timeout: 60) == 0, "\(run.stderr)")
    }

    /// The secret's audit rows: decision and policy hash, in order.
    static func secretRows(_ h: Harness, session: String) -> [[String]] {
        h.query("select decision, coalesce(policy_sha256, '-') from events where session_id = '\(session)' "
                + "and target = '\(h.dir)/secret.txt' order by seq")
    }

    @Test func sighupReloadsAChangedPolicy() throws {
        let h = try Harness()
        _ = try h.policy(Self.allowing)
        // A second name for the policy file, in a directory the supervisor doesn't watch: an
        // edit made through it is seen only when SIGHUP asks for a reload.
        try FileManager.default.createDirectory(atPath: h.path("elsewhere"), withIntermediateDirectories: true)
        try #require(link(h.path("policy.yaml"), h.path("elsewhere/policy.yaml")) == 0)
        let run = try Self.startLoopingAgent(h, session: "hup")
        #expect(waitUntil { Self.lines(run).contains("ok") }, "\(run.stderr)")
        try h.write("elsewhere/policy.yaml", Self.denying(h))
        let seen = Self.lines(run).count
        #expect(waitUntil { Self.lines(run).count > seen + 10 })
        #expect(!Self.lines(run).contains("denied"), "reloaded without SIGHUP")
        kill(run.pid, SIGHUP)
        #expect(waitUntil { Self.lines(run).last == "denied" }, "\(run.stderr)")
        #expect(run.stderr.contains("agentgate: policy reloaded from \(h.path("policy.yaml")) (sha256 "), "\(run.stderr)")
        // The agent did not get the SIGHUP: it is still running.
        #expect(run.process.isRunning)
        try Self.stop(h, run)

        let rows = Self.secretRows(h, session: "hup")
        let started = h.query("select policy_sha256 from sessions where id = 'hup'").first?.first
        let allowed = rows.filter { $0[0] == "allow" }, denied = rows.filter { $0[0] == "deny" }
        #expect(!allowed.isEmpty && !denied.isEmpty)
        // Rows decided under the session's own policy store "=" for its hash; the others, theirs.
        #expect(allowed.allSatisfy { $0[1] == "=" })
        #expect(Set(denied.map { $0[1] }).count == 1)
        #expect(denied.first?[1] != started && denied.first?[1] != "-" && denied.first?[1].count == 64)
        // After the reload nothing is allowed again.
        #expect(rows.drop { $0[0] == "allow" }.allSatisfy { $0[0] == "deny" })
        // The reload is in the audit, under the new hash, and the chain verifies.
        let reloads = h.query("select decision, policy_sha256 from events where session_id = 'hup' and syscall = 'policy-reload'")
        #expect(reloads.first == ["allow", denied.first?[1] ?? "?"])
        #expect(h.cli(["audit", "verify", "--session", "hup"]).status == 0)
        let json = h.cli(["audit", "--session", "hup", "--json"])
        #expect(json.stdout.contains("\"policy_sha256\":\"\(started ?? "?")\""))
        #expect(json.stdout.contains("\"policy_sha256\":\"\(denied.first?[1] ?? "?")\""))
        #expect(!json.stdout.contains("\"policy_sha256\":\"=\""))
    }

    @Test func anEditorsWriteAndRenameReloadsWithoutASignal() throws {
        let h = try Harness()
        _ = try h.policy(Self.allowing)
        let run = try Self.startLoopingAgent(h, session: "inotify")
        #expect(waitUntil { Self.lines(run).contains("ok") }, "\(run.stderr)")
        try Self.replacePolicy(h, with: Self.denying(h))
        #expect(waitUntil { Self.lines(run).last == "denied" }, "\(run.stderr)")
        #expect(run.stderr.contains("agentgate: policy reloaded from"))
        try Self.stop(h, run)
        let hashes = Set(Self.secretRows(h, session: "inotify").map { $0[1] })
        #expect(hashes.count == 2)
    }

    @Test func aBrokenPolicyIsRejectedAndTheOldOneStays() throws {
        let h = try Harness()
        _ = try h.policy(Self.allowing)
        let run = try Self.startLoopingAgent(h, session: "broken")
        #expect(waitUntil { Self.lines(run).contains("ok") }, "\(run.stderr)")
        try Self.replacePolicy(h, with: "default: allow\nrules:\n  - match: {action: fs_read, target_glob: [unclosed\n")
        #expect(waitUntil { run.stderr.contains("rejected; the policy in force stays") }, "\(run.stderr)")
        kill(run.pid, SIGHUP)
        #expect(waitUntil { run.stderr.components(separatedBy: "rejected; the policy in force stays").count > 2 }, "\(run.stderr)")
        // The session goes on, under the old policy.
        let seen = Self.lines(run).count
        #expect(waitUntil { Self.lines(run).count > seen + 5 })
        #expect(!Self.lines(run).contains("denied"))
        try Self.stop(h, run)
        let hashes = Set(Self.secretRows(h, session: "broken").map { $0[1] })
        #expect(hashes.count == 1)
        let rejected = h.query("select decision from events where session_id = 'broken' and syscall = 'policy-reload'")
        #expect(!rejected.isEmpty && rejected.allSatisfy { $0 == ["deny"] })
    }

    @Test func aReloadNeverReadsAFileTheSessionDoesNotProtect() throws {
        let h = try Harness()
        _ = try h.policy(Self.allowing)
        let run = try Self.startLoopingAgent(h, session: "include")
        #expect(waitUntil { Self.lines(run).contains("ok") }, "\(run.stderr)")
        // A file the agent could write, newly included: refused, the old policy stays.
        try h.write("extra.yaml", Self.denying(h).replacingOccurrences(of: "audit: {reads: all}\n", with: ""))
        try Self.replacePolicy(h, with: "include: [\"\(h.path("extra.yaml"))\"]\n" + Self.allowing)
        #expect(waitUntil { run.stderr.contains("was not part of the policy when the session started") }, "\(run.stderr)")
        #expect(!Self.lines(run).contains("denied"))
        try Self.stop(h, run)
    }
}

/// SIGHUP from a process reloads the policy, but a terminal's hangup still ends the session.
@Suite("Hangup still ends the agent")
struct PolicyReloadHangupTests {
    @Test func closingTheTerminalEndsTheAgent() throws {
        let h = try Harness()
        let policy = try h.policy(PolicyReloadTests.allowing)
        let marker = "\(Int.random(in: 100_000_000...999_999_999))"
        // An interactive shell on a pty runs the session as a job; the terminal then goes away.
        try h.write("hangup.py", """
            import os, pty, select, signal, sys, time
            supervisor, policy, db, marker = sys.argv[1:5]
            # As a terminal starts a shell: no signal ignored or blocked (the test runner's are).
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
                signal.signal(s, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            pid, fd = pty.fork()
            if pid == 0:
                os.closerange(3, 1024)
                os.execvp("bash", ["bash", "--norc", "--noprofile", "-i"])
            def agents():
                found = []
                for p in os.listdir("/proc"):
                    try:
                        if p.isdigit() and open(f"/proc/{p}/cmdline", "rb").read() == b"sleep\\0" + marker.encode() + b"\\0":
                            found.append(p)
                    except OSError:
                        pass
                return found
            os.write(fd, f"{supervisor} --policy {policy} --db {db} -- sleep {marker}\\n".encode())
            deadline = time.time() + 30
            while not agents() and time.time() < deadline:
                if select.select([fd], [], [], 0.05)[0]:
                    try:
                        os.read(fd, 4096)
                    except OSError:
                        break
            print("started" if agents() else "never started", flush=True)
            os.close(fd)
            deadline = time.time() + 30
            while agents() and time.time() < deadline:
                time.sleep(0.05)
            print("ended" if not agents() else "still running", flush=True)
            for agent in agents():
                os.kill(int(agent), signal.SIGKILL)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            os.waitpid(pid, 0)
            """)
        let result = h.run(["python3", h.path("hangup.py"), Harness.supervisor, policy, h.db, marker], timeout: 90)
        #expect(result.stdout == "started\nended\n", "\(result.stdout)\(result.stderr)")
    }
}
