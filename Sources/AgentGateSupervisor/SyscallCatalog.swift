import AgentGatePolicy
import CSupport

/// Every x86_64 syscall this supervisor knows, with what happens to it and why: the review of
/// the kernel's whole table, kept where the table is. Trapped syscalls take their route from
/// `SyscallTable`; the rest pass, each for a reason given here. A test checks that every number
/// up to `SyscallTable.highestKnownSyscall` is accounted for, and that docs/syscalls.md is this
/// catalog as `agentgate syscalls --markdown` prints it.
public enum SyscallCatalog {
    /// How a syscall is handled.
    public enum Route: String, Sendable, CaseIterable {
        /// Not trapped: the kernel runs it with the agent's own credentials.
        case passes
        /// Trapped and decided on its register values (or a copy), then continued in the kernel.
        case decided
        /// Trapped and performed by the supervisor on exactly what was decided.
        case emulated
        /// Trapped and refused (an `allow_unsupervised` route may reopen it).
        case denied
    }

    public struct Entry: Sendable {
        public let number: Int32
        public let name: String
        public let route: Route
        /// When the route applies only to some calls: which (the rest pass).
        public let condition: String?
        public let why: String
    }

    /// x86_64 names newer than libseccomp 2.5.4, which can't name them.
    static let newerNames: [Int32: String] = [
        335: "uretprobe", 457: "statmount", 458: "listmount", 459: "lsm_get_self_attr", 460: "lsm_set_self_attr",
        461: "lsm_list_modules", 462: "mseal", 463: "setxattrat", 464: "getxattrat", 465: "listxattrat",
        466: "removexattrat", 467: "open_tree_attr", 468: "file_getattr", 469: "file_setattr",
    ]

    /// The name of native syscall `number`, or nil for a number the kernel doesn't assign.
    static func name(of number: Int32) -> String? {
        if let newer = newerNames[number] { return newer }
        var buffer = [CChar](repeating: 0, count: 64)
        let length = agentgate_syscall_name(number, &buffer, buffer.count)
        guard length > 0 else { return nil }
        return String(cBuffer: buffer, count: Int(length))
    }

    /// Why each untrapped syscall may pass.
    static let passing: [(reason: String, names: [String])] = [
        ("I/O on an fd the agent already holds: the open, connect or accept that produced it was decided.",
         ["read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2", "lseek",
          "close", "close_range", "dup", "dup2", "dup3", "fsync", "fdatasync", "sync_file_range", "fallocate", "ftruncate",
          "flock", "fadvise64", "readahead", "sendfile", "splice", "tee", "vmsplice", "copy_file_range"]),
        ("Names and metadata, not content: a denied file's existence, size and times stay visible (README, limits).",
         ["stat", "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs", "access", "faccessat", "faccessat2",
          "readlink", "readlinkat", "getdents", "getdents64", "getcwd", "getxattr", "lgetxattr", "fgetxattr", "listxattr",
          "llistxattr", "flistxattr", "getxattrat", "listxattrat", "file_getattr", "name_to_handle_at", "ustat", "sysfs"]),
        ("Changes only where the agent's relative paths start; the supervisor resolves each path from the agent's own cwd.",
         ["chdir", "fchdir"]),
        ("The supervisor reads the agent's umask and applies it to every create it performs.", ["umask"]),
        ("The agent's own memory; mapping a file takes an fd the agent already holds.",
         ["mmap", "mprotect", "munmap", "mremap", "msync", "mincore", "madvise", "mlock", "munlock", "mlockall", "munlockall",
          "mlock2", "brk", "remap_file_pages", "mbind", "set_mempolicy", "get_mempolicy", "set_mempolicy_home_node",
          "membarrier", "pkey_mprotect", "pkey_alloc", "pkey_free", "memfd_create", "memfd_secret", "mseal",
          "map_shadow_stack", "cachestat"]),
        ("The calling process only. New processes and threads inherit the filter; clone asking for a namespace is trapped.",
         ["fork", "vfork", "exit", "exit_group", "wait4", "waitid", "getpid", "getppid", "gettid", "getpgid", "getpgrp",
          "getsid", "setsid", "set_tid_address", "set_robust_list", "futex", "futex_waitv", "futex_wake", "futex_wait",
          "futex_requeue", "rseq", "arch_prctl", "personality", "getrusage", "getrlimit", "times",
          "getpriority", "sched_yield", "sched_getparam", "sched_getscheduler", "sched_get_priority_max",
          "sched_get_priority_min", "sched_rr_get_interval", "sched_getaffinity", "sched_getattr", "ioprio_get", "getcpu",
          "capget", "uname", "sysinfo", "getrandom", "modify_ldt", "set_thread_area", "get_thread_area", "uretprobe",
          "restart_syscall", "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups"]),
        ("The caller's own signal state and timers.",
         ["rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait", "rt_sigsuspend", "sigaltstack",
          "pause", "signalfd", "signalfd4", "alarm", "nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres",
          "gettimeofday", "time", "getitimer", "setitimer", "timer_create", "timer_settime", "timer_gettime",
          "timer_getoverrun", "timer_delete", "timerfd_create", "timerfd_settime", "timerfd_gettime"]),
        ("Waits for events on fds the agent holds; inotify reports changes to names, never content.",
         ["select", "pselect6", "poll", "ppoll", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait",
          "epoll_pwait2", "eventfd", "eventfd2", "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
          "pipe", "pipe2"]),
        ("Local and inbound sockets. Connects, binds and sends to a destination are performed by the supervisor; a send on a connected socket goes where the decided connect went.",
         ["socketpair", "listen", "accept", "accept4", "shutdown", "getsockname", "getpeername", "recvfrom", "recvmsg",
          "recvmmsg"]),
        ("System V and POSIX IPC objects are not files: the policy has no rules for them, and their own permissions apply (README, limits).",
         ["shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl", "msgget", "msgsnd", "msgrcv",
          "msgctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr"]),
        ("Asynchronous I/O on fds the agent holds; it opens nothing. (io_uring's rings come only from io_uring_setup, which is denied.)",
         ["io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents", "io_uring_enter",
          "io_uring_register"]),
        ("Restricts or describes the caller itself (Landlock, LSM attributes), or reads the mount table.",
         ["landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self", "lsm_get_self_attr", "lsm_set_self_attr",
          "lsm_list_modules", "statmount", "listmount"]),
        ("Flushes caches to disk; changes no file's content.", ["sync", "syncfs"]),
        ("Not implemented by this kernel: the kernel answers ENOSYS.",
         ["create_module", "get_kernel_syms", "query_module", "nfsservctl", "getpmsg", "putpmsg", "afs_syscall", "tuxcall",
          "security", "vserver", "epoll_ctl_old", "epoll_wait_old", "lookup_dcookie", "_sysctl"]),
    ]

