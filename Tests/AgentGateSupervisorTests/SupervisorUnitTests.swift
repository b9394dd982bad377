@testable import AgentGateSupervisor
import AgentGatePolicy
import CSupport
import Glibc
import Testing

/// The syscall table on its own: every entry has a number, key syscalls land in the right
/// family under the right trap condition, and no number means two families.
@Suite("Syscall table") struct SyscallTableTests {
    let table = SyscallTable(supervisorPGID: 4242)

    @Test("every entry resolves to a number, from the C headers or the fallback list")
    func everyEntryHasANumber() {
        for (name, _, _) in SyscallTable.entries(supervisorPGID: 4242) {
            let number = agentgate_syscall_number(name)
            let known = number >= 0 ? number : SyscallTable.fallbackNumbers[name]
            #expect(known != nil, "\(name) has no syscall number")
            if let known { #expect(table.trapped.contains { $0.number == known && $0.name == name }, "\(name) is not in the table") }
        }
    }

    @Test("key syscalls map to their families and trap conditions")
    func keyFamilies() throws {
        func family(_ name: String) throws -> SyscallFamily {
            let number = try #require(table.trapped.first { $0.name == name }?.number, "\(name) is not trapped")
            return table.family(of: number)
        }
        guard case .openat = try family("openat") else { Issue.record("openat"); return }
        guard case .execve = try family("execve") else { Issue.record("execve"); return }
        guard case .connect = try family("connect") else { Issue.record("connect"); return }
        guard case .mutation = try family("unlink") else { Issue.record("unlink"); return }
        guard case .processTarget(.kill) = try family("kill") else { Issue.record("kill"); return }
        guard case .setpgid = try family("setpgid") else { Issue.record("setpgid"); return }
        // setpgid is trapped only when it names the supervisor's own group.
        let setpgid = try #require(table.trapped.first { $0.name == "setpgid" })
        guard case .argEquals(arg: 1, let values) = setpgid.trap else { Issue.record("setpgid's condition"); return }
        #expect(values == [4242])
        let openat = try #require(table.trapped.first { $0.name == "openat" })
        guard case .always = openat.trap else { Issue.record("openat's condition"); return }
    }

    @Test("no number is mapped to two different syscalls")
    func noNumberTwice() {
        var names: [Int32: String] = [:]
        for entry in table.trapped {
            if let earlier = names[entry.number] {
                #expect(earlier == entry.name, "\(entry.number) is both \(earlier) and \(entry.name)")
            }
            names[entry.number] = entry.name
            #expect(table.name(of: entry.number) == entry.name)
        }
    }

    @Test("unknown numbers have no family and a generic name")
    func unknownNumbers() {
        guard case .none = table.family(of: -1) else { Issue.record("-1 has a family"); return }
        guard case .none = table.family(of: 5000) else { Issue.record("5000 has a family"); return }
        #expect(table.name(of: 5000) == "syscall(5000)")
    }
}

/// Socket addresses copied out of the agent, and the names the audit gives them.
@Suite("Socket address parsing") struct SocketAddressTests {
    private func address(_ bytes: [UInt8]) -> SocketAddress {
        bytes.withUnsafeBytes { SocketAddress(copying: $0.baseAddress!, length: $0.count) }
    }

    private func family(_ value: Int32) -> [UInt8] { withUnsafeBytes(of: UInt16(value)) { Array($0) } }

    @Test("IPv4: address and port; 0.0.0.0 is named as the loopback it reaches")
    func ipv4() {
        let port: [UInt8] = [0x01, 0xbb] // 443
        let named = address(family(AF_INET) + port + [93, 184, 216, 34] + [UInt8](repeating: 0, count: 8))
        #expect(named.family == AF_INET)
        #expect(named.target == "93.184.216.34:443")
        #expect(named.unixPath == nil)
        let any = address(family(AF_INET) + port + [0, 0, 0, 0] + [UInt8](repeating: 0, count: 8))
        #expect(any.target == "127.0.0.1:443")
    }

