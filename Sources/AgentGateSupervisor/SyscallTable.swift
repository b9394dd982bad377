import AgentGatePolicy
import CSupport
import Glibc

/// How a path argument of a mutating syscall is resolved before the decision.
enum PathOperandKind: Sendable, Equatable {
    /// The directory entry itself (unlink, rename, mkdir, l* calls): parent resolved, final
    /// component not followed.
    case entry
    /// The object, following a final symlink (chmod, truncate, setxattr…).
    case object
    /// The object itself without following a final symlink (lchown, lsetxattr…): the entry, but
    /// a trailing slash makes the kernel follow the symlink, and then it is the object.
    case noFollow
    /// The object, or `noFollow` when this AT_* flag is set in `flagsArg` (AT_SYMLINK_NOFOLLOW).
    case objectUnless(flag: Int32)
    /// The entry, or the object when this AT_* flag is set (linkat's AT_SYMLINK_FOLLOW).
    case entryUnless(flag: Int32)
}

/// One path argument: where it is and what deciding it takes.
struct PathOperand: Sendable {
    var dirfdArg: Int?
    var pathArg: Int
    var kind: PathOperandKind
    /// Besides fs_write, the source of a link or rename must be readable: otherwise a protected
    /// file could be linked or moved somewhere readable.
    var alsoRead = false
}

/// Another pointer argument copied into the supervisor before the call is made.
enum MemoryArgument: Sendable {
    case string(arg: Int)                // symlink target, xattr name
    case fixed(arg: Int, bytes: Int)     // utime/utimes/utimensat times (NULL allowed)
    case sized(arg: Int, sizeArg: Int)   // setxattr value
}

/// A path-mutating syscall: performed by the supervisor on exactly what was decided.
struct MutationSpec: Sendable {
    var operands: [PathOperand]
    var memory: [MemoryArgument] = []
    var flagsArg: Int? = nil
    /// Mode argument that needs the agent's umask (mkdir, mknod).
    var createModeArg: Int? = nil
    /// The call acts on an open fd (fchmod, fsetxattr…): the file is taken with pidfd_getfd
    /// and decided on its path.
    var fdArg: Int? = nil
}

/// The families of trapped syscalls. Each has its own handler; SyscallDispatch.swift routes a
/// notification to it (a new syscall: an entry in `entries` below, a case there, a handler).
enum SyscallFamily: Sendable {
    case none
    case open, openat, openat2, creat
    case execve, execveat
    case connect
    case bind
    case sendto, sendmsg, sendmmsg
    case mutation(MutationSpec)
    /// A route the supervisor can't see through: denied with this errno unless the policy
    /// reopens it (`allow_unsupervised`).
    case unsupervised(UnsupervisedRoute, errno: Int32)
    /// unshare/setns/clone: denied when they ask for a namespace.
    case namespaces(flagsArg: Int)
    /// prctl options trapped by the filter (PR_SET_SECCOMP, capability changes).
    case prctl
    /// Calls aimed at a process, a thread, a process group or a user: allowed only within the
    /// session's process tree (see ProcessHandlers).
    case processTarget(ProcessTargetCall)
    /// Calls that take a process handle (pidfd, or a /proc/PID directory fd), and pidfd_open:
    /// decided on the process the handle refers to (see ProcessHandlers).
    case processHandle(ProcessHandleCall)
    /// getsockopt(SO_PEERCRED, SO_PEERPIDFD) and setsockopt(SO_PASSPIDFD): what a unix socket
    /// tells about its peer must never lead to the supervisor or outside the session.
    case socketOption
    /// setrlimit(RLIMIT_CORE): raising the core-dump limit (see ProcessHandlers.coreLimit).
    case coreLimit
    /// syslog(2): reading the kernel log passes; clearing it or changing the console level is
    /// the `host` route.
    case syslog
    /// adjtimex and clock_adjtime: read-only queries are performed on a copy; changes to the
    /// clock are the `host` route.
    case clockAdjust(bufferArg: Int)
    /// setpgid into the supervisor's process group.
    case setpgid
    /// fcntl(F_SETOWN/F_SETOWN_EX) and ioctl(FIOSETOWN/SIOCSPGRP): whom the kernel signals for
    /// I/O on the file (SIGIO, or any signal chosen with F_SETSIG).
    case fileOwner
    /// setuid & co.: the agent's credentials may now differ from the supervisor's.
    case credentials
    /// A syscall this supervisor can't emulate faithfully: refused with this errno and logged.
    case unsupported(errno: Int32)
    /// socket(): raw and packet sockets write headers the supervisor can't decide on.
    case socket
    /// fcntl/ioctl that change a file's flags or attributes through an fd (chattr).
    case descriptorIoctl