    /// What the conditions of a trap mean, for the syscalls trapped only sometimes.
    static let conditions: [String: String] = [
        "sendto": "with a destination address",
        "socket": "for AF_PACKET and AF_NETLINK, and for SOCK_RAW and SOCK_PACKET of any family",
        "ioctl": "FIOSETOWN, SIOCSPGRP, TIOCSTI, TIOCLINUX, TIOCCONS, TIOCVHANGUP, TIOCSCTTY stealing a terminal, the chattr ioctls, file-system freeze, thaw, shutdown, relabel and resize, and the socket (0x89), console keyboard (0x4b) and virtual terminal (0x56) families",
        "getsockopt": "SO_PEERCRED and SO_PEERPIDFD",
        "setsockopt": "SO_PASSPIDFD, source routes (IP_OPTIONS, IPV6_RTHDR, IPV6_2292RTHDR, IPV6_2292PKTOPTIONS), and the firewall and NAT tables (IPT_SO_SET_*, IP6T_SO_SET_*, ARPT_SO_SET_*, EBT_SO_SET_*, IP_VS_SO_SET_*)",
        "prctl": "PR_SET_SECCOMP, PR_SET_MM and the capability options (CAPBSET_DROP, SET_SECUREBITS, CAP_AMBIENT)",
        "unshare": "with a namespace flag",
        "clone": "with a namespace flag",
        "fcntl": "F_SETOWN and F_SETOWN_EX",
        "setrlimit": "RLIMIT_CORE",
        "setpgid": "into the supervisor's process group",
        "prlimit64": "naming another process (pid not 0) or setting a limit; reading the caller's own limits passes",
        "kill": "with a signal (signal 0 only asks whether the pid exists)",
        "tkill": "with a signal (signal 0 only asks whether the thread exists)",
        "tgkill": "with a signal (signal 0 only asks whether the thread exists)",
    ]