    @Test("IPv6: RFC 5952 text in brackets; :: is ::1")
    func ipv6() {
        let port: [UInt8] = [0x00, 0x50] // 80
        let flow = [UInt8](repeating: 0, count: 4)
        var raw = [UInt8](repeating: 0, count: 16)
        raw[0] = 0x20; raw[1] = 0x01; raw[2] = 0x0d; raw[3] = 0xb8; raw[15] = 1
        let named = address(family(AF_INET6) + port + flow + raw + [0, 0, 0, 0])
        #expect(named.target == "[2001:db8::1]:80")
        let unspecified = address(family(AF_INET6) + port + flow + [UInt8](repeating: 0, count: 16) + [0, 0, 0, 0])
        #expect(unspecified.target == "[::1]:80")
    }

    @Test("unix: pathname, abstract (every byte counts) and unnamed")
    func unix() {
        let path = address(family(AF_UNIX) + Array("/run/agent.sock".utf8) + [0])
        #expect(path.target == "unix:/run/agent.sock")
        #expect(path.unixPath == "/run/agent.sock")
        let abstract = address(family(AF_UNIX) + [0] + Array("bus".utf8) + [0x01])
        #expect(abstract.target == "unix:@bus\\x01")
        #expect(abstract.unixPath == nil)
        let unnamed = address(family(AF_UNIX))
        #expect(unnamed.target == "unix:")
    }

    @Test("other and truncated families")
    func otherFamilies() {
        #expect(address(family(AF_UNSPEC)).target == "unspec")
        #expect(address(family(AF_NETLINK) + [0, 0]).target == "family:\(AF_NETLINK)")
        #expect(address([2]).family == -1)
        // sockaddr_vm: port 1234 to the host (CID 2), little-endian; a short one names nothing.
        #expect(address(family(AF_VSOCK) + [0, 0, 0xd2, 0x04, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]).target == "vsock:2:1234")
        #expect(address(family(AF_VSOCK) + [0, 0]).target == "family:\(AF_VSOCK)")
    }
}

/// /proc parsing: /proc/TID/status and /proc/PID/stat of this very process.
@Suite("Proc parsing") struct ProcParsingTests {
    @Test("/proc/self/status: ids, parent and credentials of the test process")
    func status() {
        let status = ProcStatus(tid: getpid())
        #expect(status.readOK)
        #expect(status.tgid == getpid())
        #expect(status.ppid == getppid())
        #expect(status.uids.count == 4 && status.uids[0] == getuid() && status.uids[1] == geteuid())
        #expect(status.gids.count == 4 && status.gids[0] == getgid() && status.gids[1] == getegid())
        let mask = umask(0o022)
        umask(mask)
        #expect(status.umask == UInt32(mask))
    }

    @Test("status text: every field read from its bytes; odd values are skipped, not guessed")
    func statusText() {
        let text = "Name:\tx y\nUmask:\t0027\nTgid:\t4242\nPid:\t4243\nPPid:\t17\nUid:\t1000\t1001\t1002\t1003\n"
            + "Gid:\t5 6 7 8\nGroups:\t4 24 27 4294967296 x 30 \nCapPrm:\t000001ffffffffff\nCapEff:\t0000000000000400\n"
            + "Tgidx:\t9\nPPid"
        var status = ProcStatus(tid: Int32.max)
        Array(text.utf8).withUnsafeBufferPointer { status.parse($0) }
        #expect(status.tgid == 4242 && status.ppid == 17 && status.umask == 0o027)
        #expect(status.uids == [1000, 1001, 1002, 1003] && status.gids == [5, 6, 7, 8])
        #expect(status.groups == [4, 24, 27, 30])
        #expect(status.capPrm == 0x1ff_ffff_ffff && status.capEff == 0x400)
    }

    @Test("names as text: an escape spelled in a valid name still has its backslash doubled")
    func namesAsText() {
        #expect(String(pathBytes: Array("/tmp/a\\xFF".utf8)) == "/tmp/a\\\\xFF")
        #expect(String(pathBytes: Array("/tmp/a\\yx".utf8)) == "/tmp/a\\yx")
        #expect(String(pathBytes: [0x2f, 0x61, 0xff]) == "/a\\xFF")
        #expect(String(pathBytes: Array("/usr/lib/x86_64".utf8)) == "/usr/lib/x86_64")
    }

    @Test("a thread that doesn't exist reads as unreadable")
    func missing() {
        let status = ProcStatus(tid: Int32.max)
        #expect(!status.readOK)
        #expect(status.uids.isEmpty)
        #expect(ProcStat.field(1, of: Int32.max) == -1)
        #expect(ProcStat.field(1, of: 0) == -1)
    }

