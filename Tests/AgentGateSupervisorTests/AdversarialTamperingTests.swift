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
func tamperAttempt(_ name: String, _ args: [String], thread: Bool = false, wrap: [String] = [],
                   sourceLocation: SourceLocation = #_sourceLocation) throws -> Harness.Result {
    let f = try TamperFixture(name)
    let suffix = thread ? "-thread" : ""
    let bare = f.h.bare(wrap + [f.bin.helper] + args + ["standin" + suffix, "plain.txt"], timeout: 30)
    #expect(bare.stdout.contains("ATTACK-SUCCEEDED"),
            "\(name): bare, the attack must work on the stand-in (else this test proves nothing)\n\(bare)", sourceLocation: sourceLocation)

    // `launch` gives the supervisor default signal dispositions and mask, as from a shell (the
    // test runner may leave SIGIO and others ignored, which would hide an attack).
    let session = try f.h.start(wrap + [f.bin.helper, "launch"]
                                + f.h.supervisedArgv([f.bin.helper] + args + ["parent" + suffix, "plain.txt"], policy: f.policy))
    let supervisorPID = session.pid
    let supervised = session.wait(timeout: 30)
    #expect(!session.diedOfSignal, "\(name): the supervisor process was killed by a signal\n\(supervised)", sourceLocation: sourceLocation)
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

        @Test("the same attacks aimed at one of the supervisor's thread ids instead of its pid", arguments: [
            "kill", "tkill", "rt_sigqueueinfo", "pidfd_send_signal", "sigio-tid", "vm-readv", "ptrace-seize", "prlimit", "proc-environ", "proc-mem",
        ])
        func attackSupervisorThread(call: String) throws {
            try tamperAttempt("thread", ["attack", call], thread: true)
        }

        /// No kill() at all: the kernel delivers a signal to an fd's owner when the fd's event
        /// fires (F_SETOWN/FIOSETOWN/F_SETOWN_EX name the owner, F_SETSIG picks the signal; plain
        /// SIGIO also kills by default). Blocking kill and friends is not enough.
        @Test("make the kernel signal the supervisor as the owner of an fd", arguments: [
            "sigio", "sigio-default", "sigio-pgrp", "sigio-ioctl", "dnotify", "lease",
        ])
        func fdOwnerSignal(call: String) throws {
            try tamperAttempt("fdowner", ["attack", call])
        }

        /// No signal syscall either: root can move any process into a new cgroup (writing its pid
        /// to cgroup.procs) and kill everything in it through cgroup.kill.
        @Test("move the supervisor into a fresh cgroup, then write cgroup.kill")
        func cgroupKill() throws {
            let probe = try TamperFixture("cgroupProbe")
            let bare = probe.h.bare([probe.bin.helper, "attack", "cgroup-kill", "standin", "plain.txt"])
            if bare.stdout.contains("CGROUP-UNAVAILABLE") {
                try Test.cancel("Bare half impossible here: no writable cgroup v2 hierarchy\n\(bare.stdout)")
            }
            let supervised = try tamperAttempt("cgroupkill", ["attack", "cgroup-kill"])
            // The helper removes its cgroup, unless the supervisor's death took it down first.
            for line in supervised.stdout.split(separator: "\n") where line.hasPrefix("cgroup=") {
                rmdir(String(line.dropFirst("cgroup=".count)))
            }
        }

        @Test("kill(-1, SIGKILL) (both halves inside a throwaway PID namespace)")
        func killMinusOne() throws {
            // (Signals to the supervisor from the same user are tested, unprivileged too, above.)
            try TestUser.requireRoot("the PID namespace that keeps kill(-1) off the host takes CAP_SYS_ADMIN")
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
            try TestUser.requireRoot("mounting a procfs takes CAP_SYS_ADMIN")
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

        @Test("reach into the kernel: load a BPF program, raise the I/O privilege level", arguments: ["bpf", "iopl", "ioperm"])
        func kernelRoutes(call: String) throws {
            if call == "bpf" { try TestUser.requireRoot("loading a BPF program takes CAP_BPF or CAP_SYS_ADMIN") }
            let f = try TamperFixture()
            let supervised = f.h.supervised([f.bin.helper, "kernel", call], policy: f.policy)
            #expect(!supervised.stdout.contains("ATTACK-SUCCEEDED"), "\(call) worked under the supervisor\n\(supervised)")
            #expect(supervised.stdout.contains("op=\(call) rc=-1 errno=1"), "spec (README, route \"kernel\"): \(call) → EPERM\n\(supervised)")
            let bare = f.h.bare([f.bin.helper, "kernel", call])
            if bare.stdout.contains("errno=38") {
                try Test.cancel("Bare half impossible here: this kernel has no \(call) (ENOSYS); the supervised half ran and got EPERM-or-not as checked above")
            }
            #expect(bare.stdout.contains("ATTACK-SUCCEEDED"), "bare, \(call) must work (else this test proves nothing)\n\(bare)")
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
                waitUntil(timeout: 15) { lines().filter { $0 == "ok" }.count >= 3 }
                let beforeKill = lines()
                #expect(beforeKill.filter { $0 == "ok" }.count >= 3, "the loop never opened successfully\n\(beforeKill)")
                // Bare, the "supervisor" stand-in is the top-level agent process itself.
                kill(session.pid, SIGKILL)
                // Wait for the in-flight open and three more after the kill to be logged.
                waitUntil(timeout: 15) { lines().count >= beforeKill.count + 4 }
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