    /// The route and reason for a trapped family.
    static func describe(_ family: SyscallFamily, name: String) -> (Route, String) {
        switch family {
        case .none:
            return (.denied, "Never reaches user space: the filter itself answers ENOSYS. clone3 keeps its flags in memory the filter can't read, and libc falls back to clone.")
        case .open, .openat, .openat2, .creat:
            return (.emulated, "Resolved by the kernel without side effects (O_PATH), decided on the resolved path, then that very object is opened by the supervisor and its fd injected (SECCOMP_IOCTL_NOTIF_ADDFD). O_PATH opens are decided and continued.")
        case .execve, .execveat:
            return (.decided, "exec can't be performed for the agent: the program, its #! chain, its ELF interpreter and ld.so's program are decided, the kernel continues, and the image is verified at the process's next trapped call.")
        case .connect:
            return (.emulated, "Connected by the supervisor on its copy of the agent's socket (pidfd_getfd), to its copy of the address.")
        case .bind:
            return (.emulated, "Bound by the supervisor on its copy of the socket; a pathname unix bind is decided as fs_write on the resolved directory entry.")
        case .sendto, .sendmsg, .sendmmsg:
            return (.emulated, "Each message is decided on the supervisor's copy of its address and sent by the supervisor, with SCM_RIGHTS translated and SCM_CREDENTIALS checked against the agent's own credentials.")
        case .mutation:
            return (.emulated, "Each path is resolved and decided as fs_write, then the same call is made by the supervisor on /proc/self/fd/N paths of exactly what was decided.")
        case .unsupervised(let route, _):
            return (.denied, "The `\(route.rawValue)` route: \(routeReason(route)) Reopened only by `allow_unsupervised: [\(route.rawValue)]`.")
        case .namespaces:
            return (.denied, "A new namespace lets the agent remount or rename what paths mean (`namespaces` route). setns into the namespaces of a process outside the session is refused even when the route is open.")
        case .prctl:
            return (.decided, "PR_SET_SECCOMP is the `seccomp` route; PR_SET_MM (which rewrites what /proc says the image and its argv are) is the `kernel` route; the capability options mark the session's credentials as possibly changed, so every later emulated call checks them.")
        case .processTarget:
            return (.decided, "Decided on the process, thread, group or user the call names: only processes in the session's tree (never the supervisor, never everyone) may be reached. Real-time scheduling and the real-time I/O class are the `realtime` route; sched_setattr is performed on a copy.")
        case .processHandle(let call):
            switch call {
            case .pidfdOpen:
                return (.emulated, "Opened by the supervisor and checked while the pidfd holds the process: no pidfd of the supervisor or of a process outside the session reaches the agent.")
            case .pidfdSendSignal:
                return (.emulated, "Decided on the process the handle refers to (a pidfd, or a /proc/PID directory) and sent by the supervisor through its own copy of the handle, naming the agent as the sender (SI_QUEUE).")
            default:
                return (.decided, "Decided on the process the pidfd refers to; continued, so the kernel checks the agent's own ptrace rights. The agent only ever holds pidfds of session processes.")
            }
        case .socketOption:
            return name == "setsockopt"
                ? (.denied, "SO_PASSPIDFD (SCM_PIDFD) would hand the receiver pidfds of the supervisor (for messages it sends) and of processes outside the session: refused with ENOPROTOOPT, as an older kernel would. The firewall and NAT table options are the `net_admin` route.")
                : (.emulated, "Read by the supervisor on its copy of the socket. Where the kernel names the supervisor (it performs connects), the answer names the agent process it connected for; a pidfd of a process outside the session is refused.")
        case .coreLimit:
            return (.emulated, "Only the core-dump limit is trapped: a core file is written by the kernel in the working directory with no decision, so RLIMIT_CORE is 0 under supervision; setting it to 0 is performed on a copy, raising it is the `kernel` route.")
        case .syslog:
            return (.decided, "Reading the kernel log passes; consuming, clearing and the console level change it for everyone (`host` route).")
        case .clockAdjust:
            return (.emulated, "A query (modes 0) is performed on a copy; a change to the clock is the `host` route.")
        case .setpgid:
            return (.denied, "Joining the supervisor's process group would expose it to kill(0).")
        case .fileOwner:
            return (.emulated, "The owner of a file receives its I/O signals (any signal, with F_SETSIG): only a process or group in the session may be made one. F_SETOWN is decided on its register value; F_SETOWN_EX is performed on a copy.")
        case .credentials:
            return (.decided, "Continued; a real change marks the session's credentials as changed, so every later call performed for the agent first checks the agent has at least the supervisor's.")
        case .unsupported(let errno):
            return (.denied, "Not emulated by this supervisor: refused (errno \(errno)) and logged rather than let through.")
        case .socket:
            return (.decided, "Decided on the socket the kernel will create: packet and raw sockets are the `raw_sockets` route (they write their own headers); netlink families that configure the kernel (netfilter, xfrm, …) are the `net_admin` route. Route, diagnostic, audit, FIB lookup, uevent and generic netlink are allowed; when the supervisor holds CAP_NET_ADMIN or the audit capabilities, it creates those sockets itself without them (netlink checks the socket's creator), so they can query but not reconfigure.")
        case .descriptorIoctl:
            return (.emulated, "chattr ioctls are decided as fs_write on the file and performed on the supervisor's copy; FIOSETOWN/SIOCSPGRP as F_SETOWN_EX; TIOCSTI, TIOCLINUX are refused; freeze, thaw, shutdown, relabel and resize of a file system, TIOCCONS, TIOCVHANGUP, a forced TIOCSCTTY and the console and virtual-terminal setters are the `host` route; interface, route and ARP setters (0x89) are the `net_admin` route. Getters of those families continue.")
        }
    }

