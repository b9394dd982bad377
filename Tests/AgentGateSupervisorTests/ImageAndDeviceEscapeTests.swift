import Foundation
import Glibc
import Testing

private let isRoot = getuid() == 0
private let glibcLoader = ["/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"].first {
    FileManager.default.fileExists(atPath: $0)
}

/// A policy that allows everything but the secret file, and exec of the test's forbidden programs.
private func openPolicy(_ h: Harness, extra: String = "") throws -> String {
    // Version 2: `*forbidden*` is about the program run, not any command line naming it (in a
    // v1 file the helper's own argv, which carries the forbidden program's path, would match).
    try h.policy("""
        version: 2
        default: allow
        rules:
          - match: {action: exec, target_glob: "*forbidden*"}
            decision: deny
        \(extra)
        """)
}

/// The threads of a process (its /proc/PID/task entries).
private func threadCount(_ pid: pid_t) -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task").count) ?? -1
}

extension AdversarialTests {
    /// Escapes through processes, file owners, network configuration and exec images, each shown
    /// bare and supervised: pid races on the supervisor's own threads, signals through file owners,
    /// network configuration by a root agent, no-follow calls through a trailing slash, and
    /// exec decided on one image and run as another.
    @Suite("Escapes: pid races, file owners, network configuration, exec images") struct ProcessAndImageEscapes {
        @Test("a pid nobody has yet is answered ESRCH, and the supervisor starts no thread during the session")
        func pidRaces() throws {
            let h = try Harness()
            let escape = try h.escape()
            let policy = try openPolicy(h)
            // A pid far beyond any in use: bare and supervised alike, ESRCH, decided here rather
            // than looked up again by the kernel once it might name a new thread.
            let unused = "4000000"
            #expect(h.bare([escape, "kill", unused, "0"]).stdout.contains("op=kill rc=-1 errno=\(ESRCH)"))
            #expect(h.supervised([escape, "kill", unused, "0"], policy: policy).stdout.contains("op=kill rc=-1 errno=\(ESRCH)"))
            // 40 blocking FIFO opens at once: their waits run on workers started with the session,
            // so the supervisor's thread count doesn't move while they wait.
            let fifo = h.path("fifo")
            #expect(mkfifo(fifo, 0o644) == 0)
            let marker = h.path("waiting"), release = h.path("release")
            // The fixed waits here are the observation windows: half a second for the session's
            // workers to have started, a second for the 40 opens to be waiting. The FIFO is
            // written once the test has counted (polled under a deadline).
            let running = try h.start(h.supervisedArgv(["sh", "-c", """
                sleep 0.5; touch \(marker)
                i=0; while [ $i -lt 40 ]; do cat \(fifo) >/dev/null & i=$((i+1)); done
                i=0; until [ -e \(release) ] || [ $i -ge 600 ]; do sleep 0.05; i=$((i+1)); done
                echo x > \(fifo); wait
                """], policy: policy))
            try waitUntil("the session starts") { FileManager.default.fileExists(atPath: marker) }
            let before = threadCount(running.pid)
            usleep(1_000_000)
            let during = threadCount(running.pid)
            _ = FileManager.default.createFile(atPath: release, contents: nil)
            let r = running.wait()
            #expect(r.status == 0, "\(r)")
            #expect(before > 0 && during == before, "supervisor threads: \(before) before the FIFO opens, \(during) while they wait")
        }