    var isExec: Bool {
        switch self {
        case .execve, .execveat: return true
        default: return false
        }
    }

    /// Whether the call may change what the audit's process record holds: credentials,
    /// capabilities (prctl's capability options, a new user namespace) or the image.
    var mayChangeIdentity: Bool {
        switch self {
        case .execve, .execveat, .credentials, .prctl, .namespaces: return true
        default: return false
        }
    }
}

/// When the filter sends a syscall to the supervisor.
enum TrapCondition: Sendable {
    case always
    /// Only when argument `arg` equals one of the values.
    case argEquals(arg: UInt32, values: [UInt64])
    /// Only when argument `arg` is non-zero (sendto with a destination).
    case argNonZero(arg: UInt32)
    /// Only when any of these bits is set in argument `arg`.
    case argAnyBit(arg: UInt32, bits: [UInt64])
    /// Never trapped: the filter itself fails the call with this errno.
    case kernelErrno(Int32)
    /// Only when (argument `arg` & mask) == value.
    case argMaskedEquals(arg: UInt32, mask: UInt64, value: UInt64)
    /// Only when every listed int argument equals its value.
    case argsEqual([(arg: UInt32, value: UInt64)])
}

/// Which process-targeting call a notification is, so its pid arguments can be read.
enum ProcessTargetCall: Sendable {
    case kill, tkill, tgkill, rtSigqueueinfo, rtTgsigqueueinfo
    case ptrace, processVM, prlimit, kcmp, getRobustList, perfEventOpen
    case setpriority, ioprioSet
    case schedSetaffinity, schedSetscheduler, schedSetparam, schedSetattr
    case migratePages, movePages
}

/// Calls that take a process handle.
enum ProcessHandleCall: Sendable {
    case pidfdOpen, pidfdSendSignal, pidfdGetfd, processMadvise, processMrelease
}

/// Namespace flags that give the agent a new mount, user, pid… namespace.
let namespaceFlags: [UInt64] = [0x0002_0000 /* NEWNS */, 0x1000_0000 /* NEWUSER */, 0x2000_0000 /* NEWPID */,
                                0x4000_0000 /* NEWNET */, 0x0400_0000 /* NEWUTS */, 0x0800_0000 /* NEWIPC */,
                                0x0200_0000 /* NEWCGROUP */, 0x0000_0080 /* NEWTIME */]