    static func routeReason(_ route: UnsupervisedRoute) -> String {
        switch route {
        case .ioUring: return "io_uring performs opens and connects from kernel workers seccomp never sees."
        case .openByHandleAt: return "it opens a file by handle, with no path to decide on."
        case .mount: return "mounts change what a path means."
        case .namespaces: return "a new namespace lets the agent remount."
        case .seccomp: return "a stacked filter could hide syscalls from the supervisor."
        case .kernel: return "kernel control a root agent could use to leave any sandbox."
        case .rawSockets: return "raw and packet sockets write their own headers."
        case .cgroups: return "cgroup writes could end or freeze the supervisor."
        case .netAdmin: return "configuring the host's network (firewall and NAT tables, interfaces, routes, netfilter and xfrm netlink) could redirect the agent's traffic."
        case .host: return "settings every process on the host shares (names, clocks, accounting, quotas, the console, terminal hangup)."
        case .fanotify: return "it hands out fds of files other processes open, and its permission events can hold the supervisor."
        case .keyring: return "the kernel keyrings hold credentials."
        case .realtime: return "a spinning real-time process can take a CPU from the host."
        case .anonymousExec: return "an image with no path has no name for the policy to decide on."
        }
    }

    /// The whole catalog, in syscall-number order.
    public static func entries() -> [Entry] {
        let table = SyscallTable(supervisorPGID: 0)
        var reasons: [String: String] = [:]
        for group in passing { for name in group.names { reasons[name] = group.reason } }
        var result: [Entry] = []
        for number in 0...SyscallTable.highestKnownSyscall {
            guard let name = name(of: number) else { continue }
            if let trap = table.trapped.first(where: { $0.number == number }) {
                let family = table.family(of: number)
                let (route, why) = describe(family, name: trap.name)
                var condition = conditions[name]
                if case .kernelErrno = trap.trap { condition = nil }
                result.append(Entry(number: number, name: name, route: route, condition: condition, why: why))
            } else {
                result.append(Entry(number: number, name: name, route: .passes, condition: nil,
                                    why: reasons[name] ?? "UNREVIEWED"))
            }
        }
        return result
    }

    /// The catalog as a Markdown document (docs/syscalls.md).
    public static func markdown() -> String {
        var text = """
            # Syscall routes (x86_64)

            Every syscall of the x86_64 table up to number \(SyscallTable.highestKnownSyscall) (Linux 6.18), and what \
            AgentGate does with it. Generated by `agentgate syscalls --markdown`; a test checks this file against it.

            - **passes**: not trapped; the kernel runs it with the agent's own credentials.
            - **decided**: trapped, decided on its register values (or the supervisor's copy of its memory), then \
            continued in the kernel.
            - **emulated**: trapped and performed by the supervisor on exactly what was decided.
            - **denied**: trapped and refused; where a route is named, `allow_unsupervised` may reopen it.
            - A route with a condition applies to the calls it names; the others pass.

            Also: any syscall from a non-native ABI (i386 `int 0x80`, x32) kills the process, and any number above \
            \(SyscallTable.highestKnownSyscall) is answered ENOSYS by the filter itself, so a syscall newer than this table \
            never passes unchecked. Numbers 336 to 423 are unassigned on x86_64.

            | # | syscall | route | when | why |
            |---|---|---|---|---|

            """
        for entry in entries() {
            let why = entry.why.split(separator: "|", omittingEmptySubsequences: false).joined(separator: "\\|")
            let when = entry.route == .passes ? "—" : entry.condition ?? "always"
            text += "| \(entry.number) | \(entry.name) | \(entry.route.rawValue) | \(when) | \(why) |\n"
        }
        return text
    }
}
