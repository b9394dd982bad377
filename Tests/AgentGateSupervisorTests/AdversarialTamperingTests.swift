import Foundation
import Glibc
import Testing

/// Attacks on the supervisor itself. Bare, each attack targets a stand-in: a child of the helper
/// in its own process group, with two extra threads, an open file and a marker in memory (the
/// helper reports "ATTACK-SUCCEEDED ..." when the attack worked on it). Supervised, it targets
/// the agent's parent, the supervisor, which must survive and end the session normally.
struct TamperFixture {
    let h: Harness
    let bin: AdversarialBinaries
    let policy: String

    init(_ name: String = #function) throws {
        h = try Harness(name)
        bin = try AdversarialBinaries.get()
        try h.write("plain.txt", "STANDIN-FILE-CONTENT\n")
        try h.mkdir("mnt")
        policy = try h.policy("default: allow\nrules: []\n")
    }
}

/// Bare against a stand-in (must succeed), then supervised against the supervisor (must fail,
/// supervisor alive, session status 0).
@discardableResult
func tamperAttempt(_ name: String, _ args: [String], wrap: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) throws -> Harness.Result {
    let f = try TamperFixture(name)
    let bare = f.h.bare(wrap + [f.bin.helper] + args + ["standin", "plain.txt"], timeout: 30)
    #expect(bare.stdout.contains("ATTACK-SUCCEEDED"),
            "\(name): bare, the attack must work on the stand-in (else this test proves nothing)\n\(bare)", sourceLocation: sourceLocation)

    let session = try f.h.start(wrap + f.h.supervisedArgv([f.bin.helper] + args + ["parent", "plain.txt"], policy: f.policy))
    let supervisorPID = session.pid
    let supervised = session.wait(timeout: 30)
    #expect(supervised.stdout.contains("target=\(supervisorPID) "),
            "\(name): the helper must have aimed at the supervisor (pid \(supervisorPID))\n\(supervised)", sourceLocation: sourceLocation)
    #expect(supervised.stdout.contains("exe=agentgate-supervise") || supervised.stdout.contains("exe=?"),
            "\(name): the target is not the supervisor\n\(supervised)", sourceLocation: sourceLocation)
    #expect(!supervised.stdout.contains("ATTACK-SUCCEEDED"), "\(name): the attack worked on the supervisor\n\(supervised)", sourceLocation: sourceLocation)
    #expect(supervised.status == 0 && supervised.stdout.contains("SURVIVED"),
            "\(name): the supervisor must survive and the session end with the agent's status 0\n\(supervised)", sourceLocation: sourceLocation)
    if wrap.isEmpty { Adversarial.expectAuditIntact(f.h, name, sourceLocation: sourceLocation) }
    return supervised
}

extension AdversarialTests {
    @Suite("Adversarial: tampering with the supervisor") struct Tampering {
        @Test("signal the supervisor with SIGKILL", arguments: [
            "kill", "tkill", "tgkill", "tgkill-threads", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_send_signal", "killpg",
        ])
        func signalSupervisor(call: String) throws {
            try tamperAttempt("signal", ["attack", call])
        }

        @Test("kill(-1, SIGKILL) (both halves inside a throwaway PID namespace)")
        func killMinusOne() throws {
            let f = try TamperFixture()
            // Bare: the helper is the namespace's init, the stand-in its child. Never outside a namespace.
            let bare = f.h.bare(["unshare", "--pid", "--fork", "--mount-proc", f.bin.helper, "attack", "kill-all", "standin"], timeout: 30)
            #expect(bare.stdout.contains("ATTACK-SUCCEEDED stand-in killed"), "bare, kill(-1) must kill the stand-in\n\(bare)")
            // Supervised: a shell is the namespace's init (kill(-1) never reaches init), the supervisor its child.
            let supervised = f.h.run(["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", "\"$@\"; echo supervisor-exit=$?", "sh"]
                                     + f.h.supervisedArgv([f.bin.helper, "attack", "kill-all", "parent"], policy: f.policy), timeout: 30)
            #expect(supervised.stdout.contains("exe=agentgate-supervise") || supervised.stdout.contains("exe=?"), "\(supervised)")
            #expect(!supervised.stdout.contains("ATTACK-SUCCEEDED"), "kill(-1) reached the supervisor\n\(supervised)")
            #expect(supervised.stdout.contains("SURVIVED") && supervised.stdout.contains("supervisor-exit=0"),
                    "the supervisor must survive kill(-1) and the session end with status 0\n\(supervised)")
        }

        @Test("setpgid into the supervisor's process group")
        func setpgidIntoSupervisorGroup() throws {
            try tamperAttempt("setpgid", ["attack", "setpgid"])
        }

        // Beyond the spec's list: root may prlimit any process. A hard RLIMIT_CPU gets the
        // supervisor SIGKILLed by the kernel; RLIMIT_NOFILE starves it of the fds it opens for the agent.
        @Test("prlimit the supervisor (RLIMIT_NOFILE, RLIMIT_CPU)")
        func prlimitSupervisor() throws {
            try tamperAttempt("prlimit", ["attack", "prlimit"])
        }

