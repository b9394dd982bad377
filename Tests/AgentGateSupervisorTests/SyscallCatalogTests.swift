@testable import AgentGateSupervisor
import Foundation
import Testing

/// The syscall route table: every syscall of the kernel's table is accounted for, and
/// docs/syscalls.md is what `agentgate syscalls --markdown` prints.
@Suite("Syscall catalog") struct SyscallCatalogTests {
    @Test("every syscall up to the highest known number has a route and a reason")
    func complete() {
        let entries = SyscallCatalog.entries()
        let unreviewed = entries.filter { $0.why == "UNREVIEWED" }.map(\.name)
        #expect(unreviewed.isEmpty, "syscalls nobody has reviewed: \(unreviewed)")
        // 0…334 and 424…469 are assigned on x86_64 (335 is uretprobe; 336…423 are unused).
        let numbers = Set(entries.map(\.number))
        let expected = Set(Int32(0)...Int32(335)).union(Set(Int32(424)...SyscallTable.highestKnownSyscall))
        #expect(numbers == expected, "missing: \(expected.subtracting(numbers).sorted()), unexpected: \(numbers.subtracting(expected).sorted())")
    }

    @Test("the reasons for passing name only syscalls that exist and are not trapped")
    func passingListIsConsistent() {
        let table = SyscallTable(supervisorPGID: 0)
        let trappedNames = Set(table.trapped.map(\.name))
        let allNames = Set(SyscallCatalog.entries().map(\.name))
        for group in SyscallCatalog.passing {
            for name in group.names {
                #expect(allNames.contains(name), "\(name) is not an x86_64 syscall")
                #expect(!trappedNames.contains(name), "\(name) is listed as passing but is trapped")
            }
        }
    }

    @Test("calls that reach outside the session are trapped")
    func outreachingCallsAreTrapped() {
        let routes = Dictionary(SyscallCatalog.entries().map { ($0.name, $0.route) }, uniquingKeysWith: { a, _ in a })
        for name in ["pidfd_getfd", "pidfd_send_signal", "process_madvise", "process_mrelease", "pidfd_open", "acct",
                     "sethostname", "setdomainname", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "syslog",
                     "vhangup", "fanotify_init", "quotactl", "keyctl"] {
            #expect(routes[name] != .passes, "\(name) passes untrapped")
        }
    }

    @Test("docs/syscalls.md is the generated table")
    func documentIsCurrent() throws {
        let root = URL(fileURLWithPath: TestRepository.root)
        let document = try String(contentsOf: root.appendingPathComponent("docs/syscalls.md"), encoding: .utf8)
        #expect(document == SyscallCatalog.markdown(), "docs/syscalls.md is stale: regenerate it with `agentgate syscalls --markdown > docs/syscalls.md`")
    }
}
