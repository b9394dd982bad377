import Foundation
import Glibc
import Testing

/// Agents that attack the session's hook socket (HookChannel): a channel that never takes its
/// answer must not keep the supervisor past the agent, and a request is recorded only as made
/// by the session process that made the channel, as it was when the channel came.
@Suite(.serialized) struct HookChannelAttackTests {
    static let request = #"{"session": sys.argv[2], "agent": "claude-code", "call": {"tool": "Write", "actions": [{"kind": "fs_write", "targets": [target]}]}}"#

    /// The agent: python3, one attack per mode.
    static let agent = """
        import os, select, socket, json, sys, time
        hook = socket.socket(fileno=int(os.environ['AGENTGATE_HOOK_FD']))
        mode = sys.argv[1]
        # A huge target for "park" (echoed in the answer; too long for an argument). 400 kB:
        # 1 MB sometimes took over the 2 s a request has to arrive, five times in a row, on a
        # loaded machine.
        target = sys.argv[3] + ("A" * 400000 if mode == "park" else "")
        req = json.dumps(\(request)).encode() + b"\\n"
        if mode == "park":
            # A huge target (echoed in the answer), never read; then our end of the channel is
            # parked in the supervisor's own queue, so it outlives every agent process.
            for attempt in range(10):
                a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
                socket.send_fds(hook, [b"agentgate-hook/1"], [b.fileno()])
                b.close()
                try:
                    a.sendall(req)
                    break
                except (BrokenPipeError, ConnectionResetError):
                    # A request has 2 s to arrive; on a loaded machine 1 MB can take longer,
                    # and the supervisor drops the channel unrecorded: a new one, again.
                    a.close()
            # Until the answer is there (decided and recorded), unread; a fixed sleep was too
            # short on a loaded machine.
            select.select([a], [], [], 30)
            socket.send_fds(hook, [b"x"], [a.fileno()])
            a.close()
            # And a channel whose request never ends, parked the same way.
            c, d = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            socket.send_fds(hook, [b"agentgate-hook/1"], [d.fileno()])
            d.close()
            c.sendall(b'{"session"')
            socket.send_fds(hook, [b"x"], [c.fileno()])
            c.close()
            print("agent: exiting", flush=True)
        elif mode == "exec":
            # The channel's maker hands the asking to a child, then becomes another program.
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            if os.fork() == 0:
                time.sleep(1.2)  # after the exec below, within the 2 s a request has
                a.sendall(req)
                print("exec-answer", a.recv(65536).decode().strip(), flush=True)
                os._exit(0)
            socket.send_fds(hook, [b"agentgate-hook/1"], [b.fileno()])
            b.close(); a.close()
            time.sleep(0.5)  # for the supervisor to take the channel
            os.execv("/usr/bin/sleep", ["sleep", "2"])
        elif mode == "listener":
            # Not a socketpair: a socket connected to a listener (SO_PEERCRED names the listener).
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind("listener.sock"); server.listen(1)
            if os.fork() == 0:
                c, _ = server.accept()
                try:
                    c.sendall(req)
                except OSError:
                    pass  # refused before the request was read: the answer is there all the same
                print("listener-answer", c.recv(65536).decode().strip(), flush=True)
                os._exit(0)
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.connect("listener.sock")
            socket.send_fds(hook, [b"agentgate-hook/1"], [client.fileno()])
            client.close()
            os.wait()
        elif mode == "honest":
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            socket.send_fds(hook, [b"agentgate-hook/1"], [b.fileno()])
            b.close()
            a.sendall(req)
            print("honest-answer", a.recv(65536).decode().strip(), flush=True)
        """

    static var python: String? {
        for path in ["/usr/bin/python3", "/usr/local/bin/python3"] where access(path, X_OK) == 0 { return path }
        return nil
    }

    @Test func aChannelThatNeverTakesItsAnswerDoesNotOutliveTheAgent() throws {
        guard let python = Self.python else {
            print("skipped: no python3 at /usr/bin or /usr/local/bin for the attacking agent")
            return
        }
        let h = try Harness()
        let policy = try h.policy(HookCommandTests.policyYAML)
        try h.write("agent.py", Self.agent)
        let started = Date()
        let run = h.supervised([python, h.path("agent.py"), "park", "hooked", "/tmp/"],
                               policy: policy, extra: ["--session", "hooked"], timeout: 40)
        let elapsed = Date().timeIntervalSince(started)
        #expect(run.status == 0 && run.stdout.contains("agent: exiting"), "status \(run.status): \(run.stderr.suffix(2000))")
        #expect(elapsed < 20, "the supervisor took \(elapsed) s to end after its agent")
        // The session ended properly: its exit status is recorded.
        #expect(h.query("SELECT exit_status FROM sessions WHERE id = 'hooked'") == [["0"]], "\(run.stderr.suffix(2000))")
        // The huge target was decided and recorded, shortened in the answer only.
        let recorded = h.query("SELECT length(target) FROM events WHERE source = 'hook'")
        #expect(recorded == [["400005"]], "\(recorded)")
    }

    @Test func aRequestIsRecordedOnlyAsMadeByTheSessionProcessThatMadeTheChannel() throws {
        guard let python = Self.python else {
            print("skipped: no python3 at /usr/bin or /usr/local/bin for the attacking agent")
            return
        }
        let h = try Harness()
        // Egress allowed: the listener attack connects to a unix socket of its own.
        let policy = try h.policy(HookCommandTests.policyYAML.replacingOccurrences(of: "net_egress: deny", with: "net_egress: allow"))
        try h.write("agent.py", Self.agent)
        let exec = h.supervised([python, h.path("agent.py"), "exec", "s1", h.path("exec.txt")], policy: policy,
                                extra: ["--session", "s1"], timeout: 40)
        #expect(exec.stdout.contains("exec-answer") && exec.stdout.contains(#""ok":false"#), "\(exec.stdout) \(exec.stderr.suffix(1500))")
        #expect(h.query("SELECT count(*) FROM events WHERE source = 'hook' AND executable = '/usr/bin/sleep'") == [["0"]],
                "\(h.query("SELECT pid, executable, target FROM events WHERE source = 'hook'"))")
        let listener = h.supervised([python, h.path("agent.py"), "listener", "s2", h.path("listener.txt")], policy: policy,
                                    extra: ["--session", "s2"], timeout: 40)
        #expect(listener.stdout.contains("listener-answer") && listener.stdout.contains(#""ok":false"#),
                "\(listener.stdout) \(listener.stderr.suffix(1500))")
        #expect(h.query("SELECT count(*) FROM events WHERE source = 'hook' AND session_id = 's2'") == [["0"]])
        // A hook that asks on its own channel is still answered and recorded as itself.
        let honest = h.supervised([python, h.path("agent.py"), "honest", "s3", h.path("honest.txt")], policy: policy,
                                  extra: ["--session", "s3"], timeout: 40)
        #expect(honest.stdout.contains(#""ok":true"#), "\(honest.stdout) \(honest.stderr.suffix(1500))")
        let rows = h.query("SELECT executable, target FROM events WHERE source = 'hook' AND session_id = 's3'")
        #expect(rows.count == 1 && rows.first?[0].contains("python") == true && rows.first?[1] == h.path("honest.txt"), "\(rows)")
    }
}
