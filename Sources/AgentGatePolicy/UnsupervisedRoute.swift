/// Routes to files, programs or the kernel that the supervisor can't see through, and so denies
/// by default. A policy can reopen one with `allow_unsupervised: [...]`, e.g. for an agent that
/// legitimately runs a nested sandbox; whatever then goes through that route is unsupervised.
public enum UnsupervisedRoute: String, Sendable, CaseIterable, Hashable {
    /// io_uring_setup: io_uring performs opens and connects from kernel workers seccomp never sees.
    case ioUring = "io_uring"
    /// open_by_handle_at: opens a file by handle, without any path to decide on.
    case openByHandleAt = "open_by_handle_at"
    /// mount, umount2, pivot_root, chroot and the new mount API: they change what a path means.
    case mount
    /// unshare, setns and clone with namespace flags: a new mount or user namespace lets the
    /// agent remount.
    case namespaces
    /// seccomp() and prctl(PR_SET_SECCOMP): a stacked filter can hide syscalls from the audit.
    case seccomp
    /// Kernel-level control a root agent could use to leave any sandbox: module loading, kexec,
    /// BPF programs, raw port I/O, reboot, swap; writes to kernel settings (/proc/sys, /sys
    /// outside cgroups, /proc/sysrq-trigger), some of which make the kernel start a program of
    /// the agent's choosing (core_pattern, modprobe, uevent_helper, binfmt_misc); and
    /// userfaultfd, which could stall the supervisor's reads of the agent's memory.
    case kernel
    /// Raw (SOCK_RAW) and packet (AF_PACKET) sockets: they write their own headers, so the
    /// destination the kernel sends to is not the one a connect or sendto names.
    case rawSockets = "raw_sockets"
    /// Writes under /sys/fs/cgroup: moving the supervisor into a cgroup, or cgroup.kill and
    /// cgroup.freeze on its cgroup, would end or freeze it.
    case cgroups
    /// Configuring the host's network: netlink families for the firewall, IPsec and other
    /// subsystems (netfilter, xfrm, …), the firewall and NAT tables set through setsockopt
    /// (iptables, ip6tables, arptables, ebtables, IPVS), and the interface, route and ARP
    /// ioctls. A root agent could rewrite where its connections really go. Route, generic and
    /// audit netlink stay open for queries, but their sockets are created without CAP_NET_ADMIN
    /// and the audit capabilities, so they can't change anything.
    case netAdmin = "net_admin"
    /// Settings every process on the host shares: hostname, domain name, the clock, process
    /// accounting, disk quotas, the kernel log's console, terminal hangup, and file-system
    /// freeze, thaw, shutdown and resize ioctls.
    case host
    /// fanotify: it hands out fds of the files other processes open, and its permission events
    /// hold whoever opened the file (the supervisor included) until they are answered.
    case fanotify
    /// The kernel keyrings (add_key, request_key, keyctl): they hold credentials such as
    /// Kerberos tickets and disk passphrases.
    case keyring
    /// Real-time scheduling (SCHED_FIFO, SCHED_RR, SCHED_DEADLINE) and the real-time I/O class:
    /// a spinning real-time process can take a CPU from everything else on the host.
    case realtime
    /// exec of an image with no path in the file system (a memfd, a deleted file): there is no
    /// name for the policy to decide on.
    case anonymousExec = "anonymous_exec"
}