let prctlSetSeccomp: UInt64 = 22
/// chattr-style ioctls: FS_IOC_SETFLAGS, FS_IOC32_SETFLAGS, FS_IOC_FSSETXATTR.
let descriptorIoctls: [UInt64] = [0x4008_6602, 0x4004_6602, 0x401c_5820]
let terminalInjectionIoctls: [UInt64] = [0x5412 /* TIOCSTI */, 0x541c /* TIOCLINUX */]
/// ioctls that act on a whole file system or the console for every process on the host: freeze,
/// thaw and shut down a file system, relabel, resize or reshape it, redirect the console.
let hostIoctls: [UInt64] = [
    0xc004_5877, /* FIFREEZE */ 0xc004_5878, /* FITHAW */ 0x8004_587d, /* FS_IOC_SHUTDOWN (ext4, xfs, f2fs) */
    0x4100_9432, /* FS_IOC_SETFSLABEL */ 0x4008_6610, /* EXT4_IOC_RESIZE_FS */ 0x4008_6607, /* EXT4_IOC_GROUP_EXTEND */
    0x4028_6608, /* EXT4_IOC_GROUP_ADD */ 0x0000_6611, /* EXT4_IOC_SWAP_BOOT */
    0x4010_586e, /* XFS_IOC_FSGROWFSDATA */ 0x4008_586f, /* XFS_IOC_FSGROWFSLOG */ 0x4010_5870, /* XFS_IOC_FSGROWFSRT */
    0x5000_9403, /* BTRFS_IOC_RESIZE */ 0x5000_940a, /* BTRFS_IOC_ADD_DEV */ 0x5000_940b, /* BTRFS_IOC_RM_DEV */
    0x5000_943a, /* BTRFS_IOC_RM_DEV_V2 */ 0x5000_940f, /* BTRFS_IOC_SNAP_DESTROY */ 0x5000_943f, /* BTRFS_IOC_SNAP_DESTROY_V2 */
    0xc400_9420, /* BTRFS_IOC_BALANCE_V2 */ 0x4004_9421, /* BTRFS_IOC_BALANCE_CTL */ 0xc400_941b, /* BTRFS_IOC_SCRUB */
    0xca28_9435, /* BTRFS_IOC_DEV_REPLACE */ 0xc010_9428, /* BTRFS_IOC_QUOTA_CTL */
    0x541d, /* TIOCCONS */ 0x5437, /* TIOCVHANGUP: the ioctl that does what vhangup(2) does */
]
/// ioctl families trapped by their type byte and decided by command: network interface,
/// routing and ARP configuration (0x89), console keyboard (0x4b) and virtual terminals (0x56).
let socketIoctlFamily: UInt64 = 0x8900
let consoleIoctlFamily: UInt64 = 0x4b00
let virtualTerminalIoctlFamily: UInt64 = 0x5600
/// Block-device (0x12) and loop-device (0x4c) ioctls, trapped by type whatever their size and
/// direction bits: a read-only fd of a block device or a loop device would otherwise let a root
/// agent set devices read-only, discard their blocks, detach or reshape loop devices.
let blockIoctlType: UInt64 = 0x12
let loopIoctlType: UInt64 = 0x4c
/// Commands of those types that only read: BLKROGET, BLKGETSIZE, BLKRAGET, BLKFRAGET,
/// BLKSECTGET, BLKSSZGET, BLKBSZGET, BLKGETSIZE64, BLKIOMIN, BLKIOOPT, BLKALIGNOFF, BLKPBSZGET,
/// BLKDISCARDZEROES, BLKROTATIONAL, BLKGETDISKSEQ, BLKGETZONESZ, BLKGETNRZONES (by number);
/// LOOP_GET_STATUS, LOOP_GET_STATUS64.
let readOnlyBlockIoctlNumbers: Set<UInt64> = [0x5e, 0x60, 0x63, 0x65, 0x67, 0x68, 0x70, 0x72, 0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x7e, 0x80, 0x84, 0x85]
let readOnlyLoopIoctls: Set<UInt64> = [0x4c03, 0x4c05]
/// fcntl(F_SETLEASE): with CAP_LEASE, a lease on any file holds every other process's open of it.
let fcntlSetLease: UInt64 = 1024
/// TIOCSCTTY with a non-zero argument steals a terminal from another session (CAP_SYS_ADMIN).
let ioctlStealTerminal: UInt64 = 0x540e
/// Commands of those families that only read. Not SIOCGSKNS (0x894c): it hands out the
/// socket's network namespace (CAP_NET_ADMIN there), which for a socket the DNS capture swapped
/// in is the capture's own namespace, one the agent's user owns.
let readOnlyFamilyIoctls: Set<UInt64> = [
    0x8903, 0x8904, 0x8905, 0x8906, 0x8907, 0x8910, 0x8912, 0x8913, 0x8915, 0x8917, 0x8919, 0x891b, 0x891d,
    0x891f, 0x8921, 0x8925, 0x8927, 0x8929, 0x8933, 0x8935, 0x8938, 0x8940, 0x8942, 0x8947, 0x8948, 0x894b,
    0x8954, 0x8961, 0x8970, 0x89b1,
    0x4b31, 0x4b33, 0x4b3b, 0x4b40, 0x4b44, 0x4b46, 0x4b48, 0x4b4a, 0x4b4c, 0x4b60, 0x4b62, 0x4b64, 0x4b66,
    0x4b69, 0x4b70, 0x4bfa,
    0x5600, 0x5601, 0x5603, 0x560d,
]
/// Socket options that replace or extend the kernel's packet filter and NAT tables, and IPVS:
/// with CAP_NET_ADMIN they rewrite where the agent's connections really go. (level, name) pairs:
/// IPT_SO_SET_REPLACE/ADD_COUNTERS (IPv4 and IPv6), ARPT_SO_SET_*, EBT_SO_SET_*, IP_VS_SO_SET_*.
let firewallSocketOptions: [(level: UInt64, name: UInt64)] =
    [(0, 64), (0, 65), (41, 64), (41, 65), (0, 96), (0, 97), (0, 128), (0, 129)]
    + (1152...1163).map { (level: UInt64(0), name: UInt64($0)) }