        @Test("F_SETOWN can't make a process outside the session the target of a file's signals")
        func fileOwnerOutside() throws {
            let h = try Harness()
            let escape = try h.escape()
            let policy = try openPolicy(h)
            var victim = try h.start(["/bin/sleep", "60"])
            let bare = h.bare([escape, "fsetown", String(victim.pid)])
            #expect(bare.stdout.contains("op=F_SETOWN rc=0") && waitUntil(timeout: 5) { kill(victim.pid, 0) != 0 || victim.diedOfSignalNow },
                    "bare: the write must signal the owner\n\(bare)")
            _ = victim.wait(timeout: 5)
            victim = try h.start(["/bin/sleep", "60"])
            defer { kill(victim.pid, SIGKILL); _ = victim.wait(timeout: 5) }
            let r = h.supervised([escape, "fsetown", String(victim.pid)], policy: policy)
            #expect(r.stdout.contains("op=F_SETOWN rc=-1 errno=1"), "\(r)")
            // A window for a signal that must never come: an absence can't be polled for.
            usleep(200_000)
            #expect(kill(victim.pid, 0) == 0, "the outside process must survive")
            // Within the session, F_SETOWN to the caller itself works.
            let own = h.supervised(["sh", "-c", "sleep 30 & \(escape) fsetown $!; kill -0 $! 2>/dev/null || echo sleeper-gone"], policy: policy)
            #expect(own.stdout.contains("op=F_SETOWN rc=0") && own.stdout.contains("sleeper-gone"), "\(own)")
        }

        @Test("TIOCVHANGUP is refused like vhangup", .enabled(if: isRoot, "TIOCVHANGUP needs CAP_SYS_ADMIN"))
        func terminalHangup() throws {
            let h = try Harness()
            let escape = try h.escape()
            #expect(h.bare([escape, "tiocvhangup"]).stdout.contains("op=TIOCVHANGUP rc=0"))
            let r = h.supervised([escape, "tiocvhangup"], policy: try openPolicy(h))
            #expect(r.stdout.contains("op=TIOCVHANGUP rc=-1 errno=1"), "\(r)")
        }

        @Test("the iptables setsockopt interface is refused (net_admin)", .enabled(if: isRoot, "the firewall tables need CAP_NET_ADMIN"))
        func firewallTables() throws {
            let h = try Harness()
            let escape = try h.escape()
            // Bare, the request reaches the table code (which rejects this empty table: EINVAL).
            #expect(h.bare([escape, "iptables-replace"]).stdout.contains("op=IPT_SO_SET_REPLACE rc=-1 errno=\(EINVAL)"))
            let r = h.supervised([escape, "iptables-replace"], policy: try openPolicy(h))
            #expect(r.stdout.contains("op=IPT_SO_SET_REPLACE rc=-1 errno=1"), "\(r)")
            let reasons = h.query("select reason from events where syscall='setsockopt'").map { $0.first ?? "" }
            #expect(reasons.contains { $0.contains("net_admin") }, "\(reasons)")
        }

