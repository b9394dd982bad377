import Foundation
import Glibc
import Testing

/// The escape helper and the programs the escape tests run, built once per test process.
struct EscapeBinaries: Sendable {
    let escape: String
    /// A dynamic program that prints FORBIDDEN-PROGRAM-RAN.
    let forbidden: String
    /// A static, libc-free program that prints FORBIDDEN-PROGRAM-RAN on stdout.
    let forbiddenStatic: String
    /// A dynamic program whose PT_INTERP names `forbiddenStatic`: running it runs that.
    let interpreterHost: String
    let directory: String

    private static let built: Result<EscapeBinaries, HarnessError> = {
        do {
            let h = try Harness("EscapeBinaries")
            let forbiddenStatic = try h.compile("forbidden-static", #"""
                static long sys3(long n, long a, long b, long c) {
                    long r;
                    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
                    return r;
                }
                void _start(void) {
                    static const char msg[] = "FORBIDDEN-PROGRAM-RAN\n";
                    sys3(1, 1, (long)msg, sizeof msg - 1);
                    sys3(231, 0, 0, 0);
                    for (;;) {}
                }
                """#, flags: ["-O2", "-static", "-nostdlib", "-fno-stack-protector"])
            return .success(EscapeBinaries(
                escape: try h.compile("escape", EscapeSources.helper),
                forbidden: try h.compile("forbidden", AdversarialSources.forbidden),
                forbiddenStatic: forbiddenStatic,
                interpreterHost: try h.compile("interp-host", "#include <stdio.h>\nint main(void) { puts(\"host main ran\"); return 0; }\n",
                                               flags: ["-Wl,--dynamic-linker=" + forbiddenStatic]),
                directory: h.dir))
        } catch let error as HarnessError {
            return .failure(error)
        } catch {
            return .failure(HarnessError(message: "\(error)"))
        }
    }()

    static func get() throws -> EscapeBinaries { try built.get() }
}

/// Running the supervisor as an ordinary user from a root test (CI is root): setpriv drops to
/// nobody, and the session's database lives in a directory nobody may write.
enum Unprivileged {
    static let uid: UInt32 = 65534
    /// A uid no account has, so no process but the test's: for a count of the user's processes
    /// (RLIMIT_NPROC), which `make test`'s pass as nobody, run alongside, would change.
    static let isolatedUID: UInt32 = 65533
    static var available: Bool { getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") }

    static func argv(_ command: [String], uid: UInt32 = uid) -> [String] {
        ["/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(uid)", "--clear-groups"]
            + command.map { $0 == Harness.supervisor ? reachableSupervisor : $0 }
    }

    /// The supervisor where user nobody can run it: the build tree may lie under a directory
    /// only root can enter (/root), so it is copied out once, with `agentgate` beside it.
    static let reachableSupervisor: String = {
        let directory = "/tmp/agentgate-test-binaries-\(getpid())"
        let copy = directory + "/agentgate-supervise"
        guard (try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)) != nil else {
            return Harness.supervisor
        }
        chmod(directory, 0o755)
        let agentgate = URL(fileURLWithPath: Harness.supervisor).deletingLastPathComponent().appendingPathComponent("agentgate").path
        for (source, target) in [(Harness.supervisor, copy), (agentgate, directory + "/agentgate")] {
            try? FileManager.default.removeItem(atPath: target)
            if (try? FileManager.default.copyItem(atPath: source, toPath: target)) == nil { return Harness.supervisor }
            chmod(target, 0o755)
        }
        return copy
    }()

    /// A directory nobody can write in, inside the harness directory.
    static func directory(_ h: Harness) throws -> String {
        try h.mkdir("nobody")
        chmod(h.path("nobody"), 0o777)
        return h.path("nobody")
    }
}

extension Harness {
    /// The escape helper, copied where the test's policy lets it run.
    func escape() throws -> String { try copy(EscapeBinaries.get().escape, to: "escape") }

    /// Runs `command` under the supervisor as user nobody.
    func supervisedUnprivileged(_ command: [String], policy: String, extra: [String] = [], timeout: Double = 60,
                                uid: UInt32 = Unprivileged.uid) throws -> Result {
        let db = try Unprivileged.directory(self) + "/audit.db"
        return run(Unprivileged.argv([Self.supervisor, "-q", "--policy", policy, "--db", db] + extra + ["--"] + command, uid: uid),
                   timeout: timeout)
    }
}

/// A policy that allows everything but the secret file, and exec of the test's forbidden programs.
private func permissivePolicy(_ h: Harness, secret: String) throws -> String {
    try h.policy("""
        default: allow
        rules:
          - match: {target_glob: "\(secret)"}
            decision: deny
          - match: {action: exec, target_glob: "*forbidden*"}
            decision: deny
        """)
}

private let isRoot = getuid() == 0

extension AdversarialTests {
    @Suite("Escapes: the supervisor, processes outside the session, kernel interfaces") struct Escapes {
        // MARK: - The supervisor must be unreachable from inside

        @Test("SO_PEERPIDFD on a connection the supervisor made names the agent, never the supervisor")
        func peerPidfdOfSupervisedConnect() throws {
            let h = try Harness()
            let secret = Adversarial.secretMarker()
            try h.write("secret.txt", secret)
            let escape = try h.escape()
            let bare = h.bare([escape, "peer-steal", h.path("s.sock"), h.path("secret.txt")])
            #expect(bare.stdout.contains("ATTACK-SUCCEEDED") && bare.stdout.contains(secret),
                    "bare: SO_PEERPIDFD + pidfd_getfd must copy the peer's fds, or this test can't fail\n\(bare)")
            let policy = try permissivePolicy(h, secret: h.path("secret.txt"))
            let r = h.supervised([escape, "peer-steal", h.path("s.sock"), h.path("secret.txt")], policy: policy)
            #expect(!r.text.contains("ATTACK-SUCCEEDED") && !r.text.contains(secret), "\(r)")
            #expect(r.stdout.contains("PEERCRED-OK"), "SO_PEERCRED must name the connecting agent process\n\(r)")
            // "peer pidfd names pid P (my pid A, parent S)": the server's parent is the supervisor.
            let line = r.stdout.split(separator: "\n").first { $0.hasPrefix("peer pidfd names pid") } ?? ""
            let numbers = line.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
            #expect(numbers.count == 3 && numbers[0] != numbers[2], "the peer pidfd named the supervisor: \(line)")
            Adversarial.expectAuditIntact(h, "after the peer-pidfd attempt")
        }

        @Test("SO_PEERPIDFD on a connection to a server outside the session is refused; its fds can't be copied")
        func peerPidfdOfOutsideServer() throws {
            let h = try Harness()
            let secret = Adversarial.secretMarker()
            try h.write("secret.txt", secret)
            let escape = try h.escape()
            func startServer() throws -> RunningProcess {
                let server = try h.start([escape, "hold-serve", h.path("out.sock"), h.path("secret.txt")])
                try waitUntil("the outside server listens") { FileManager.default.fileExists(atPath: h.path("out.sock")) }
                return server
            }
            var server = try startServer()
            let bare = h.bare([escape, "peer-steal-client", h.path("out.sock"), h.path("secret.txt")])
            #expect(bare.stdout.contains("ATTACK-SUCCEEDED") && bare.stdout.contains(secret), "bare must steal the server's fd\n\(bare)")
            _ = server.wait(timeout: 5) // the bare attack SIGKILLed it through the pidfd
            try? FileManager.default.removeItem(atPath: h.path("out.sock"))
            server = try startServer()
            defer { kill(server.pid, SIGKILL); _ = server.wait(timeout: 5) }
            let policy = try permissivePolicy(h, secret: h.path("secret.txt"))
            let r = h.supervised([escape, "peer-steal-client", h.path("out.sock"), h.path("secret.txt")], policy: policy)
            #expect(r.stdout.contains("op=SO_PEERPIDFD rc=-1 errno=1"), "\(r)")
            #expect(!r.text.contains(secret), "\(r)")
            #expect(kill(server.pid, 0) == 0, "the outside server must survive")
            #expect(Adversarial.deniedEvents(h, syscall: "getsockopt") == 1)
        }

        /// A source route sends a packet first to an address of the agent's choosing, whatever
        /// destination was decided (found by review: an SRv6 header on a UDP socket "to ::1"
        /// delivered the payload to a denied host). Setting one is refused, in a socket option
        /// or a message's control data; clearing one, and plain sends, work as bare.
        @Test("source routes (IP_OPTIONS, IPV6_RTHDR, IP_RETOPTS) are refused; plain sends are not")
        func sourceRoutes() throws {
            let h = try Harness()
            try h.write("route.py", """
                import socket, struct, errno
                def attempt(name, f):
                    try:
                        f(); print(name, "ok")
                    except OSError as e:
                        print(name, errno.errorcode[e.errno])
                srh = bytes([0, 4, 4, 1, 1, 0, 0, 0]) + socket.inet_pton(socket.AF_INET6, "::1") + socket.inet_pton(socket.AF_INET6, "2001:db8::66")
                six = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
                attempt("rthdr", lambda: six.setsockopt(socket.IPPROTO_IPV6, 57, srh))
                lsrr = bytes([1, 0x83, 7, 4, 127, 0, 0, 1])
                four = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                attempt("ip-options", lambda: four.setsockopt(socket.IPPROTO_IP, 4, lsrr))
                attempt("ip-options-cleared", lambda: four.setsockopt(socket.IPPROTO_IP, 4, b""))
                sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); sink.bind(("127.0.0.1", 0))
                send = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                attempt("retopts", lambda: send.sendmsg([b"x"], [(socket.IPPROTO_IP, 7, lsrr)], 0, sink.getsockname()))
                attempt("plain", lambda: send.sendto(b"y", sink.getsockname()))
                """)
            let command = ["/usr/bin/python3", h.path("route.py")]
            let bare = h.bare(command)
            // IPv4 source routes take CAP_NET_RAW (the supervisor's sends must not lend it); an
            // IPv6 routing header takes nothing.
            let v4 = isRoot ? "ok" : "EPERM"
            #expect(bare.stdout == "rthdr ok\nip-options \(v4)\nip-options-cleared ok\nretopts \(v4)\nplain ok\n", "bare: each source route must be accepted\n\(bare)")
            let r = h.supervised(command, policy: try permissivePolicy(h, secret: "/nonexistent"))
            #expect(r.stdout == "rthdr EPERM\nip-options EPERM\nip-options-cleared ok\nretopts EPERM\nplain ok\n", "\(r)")
            #expect(Adversarial.deniedEvents(h, syscall: "setsockopt") == 2)
        }

        /// PTRACE_TRACEME is decided on the caller's parent as it is at the call: a process whose
        /// parent exited after its first trapped call has been reparented to the supervisor (a
        /// subreaper), which must not become its tracer (found by review: the parent first seen
        /// was used, and the supervisor became the tracer).
        @Test("PTRACE_TRACEME after the parent exited never makes the supervisor the tracer")
        func traceMeAfterReparenting() throws {
            let h = try Harness()
            let probe = try h.compile("traceme", #"""
                #define _GNU_SOURCE
                #include <errno.h>
                #include <fcntl.h>
                #include <signal.h>
                #include <stdio.h>
                #include <sys/ptrace.h>
                #include <unistd.h>
                int main(void) {
                    setvbuf(stdout, 0, _IONBF, 0);
                    pid_t b = fork();
                    if (b == 0) {
                        pid_t c = fork();
                        if (c == 0) {
                            pid_t parent = getppid();
                            close(open("/dev/null", O_RDONLY)); // a trapped call while B lives
                            kill(parent, SIGKILL);
                            while (getppid() == parent) usleep(1000);
                            long rc = ptrace(PTRACE_TRACEME, 0, 0, 0);
                            printf("TRACEME rc=%ld errno=%d\n", rc, rc ? errno : 0);
                            _exit(0);
                        }
                        pause();
                        _exit(0);
                    }
                    sleep(1);
                    return 0;
                }
                """#)
            let bare = h.bare([probe])
            #expect(bare.stdout.contains("TRACEME rc=0"), "bare: the new parent must become the tracer\n\(bare)")
            let r = h.supervised([probe], policy: try permissivePolicy(h, secret: "/nonexistent"))
            #expect(r.stdout.contains("TRACEME rc=-1 errno=\(EPERM)"), "\(r)")
        }

        @Test("SCM_PIDFD is refused, so no message hands out the sender's pidfd")
        func scmPidfd() throws {
            let h = try Harness()
            let secret = Adversarial.secretMarker()
            try h.write("secret.txt", secret)
            let escape = try h.escape()
            let bare = h.bare([escape, "scm-pidfd", h.path("secret.txt")])
            #expect(bare.stdout.contains("ATTACK-SUCCEEDED"), "bare: SCM_PIDFD must hand out a pidfd\n\(bare)")
            let r = h.supervised([escape, "scm-pidfd", h.path("secret.txt")], policy: try permissivePolicy(h, secret: "/nonexistent"))
            #expect(r.stdout.contains("op=SO_PASSPIDFD rc=-1 errno=\(ENOPROTOOPT)"), "\(r)")
            #expect(!r.stdout.contains("ATTACK-SUCCEEDED") && !r.stdout.contains("SCM_PIDFD names"), "\(r)")
        }

        @Test("SCM_CREDENTIALS: a receiver sees the agent's pid, and a forged one fails as it would bare",
              .enabled(if: isRoot, "naming the agent's pid on the supervisor's sends takes CAP_SYS_ADMIN"))
        func scmCredentials() throws {
            let h = try Harness()
            let escape = try h.escape()
            let bare = h.bare([escape, "scm-credentials"])
            #expect(bare.stdout.contains("CREDS-OK"), "\(bare)")
            let r = h.supervised([escape, "scm-credentials"], policy: try permissivePolicy(h, secret: "/nonexistent"))
            #expect(r.stdout.contains("CREDS-OK"), "\(r)")
            let forgedBare = bare.stdout.split(separator: "\n").first { $0.contains("sendmsg-forged-pid") }
            let forged = r.stdout.split(separator: "\n").first { $0.contains("sendmsg-forged-pid") }
            #expect(forged == forgedBare, "a forged SCM_CREDENTIALS must fare as it does bare")
        }

        @Test("processes outside the session can't be signalled, pidfd'd or read through /proc")
        func outsideProcesses() throws {
            let h = try Harness()
            let escape = try h.escape()
            let policy = try permissivePolicy(h, secret: "/nonexistent")
            let victim = try h.start(["/bin/sleep", "60"])
            defer { kill(victim.pid, SIGKILL); _ = victim.wait(timeout: 5) }
            let pid = String(victim.pid)
            // Bare, each call reaches the victim (signal 0 probes without harm).
            for mode in [["kill", pid, "0"], ["pidfd-open", pid, "0"], ["procdir-signal", pid, "0"]] {
                let bare = h.bare([escape] + mode)
                #expect(bare.status == 0, "bare \(mode[0]) must reach an outside process\n\(bare)")
            }
            // The supervisor is the first process's parent: a /proc/PID directory fd of it (which
            // pidfd_send_signal takes) can't be had either.
            let parent = h.supervised(["sh", "-c", "\(escape) procdir-signal $PPID 0"], policy: policy)
            #expect(parent.stdout.contains("op=open /proc/PID rc=-1 errno=13"), "\(parent)")
            #expect(h.bare([escape, "proc-mem", pid]).stdout.contains("op=open environ rc=3"), "bare: /proc/PID/environ must open")
            for mode in [["kill", pid, "9"], ["pidfd-open", pid, "9"], ["procdir-signal", pid, "9"]] {
                let r = h.supervised([escape] + mode, policy: policy)
                #expect(r.stdout.contains("rc=-1 errno=1"), "\(mode[0])\n\(r)")
            }
            let mem = h.supervised([escape, "proc-mem", pid], policy: policy)
            #expect(mem.stdout.contains("op=open environ rc=-1 errno=13") && mem.stdout.contains("op=open mem rc=-1 errno=13"), "\(mem)")
            #expect(kill(victim.pid, 0) == 0, "the outside process must survive")
            // Within the session, the same calls work.
            let inside = h.supervised(["sh", "-c", "sleep 30 & \(escape) kill $! 9 && \(escape) proc-mem $$ | head -1"], policy: policy)
            #expect(inside.stdout.contains("op=kill rc=0") && inside.stdout.contains("op=open environ rc=3"), "\(inside)")
        }

        @Test("the agent's first process stopping itself leaves the supervisor serving its siblings")
        func stoppedFirstProcess() throws {
            let h = try Harness()
            // The sibling polls (under a deadline) until the first process has stopped itself.
            let stopped = "i=0; until grep -q '^State:.*stopped' /proc/$$/status || [ $i -ge 100 ]; do sleep 0.05; i=$((i+1)); done"
            let script = "(\(stopped); cat /etc/hostname >/dev/null && echo sibling-read; kill -CONT $$) & kill -STOP $$; echo resumed; wait"
            // Launched with an empty signal mask, as from a shell: the test runner leaves SIGCHLD
            // blocked, and sh's `wait` would then never wake.
            let launch = [try AdversarialBinaries.get().helper, "launch"]
            let bare = h.bare(launch + ["/bin/sh", "-c", script], timeout: 10)
            #expect(bare.stdout.contains("sibling-read") && bare.stdout.contains("resumed"), "\(bare)")
            let r = h.run(launch + h.supervisedArgv(["sh", "-c", script], policy: try permissivePolicy(h, secret: "/nonexistent")), timeout: 20)
            #expect(r.status == 0 && r.stdout.contains("sibling-read") && r.stdout.contains("resumed"), "\(r)")
        }

        @Test("a policy.yaml the agent wrote is never loaded without being named, and the user's configuration can't be written")
        func plantedPolicy() throws {
            let h = try Harness()
            try h.mkdir("home/.ssh")
            let key = Adversarial.secretMarker()
            try h.write("home/.ssh/id_rsa", key)
            try h.mkdir("project")
            // What a previous session's agent could have left behind: a policy that allows everything.
            try "default: allow\nrules: []\n".write(toFile: h.path("project/policy.yaml"), atomically: false, encoding: .utf8)
            let environment = Harness.environment(adding: ["HOME": h.path("home")]).filter { $0.key != "AGENTGATE_POLICY" && $0.key != "XDG_CONFIG_HOME" }
            let read = ["sh", "-c", "cd \(h.path("project")) && cat \(h.path("home/.ssh/id_rsa"))"]
            // Named explicitly, it would let the read through: the planted file works.
            let named = h.run(h.supervisedArgv(read, policy: h.path("project/policy.yaml")), environment: environment)
            #expect(named.stdout.contains(key), "the planted policy, named, must allow the read\n\(named)")
            // Found implicitly: not loaded; the built-in policy is in force and says so.
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Harness.supervisor)
            process.arguments = ["--db", h.db, "--"] + read
            process.currentDirectoryURL = URL(fileURLWithPath: h.path("project"))
            process.environment = environment
            let out = Pipe(), err = Pipe()
            process.standardOutput = out
            process.standardError = err
            try process.run()
            process.waitUntilExit()
            let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(!stdout.contains(key), "the implicit ./policy.yaml was loaded: \(stdout)")
            #expect(stderr.contains("policy: the built-in default") && stderr.contains("./policy.yaml is not loaded unless named"), "\(stderr)")
            // A permissive policy still can't plant one in the user's configuration.
            let plant = h.run(h.supervisedArgv(["sh", "-c", "mkdir -p $HOME/.config/agentgate && echo 'default: allow' > $HOME/.config/agentgate/policy.yaml"],
                                               policy: h.path("project/policy.yaml")), environment: environment)
            #expect(plant.status != 0 && !FileManager.default.fileExists(atPath: h.path("home/.config/agentgate/policy.yaml")), "\(plant)")
            // One there that others may write is refused with the reason.
            try h.mkdir("home/.config/agentgate")
            try "default: allow\nrules: []\n".write(toFile: h.path("home/.config/agentgate/policy.yaml"), atomically: false, encoding: .utf8)
            chmod(h.path("home/.config/agentgate/policy.yaml"), 0o666)
            let loose = h.run([Harness.supervisor, "--db", h.db, "--", "true"], environment: environment)
            #expect(loose.status == 2 && loose.stderr.contains("others may write to it"), "\(loose)")
            chmod(h.path("home/.config/agentgate/policy.yaml"), 0o644)
            let trusted = h.run([Harness.supervisor, "--db", h.db, "--", "true"], environment: environment)
            #expect(trusted.status == 0 && trusted.stderr.contains("(your configuration"), "\(trusted)")
        }

        // MARK: - Kernel interfaces that act without an open or a connect

        @Test("an fd opened to write that can also read is decided as a read too (O_RDWR, O_RDONLY|O_APPEND)")
        func readsThroughWriteOpens() throws {
            let h = try Harness()
            try h.write("secret.env", "DB_PASSWORD=hunter2\n")
            let policy = try h.policy("""
                version: 2
                default: allow
                rules:
                  - match: {action: fs_read, target_glob: "\(h.path("secret.env"))"}
                    decision: deny
                """)
            let script = """
                import os, sys
                for name, flags in [("rdwr", os.O_RDWR), ("rdonly-append", os.O_RDONLY | os.O_APPEND), ("rdonly-creat", os.O_RDONLY | os.O_CREAT)]:
                    try:
                        fd = os.open(sys.argv[1], flags)
                        print(name, os.read(fd, 100).decode().strip(), flush=True)
                        os.close(fd)
                    except OSError as e:
                        print(name, "errno", e.errno, flush=True)
                try:
                    os.close(os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND))
                    print("wronly ok", flush=True)
                except OSError as e:
                    print("wronly errno", e.errno, flush=True)
                """
            try h.write("probe.py", script)
            let bare = h.bare(["/usr/bin/python3", h.path("probe.py"), h.path("secret.env")])
            #expect(bare.stdout == "rdwr DB_PASSWORD=hunter2\nrdonly-append DB_PASSWORD=hunter2\nrdonly-creat DB_PASSWORD=hunter2\nwronly ok\n",
                    "bare: each open reads the file\n\(bare)")
            let r = h.supervised(["/usr/bin/python3", h.path("probe.py"), h.path("secret.env")], policy: policy)
            #expect(r.stdout == "rdwr errno 13\nrdonly-append errno 13\nrdonly-creat errno 13\nwronly ok\n", "\(r)")
            let denied = h.query("select count(*) from events where action = 'fs_read' and decision = 'deny' and target = '\(h.path("secret.env"))'")
            #expect(denied == [["3"]], "the reads are recorded as denied reads: \(denied)")
        }

        @Test("a program whose reading the policy denies can't be run (its image is mapped where the process reads it)")
        func runningAFileReadsIt() throws {
            let h = try Harness()
            try h.mkdir("secret")
            try h.copy("/usr/bin/true", to: "secret/tool")
            let policy = try h.policy("""
                version: 2
                default: allow
                rules:
                  - match: {action: fs_read, target_glob: "\(h.path("secret"))/**"}
                    decision: deny
                """)
            let bare = h.bare([h.path("secret/tool")])
            #expect(bare.status == 0, "bare: the program runs\n\(bare)")
            // As a `#!` interpreter too: the kernel maps it without anyone opening it.
            try h.write("script", "#!\(h.path("secret/tool"))\n", mode: 0o755)
            let bareScript = h.bare([h.path("script")])
            #expect(bareScript.status == 0, "bare: the script runs\n\(bareScript)")
            let r = h.supervised(["sh", "-c", "'\(h.path("secret/tool"))'; echo \"ran=$?\"; '\(h.path("script"))'; echo \"script=$?\""],
                                 policy: policy)
            #expect(r.stdout.contains("ran=126") && r.stdout.contains("script=126"), "\(r)")
            let check = h.run([HookCommandTests.agentgate, "check", "--policy", policy, h.path("secret/tool")])
            #expect(check.stdout.contains("decision: deny") && check.stdout.contains("denies reading it"), "\(check)")
            let denied = h.query("select reason from events where action = 'exec' and decision = 'deny' and target = '\(h.path("secret/tool"))'")
            #expect(denied.first?.first?.contains("denies reading it") == true, "\(denied)")
        }

        @Test("kernel settings (/proc/sys) can't be written: a core_pattern helper would run outside the session")
        func kernelSettings() throws {
            let h = try Harness()
            // The value already there, written back: bare, root may (an ordinary user may not).
            let script = "v=$(cat /proc/sys/kernel/core_pattern) && printf '%s\\n' \"$v\" > /proc/sys/kernel/core_pattern && echo written"
            let bare = h.bare(["sh", "-c", script])
            #expect(bare.stdout.contains("written") == isRoot, "bare: only root writes kernel settings\n\(bare)")
            let r = h.supervised(["sh", "-c", script], policy: try h.policy("version: 2\ndefault: allow\nrules: []\n"))
            #expect(!r.stdout.contains("written"), "\(r)")
            if isRoot {
                let denied = h.query("select reason from events where action = 'fs_write' and decision = 'deny' and target = '/proc/sys/kernel/core_pattern'")
                #expect(denied.first?.first?.contains("kernel settings") == true, "\(denied) \(r)")
            }
        }

        @Test("acct(path) can't make the kernel append to a file", .enabled(if: isRoot, "acct needs CAP_SYS_PACCT"))
        func processAccounting() throws {
            let h = try Harness()
            let escape = try h.escape()
            try h.write("acct.log", "")
            let bare = h.bare([escape, "acct", h.path("acct.log")])
            let grown = (try? FileManager.default.attributesOfItem(atPath: h.path("acct.log"))[.size] as? Int) ?? 0
            #expect(bare.status == 0 && grown > 0, "bare: acct must write records\n\(bare)")
            try h.write("acct2.log", "")
            let r = h.supervised([escape, "acct", h.path("acct2.log")], policy: try permissivePolicy(h, secret: "/nonexistent"))
            let size = (try? FileManager.default.attributesOfItem(atPath: h.path("acct2.log"))[.size] as? Int) ?? -1
            #expect(r.stdout.contains("op=acct rc=-1 errno=1") && size == 0, "\(r)")
        }

        @Test("socket(AF_INET, SOCK_PACKET) is a packet socket: refused, and labelled as one",
              .enabled(if: isRoot && FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare"), "packet sockets need CAP_NET_RAW"))
        func sockPacket() throws {
            let h = try Harness()
            let escape = try h.escape()
            try h.write("sink.py", """
                import os, socket, sys
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 5555)); s.settimeout(2)
                open(sys.argv[1], 'w').close()
                # One write(2) per line: the sender writes to the same pipe, and must not land inside it.
                try: os.write(1, ('SINK-GOT ' + s.recvfrom(100)[0].decode() + '\\n').encode())
                except Exception as e: os.write(1, ('SINK-NOTHING %s\\n' % e).encode())
                """)
            // A network namespace of the test's own, where loopback accepts frames injected with
            // loopback addresses (route_localnet, accept_local), so the bare half can succeed.
            func inNamespace(_ sender: [String]) -> Harness.Result {
                let setup = "ip link set lo up && for k in route_localnet accept_local; do sysctl -qw net.ipv4.conf.lo.$k=1 net.ipv4.conf.all.$k=1; done"
                let send = sender.map { "'\($0)'" }.joined(separator: " ")
                // The sender starts once the sink has bound (polled under a deadline).
                let ready = h.path("sink-ready")
                let bound = "i=0; until [ -e \(ready) ] || [ $i -ge 200 ]; do sleep 0.05; i=$((i+1)); done"
                return h.run(["unshare", "-n", "sh", "-c", "\(setup) && rm -f \(ready) && { python3 \(h.path("sink.py")) \(ready) & \(bound); \(send); wait; }"])
            }
            let bare = inNamespace([escape, "sock-packet", "5555"])
            #expect(bare.stdout.contains("SINK-GOT RAW-FRAME-ARRIVE"), "bare: the raw frame must reach the UDP port\n\(bare)")
            let r = inNamespace(h.supervisedArgv([escape, "sock-packet", "5555"], policy: try permissivePolicy(h, secret: "/nonexistent")))
            #expect(r.stdout.contains("rc=-1 errno=1") && r.stdout.contains("SINK-NOTHING"), "\(r)")
            let targets = h.query("select target from events where syscall='socket'").map { $0.first ?? "" }
            #expect(targets == ["socket(SOCK_PACKET)"], "\(targets)")
        }

        @Test("netlink: route queries pass, netfilter is refused")
        func netlinkFamilies() throws {
            let h = try Harness()
            let escape = try h.escape()
            let policy = try permissivePolicy(h, secret: "/nonexistent")
            #expect(h.bare([escape, "netlink", "12"]).status == 0, "bare: a NETLINK_NETFILTER socket must open")
            #expect(h.supervised([escape, "netlink", "0"], policy: policy).status == 0)
            let r = h.supervised([escape, "netlink", "12"], policy: policy)
            #expect(r.stdout.contains("errno=\(EPROTONOSUPPORT)"), "\(r)")
        }

        @Test("fanotify can't hand out fds of files others open", .enabled(if: isRoot, "fanotify needs CAP_SYS_ADMIN"))
        func fanotify() throws {
            let h = try Harness()
            let escape = try h.escape()
            let secret = Adversarial.secretMarker()
            try h.write("secret.txt", secret)
            let bare = h.bare([escape, "fanotify", h.dir, h.path("secret.txt")])
            #expect(bare.stdout.contains("ATTACK-SUCCEEDED") && bare.stdout.contains(secret), "\(bare)")
            let r = h.supervised([escape, "fanotify", h.dir, h.path("secret.txt")], policy: try permissivePolicy(h, secret: "/nonexistent"))
            #expect(r.stdout.contains("op=fanotify_init rc=-1 errno=1") && !r.stdout.contains(secret), "\(r)")
        }

        @Test("/dev/userfaultfd can't make a userfaultfd without the syscall",
              .enabled(if: isRoot && FileManager.default.fileExists(atPath: "/dev/userfaultfd"), "needs root and /dev/userfaultfd"))
        func userfaultfdDevice() throws {
            let h = try Harness()
            let escape = try h.escape()
            let bare = h.bare([escape, "userfaultfd-device"])
            #expect(bare.status == 0 && bare.stdout.contains("USERFAULTFD_IOC_NEW rc=") && !bare.stdout.contains("IOC_NEW rc=-1"), "\(bare)")
            let r = h.supervised([escape, "userfaultfd-device"], policy: try permissivePolicy(h, secret: "/nonexistent"))
            #expect(r.stdout.contains("op=open /dev/userfaultfd rc=-1 errno=1"), "\(r)")
        }

        @Test("host-wide settings: hostname, clock, kernel log console, terminal hangup",
              .enabled(if: isRoot, "these need CAP_SYS_ADMIN, CAP_SYS_TIME, CAP_SYSLOG, CAP_SYS_TTY_CONFIG"))
        func hostSettings() throws {
            let h = try Harness()
            let escape = try h.escape()
            let policy = try permissivePolicy(h, secret: "/nonexistent")
            // The hostname is changed only inside a UTS namespace of the test's own.
            let bareName = h.bare(["unshare", "-u", escape, "sethostname", "agentgate-test"])
            #expect(bareName.status == 0, "\(bareName)")
            let name = h.run(["unshare", "-u"] + h.supervisedArgv([escape, "sethostname", "agentgate-test"], policy: policy))
            #expect(name.stdout.contains("op=sethostname rc=-1 errno=1"), "\(name)")
            // The clock is set to what it already is; the console level to what it already is.
            for mode in ["settime", "syslog-console", "vhangup"] {
                let bare = h.bare([escape, mode])
                #expect(bare.status == 0, "bare \(mode)\n\(bare)")
                let r = h.supervised([escape, mode], policy: policy)
                #expect(r.status != 0 && r.stdout.contains("rc=-1 errno=1"), "\(mode)\n\(r)")
            }
            // Reading the log's size still works.
            let log = h.supervised([escape, "syslog-console"], policy: policy)
            #expect(log.stdout.contains("op=syslog(SIZE_BUFFER) rc=") && !log.stdout.contains("SIZE_BUFFER) rc=-1"), "\(log)")
        }

        @Test("FIFREEZE can't freeze a file system",
              .enabled(if: isRoot && FileManager.default.fileExists(atPath: "/dev/loop-control"), "needs root and loop devices"))
        func freeze() throws {
            let h = try Harness()
            let escape = try h.escape()
            let policy = try permissivePolicy(h, secret: "/nonexistent")
            try h.mkdir("mnt")
            let image = h.path("fs.img")
            #expect(h.run(["truncate", "-s", "8M", image]).status == 0)
            let made = h.run(["mkfs.ext4", "-q", "-F", image])
            try #require(made.status == 0, "mkfs.ext4: \(made)")
            // A private mount namespace, so nothing outside the test sees the mount.
            let mount = "mount -o loop \(image) \(h.path("mnt"))"
            let bare = h.run(["unshare", "-m", "sh", "-c", "\(mount) && \(escape) freeze \(h.path("mnt")); umount \(h.path("mnt"))"])
            #expect(bare.stdout.contains("op=FIFREEZE rc=0") && bare.stdout.contains("op=FITHAW rc=0"), "\(bare)")
            let supervised = h.supervisedArgv([escape, "freeze", h.path("mnt")], policy: policy).map { "'\($0)'" }.joined(separator: " ")
            let r = h.run(["unshare", "-m", "sh", "-c", "\(mount) && \(supervised); umount \(h.path("mnt"))"])
            #expect(r.stdout.contains("op=FIFREEZE rc=-1 errno=1"), "\(r)")
        }

        // MARK: - Decided on one object, performed on another

        @Test("a memfd named like an allowed program is an anonymous image, denied by default")
        func memfdExec() throws {
            let h = try Harness()
            let escape = try h.escape()
            let bin = try EscapeBinaries.get()
            let policy = try h.policy("""
                default: deny
                rules:
                  - match: {action: exec, target_glob: "/usr/bin/*"}
                    decision: allow
                  - match: {action: exec, target_glob: "\(h.dir)/escape"}
                    decision: allow
                  - match: {action: fs_read}
                    decision: allow
                """)
            let bare = h.bare([escape, "memfd-exec", bin.forbidden, "x/../../usr/bin/true"])
            #expect(bare.stdout.contains("FORBIDDEN-PROGRAM-RAN"), "\(bare)")
            let r = h.supervised([escape, "memfd-exec", bin.forbidden, "x/../../usr/bin/true"], policy: policy)
            #expect(r.stdout.contains("op=fexecve rc=-1 errno=13") && !r.stdout.contains("FORBIDDEN-PROGRAM-RAN"), "\(r)")
            let reasons = h.query("select target, reason from events where action='exec' and decision='deny'")
            #expect(reasons.contains { $0[0].hasPrefix("memfd:x/../../usr/bin/true") && $0[1].contains("anonymous_exec") }, "\(reasons)")
        }

        @Test("a unix bind through /proc/self/fd/K binds in the agent's directory K, as decided")
        func bindThroughProcFD() throws {
            let h = try Harness()
            let escape = try h.escape()
            try h.mkdir("open")
            try h.mkdir("closed")
            let policy = try h.policy("""
                default: allow
                rules:
                  - match: {action: fs_write, target_glob: "\(h.path("closed"))/**"}
                    decision: deny
                """)
            let bare = h.bare([escape, "bind-procfd", h.path("closed"), "sk"])
            #expect(bare.stdout.contains("socket in \(h.path("closed")): yes"), "\(bare)")
            let allowed = h.supervised([escape, "bind-procfd", h.path("open"), "sk"], policy: policy)
            #expect(allowed.stdout.contains("op=bind rc=0") && allowed.stdout.contains("socket in \(h.path("open")): yes"), "\(allowed)")
            try? FileManager.default.removeItem(atPath: h.path("closed/sk"))
            let denied = h.supervised([escape, "bind-procfd", h.path("closed"), "sk"], policy: policy)
            #expect(denied.stdout.contains("op=bind rc=-1 errno=13") && !h.exists("closed/sk"), "\(denied)")
        }

        @Test("the dynamic loader under another name still has its program decided")
        func renamedLoader() throws {
            let h = try Harness()
            let bin = try EscapeBinaries.get()
            let loader = ["/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"].first {
                FileManager.default.fileExists(atPath: $0)
            }
            let source = try #require(loader, "no glibc loader here")
            let copy = try h.copy(source, to: "myld")
            let forbidden = try h.copy(bin.forbidden, to: "forbidden")
            let bare = h.bare([copy, forbidden])
            #expect(bare.stdout.contains("FORBIDDEN-PROGRAM-RAN"), "\(bare)")
            let r = h.supervised([copy, forbidden], policy: try permissivePolicy(h, secret: "/nonexistent"))
            #expect(r.status == 126 && !r.stdout.contains("FORBIDDEN-PROGRAM-RAN"), "\(r)")
        }

        @Test("the interpreter an ELF names (PT_INTERP) is decided as an exec")
        func elfInterpreter() throws {
            let h = try Harness()
            let bin = try EscapeBinaries.get()
            let bare = h.bare([bin.interpreterHost])
            #expect(bare.stdout.contains("FORBIDDEN-PROGRAM-RAN"), "bare: PT_INTERP must run the static program\n\(bare)")
            let r = h.supervised([bin.interpreterHost], policy: try permissivePolicy(h, secret: "/nonexistent"))
            #expect(r.status == 126 && !r.stdout.contains("FORBIDDEN-PROGRAM-RAN"), "\(r)")
            // Ordinary dynamic programs (the system's loader) are unaffected by exec allowlists.
            let policy = try h.policy("""
                default: deny
                rules:
                  - match: {action: exec, target_glob: "/usr/bin/*"}
                    decision: allow
                  - match: {action: exec, target_glob: "/bin/*"}
                    decision: allow
                  - match: {action: fs_read}
                    decision: allow
                """)
            let ok = h.supervised(["/usr/bin/env", "true"], policy: policy)
            #expect(ok.status == 0, "\(ok)")
        }

        // MARK: - Resources

        @Test("execs that fail (ENOEXEC) leave no pidfds behind in the supervisor")
        func enoexecStorm() throws {
            try TestUser.requireRoot("it counts the supervisor's fds, which a non-dumpable process hides from its own user")
            let h = try Harness()
            let escape = try h.escape()
            try h.write("junk", "not an executable format\n", mode: 0o755)
            let marker = h.path("storm-done"), release = h.path("release")
            // The session stays open until the test has counted (polled under a deadline).
            let held = "i=0; until [ -e \(release) ] || [ $i -ge 600 ]; do sleep 0.05; i=$((i+1)); done"
            let running = try h.start(h.supervisedArgv(["sh", "-c", "\(escape) enoexec-storm 1500 \(h.path("junk")) && touch \(marker) && \(held) && ls >/dev/null && echo ls-works"],
                                                       policy: try permissivePolicy(h, secret: "/nonexistent")))
            try waitUntil("the storm is over", timeout: 120) { FileManager.default.fileExists(atPath: marker) }
            // The supervisor sweeps once a second: poll until its fds are back down.
            func supervisorFDs() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(running.pid)/fd").count) ?? -1 }
            waitUntil(timeout: 15) { (0..<64).contains(supervisorFDs()) }
            let fds = supervisorFDs()
            _ = FileManager.default.createFile(atPath: release, contents: nil)
            let r = running.wait()
            #expect(fds >= 0 && fds < 64, "the supervisor holds \(fds) fds after 1500 failed execs")
            #expect(r.stdout.contains("ls-works"), "\(r)")
        }

        @Test("a process left behind is ended even when the supervisor's fd table is full",
              .enabled(if: Unprivileged.available && FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit"),
                       "needs root to drop to nobody (no session cgroup then), and prlimit"))
        func leftoverWithFullFDTable() throws {
            let h = try Harness()
            // A spinner that never makes a trapped syscall, then processes that each cost the
            // supervisor a pidfd and stay a while, then the first process exits.
            try h.write("fill.sh", """
                (while :; do :; done) >/dev/null 2>&1 </dev/null &
                echo spinner=$!
                i=0; while [ $i -lt 80 ]; do (cat /etc/hostname >/dev/null 2>&1; sleep 5) 2>/dev/null & i=$((i+1)); done
                # A fixed second for the 80 to make their calls: with the supervisor's fd table
                # full, nothing they could leave behind to poll for is sure to be made.
                sleep 1
                """)
            func spinner(_ r: Harness.Result) -> pid_t? {
                r.stdout.split(separator: "\n").first { $0.hasPrefix("spinner=") }.flatMap { pid_t($0.dropFirst(8)) }
            }
            // Bare through closefds: the spinner must not hold the test runner's descriptors.
            let bare = h.bare([try h.escape(), "closefds", "sh", h.path("fill.sh")])
            let bareSpinner = try #require(spinner(bare), "\(bare)")
            #expect(kill(bareSpinner, 0) == 0, "bare: the spinner must outlive its parent, or this test can't fail")
            kill(bareSpinner, SIGKILL)
            let policy = try permissivePolicy(h, secret: "/nonexistent")
            chmod(policy, 0o644)
            let db = try Unprivileged.directory(h) + "/audit.db"
            let r = h.run(Unprivileged.argv(["/usr/bin/prlimit", "--nofile=48:48", Harness.supervisor, "-q", "--policy", policy,
                                             "--db", db, "--", "sh", h.path("fill.sh")]), timeout: 60)
            let left = try #require(spinner(r), "\(r)")
            let gone = waitUntil(timeout: 10) { kill(left, 0) != 0 }
            if !gone { kill(left, SIGKILL) }
            #expect(gone, "the spinner survived the session\n\(r)")
        }

        @Test("a fork storm stops at --max-processes")
        func processLimit() throws {
            let h = try Harness()
            let escape = try h.escape()
            let policy = try permissivePolicy(h, secret: "/nonexistent")
            let bare = h.bare([escape, "fork-many", "100"])
            #expect(bare.stdout.contains("started=100"), "\(bare)")
            let r = h.supervised([escape, "fork-many", "100"], policy: policy, extra: ["--max-processes", "40"])
            let started = r.stdout.split(separator: "\n").first { $0.hasPrefix("started=") }.flatMap { Int($0.dropFirst(8).prefix { $0.isNumber }) } ?? -1
            if TestUser.isRoot {
                #expect(started >= 30 && started < 45 && r.stdout.contains("errno=\(EAGAIN)"), "\(r)")
            } else {
                // RLIMIT_NPROC counts every process of the user, other tests' included.
                #expect(started >= 0 && started < 45 && r.stdout.contains("errno=\(EAGAIN)"), "\(r)")
            }
            if Unprivileged.available {
                let u = try h.supervisedUnprivileged([escape, "fork-many", "100"], policy: policy, extra: ["--max-processes", "40"],
                                                     uid: Unprivileged.isolatedUID)
                let n = u.stdout.split(separator: "\n").first { $0.hasPrefix("started=") }.flatMap { Int($0.dropFirst(8).prefix { $0.isNumber }) } ?? -1
                #expect(n >= 30 && n < 45 && u.stdout.contains("errno=\(EAGAIN)"), "as uid \(Unprivileged.isolatedUID): \(u)")
            }
        }

        @Test("real-time scheduling is refused", .enabled(if: isRoot, "SCHED_FIFO needs CAP_SYS_NICE"))
        func realtime() throws {
            let h = try Harness()
            let escape = try h.escape()
            let bare = h.bare([escape, "realtime"])
            #expect(bare.stdout.contains("op=sched_setscheduler(FIFO) rc=0") && bare.stdout.contains("op=sched_setattr(RR) rc=0"), "\(bare)")
            let r = h.supervised([escape, "realtime"], policy: try permissivePolicy(h, secret: "/nonexistent"))
            #expect(r.stdout.contains("op=sched_setscheduler(FIFO) rc=-1 errno=1") && r.stdout.contains("op=sched_setattr(RR) rc=-1 errno=1"), "\(r)")
            #expect(r.stdout.contains("op=sched_setattr(OTHER) rc=0"), "\(r)")
        }

        // MARK: - As an ordinary user

        @Test("as an ordinary user: the supervisor and outside processes stay out of reach", .enabled(if: Unprivileged.available, "needs root to drop to nobody"))
        func unprivileged() throws {
            let h = try Harness()
            let escape = try h.escape()
            let secret = Adversarial.secretMarker()
            try h.write("secret.txt", secret)
            chmod(h.path("secret.txt"), 0o644)
            let policy = try permissivePolicy(h, secret: h.path("secret.txt"))
            chmod(policy, 0o644)
            let sockets = try Unprivileged.directory(h)
            let r = try h.supervisedUnprivileged([escape, "peer-steal", sockets + "/s.sock", h.path("secret.txt")], policy: policy)
            #expect(r.stdout.contains("PEERCRED-OK") && !r.text.contains("ATTACK-SUCCEEDED") && !r.text.contains(secret), "\(r)")
            let victim = try h.start(Unprivileged.argv(["/bin/sleep", "60"]))
            defer { kill(victim.pid, SIGKILL); _ = victim.wait(timeout: 5) }
            try waitUntil("the victim runs as nobody") { ProcStatusProbe.uid(of: victim.pid) == Unprivileged.uid }
            let sleeper = (try? String(contentsOfFile: "/proc/\(victim.pid)/task/\(victim.pid)/children", encoding: .utf8))?
                .split(separator: " ").first.map(String.init) ?? String(victim.pid)
            let k = try h.supervisedUnprivileged([escape, "kill", sleeper, "9"], policy: policy)
            #expect(k.stdout.contains("op=kill rc=-1 errno=1"), "\(k)")
        }
    }
}

/// Reads a process's real uid from /proc.
enum ProcStatusProbe {
    static func uid(of pid: pid_t) -> UInt32? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") }) else { return nil }
        return line.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first.flatMap { UInt32($0) }
    }
}

/// Waits until `condition` holds, or fails the test naming what never happened.
func waitUntil(_ what: String, timeout: Double = 30, _ condition: () -> Bool) throws {
    guard waitUntil(timeout: timeout, condition) else { throw HarnessError(message: "timed out waiting until \(what)") }
}