        @Test("ptrace the supervisor", arguments: ["ptrace-attach", "ptrace-seize"])
        func ptraceSupervisor(call: String) throws {
            try tamperAttempt("ptrace", ["attack", call])
        }

        @Test("open the supervisor's /proc entries", arguments: [
            "proc-mem", "proc-mem-write", "proc-task-mem", "proc-environ", "proc-maps", "proc-fd", "proc-cwd", "proc-self-fd",
        ])
        func supervisorProcEntries(entry: String) throws {
            try tamperAttempt("procentry", ["attack", entry])
        }

        @Test("steal a supervisor fd with pidfd_open + pidfd_getfd")
        func pidfdGetfd() throws {
            try tamperAttempt("pidfdgetfd", ["attack", "pidfd-getfd"])
        }

        @Test("process_vm_readv / process_vm_writev on the supervisor", arguments: ["vm-readv", "vm-writev"])
        func processVM(call: String) throws {
            try tamperAttempt("processvm", ["attack", call])
        }

        @Test("mount a fresh procfs elsewhere and read the supervisor's environ through it (private mount namespace)")
        func freshProcfs() throws {
            let f = try TamperFixture()
            let wrap = ["unshare", "-m", "--propagation", "private"]
            let bare = f.h.bare(wrap + [f.bin.helper, "procfs-environ", f.h.path("mnt"), "standin"], timeout: 30)
            #expect(bare.stdout.contains("ATTACK-SUCCEEDED"), "bare, the fresh procfs must expose the stand-in's environ\n\(bare)")
            let session = try f.h.start(wrap + f.h.supervisedArgv([f.bin.helper, "procfs-environ", f.h.path("mnt"), "parent"], policy: f.policy))
            let supervised = session.wait(timeout: 30)
            #expect(!supervised.stdout.contains("ATTACK-SUCCEEDED"), "the supervisor's environ was read through a second procfs\n\(supervised)")
            #expect(supervised.status == 0 && supervised.stdout.contains("SURVIVED"), "\(supervised)")
            #expect(supervised.stdout.contains("op=mount proc rc=-1 errno=1"), "spec: mount → EPERM\n\(supervised)")
        }

        @Test("stack a seccomp filter that answers openat itself", arguments: ["seccomp", "prctl"])
        func stackSeccompFilter(via: String) throws {
            let f = try TamperFixture()
            let bare = f.h.bare([f.bin.helper, "seccomp", via])
            #expect(bare.stdout.contains("ATTACK-SUCCEEDED"), "bare, the filter must install and answer openat\n\(bare)")
            let supervised = f.h.supervised([f.bin.helper, "seccomp", via], policy: f.policy)
            #expect(!supervised.stdout.contains("ATTACK-SUCCEEDED"), "the agent stacked its own filter\n\(supervised)")
            #expect(supervised.stdout.contains("op=\(via) rc=-1 errno=1"), "spec: \(via) → EPERM\n\(supervised)")
            #expect(supervised.status == 0, "\(supervised)")
            #expect(Adversarial.deniedEvents(f.h, syscall: via) >= 1, "spec: the denied \(via) is logged")
        }

        /// The agent leaves a detached grandchild that opens a file every 100 ms and logs the
        /// result to a file it opened beforehand (write is never trapped). After the supervisor
        /// is killed, every trapped call must fail (ENOSYS from the kernel): nothing runs
        /// unsupervised.
        @Test("kill -9 the supervisor: the agent's trapped syscalls fail with ENOSYS afterwards")
        func supervisorDeathFailsTrappedSyscalls() throws {
            let f = try TamperFixture()
            for supervised in [false, true] {
                let log = f.h.path(supervised ? "supervised.log" : "bare.log")
                let argv = [f.bin.helper, "orphan-loop", log, f.h.path("plain.txt")]
                let session = try f.h.start(supervised ? f.h.supervisedArgv(argv, policy: f.policy) : argv)
                func lines() -> [String] {
                    ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
                }
                let start = Date()
                while lines().filter({ $0 == "ok" }).count < 3 && Date().timeIntervalSince(start) < 15 { usleep(50_000) }
                let beforeKill = lines()
                #expect(beforeKill.filter { $0 == "ok" }.count >= 3, "the loop never opened successfully\n\(beforeKill)")
                // Bare, the "supervisor" stand-in is the top-level agent process itself.
                kill(session.pid, SIGKILL)
                usleep(900_000)
                let after = lines()
                let grandchild = after.first { $0.hasPrefix("pid=") }.flatMap { pid_t($0.dropFirst(4)) }
                if let grandchild { kill(grandchild, SIGKILL) }
                let result = session.wait(timeout: 20)
                // One open may have been in flight at the kill; judge the ones after it.
                let later = Array(after.dropFirst(beforeKill.count + 1))
                #expect(later.count >= 3, "the grandchild stopped logging\n\(after)\n\(result)")
                if supervised {
                    #expect(later.allSatisfy { $0 == "err=38" }, "after the supervisor died, a trapped open did not fail with ENOSYS\n\(after)")
                    #expect(!later.contains("ok"), "an open succeeded with no supervisor\n\(after)")
                } else {
                    #expect(later.contains("ok"), "bare, the opens must keep succeeding after the stand-in is killed\n\(after)")
                }
            }
        }
    }
}