        @Test("route netlink answers queries but can't reconfigure the network, by sendto or by send",
              .enabled(if: isRoot && FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare"), "needs root and unshare"))
        func routeNetlink() throws {
            let h = try Harness()
            let escape = try h.escape()
            let policy = try openPolicy(h)
            // In a network namespace of the test's own: bring lo up, ask to bring it down, look.
            func run(_ command: [String]) -> Harness.Result {
                let quoted = command.map { "'\($0)'" }.joined(separator: " ")
                return h.run(["unshare", "-n", "sh", "-c", "ip link set lo up && \(quoted); ip -o link show lo"])
            }
            for how in ["sendto", "send"] {
                let bare = run([escape, "netlink-linkdown", "lo", how])
                #expect(bare.stdout.contains("ack error=0") && !bare.stdout.contains("LOWER_UP"), "bare \(how)\n\(bare)")
                let r = run(h.supervisedArgv([escape, "netlink-linkdown", "lo", how], policy: policy))
                #expect(r.stdout.contains("ack error=-\(EPERM)") && r.stdout.contains("LOWER_UP"), "\(how)\n\(r)")
            }
            let query = run(h.supervisedArgv(["ip", "-o", "addr", "show", "lo"], policy: policy))
            #expect(query.stdout.contains("127.0.0.1"), "\(query)")
        }

        @Test("prctl(PR_SET_MM), which can rewrite what /proc says the image is, is refused")
        func processMemoryMap() throws {
            let h = try Harness()
            let escape = try h.escape()
            let bare = h.bare([escape, "prctl-mm"])
            #expect(bare.stdout.contains("op=PR_SET_MM rc=0"), "\(bare)")
            let r = h.supervised([escape, "prctl-mm"], policy: try openPolicy(h))
            #expect(r.stdout.contains("op=PR_SET_MM rc=-1 errno=1"), "\(r)")
        }

        @Test("core dumps, written by the kernel wherever the process runs, stay off")
        func coreDumps() throws {
            let h = try Harness()
            let escape = try h.escape()
            let bare = h.bare([escape, "core-limit"])
            #expect(bare.stdout.contains("op=setrlimit(RLIMIT_CORE) rc=0"), "\(bare)")
            #expect(bare.stdout.contains("op=prlimit64(RLIMIT_CORE, high bits set) rc=0"), "\(bare)")
            let r = h.supervised(["sh", "-c", "ulimit -c; \(escape) core-limit"], policy: try openPolicy(h))
            #expect(r.stdout.hasPrefix("0\n"), "the session starts with RLIMIT_CORE 0\n\(r)")
            #expect(r.stdout.contains("op=setrlimit(RLIMIT_CORE) rc=-1 errno=1"), "\(r)")
            #expect(r.stdout.contains("op=raw setrlimit(RLIMIT_CORE) rc=-1 errno=1"), "\(r)")
            #expect(r.stdout.contains("op=prlimit64(RLIMIT_CORE, high bits set) rc=-1 errno=1"), "\(r)")
            #expect(r.stdout.contains("op=setrlimit(RLIMIT_CORE, 0) rc=0"), "\(r)")
        }

        @Test("a lease on a file being truncated stalls only the truncate, never the supervisor",
              .enabled(if: isRoot, "leases on another's open file need the owner's uid or CAP_LEASE; the test's files are root's"))
        func leaseTruncate() throws {
            let h = try Harness()
            let escape = try h.escape()
            try h.write("leased", "content\n")
            // The truncates start once the lease is held (polled under a deadline); the half
            // second after them is the window for them to stall behind it.
            let script = """
                rm -f \(h.path("leased.held")); \(escape) lease-hold \(h.path("leased")) 20 &
                i=0; until [ -e \(h.path("leased.held")) ] || [ $i -ge 200 ]; do sleep 0.05; i=$((i+1)); done
                for i in 1 2 3; do truncate -s 0 \(h.path("leased")) & done
                sleep 0.5
                s=$(date +%s%N); cat /etc/hostname >/dev/null; e=$(date +%s%N)
                echo elapsed=$(( (e - s) / 1000000 ))
                kill $(jobs -p) 2>/dev/null; exit 0
                """
            let bare = h.bare(["sh", "-c", script], timeout: 60)
            #expect(bare.stdout.contains("elapsed="), "\(bare)")
            let r = h.supervised(["sh", "-c", script], policy: try openPolicy(h), timeout: 60)
            let elapsed = r.stdout.split(separator: "\n").first { $0.hasPrefix("elapsed=") }.flatMap { Int($0.dropFirst(8)) } ?? -1
            #expect(elapsed >= 0 && elapsed < 5000, "another process waited \(elapsed) ms behind the truncates\n\(r)")
        }

        @Test("a trailing slash makes the no-follow calls act on the directory, which is decided as such")
        func trailingSlashOnNoFollowCalls() throws {
            let h = try Harness()
            let escape = try h.escape()
            try h.mkdir("closed/dir")
            try h.mkdir("open/dir")
            try h.mkdir("work")
            let policy = try openPolicy(h, extra: """
                  - match: {action: fs_write, target_glob: "\(h.path("closed"))/**"}
                    decision: deny
                """)
            func mode(_ path: String) -> mode_t { var info = stat(); stat(path, &info); return info.st_mode & 0o7777 }
            symlink(h.path("closed/dir"), h.path("work/bare-link"))
            let bare = h.bare([escape, "nofollow-slash", h.path("work/bare-link")])
            #expect(bare.stdout.contains("op=fchmodat2-nofollow rc=0") && mode(h.path("closed/dir")) == 0o777, "\(bare)")
            chmod(h.path("closed/dir"), 0o755)
            symlink(h.path("closed/dir"), h.path("work/link"))
            let denied = h.supervised([escape, "nofollow-slash", h.path("work/link")], policy: policy)
            #expect(denied.stdout.contains("op=fchmodat2-nofollow rc=-1 errno=13") && denied.stdout.contains("op=lchown rc=-1 errno=13")
                    && denied.stdout.contains("op=lsetxattr rc=-1 errno=13") && denied.stdout.contains("op=utimensat-nofollow rc=-1 errno=13"),
                    "\(denied)")
            #expect(mode(h.path("closed/dir")) == 0o755)
            symlink(h.path("open/dir"), h.path("work/open-link"))
            let allowed = h.supervised([escape, "nofollow-slash", h.path("work/open-link")], policy: policy)
            #expect(allowed.stdout.contains("op=fchmodat2-nofollow rc=0") && mode(h.path("open/dir")) == 0o777, "\(allowed)")
        }

        @Test("a #! script named like an ld.so option hands the loader the name as given",
              .enabled(if: glibcLoader != nil, "needs glibc's loader"))
        func scriptNamedLikeLoaderOption() throws {
            let h = try Harness()
            let escape = try h.escape()
            let bin = try EscapeBinaries.get()
            let forbidden = try h.copy(bin.forbidden, to: "forbidden")
            try h.mkdir("work")
            try h.write("work/--library-path", "#!\(glibcLoader!)\n", mode: 0o755)
            let command = ["sh", "-c", "cd \(h.path("work")) && \(escape) execv --library-path x /nonexistent-libdir \(forbidden) arg1"]
            let bare = h.bare(command)
            #expect(bare.stdout.contains("FORBIDDEN-PROGRAM-RAN"), "\(bare)")
            let r = h.supervised(command, policy: try openPolicy(h))
            #expect(r.stdout.contains("op=execv rc=-1 errno=13") && !r.stdout.contains("FORBIDDEN-PROGRAM-RAN"), "\(r)")
        }

        @Test("a relative ELF interpreter is refused: the working directory could change under it",
              .enabled(if: glibcLoader != nil, "needs glibc's loader"))
        func relativeElfInterpreter() throws {
            let h = try Harness()
            let program = try h.compile("relative-interp", "#include <stdio.h>\nint main(void) { puts(\"relative interpreter ran\"); return 0; }\n",
                                        flags: ["-Wl,--dynamic-linker=interp"])
            try h.copy(glibcLoader!, to: "interp")
            let bare = h.bare(["sh", "-c", "cd \(h.dir) && \(program)"])
            #expect(bare.stdout.contains("relative interpreter ran"), "\(bare)")
            let r = h.supervised(["sh", "-c", "cd \(h.dir) && \(program)"], policy: try openPolicy(h))
            #expect(!r.stdout.contains("relative interpreter ran") && r.status == 126, "\(r)")
            let reasons = h.query("select reason from events where action='exec' and decision='deny'").map { $0.first ?? "" }
            #expect(reasons.contains { $0.contains("relative path") }, "\(reasons)")
        }

        @Test("an exec that loads the image the process already ran is told apart from one that didn't happen",
              .enabled(if: glibcLoader != nil, "needs glibc's loader"))
        func sameImageExecRace() throws {
            let h = try Harness()
            let escape = try h.escape()
            let bin = try EscapeBinaries.get()
            let forbidden = try h.copy(bin.forbidden, to: "forbidden")
            let allowed = try h.copy(try AdversarialBinaries.get().allowed, to: "allowedxx")
            try h.mkdir("race")
            let command = [glibcLoader!, escape, "same-image-race", "150", h.path("race"), allowed, glibcLoader!, forbidden]
            let bare = h.bare(command, timeout: 120)
            #expect(bare.stdout.contains("FORBIDDEN-PROGRAM-RAN"), "bare: the race must be winnable\n\(bare.stdout.prefix(400))")
            let r = h.supervised(command, policy: try openPolicy(h), timeout: 180)
            #expect(!r.stdout.contains("FORBIDDEN-PROGRAM-RAN"), "\(r.stdout.prefix(400))")
        }
    }
}

