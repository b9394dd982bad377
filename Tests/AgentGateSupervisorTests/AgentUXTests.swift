import AgentGatePolicy
import Foundation
import Glibc
import Testing

@testable import AgentGateSupervisor

/// What an agent sees and what the audit keeps when a program or a socket isn't there, and
/// when an exec is denied.
@Suite("Agent-facing results: missing programs and sockets, explained denials")
struct AgentUXTests {
    static let allowAll = "default: allow\nrules: []\n"
    static let noRM = """
        version: 2
        default: allow
        rules:
          - id: no-rm
            match: {action: exec, target_glob: "rm"}
            decision: deny
            reason: deleting files is reviewed by hand
        """

    private func execTargets(_ h: Harness) -> [String] {
        h.query("select target || ' ' || decision from events where action = 'exec' order by id").map { $0.first ?? "" }
    }

    // MARK: 1. Nonexistent exec targets

    @Test("a PATH search records only the exec that ran; a missing command is 127 both ways")
    func pathSearchRecordsOnlyTheExecThatRan() throws {
        let h = try Harness()
        let policy = try h.policy(Self.allowAll)
        let path = "PATH=/nonexistent1:/nonexistent2/sub:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/bin"
        // The shell's own lookup, execvp's (env), and Python's os.execvp: each tries the PATH
        // entries in turn until one exists.
        let commands: [(String, [String])] = [
            ("sh", ["sh", "-c", "\(path) rm -f x"]),
            ("env", ["sh", "-c", "\(path) env rm -f x"]),
            ("python", ["sh", "-c", "\(path) exec python3 -c 'import os; os.execvp(\"rm\", [\"rm\", \"-f\", \"x\"])'"]),
        ]
        for (name, command) in commands {
            let bare = h.bare(command)
            try? FileManager.default.removeItem(atPath: h.db)
            let supervised = h.supervised(command, policy: policy, extra: ["-q"])
            #expect(bare.status == 0 && supervised.status == bare.status, "\(name): \(bare) \(supervised)")
            #expect(supervised.stderr == bare.stderr, "\(name): \(supervised.stderr)")
            let targets = execTargets(h)
            #expect(targets.filter { $0.hasSuffix("/rm allow") } == ["/usr/bin/rm allow"], "\(name): \(targets)")
            #expect(!targets.contains { $0.contains("nonexistent") || $0.contains("/sbin/") || $0.contains("/local/") },
                    "\(name): \(targets)")
            #expect(h.query("select count(*) from events where errno is not null and action = 'exec'").first?.first == "0", "\(name)")
        }
        // The first exec is sh's own, then rm: nothing else.
        try? FileManager.default.removeItem(atPath: h.db)
        _ = h.supervised(commands[0].1, policy: policy, extra: ["-q"])
        #expect(execTargets(h).count == 2, "\(execTargets(h))")