/// Socket options that route a packet through addresses of the agent's choosing, ahead of the
/// destination decided at connect or send: IP_OPTIONS (loose and strict source routes),
/// IPV6_RTHDR and IPV6_2292RTHDR (a segment-routing header sends the packet to its first segment,
/// any address), and IPV6_2292PKTOPTIONS (sets a routing header among others). (level, name).
let routingSocketOptions: [(level: UInt64, name: UInt64)] = [(0, 4), (41, 57), (41, 5), (41, 6)]
let solSocket: UInt64 = 1
let socketOptionPeerCredentials = UInt64(AGENTGATE_SO_PEERCRED)
let socketOptionPeerPidfd = UInt64(AGENTGATE_SO_PEERPIDFD)
let socketOptionPassPidfd = UInt64(AGENTGATE_SO_PASSPIDFD)
let addressFamilyNetlink: UInt64 = 16
let socketTypePacket: UInt64 = 10 // SOCK_PACKET: AF_INET in name, a packet socket in fact
let fcntlSetOwner: UInt64 = 8      // F_SETOWN
let fcntlSetOwnerEx: UInt64 = 15   // F_SETOWN_EX
let ioctlSetOwner: UInt64 = 0x8901 // FIOSETOWN
let ioctlSetProcessGroup: UInt64 = 0x8902 // SIOCSPGRP
let prctlCredentialOptions: [UInt64] = [24 /* CAPBSET_DROP */, 28 /* SET_SECUREBITS */, 47 /* CAP_AMBIENT */]
/// PR_SET_MM rewrites what /proc says the process is (its exe file, argv and memory layout):
/// it would fool the exec image check.
let prctlSetMM: UInt64 = 35
/// PR_SET_DUMPABLE: a non-dumpable process's memory is closed to a supervisor without
/// CAP_SYS_PTRACE, which must read every path and address the process passes.
let prctlSetDumpable: UInt64 = 4
/// RLIMIT_CORE: a core dump is a file the kernel writes in the working directory, with no
/// decision; the limit stays 0 under supervision.
let resourceCoreLimit: UInt64 = 4

/// Maps native syscall numbers to families, resolved once through libseccomp so no syscall
/// number is written by hand.
struct SyscallTable: Sendable {
    /// Numbers above this are answered ENOSYS by the filter itself (a prefix in CSupport): a
    /// syscall newer than this table must never pass unchecked. x86_64, Linux 6.18.
    static let highestKnownSyscall: Int32 = 469