extension AdversarialTests {
    /// Escapes through names that aren't UTF-8, host devices and their
    /// ioctls, and leases and netlink groups that reach beyond the session.
    @Suite("Escapes: raw names, host devices, leases, netlink groups") struct NameAndDeviceEscapes {
        /// Creates a symlink whose name is raw bytes (not UTF-8) in `directory`.
        private func rawSymlink(_ target: String, in directory: String, name: [UInt8]) -> Int32 {
            let bytes = Array(directory.utf8) + [UInt8(ascii: "/")] + name + [0]
            return bytes.withUnsafeBufferPointer { path in
                path.withMemoryRebound(to: CChar.self) { symlink(target, $0.baseAddress!) }
            }
        }

        @Test("a unix socket name that isn't UTF-8 is decided on its bytes, not on a lossy spelling")
        func rawSocketName() throws {
            let h = try Harness()
            let escape = try h.escape()
            try h.mkdir("closed")
            try h.mkdir("work/\u{FFFD}") // the lossy spelling of \xff: an allowed directory
            #expect(rawSymlink(h.path("closed"), in: h.path("work"), name: [0xff]) == 0)
            let policy = try openPolicy(h, extra: """
                  - match: {action: fs_write, target_glob: "\(h.path("closed"))/**"}
                    decision: deny
                """)
            let bare = h.bare([escape, "bind-raw", h.path("work")])
            #expect(bare.stdout.contains("op=bind rc=0") && h.exists("closed/sock"), "\(bare)")
            unlink(h.path("closed/sock"))
            let r = h.supervised([escape, "bind-raw", h.path("work")], policy: policy)
            #expect(r.stdout.contains("op=bind rc=-1 errno=\(EACCES)") && !h.exists("closed/sock"), "\(r)")
            #expect(!h.exists("work/\u{FFFD}/sock"))
        }