        // A command that isn't anywhere: "not found", 127, the same text; nothing recorded for it.
        for command in [["sh", "-c", "nosuchcmd-agentgate; echo status $?"], ["bash", "-c", "nosuchcmd-agentgate; echo status $?"],
                        ["sh", "-c", "/nonexistent/dir/prog; echo status $?"], ["sh", "-c", "\(h.path("missing-dir"))/x/y; echo status $?"]] {
            let bare = h.bare(command)
            try? FileManager.default.removeItem(atPath: h.db)
            let supervised = h.supervised(command, policy: policy, extra: ["-q"])
            #expect(bare.stdout == "status 127\n" && supervised.stdout == bare.stdout, "\(command): \(bare) \(supervised)")
            #expect(supervised.stderr == bare.stderr, "\(supervised.stderr) vs \(bare.stderr)")
            #expect(execTargets(h).count == 1, "\(command): \(execTargets(h))")
        }
        // ENOTDIR (a file where a directory is expected) is the kernel's answer too.
        try h.write("plain", "x\n")
        let notDirectory = ["sh", "-c", "\(h.path("plain"))/prog; echo status $?"]
        let bare = h.bare(notDirectory)
        try? FileManager.default.removeItem(atPath: h.db)
        let supervised = h.supervised(notDirectory, policy: policy, extra: ["-q"])
        #expect(supervised.stdout == bare.stdout && supervised.stderr == bare.stderr, "\(bare) \(supervised)")
        #expect(execTargets(h).count == 1, "\(execTargets(h))")
    }

    @Test("a denied program that exists is still denied and recorded once; a missing one is ENOENT, unrecorded")
    func deniedProgramsStillDenied() throws {
        let h = try Harness()
        let policy = try h.policy(Self.noRM + "\nexplain_denials: false\n")
        // (Without /bin: a shell that meets EACCES goes on to the next entry, and /bin/rm is a
        // second, real, denied exec of the same program where /bin is a link to /usr/bin.)
        let command = ["sh", "-c", "PATH=/nonexistent1:/nonexistent2:/usr/bin rm -f x; echo status $?"]
        let supervised = h.supervised(command, policy: policy, extra: ["-q"])
        #expect(supervised.stdout == "status 126\n", "\(supervised)")
        #expect(execTargets(h) == ["/usr/bin/dash allow", "/usr/bin/rm deny"] || execTargets(h) == ["/bin/dash allow", "/usr/bin/rm deny"],
                "\(execTargets(h))")
        // Not there: what the kernel says, whatever the policy would have said.
        try? FileManager.default.removeItem(atPath: h.db)
        let missing = ["sh", "-c", "/nonexistent/bin/rm -f x; echo status $?"]
        let bare = h.bare(missing)
        let denied = h.supervised(missing, policy: policy, extra: ["-q"])
        #expect(denied.stdout == "status 127\n" && denied.stdout == bare.stdout && denied.stderr == bare.stderr, "\(bare) \(denied)")
        #expect(h.query("select count(*) from events where decision = 'deny'").first?.first == "0")
    }

    // MARK: 2. Explained denials

    @Test("a denied exec inside bash -c is explained on the agent's stderr, before bash's own message")
    func deniedExecIsExplained() throws {
        let h = try Harness()
        let policy = try h.policy(Self.noRM)
        let command = ["bash", "-c", "source /dev/null && eval 'rm -f x'"]
        #expect(h.bare(command).status == 0)
        let denied = h.supervised(command, policy: policy, extra: ["-q"])
        #expect(denied.status == 126, "\(denied)")
        let lines = denied.stderr.split(separator: "\n").map(String.init)
        #expect(lines.first == "agentgate: denied exec of /usr/bin/rm by rule no-rm: deleting files is reviewed by hand", "\(denied.stderr)")
        #expect(lines.count == 2 && lines[1].contains("Permission denied"), "\(denied.stderr)")
        #expect(h.query("select count(*) from events where action = 'exec' and decision = 'deny' and target = '/usr/bin/rm'").first?.first == "1")

        // To a file opened for appending: the line, then bash's message, in the file.
        let logged = h.supervised(["bash", "-c", "exec 2>>\(h.path("err.log")); rm -f x; echo status $?"], policy: policy, extra: ["-q"])
        #expect(logged.stdout == "status 126\n" && logged.stderr.isEmpty, "\(logged)")
        let log = h.read("err.log") ?? ""
        #expect(log.hasPrefix("agentgate: denied exec of /usr/bin/rm by rule no-rm: deleting files is reviewed by hand\n")
                && log.contains("Permission denied"), "\(log)")

        // fd 2 closed, or open only for reading: nothing is written anywhere.
        try h.write("readonly", "unchanged\n")
        let closed = h.supervised(["bash", "-c", "exec 2>&-; rm -f x; echo status $?"], policy: policy, extra: ["-q"])
        #expect(closed.stdout == "status 126\n" && closed.stderr.isEmpty, "\(closed)")
        let readOnly = h.supervised(["bash", "-c", "exec 2<\(h.path("readonly")); rm -f x; echo status $?"], policy: policy, extra: ["-q"])
        #expect(readOnly.stdout == "status 126\n" && readOnly.stderr.isEmpty && h.read("readonly") == "unchanged\n", "\(readOnly)")

        // Turned off: bash's message alone, as the kernel leaves it.
        try h.write("quiet.yaml", Self.noRM + "\nexplain_denials: false\n")
        let quiet = h.path("quiet.yaml")
        let unexplained = h.supervised(command, policy: quiet, extra: ["-q"])
        #expect(unexplained.status == 126 && !unexplained.stderr.contains("agentgate"), "\(unexplained.stderr)")
        #expect(unexplained.stderr.split(separator: "\n").count == 1, "\(unexplained.stderr)")
        // Audit mode blocks nothing, so there is nothing to explain.
        try h.write("audit.yaml", Self.noRM + "\nmode: audit\n")
        let audit = h.path("audit.yaml")
        let audited = h.supervised(command, policy: audit, extra: ["-q"])
        #expect(audited.status == 0 && audited.stderr.isEmpty, "\(audited)")
        // The session's own command: agentgate-supervise names the rule itself, once.
        let own = h.supervised(["rm", "-f", "x"], policy: policy, extra: ["-q"])
        #expect(own.stderr == "agentgate-supervise: cannot execute /usr/bin/rm: permission denied "
                + "(denied by the policy: rule no-rm: deleting files is reviewed by hand)\n", "\(own.stderr)")
    }

    @Test("the explanation is one line, redacted and escaped, at most 512 bytes")
    func explanationLine() throws {
        let policy = try Policy.parse(yaml: """
            default: deny
            rules:
              - id: gh
                match: {action: exec, target_glob: "/opt/**"}
                decision: deny
                reason: "not with ghp_abcdefghijklmnopqrstuvwxyz0123456789 in it"
              - id: bare
                match: {action: exec, target_glob: "/srv/**"}
                decision: deny
            """, source: "p.yaml", variables: PolicyVariables(workingDirectory: "/w", home: "/h"))
        func entry(_ target: String) -> DecisionRecorder.Entry {
            let verdict = policy.evaluate(.exec, target: target)
            return DecisionRecorder.Entry(syscall: "execve", action: .exec, target: target, verdict: verdict, errno: EACCES)
        }
        let token = DenialExplanation.line(entry("/opt/tool"), policy: policy)
        #expect(token.hasPrefix("agentgate: denied exec of /opt/tool by rule gh: not with ") && !token.contains("abcdefghijklmnop"),
                "\(token)")
        #expect(DenialExplanation.line(entry("/srv/x"), policy: policy) == "agentgate: denied exec of /srv/x by rule bare\n")
        #expect(DenialExplanation.line(entry("/usr/bin/x"), policy: policy)
                == "agentgate: denied exec of /usr/bin/x: no rule matched, fell through to default\n")
        let escaped = DenialExplanation.line(entry("/srv/a\nb\u{1b}[2J"), policy: policy)
        #expect(escaped == "agentgate: denied exec of /srv/a\\u{a}b\\u{1b}[2J by rule bare\n", "\(escaped)")
        let long = DenialExplanation.line(entry("/srv/" + String(repeating: "é", count: 2000) + "/name"), policy: policy)
        #expect(long.utf8.count <= DenialExplanation.maxLineBytes && long.hasSuffix("/name by rule bare\n")
                && long.hasPrefix("agentgate: denied exec of …"), "\(long)")
        #expect(long.split(separator: "\n").count == 1)
    }

    @Test("an agent whose stderr is a full pipe nobody reads doesn't hold up the supervisor")
    func fullStderrPipe() throws {
        let h = try Harness()
        try h.write("data", "data\n")
        let program = try h.compile("fullpipe", """
            #include <errno.h>
            #include <fcntl.h>
            #include <pthread.h>
            #include <stdio.h>
            #include <stdlib.h>
            #include <string.h>
            #include <time.h>
            #include <unistd.h>
            static const char *target;
            static int denials;
            static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
            static void *execs(void *unused) {
                for (;;) {
                    char *argv[] = {(char *)target, "-f", "x", NULL};
                    execv(target, argv);
                    if (errno == EACCES) __atomic_add_fetch(&denials, 1, __ATOMIC_SEQ_CST);
                }
                return NULL;
            }
            static void *writer(void *unused) { for (;;) write(2, "w", 1); return NULL; } /* blocks: the pipe is full */
            int main(int argc, char **argv) {
                target = argv[1];
                int p[2];
                if (pipe(p) != 0) return 2;
                fcntl(p[1], F_SETFL, O_NONBLOCK);
                char block[4096];
                memset(block, 'x', sizeof block);
                while (write(p[1], block, sizeof block) > 0) {}
                while (write(p[1], block, 1) > 0) {}
                fcntl(p[1], F_SETFL, 0);
                dup2(p[1], 2);
                pthread_t t;
                for (int i = 0; i < 4; i++) pthread_create(&t, NULL, execs, NULL);
                pthread_create(&t, NULL, writer, NULL);
                /* Other calls are answered meanwhile. */
                double start = now();
                for (int i = 0; i < 200; i++) {
                    int fd = open(argv[2], O_RDONLY);
                    if (fd < 0) return 3;
                    close(fd);
                }
                double opens = now() - start;
                while (__atomic_load_n(&denials, __ATOMIC_SEQ_CST) < 8 && now() - start < 30) usleep(10000);
                printf("denials=%d opens=%.3f\\n", __atomic_load_n(&denials, __ATOMIC_SEQ_CST), opens);
                fflush(stdout);
                FILE *marker = fopen(argv[3], "w");
                fprintf(marker, "%d\\n", getpid());
                fclose(marker);
                for (;;) pause();
            }
            """)
        let policy = try h.policy(Self.noRM)
        let running = try h.start(h.supervisedArgv([program, "/usr/bin/rm", h.path("data"), h.path("marker")], policy: policy, extra: ["-q"]))
        var agent: pid_t = 0
        waitUntil(timeout: 40) {
            if let text = h.read("marker"), let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) { agent = pid }
            return agent > 0
        }
        #expect(agent > 0, "the agent never got past its denied execs")
        // Killed while its threads' execs wait on fd 2: the session ends.
        let killedAt = Date()
        if agent > 0 { kill(agent, SIGKILL) }
        let result = running.wait(timeout: 30)
        #expect(Date().timeIntervalSince(killedAt) < 10, "the session took \(Date().timeIntervalSince(killedAt)) s to end")
        #expect(result.status == 128 + SIGKILL, "\(result)")
        let fields = Dictionary(uniqueKeysWithValues: result.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { field -> (String, Double)? in
            let parts = field.split(separator: "=")
            guard parts.count == 2, let value = Double(parts[1]) else { return nil }
            return (String(parts[0]), value)
        })
        #expect((fields["denials"] ?? 0) >= 8, "\(result.stdout)")
        // Each stuck explanation gives up after half a second on a worker; were one to hold a
        // receiver, 200 opens racing four threads of denied execs would take minutes.
        #expect((fields["opens"] ?? 99) < 5, "\(result.stdout)")
        #expect(Int(h.query("select count(*) from events where action = 'exec' and decision = 'deny'").first?.first ?? "0") ?? 0 >= 8)
    }

    // MARK: 3. Missing unix socket paths

    @Test("a missing unix socket path fails as the kernel fails it, under the built-in policy, with no decision")
    func missingUnixSocketPaths() throws {
        let h = try Harness()
        try h.mkdir("home")
        // A socket file with no listener: ECONNREFUSED.
        let stale = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in h.path("stale.sock").utf8.enumerated() { raw[i] = byte }
        }
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(stale, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        close(stale)
        try h.write("plain", "x\n")
        let script = """
            import socket, sys
            for path in sys.argv[1:]:
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    s = socket.socket(socket.AF_UNIX, kind)
                    try:
                        s.connect(path); print(path, kind, "connected")
                    except OSError as e:
                        print(path, kind, "connect", e.errno, e.strerror)
                d = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                try:
                    d.sendto(b"x", path); print(path, "sent")
                except OSError as e:
                    print(path, "sendto", e.errno, e.strerror)
            """
        let missing = ["/var/run/nscd/socket", "/run/agentgate-missing-\(getpid())/x.sock", "/nonexistent/socket",
                       "missing.sock", "nodir/missing.sock", h.path("plain") + "/sock"]
        let command = ["python3", "-c", script] + missing + [h.path("stale.sock")]
        let environment = Harness.environment(adding: ["HOME": h.path("home")])
            .filter { $0.key != "AGENTGATE_POLICY" && $0.key != "XDG_CONFIG_HOME" }
        let bare = h.run(command, environment: environment)
        #expect(bare.status == 0 && bare.stdout.contains("/var/run/nscd/socket 1 connect 2 ") || access("/var/run/nscd/socket", F_OK) == 0,
                "\(bare)")
        #expect(bare.stdout.contains("stale.sock 1 connect \(ECONNREFUSED) "), "\(bare)")
        #expect(bare.stdout.contains("plain/sock 1 connect \(ENOTDIR) "), "\(bare)")
        let supervised = h.run([Harness.supervisor, "-q", "--db", h.db, "--"] + command, environment: environment)
        #expect(supervised.status == bare.status && supervised.stdout == bare.stdout, "bare:\n\(bare.stdout)\nsupervised:\n\(supervised.stdout)\n\(supervised.stderr)")
        #expect(h.query("select policy_path from sessions").first?.first.map { $0.contains("builtin") || $0.contains("built-in") } != false,
                "\(h.query("select policy_path from sessions"))")
        // No decision about the paths that aren't there: nothing denied, nothing recorded for them.
        #expect(h.query("select count(*) from events where decision = 'deny'").first?.first == "0",
                "\(h.query("select action, target, reason from events where decision = 'deny'"))")
        let egress = h.query("select target from events where action = 'net_egress'").map { $0.first ?? "" }
        #expect(egress.allSatisfy { $0.hasSuffix("stale.sock") } && !egress.isEmpty, "\(egress)")
    }
}