    @Test("/proc/PID/stat: parent and process group, counted after the command name")
    func stat() {
        #expect(ProcStat.field(1, of: getpid()) == getppid())
        #expect(ProcStat.field(2, of: getpid()) == getpgrp())
    }

    @Test("the process table reads the facts of a process once, then from its cache")
    func processFacts() {
        let table = ProcessTable()
        let first = table.facts(for: getpid())
        #expect(first.firstSeen)
        #expect(first.tgid == getpid())
        #expect(first.ppid == getppid())
        #expect(first.executable.hasPrefix("/"))
        let again = table.facts(for: getpid())
        #expect(!again.firstSeen)
        #expect(again.executable == first.executable)
        table.closeAll()
    }
}

/// How the supervisor names a path the kernel could not resolve, and what lies within a root.
@Suite("Lexical path naming") struct LexicalPathNamingTests {
    @Test("relative paths join the base; `.`, `..` and repeated slashes go; nothing climbs above /")
    func absolute() {
        #expect(PathLexical.absolute("b/./c", base: "/a") == "/a/b/c")
        #expect(PathLexical.absolute("../../../etc//passwd", base: "/home/u") == "/etc/passwd")
        #expect(PathLexical.absolute("/x/y/..", base: "/ignored") == "/x")
        #expect(PathLexical.absolute("", base: "/") == "/")
        #expect(PathLexical.absolute("name", base: "anon_inode:[eventfd]") == "/anon_inode:[eventfd]/name")
    }

    @Test("a path is within its root or below it, not beside it")
    func within() {
        #expect(PathLexical.isWithin("/sys/fs/cgroup", root: "/sys/fs/cgroup"))
        #expect(PathLexical.isWithin("/sys/fs/cgroup/user.slice", root: "/sys/fs/cgroup"))
        #expect(PathLexical.isWithin("/etc/x", root: "/etc/"))
        #expect(!PathLexical.isWithin("/sys/fs/cgroupfoo", root: "/sys/fs/cgroup"))
    }
}

/// The recorder keeps decisions typed until the event is built, and counts them as such.
@Suite("Decision recording") struct DecisionRecordingTests {
    @Test("decisions are counted by kind, and the first exec's enforced denial is remembered")
    func counts() {
        let counts = DecisionCounts()
        let recorder = DecisionRecorder(writer: nil, counts: counts)
        let notification = Notification(seccomp_notif(), receivedAt: 0)
        let process = ProcessFacts(tgid: getpid(), ppid: getppid(), executable: "/bin/sh")
        let deny = Verdict(decision: .deny, ruleIndex: nil, reason: .defaultDecision)
        let log = Verdict(decision: .log, ruleIndex: nil, reason: .matchedRule)
        recorder.record(.init(syscall: "execve", action: .exec, target: "/bin/false", verdict: deny, errno: EACCES),
                        notification: notification, process: process, respondedAt: 0)
        recorder.record(.init(syscall: "openat", action: .fsRead, target: "/etc/hosts", verdict: log),
                        notification: notification, process: process, respondedAt: 0)
        recorder.record(.denied(syscall: "openat", action: .fsWrite, target: "/etc/passwd", reason: "off limits", errno: EACCES),
                        notification: notification, process: process, respondedAt: 0)
        #expect(counts.deniedCount == 2)
        #expect(counts.loggedCount == 1)
        #expect(counts.allowedCount == 0)
        #expect(counts.firstExec?.target == "/bin/false")
        #expect(counts.firstExecDenial?.target == "/bin/false")
    }

    @Test("an exec allowed in audit mode is not a denial of the session's command")
    func auditModeExec() {
        let counts = DecisionCounts()
        let recorder = DecisionRecorder(writer: nil, counts: counts)
        let audited = Verdict(decision: .deny, ruleIndex: nil, reason: .defaultDecision, enforced: false)
        recorder.record(.init(syscall: "execve", action: .exec, target: "/bin/true", verdict: audited),
                        notification: Notification(seccomp_notif(), receivedAt: 0),
                        process: ProcessFacts(tgid: 1, ppid: 0, executable: "/bin/sh"), respondedAt: 0)
        #expect(counts.firstExec != nil)
        #expect(counts.firstExecDenial == nil)
    }
}