        @Test("an ELF interpreter named in bytes that aren't UTF-8 is refused, not taken for its lossy spelling",
              .enabled(if: glibcLoader != nil, "needs glibc's loader"))
        func rawElfInterpreter() throws {
            let h = try Harness()
            try h.mkdir("work")
            // What the kernel would map as the interpreter: a program of its own (static-pie, no libc).
            let forbidden = try h.compile("forbidden-interp", """
                void _start(void) {
                    static const char m[] = "FORBIDDEN-PROGRAM-RAN\\n";
                    long rc;
                    __asm__ volatile ("syscall" : "=a"(rc) : "a"(1), "D"(1), "S"(m), "d"(sizeof m - 1) : "rcx", "r11", "memory");
                    __asm__ volatile ("syscall" : : "a"(60), "D"(0) : "rcx", "r11", "memory");
                    for (;;) {}
                }
                """, flags: ["-nostdlib", "-static-pie", "-fPIE"])
            // Linked with a placeholder interpreter name, then patched to end in the byte 0xff.
            let placeholder = h.path("work/QQQQ")
            let built = try h.compile("raw-interp", "#include <stdio.h>\nint main(void) { puts(\"program ran\"); return 0; }\n",
                                      flags: ["-Wl,--dynamic-linker=\(placeholder)"])
            var image = [UInt8](try Data(contentsOf: URL(fileURLWithPath: built)))
            let needle = Array(placeholder.utf8) + [0]
            let at = try #require((0...(image.count - needle.count)).first { image[$0..<($0 + needle.count)].elementsEqual(needle) })
            image.replaceSubrange((at + needle.count - 5)..<(at + needle.count - 1), with: [0xff, 0, 0, 0])
            try Data(image).write(to: URL(fileURLWithPath: h.path("work/program")))
            chmod(h.path("work/program"), 0o755)
            // \xff is the forbidden program; its lossy spelling U+FFFD is the system loader.
            #expect(rawSymlink(forbidden, in: h.path("work"), name: [0xff]) == 0)
            #expect(symlink(glibcLoader!, h.path("work/\u{FFFD}")) == 0)
            let bare = h.bare([h.path("work/program")])
            #expect(bare.stdout.contains("FORBIDDEN-PROGRAM-RAN"), "bare: the kernel maps the raw name\n\(bare)")
            let r = h.supervised([h.path("work/program")], policy: try openPolicy(h))
            #expect(!r.stdout.contains("FORBIDDEN-PROGRAM-RAN") && r.status == 126, "\(r)")
        }

