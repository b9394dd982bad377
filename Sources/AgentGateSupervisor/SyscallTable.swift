import CSupport

/// The families of trapped syscalls. Each has its own handler, so a family can move from
/// "check" to "perform on the agent's behalf" without touching the others.
enum SyscallFamily: UInt8, Sendable {
    case none = 0
    case open      // open(path, flags, mode)
    case openat    // openat(dirfd, path, flags, mode)
    case openat2   // openat2(dirfd, path, how, size)
    case creat     // creat(path, mode)
    case execve    // execve(path, argv, envp)
    case execveat  // execveat(dirfd, path, argv, envp, flags)
    case connect   // connect(fd, addr, len)
}

/// Maps native syscall numbers to families, resolved once through libseccomp so no syscall
/// number is written by hand.
struct SyscallTable: Sendable {
    static let trapped: [(name: String, family: SyscallFamily)] = [
        ("open", .open), ("openat", .openat), ("openat2", .openat2), ("creat", .creat),
        ("execve", .execve), ("execveat", .execveat), ("connect", .connect),
    ]

    private var familyByNumber: [SyscallFamily]
    private var nameByNumber: [String]
    /// (number, family) for every trapped syscall this architecture has.
    private(set) var entries: [(number: Int32, name: String, family: SyscallFamily)] = []

    init() {
        familyByNumber = Array(repeating: .none, count: 1024)
        nameByNumber = Array(repeating: "", count: 1024)
        for (name, family) in Self.trapped {
            let number = agentgate_syscall_number(name)
            guard number >= 0, number < 1024 else { continue }
            familyByNumber[Int(number)] = family
            nameByNumber[Int(number)] = name
            entries.append((number, name, family))
        }
    }

    func family(of number: Int32) -> SyscallFamily {
        guard number >= 0, Int(number) < familyByNumber.count else { return .none }
        return familyByNumber[Int(number)]
    }

    func name(of number: Int32) -> String {
        guard number >= 0, Int(number) < nameByNumber.count, !nameByNumber[Int(number)].isEmpty else {
            return "syscall(\(number))"
        }
        return nameByNumber[Int(number)]
    }
}