    /// x86_64 numbers of syscalls newer than libseccomp 2.5.4 knows by name.
    static let fallbackNumbers: [String: Int32] = [
        "pidfd_send_signal": 424, "io_uring_setup": 425, "open_tree": 428, "move_mount": 429, "fsopen": 430,
        "fsconfig": 431, "fsmount": 432, "fspick": 433, "pidfd_open": 434, "clone3": 435, "openat2": 437,
        "pidfd_getfd": 438, "process_madvise": 440, "mount_setattr": 442, "quotactl_fd": 443, "process_mrelease": 448,
        "fchmodat2": 452, "setxattrat": 463, "removexattrat": 466, "open_tree_attr": 467, "file_setattr": 469,
    ]

    static func entries(supervisorPGID: pid_t) -> [(name: String, family: SyscallFamily, trap: TrapCondition)] {
        let w = PathOperandKind.entry, o = PathOperandKind.object, l = PathOperandKind.noFollow
        let nofollow = Int32(AGENTGATE_AT_SYMLINK_NOFOLLOW), follow = Int32(AGENTGATE_AT_SYMLINK_FOLLOW)
        func m(_ operands: [PathOperand], memory: [MemoryArgument] = [], flags: Int? = nil, mode: Int? = nil) -> SyscallFamily {
            .mutation(MutationSpec(operands: operands, memory: memory, flagsArg: flags, createModeArg: mode))
        }
        func p(_ path: Int, at dirfd: Int? = nil, _ kind: PathOperandKind, read: Bool = false) -> PathOperand {
            PathOperand(dirfdArg: dirfd, pathArg: path, kind: kind, alsoRead: read)
        }
        var list: [(String, SyscallFamily, TrapCondition)] = [
            ("open", .open, .always), ("openat", .openat, .always), ("openat2", .openat2, .always), ("creat", .creat, .always),
            ("execve", .execve, .always), ("execveat", .execveat, .always),
            ("connect", .connect, .always),
            ("bind", .bind, .always),
            ("sendto", .sendto, .argNonZero(arg: 4)), ("sendmsg", .sendmsg, .always), ("sendmmsg", .sendmmsg, .always),
            // Mutations: fs_write on every path, performed by the supervisor.
            ("unlink", m([p(0, w)]), .always),
            ("unlinkat", m([p(1, at: 0, w)], flags: 2), .always),
            ("rmdir", m([p(0, w)]), .always),
            ("rename", m([p(0, w, read: true), p(1, w)]), .always),
            ("renameat", m([p(1, at: 0, w, read: true), p(3, at: 2, w)]), .always),
            ("renameat2", m([p(1, at: 0, w, read: true), p(3, at: 2, w)], flags: 4), .always),
            ("mkdir", m([p(0, w)], mode: 1), .always),
            ("mkdirat", m([p(1, at: 0, w)], mode: 2), .always),
            ("mknod", m([p(0, w)], mode: 1), .always),
            ("mknodat", m([p(1, at: 0, w)], mode: 2), .always),
            ("symlink", m([p(1, w)], memory: [.string(arg: 0)]), .always),
            ("symlinkat", m([p(2, at: 1, w)], memory: [.string(arg: 0)]), .always),
            ("link", m([p(0, w, read: true), p(1, w)]), .always),
            ("linkat", m([p(1, at: 0, .entryUnless(flag: follow), read: true), p(3, at: 2, w)], flags: 4), .always),
            ("truncate", m([p(0, o)]), .always),
            ("chmod", m([p(0, o)]), .always),
            ("fchmodat", m([p(1, at: 0, o)]), .always),
            ("fchmodat2", m([p(1, at: 0, .objectUnless(flag: nofollow))], flags: 3), .always),
            ("chown", m([p(0, o)]), .always),
            ("lchown", m([p(0, l)]), .always),
            ("fchownat", m([p(1, at: 0, .objectUnless(flag: nofollow))], flags: 4), .always),
            ("utime", m([p(0, o)], memory: [.fixed(arg: 1, bytes: 16)]), .always),
            ("utimes", m([p(0, o)], memory: [.fixed(arg: 1, bytes: 32)]), .always),
            // utimensat(fd, NULL, …) is futimens: handled as an fd operation.
            ("utimensat", m([p(1, at: 0, .objectUnless(flag: nofollow))], memory: [.fixed(arg: 2, bytes: 32)], flags: 3), .always),
            // Metadata changes through an fd opened for reading are writes too.
            ("fchmod", .mutation(MutationSpec(operands: [], fdArg: 0)), .always),
            ("fchown", .mutation(MutationSpec(operands: [], fdArg: 0)), .always),
            ("fsetxattr", .mutation(MutationSpec(operands: [], memory: [.string(arg: 1), .sized(arg: 2, sizeArg: 3)], fdArg: 0)), .always),
            ("fremovexattr", .mutation(MutationSpec(operands: [], memory: [.string(arg: 1)], fdArg: 0)), .always),
            ("futimesat", m([p(1, at: 0, o)], memory: [.fixed(arg: 2, bytes: 32)]), .always),
            ("setxattr", m([p(0, o)], memory: [.string(arg: 1), .sized(arg: 2, sizeArg: 3)]), .always),
            ("lsetxattr", m([p(0, l)], memory: [.string(arg: 1), .sized(arg: 2, sizeArg: 3)]), .always),
            ("removexattr", m([p(0, o)], memory: [.string(arg: 1)]), .always),
            ("lremovexattr", m([p(0, l)], memory: [.string(arg: 1)]), .always),
            // Routes the supervisor can't see through.
            // Newer than this supervisor's emulation: refused, logged; libc and tools fall back.
            ("setxattrat", .unsupported(errno: ENOSYS), .always),
            ("removexattrat", .unsupported(errno: ENOSYS), .always),
            ("file_setattr", .unsupported(errno: ENOSYS), .always),
            ("open_tree_attr", .unsupervised(.mount, errno: EPERM), .always),
            // Raw and packet sockets (SOCK_PACKET too), and netlink: decided on the family, type
            // and protocol the kernel will create (see SocketCreationHandler.socket).
            ("socket", .socket, .argEquals(arg: 0, values: [17 /* AF_PACKET */, addressFamilyNetlink])),
            ("socket", .socket, .argMaskedEquals(arg: 1, mask: 0xf, value: 3 /* SOCK_RAW */)),
            ("socket", .socket, .argMaskedEquals(arg: 1, mask: 0xf, value: socketTypePacket)),
            ("ioctl", .descriptorIoctl, .argEquals(arg: 1, values: descriptorIoctls)),
            ("ioctl", .descriptorIoctl, .argEquals(arg: 1, values: hostIoctls)),
            ("ioctl", .descriptorIoctl, .argMaskedEquals(arg: 1, mask: 0xffff_ff00, value: socketIoctlFamily)),
            ("ioctl", .descriptorIoctl, .argMaskedEquals(arg: 1, mask: 0xffff_ff00, value: consoleIoctlFamily)),
            ("ioctl", .descriptorIoctl, .argMaskedEquals(arg: 1, mask: 0xffff_ff00, value: virtualTerminalIoctlFamily)),
            ("ioctl", .descriptorIoctl, .argMaskedEquals(arg: 1, mask: 0xff00, value: blockIoctlType << 8)),
            ("ioctl", .descriptorIoctl, .argMaskedEquals(arg: 1, mask: 0xff00, value: loopIoctlType << 8)),
            ("ioctl", .descriptorIoctl, .argsEqual([(arg: UInt32(1), value: ioctlStealTerminal), (arg: UInt32(2), value: UInt64(1))])),
            // What a unix socket says about its peer (the supervisor performs connects and sends).
            ("getsockopt", .socketOption, .argsEqual([(arg: UInt32(1), value: solSocket), (arg: UInt32(2), value: socketOptionPeerCredentials)])),
            ("getsockopt", .socketOption, .argsEqual([(arg: UInt32(1), value: solSocket), (arg: UInt32(2), value: socketOptionPeerPidfd)])),
            ("setsockopt", .socketOption, .argsEqual([(arg: UInt32(1), value: solSocket), (arg: UInt32(2), value: socketOptionPassPidfd)])),
            // fanotify hands out fds of files other processes open, and its permission events can
            // hold any process (the supervisor too) until answered.
            ("fanotify_init", .unsupervised(.fanotify, errno: EPERM), .always),
            ("fanotify_mark", .unsupervised(.fanotify, errno: EPERM), .always),
            // The kernel keyrings hold credentials (Kerberos tickets, disk passphrases).
            ("add_key", .unsupervised(.keyring, errno: EACCES), .always),
            ("request_key", .unsupervised(.keyring, errno: EACCES), .always),
            ("keyctl", .unsupervised(.keyring, errno: EACCES), .always),
            ("syslog", .syslog, .always),
            ("adjtimex", .clockAdjust(bufferArg: 0), .always),
            ("clock_adjtime", .clockAdjust(bufferArg: 1), .always),
            // uselib maps a file by path with no open (ENOSYS on most kernels; never let through).
            ("uselib", .unsupported(errno: ENOSYS), .always),
            ("io_uring_setup", .unsupervised(.ioUring, errno: ENOSYS), .always),
            ("open_by_handle_at", .unsupervised(.openByHandleAt, errno: EPERM), .always),
            ("seccomp", .unsupervised(.seccomp, errno: EPERM), .always),
            ("prctl", .prctl, .argEquals(arg: 0, values: [prctlSetSeccomp, prctlSetMM, prctlSetDumpable] + prctlCredentialOptions)),
            ("unshare", .namespaces(flagsArg: 0), .argAnyBit(arg: 0, bits: namespaceFlags)),
            ("clone", .namespaces(flagsArg: 0), .argAnyBit(arg: 0, bits: namespaceFlags)),
            ("setns", .namespaces(flagsArg: 1), .always),
            // clone3 keeps its flags in memory the filter can't read; libc falls back to clone.
            // Every clone3 gets ENOSYS, even one whose size alone would make the kernel answer
            // EINVAL or E2BIG: a program that probes for clone3 with bad arguments must conclude
            // it is missing, or its real clone3 calls would fail where it has no fallback.
            ("clone3", .none, .kernelErrno(ENOSYS)),
            // Calls aimed at a process, a group or a user: only within the session's tree,
            // never at the supervisor.
            // Signal 0 sends nothing: it only asks whether the pid is there, which /proc tells
            // anyway. Left to the kernel, a liveness check (pid files, locks) costs no round trip
            // and can't meet the early-signal EINTR of a trapped call (README, Limits).
            ("kill", .processTarget(.kill), .argNonZero(arg: 1)),
            ("tkill", .processTarget(.tkill), .argNonZero(arg: 1)),
            ("tgkill", .processTarget(.tgkill), .argNonZero(arg: 2)),
            ("rt_sigqueueinfo", .processTarget(.rtSigqueueinfo), .always),
            ("rt_tgsigqueueinfo", .processTarget(.rtTgsigqueueinfo), .always),
            ("ptrace", .processTarget(.ptrace), .always),
            ("process_vm_readv", .processTarget(.processVM), .always),
            ("process_vm_writev", .processTarget(.processVM), .always),
            // Trapped when it names another process or sets a limit. prlimit64(0, res, NULL, old)
            // only reads the caller's own limits (glibc's getrlimit; every dynamic program's start
            // makes one): left to the kernel, it costs no round trip.
            ("prlimit64", .processTarget(.prlimit), .argNonZero(arg: 0)),
            ("prlimit64", .processTarget(.prlimit), .argNonZero(arg: 2)),
            // The raw setrlimit syscall, for the core-dump limit only (see ProcessHandlers.coreLimit).
            ("setrlimit", .coreLimit, .argEquals(arg: 0, values: [resourceCoreLimit])),
            ("setpriority", .processTarget(.setpriority), .always),
            ("ioprio_set", .processTarget(.ioprioSet), .always),
            ("sched_setaffinity", .processTarget(.schedSetaffinity), .always),
            ("sched_setscheduler", .processTarget(.schedSetscheduler), .always),
            ("sched_setparam", .processTarget(.schedSetparam), .always),
            ("sched_setattr", .processTarget(.schedSetattr), .always),
            ("migrate_pages", .processTarget(.migratePages), .always),
            ("move_pages", .processTarget(.movePages), .always),
            ("kcmp", .processTarget(.kcmp), .always),
            ("get_robust_list", .processTarget(.getRobustList), .always),
            ("perf_event_open", .processTarget(.perfEventOpen), .always),
            // Process handles: no pidfd of the supervisor or of a process outside the session
            // ever reaches the agent, and each call is decided on the process it names.
            ("pidfd_open", .processHandle(.pidfdOpen), .always),
            ("pidfd_send_signal", .processHandle(.pidfdSendSignal), .always),
            ("pidfd_getfd", .processHandle(.pidfdGetfd), .always),
            ("process_madvise", .processHandle(.processMadvise), .always),
            ("process_mrelease", .processHandle(.processMrelease), .always),
            ("setpgid", .setpgid, .argEquals(arg: 1, values: [UInt64(supervisorPGID)])),
            ("fcntl", .fileOwner, .argEquals(arg: 1, values: [fcntlSetOwner, fcntlSetOwnerEx, fcntlSetLease])),
            ("ioctl", .descriptorIoctl, .argEquals(arg: 1, values: [ioctlSetOwner, ioctlSetProcessGroup])),
            // TIOCSTI/TIOCLINUX push input into the terminal: the user's shell would run it,
            // unsupervised, after the session.
            ("ioctl", .descriptorIoctl, .argEquals(arg: 1, values: terminalInjectionIoctls)),
        ]
        for option in firewallSocketOptions + routingSocketOptions {
            list.append(("setsockopt", .socketOption, .argsEqual([(arg: UInt32(1), value: option.level), (arg: UInt32(2), value: option.name)])))
        }
        for name in ["mount", "umount2", "pivot_root", "chroot", "fsopen", "fsmount", "move_mount", "open_tree",
                     "mount_setattr", "fsconfig", "fspick"] {
            list.append((name, .unsupervised(.mount, errno: EPERM), .always))
        }
        for name in ["init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "bpf", "iopl",
                     "ioperm", "reboot", "swapon", "swapoff", "userfaultfd"] {
            list.append((name, .unsupervised(.kernel, errno: EPERM), .always))
        }
        // Settings every process on the host shares: names, clocks, process accounting (which
        // makes the kernel append to a file of the caller's choosing), quotas, the terminal.
        for name in ["sethostname", "setdomainname", "settimeofday", "clock_settime", "acct", "vhangup",
                     "quotactl", "quotactl_fd"] {
            list.append((name, .unsupervised(.host, errno: EPERM), .always))
        }
        for name in ["setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid", "setfsgid",
                     "setgroups", "capset"] {
            list.append((name, .credentials, .always))
        }
        return list
    }

    private var familyByNumber: [SyscallFamily]
    private var nameByNumber: [String]
    /// Every trapped syscall this architecture has, with its filter condition.
    private(set) var trapped: [(number: Int32, name: String, trap: TrapCondition)] = []

    init(supervisorPGID: pid_t) {
        familyByNumber = Array(repeating: .none, count: 1024)
        nameByNumber = Array(repeating: "", count: 1024)
        for (name, family, trap) in Self.entries(supervisorPGID: supervisorPGID) {
            var number = agentgate_syscall_number(name)
            if number < 0, let known = Self.fallbackNumbers[name] { number = known }
            guard number >= 0, number < 1024 else { continue }
            // A second entry for the same number adds conditions; the first family handles it.
            if case .none = familyByNumber[Int(number)] {} else {
                trapped.append((number, name, trap))
                continue
            }
            familyByNumber[Int(number)] = family
            nameByNumber[Int(number)] = name
            trapped.append((number, name, trap))
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