        @Test("/dev/net/tun, which creates network interfaces, is refused (net_admin)",
              .enabled(if: isRoot && FileManager.default.fileExists(atPath: "/dev/net/tun"), "needs root and /dev/net/tun"))
        func tunDevice() throws {
            let h = try Harness()
            let escape = try h.escape()
            let bare = h.bare([escape, "tun"])
            #expect(bare.stdout.contains("op=open(/dev/net/tun) rc=") && !bare.stdout.contains("rc=-1"), "bare: the device must open\n\(bare)")
            let r = h.supervised([escape, "tun"], policy: try openPolicy(h))
            #expect(r.stdout.contains("op=open(/dev/net/tun) rc=-1 errno=\(EPERM)"), "\(r)")
            let reasons = h.query("select reason from events where target='/dev/net/tun'").map { $0.first ?? "" }
            #expect(reasons.contains { $0.contains("net_admin") }, "\(reasons)")
        }

        @Test("block-device setters (BLKROSET) are refused; their getters answer",
              .enabled(if: isRoot && FileManager.default.fileExists(atPath: "/dev/loop0"), "needs root and /dev/loop0"))
        func blockDeviceIoctls() throws {
            let h = try Harness()
            let escape = try h.escape()
            let bare = h.bare([escape, "blkroset", "/dev/loop0"])
            try #require(bare.stdout.contains("op=open rc=") && !bare.stdout.contains("op=open rc=-1"), "bare: /dev/loop0 must open\n\(bare)")
            #expect(bare.stdout.contains("op=BLKROSET rc=0"), "\(bare)")
            let r = h.supervised([escape, "blkroset", "/dev/loop0"], policy: try openPolicy(h))
            #expect(r.stdout.contains("op=BLKROGET rc=0") && r.stdout.contains("op=BLKROSET rc=-1 errno=\(EPERM)"), "\(r)")
        }

        @Test("a root agent's lease, which would hold every other process's open of the file, is refused (host)",
              .enabled(if: isRoot, "CAP_LEASE is root's"))
        func rootLease() throws {
            let h = try Harness()
            let escape = try h.escape()
            try h.write("leased", "x\n")
            #expect(h.bare([escape, "lease-read", h.path("leased")]).stdout.contains("op=F_SETLEASE(F_RDLCK) rc=0"))
            let r = h.supervised([escape, "lease-read", h.path("leased")], policy: try openPolicy(h))
            #expect(r.stdout.contains("op=F_SETLEASE(F_RDLCK) rc=-1 errno=\(EACCES)"), "\(r)")
        }

        @Test("a uevent socket can't be connected to udev's multicast group, to forge device events",
              .enabled(if: isRoot, "sending to uevent groups needs root"))
        func ueventGroup() throws {
            let h = try Harness()
            let escape = try h.escape()
            #expect(h.bare([escape, "uevent-connect"]).stdout.contains("op=connect(group 1) rc=0"))
            let r = h.supervised([escape, "uevent-connect"], policy: try openPolicy(h))
            #expect(r.stdout.contains("op=connect(group 1) rc=-1 errno=\(EPERM)"), "\(r)")
        }
    }
}

extension AdversarialTests {
    /// The exec checks must never end an honest program: threads that outlive their leader,
    /// execs that fail, execs racing busy siblings, processes that make themselves non-dumpable.
    @Suite("Exec checks leave honest programs alone") struct HonestExecs {
        private func objectFile(_ h: Harness) throws -> String {
            try h.write("object.c", "int f(void) { return 1; }\n")
            #expect(h.run(["cc", "-c", "-o", h.path("not-a-program"), h.path("object.c")]).status == 0)
            chmod(h.path("not-a-program"), 0o755)
            return h.path("not-a-program")
        }

        @Test("a thread execs after the main thread has exited")
        func execAfterLeaderExit() throws {
            let h = try Harness()
            let escape = try h.escape()
            let command = [escape, "leader-exit-exec", "/bin/echo"]
            #expect(h.bare(command).stdout.contains("exec-from-thread-ran"))
            let r = h.supervised(command, policy: try openPolicy(h))
            #expect(r.status == 0 && r.stdout.contains("exec-from-thread-ran"), "\(r)")
        }

        @Test("an exec that fails in the kernel, then the leader exits and a thread goes on")
        func failedExecThenLeaderExit() throws {
            let h = try Harness()
            let escape = try h.escape()
            let command = [escape, "failed-exec-leader-exit", try objectFile(h), "/etc/hostname"]
            let bare = h.bare(command)
            #expect(bare.stdout.contains("errno=\(ENOEXEC)") && bare.stdout.contains("rc=3"), "\(bare)")
            let r = h.supervised(command, policy: try openPolicy(h))
            #expect(r.status == 0 && r.stdout.contains("open from thread after the leader exited: rc=3"), "\(r)")
        }

        @Test("execs from processes whose other threads are busy in trapped calls are never killed")
        func threadedExecs() throws {
            let h = try Harness()
            let escape = try h.escape()
            #expect(h.bare([escape, "threaded-execs", "50", "/bin/true"]).stdout.contains("0 of 50 failed"))
            let r = h.supervised([escape, "threaded-execs", "300", "/bin/true"], policy: try openPolicy(h), timeout: 180)
            #expect(r.stdout.contains("threaded execs: 0 of 300 failed"), "\(r)")
            let kills = h.query("select reason from events where reason like '%killed%'")
            #expect(kills.isEmpty, "\(kills)")
        }

        @Test("as an ordinary user, a process that makes itself non-dumpable goes on being supervised",
              .enabled(if: Unprivileged.available, "needs root to drop to nobody"))
        func undumpableUnprivileged() throws {
            let h = try Harness()
            let escape = try h.escape()
            let policy = try openPolicy(h)
            chmod(policy, 0o644)
            let command = [escape, "undumpable", "/etc/hostname", "/bin/echo"]
            let bare = h.run(Unprivileged.argv(command))
            #expect(bare.stdout.contains("undumpable-exec-ran"), "\(bare)")
            let r = try h.supervisedUnprivileged(command, policy: policy)
            #expect(r.status == 0 && r.stdout.contains("op=PR_SET_DUMPABLE(0) rc=0") && r.stdout.contains("op=open rc=3")
                    && r.stdout.contains("undumpable-exec-ran"), "\(r)")
            // Still supervised: a forbidden exec after it is denied.
            let forbidden = try h.copy(try EscapeBinaries.get().forbidden, to: "forbidden")
            let denied = try h.supervisedUnprivileged([escape, "undumpable", "/etc/hostname", forbidden], policy: policy)
            #expect(denied.stdout.contains("op=execv rc=-1 errno=\(EACCES)") && !denied.stdout.contains("FORBIDDEN-PROGRAM-RAN"), "\(denied)")
        }

        @Test("as an ordinary user, an execute-only program is refused with the reason",
              .enabled(if: Unprivileged.available, "needs root to drop to nobody"))
        func executeOnlyUnprivileged() throws {
            let h = try Harness()
            let program = try h.compile("xonly", "#include <stdio.h>\nint main(void) { puts(\"execute-only ran\"); return 0; }\n")
            chmod(program, 0o711)
            let policy = try openPolicy(h)
            chmod(policy, 0o644)
            #expect(h.run(Unprivileged.argv([program])).stdout.contains("execute-only ran"))
            let r = try h.supervisedUnprivileged([program], policy: policy)
            #expect(r.status == 126 && !r.stdout.contains("execute-only ran"), "\(r)")
            let db = h.path("nobody/audit.db")
            let rows = h.run(["python3", "-c", "import sqlite3,sys\nfor r in sqlite3.connect(sys.argv[1]).execute(\"select reason from events where decision='deny'\"): print(r[0])", db])
            #expect(rows.stdout.contains("execute-only"), "\(rows)")
        }
    }
}

extension RunningProcess {
    /// Whether the process has ended (without reaping it).
    var diedOfSignalNow: Bool { !process.isRunning }
}
