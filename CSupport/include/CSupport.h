// CSupport: the syscall-level half of AgentGate.
//
// Everything here is a thin, prefixed wrapper over one kernel facility: building and exporting the
// seccomp filter (libseccomp), spawning the agent under it, the user-notification ioctls, reading
// the target's memory, and the primitives the supervisor uses to perform opens and connects on the
// agent's behalf. Decisions live in Swift; this layer never decides anything.
//
// Conventions: functions return 0 or a non-negative value on success and -errno on failure; no
// function here reads errno after returning. Every symbol is prefixed `agentgate_`.
#ifndef AGENTGATE_CSUPPORT_H
#define AGENTGATE_CSUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <signal.h>
#include <linux/seccomp.h>
#include <linux/filter.h>

#include "CSupportCapabilities.h"

/// Buffer sizes shared by C and Swift, declared once.
enum {
    /// A path argument read from the agent: PATH_MAX plus one byte to detect an over-long one.
    AGENTGATE_PATH_CAPACITY = 4097,
    /// A resolved path: as /proc/self/fd shows it (at most PATH_MAX), or, deeper, as named from
    /// its ancestors' entries; 32 KiB, past which a call fails with ENAMETOOLONG.
    AGENTGATE_RESOLVED_CAPACITY = 32768 + 256,
    /// One path component (NAME_MAX plus the NUL).
    AGENTGATE_NAME_CAPACITY = 256,
    /// The largest socket address the kernel accepts (sizeof(struct sockaddr_storage)).
    AGENTGATE_SOCKADDR_CAPACITY = 128,
    /// The DNS capture namespace's listeners: UDP over IPv4 and IPv6, then TCP over both.
    AGENTGATE_DNS_LISTENERS = 4,
    /// IPV6_FREEBIND (Linux 4.15), missing from older UAPI headers.
    AGENTGATE_IPV6_FREEBIND = 78,
};

#ifdef __cplusplus
extern "C" {
#endif

// MARK: - Constants Swift can't see (Glibc's module is built without _GNU_SOURCE)

enum {
    AGENTGATE_O_PATH = 010000000,
    AGENTGATE_O_TMPFILE = 020200000,
    AGENTGATE_AT_EMPTY_PATH = 0x1000,
    AGENTGATE_AT_SYMLINK_FOLLOW = 0x400,
    AGENTGATE_AT_SYMLINK_NOFOLLOW = 0x100,
    AGENTGATE_AT_REMOVEDIR = 0x200,
    /// utimensat's "leave this time as it is" (tv_nsec).
    AGENTGATE_UTIME_OMIT = (1 << 30) - 2,
    /// The open flags openat2 accepts (the kernel's VALID_OPEN_FLAGS); the older opens ignore others.
    AGENTGATE_VALID_OPEN_FLAGS = 037777703,
    /// The only flags O_PATH may come with (O_PATH_FLAGS).
    AGENTGATE_O_PATH_FLAGS = 012600000,
    AGENTGATE_O_TMPFILE_BIT = 020000000,  ///< __O_TMPFILE, without O_DIRECTORY
    AGENTGATE_O_DIRECTORY = 0200000,
    AGENTGATE_RESOLVE_BENEATH = 0x08,
    AGENTGATE_RESOLVE_IN_ROOT = 0x10,
    AGENTGATE_RESOLVE_CACHED = 0x20,
    AGENTGATE_VALID_RESOLVE_FLAGS = 0x3f,
    // Newer than this machine's UAPI headers (linux-libc-dev 6.1); checked in internal.h.
    AGENTGATE_SO_PEERCRED = 17,
    AGENTGATE_SO_PASSPIDFD = 76,
    AGENTGATE_SO_PEERPIDFD = 77,
    AGENTGATE_SCM_CREDENTIALS = 2,
    AGENTGATE_POLLRDHUP = 0x2000,         ///< poll(2): the peer shut down its writing side (_GNU_SOURCE)
    AGENTGATE_PIDFD_NONBLOCK = 04000,     ///< O_NONBLOCK
    AGENTGATE_PIDFD_THREAD = 0200,        ///< O_EXCL
    AGENTGATE_PIDFD_SIGNAL_PROCESS_GROUP = 4,
    AGENTGATE_PIDFD_SELF_THREAD = -10000,
    AGENTGATE_PIDFD_SELF_THREAD_GROUP = -20000,
    /// The kernel's internal "interrupted, restart if the handler allows" (include/linux/errno.h).
    /// Answered for a call the supervisor performs that a signal for the agent interrupts: the
    /// agent's return to user space then restarts it or fails it with EINTR, as the kernel would.
    AGENTGATE_ERESTARTSYS = 512,
};

// MARK: - Filter

/// What the filter does with a syscall (or with a syscall whose argument matches).
typedef enum agentgate_filter_action {
    AGENTGATE_FILTER_NOTIFY = 0,  ///< SECCOMP_RET_USER_NOTIF: ask the supervisor.
    AGENTGATE_FILTER_ERRNO = 1,   ///< SECCOMP_RET_ERRNO(errno): fail in-kernel.
    AGENTGATE_FILTER_KILL = 2,    ///< SECCOMP_RET_KILL_PROCESS.
} agentgate_filter_action;

/// Comparison for an argument-conditional rule (mirrors libseccomp's scmp_compare).
typedef enum agentgate_arg_compare {
    AGENTGATE_ARG_EQ = 0,
    AGENTGATE_ARG_MASKED_EQ = 1, ///< (arg & mask) == value
    AGENTGATE_ARG_NE = 2,
    AGENTGATE_ARG_EQ32 = 3, ///< (arg & 0xffffffff) == value: for int arguments, whose upper half the kernel ignores
} agentgate_arg_compare;

/// An opaque libseccomp filter under construction.
typedef struct agentgate_filter agentgate_filter;

/// A compiled BPF program, owned by the caller; free with `agentgate_bpf_free`.
typedef struct agentgate_bpf {
    struct sock_fprog program;
} agentgate_bpf;

/// Creates a filter whose default action is ALLOW for the native architecture, and which kills
/// the process for any other ABI (i386 `int 0x80`, x32).
agentgate_filter *agentgate_filter_create(int *out_error);
void agentgate_filter_destroy(agentgate_filter *filter);

/// The native syscall number for `name`, or -1 when this architecture has no such syscall
/// (seccomp_syscall_resolve_name).
int agentgate_syscall_number(const char *name);

/// The native name of syscall `nr` as libseccomp knows it (seccomp_syscall_resolve_num_arch),
/// copied into `buf`. Returns its length, or -ENOENT for a number libseccomp can't name.
int agentgate_syscall_name(int nr, char *buf, size_t capacity);

/// Adds an unconditional rule for syscall `nr` (seccomp_rule_add). Returns 0 or -errno.
int agentgate_filter_add(agentgate_filter *filter, int nr, agentgate_filter_action action, int error);

/// Adds a rule that applies only when argument `arg` compares true (seccomp_rule_add with one
/// SCMP_A* comparison). Returns 0 or -errno.
int agentgate_filter_add_arg(agentgate_filter *filter, int nr, agentgate_filter_action action, int error,
                             unsigned arg, agentgate_arg_compare compare, uint64_t value, uint64_t mask);

/// Adds a rule that applies only when every listed int argument equals its value (one
/// seccomp_rule_add_array with up to six 32-bit comparisons, ANDed). Returns 0 or -errno.
int agentgate_filter_add_equal_args(agentgate_filter *filter, int nr, agentgate_filter_action action, int error,
                                    const unsigned *args, const uint64_t *values, int count);

/// Compiles the filter to BPF (seccomp_export_bpf) so the child can install it with one syscall.
/// Native syscall numbers above `highest_known` are answered ENOSYS by a prefix written here:
/// a syscall newer than this table (and than libseccomp) never passes unchecked.
int agentgate_filter_export(agentgate_filter *filter, int highest_known, agentgate_bpf *out);
void agentgate_bpf_free(agentgate_bpf *bpf);

// MARK: - Spawn

/// Input to `agentgate_spawn`.
typedef struct agentgate_spawn_config {
    const char *path;            ///< Absolute path of the program (already resolved against PATH).
    char *const *argv;           ///< NULL-terminated.
    char *const *envp;           ///< NULL-terminated.
    const agentgate_bpf *filter; ///< Installed in the child with SECCOMP_FILTER_FLAG_NEW_LISTENER.
    int terminal_fd;             ///< A terminal to give the child's process group, or -1.
    const sigset_t *child_mask;  ///< Signal mask for the child (the agent's original mask).
    int64_t nofile_soft_limit;   ///< RLIMIT_NOFILE soft limit to restore in the child, or -1.
    const int *reset_signals;    ///< Signals the supervisor ignores that the agent must not.
    int reset_count;
    int64_t nproc_limit;         ///< RLIMIT_NPROC soft and hard limit for the agent, or -1.
    bool realtime_forbidden;     ///< Sets RLIMIT_RTPRIO and RLIMIT_RTTIME to 0 (no SCHED_FIFO/RR).
    bool core_dumps_forbidden;   ///< Sets RLIMIT_CORE to 0: a core file is a write no decision covers.
    int oom_score_adj_floor;     ///< Raises /proc/self/oom_score_adj to at least this, or -1001.
    const char *const *cgroup_procs; ///< cgroup.procs files the parent moves the child into before it execs.
    int cgroup_count;
    /// The cgroup v2 directory whose cgroup.procs is `cgroup_procs[0]`, open, or -1. The child is
    /// created in it (clone3 with CLONE_INTO_CGROUP), which skips the RCU grace period the first
    /// write to a cgroup.procs waits for (~13 ms); where clone3 fails, fork and the write.
    int cgroup_directory_fd;
} agentgate_spawn_config;

/// Result of `agentgate_spawn`.
typedef struct agentgate_spawned {
    pid_t pid;
    int pidfd;            ///< pidfd_open(pid): to wait on and to take fds from.
    int listener;         ///< The seccomp listener, taken from the child with pidfd_getfd.
    bool killable_recv;   ///< SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV was accepted.
    int exec_report;      ///< Carries the errno if CMD's own exec fails (agentgate_spawn_exec_error).
} agentgate_spawned;

/// Failure stages reported by `agentgate_spawn`.
typedef enum agentgate_spawn_stage {
    AGENTGATE_SPAWN_OK = 0,
    AGENTGATE_SPAWN_PIPE = 1,
    AGENTGATE_SPAWN_FORK = 2,
    AGENTGATE_SPAWN_NO_NEW_PRIVS = 3,
    AGENTGATE_SPAWN_SECCOMP = 4,   ///< The child could not install the filter; nothing ran.
    AGENTGATE_SPAWN_PIDFD = 5,
    AGENTGATE_SPAWN_GETFD = 6,     ///< The listener didn't arrive over the status socket (SCM_RIGHTS).
    AGENTGATE_SPAWN_HANDSHAKE = 7,
    AGENTGATE_SPAWN_CGROUP = 8,    ///< The child could not be moved into the session cgroup.
    AGENTGATE_SPAWN_LIMITS = 9,    ///< The child could not set its resource limits.
    AGENTGATE_SPAWN_EXEC = 10,     ///< CMD itself could not be executed (after the handshake).
} agentgate_spawn_stage;

/// Forks (clone3 into the session's cgroup v2 when `cgroup_directory_fd` is set); the child
/// makes only async-signal-safe calls: new process group, default signal
/// dispositions, resource limits, PR_SET_NO_NEW_PRIVS, the filter with NEW_LISTENER
/// (+WAIT_KILLABLE_RECV when the kernel has it), the listener sent to the parent as SCM_RIGHTS
/// by a relay created before the filter, then waits until the parent holds the listener
/// (and has moved it into the session cgroup), closes its copy and execs. If any step fails the
/// child exits without exec'ing.
/// Returns 0, or -errno with `*stage` saying which step failed.
int agentgate_spawn(const agentgate_spawn_config *config, agentgate_spawned *out, int *stage);

/// The errno CMD's own execve failed with, read (without blocking) from `exec_report` once the
/// child has exited; 0 when it was executed.
int agentgate_spawn_exec_error(int exec_report);

// MARK: - Notifications

/// Checks that the kernel's notification structs are no larger than ours (SECCOMP_GET_NOTIF_SIZES).
int agentgate_notif_sizes_check(void);

/// SECCOMP_IOCTL_NOTIF_RECV into a zeroed `req`. Returns 0 or -errno (-EINTR, -ENOENT).
int agentgate_notif_recv(int listener, struct seccomp_notif *req);

/// With `on`, failures sent from the calling thread (agentgate_notif_send with an error) are
/// held until agentgate_notif_flush_deferred: a decision echoed on the terminal is then
/// written while the process that caused it still waits, and never lands inside the error
/// message that process prints about it.
void agentgate_notif_defer_failures(bool on);

/// Sends the failure held on the calling thread, if any. Returns 0 or -errno.
int agentgate_notif_flush_deferred(void);

/// The same, but a held EINTR is sent as `eintr_becomes` when that is > 0 (the errno the kernel
/// would have given the agent for its interrupted call, e.g. AGENTGATE_ERESTARTSYS).
int agentgate_notif_flush_deferred_interrupted(int eintr_becomes);

/// SECCOMP_IOCTL_NOTIF_ID_VALID. 0 while the notification is still pending, else -ENOENT.
int agentgate_notif_id_valid(int listener, uint64_t id);

/// SECCOMP_IOCTL_NOTIF_SEND with a return value or an error (error > 0 is an errno).
int agentgate_notif_send(int listener, uint64_t id, int64_t value, int error);

/// SECCOMP_IOCTL_NOTIF_SEND with SECCOMP_USER_NOTIF_FLAG_CONTINUE. Only for syscalls whose
/// decision depends on no memory the agent can change (value arguments, or exec verified later).
int agentgate_notif_continue(int listener, uint64_t id);

/// SECCOMP_IOCTL_NOTIF_ADDFD: installs `fd` in the target. `target_fd` >= 0 uses
/// SECCOMP_ADDFD_FLAG_SETFD. With `send`, the reply is sent atomically (SECCOMP_ADDFD_FLAG_SEND).
/// Returns the fd number in the target, or -errno.
int agentgate_notif_addfd(int listener, uint64_t id, int fd, bool cloexec, int target_fd, bool send);

/// Whether thread `tid` has no free fd number below its RLIMIT_NOFILE soft limit, so that an fd
/// installed in it would fail with EMFILE (as the kernel's own open would, before any lookup).
/// Returns 1 when full, 0 when not, or -errno.
int agentgate_fd_table_full(pid_t tid);

/// The RLIMIT_FSIZE soft limit of thread `tid`'s process (prlimit, else /proc/TID/limits), in
/// `*limit`; UINT64_MAX for none. Returns 0 or -errno.
int agentgate_file_size_limit(pid_t tid, uint64_t *limit);

/// tgkill(2): `signal` to thread `tid` of process `tgid`. Returns 0 or -errno.
int agentgate_tgkill(pid_t tgid, pid_t tid, int signal);

/// Whether the agent thread `tid`, waiting for the supervisor, has a pending signal the kernel
/// has certainly routed to it (see signals.c): answering its call AGENTGATE_ERESTARTSYS then
/// makes it handle the signal and restart or fail the call as the kernel would. 1, 0, or -errno.
int agentgate_thread_signal_routed(pid_t tid);

/// `agentgate_thread_signal_routed`, leaving out the signals in `ignored` (bit N-1 for signal N).
int agentgate_thread_signal_routed_ignoring(pid_t tid, uint64_t ignored);

/// SECCOMP_IOCTL_NOTIF_SET_FLAGS(SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) (Linux 6.6+).
int agentgate_notif_set_sync_wakeup(int listener);

// MARK: - Target memory

/// Reads a NUL-terminated string at `addr` in `pid` (process_vm_readv, page by page).
/// Returns its length (excluding the NUL, which is written to buf[len]), -ENAMETOOLONG when no
/// NUL occurs within `capacity - 1` bytes, or -errno (-EFAULT for a bad pointer).
ssize_t agentgate_read_string(pid_t pid, uint64_t addr, char *buf, size_t capacity);

/// Reads exactly `len` bytes (process_vm_readv). Returns 0 or -errno (-EFAULT if short).
int agentgate_read_memory(pid_t pid, uint64_t addr, void *buf, size_t len);

/// Writes `len` bytes into the target (process_vm_writev), e.g. sendmmsg's per-message lengths.
/// Returns 0 or -errno.
int agentgate_write_memory(pid_t pid, uint64_t addr, const void *buf, size_t len);

// MARK: - Open emulation

/// How `agentgate_open_prepare` found the object.
typedef enum agentgate_open_kind {
    AGENTGATE_OPEN_NONE = -1,    ///< Nothing prepared (after a failure or a release).
    AGENTGATE_OPEN_EXISTING = 0, ///< `object_fd` is an O_PATH fd of the existing object.
    AGENTGATE_OPEN_CREATE = 1,   ///< The object doesn't exist: `parent_fd` + `name` will create it.
    AGENTGATE_OPEN_TMPFILE = 2,  ///< O_TMPFILE: `object_fd` is the directory.
} agentgate_open_kind;

/// Whose /proc entries a lookup may pass through. The supervisor resolves paths for the agent,
/// so `/proc/self` must mean the agent, and a magic link (/proc/PID/fd/N, cwd, root, exe) is
/// followed only after the caller has seen whose it is.
typedef struct agentgate_lookup_context {
    pid_t agent_tgid;      ///< Substituted for /proc/self.
    pid_t agent_tid;       ///< Substituted for /proc/thread-self (with agent_tgid).
    bool force_walk;       ///< Resolve component by component even without a magic link.
    pid_t owners[8];       ///< Pids whose magic links the lookup followed (out).
    int owner_count;       ///< Entries in owners; more than 8 is reported as 9 (out).
} agentgate_lookup_context;

/// The result of resolving an open the way the kernel would, before any side effect.
typedef struct agentgate_open_prepared {
    agentgate_lookup_context context; ///< Set agent_tgid/agent_tid before preparing.
    agentgate_open_kind kind;
    int object_fd;      ///< O_PATH fd (EXISTING, TMPFILE), else -1.
    int parent_fd;      ///< O_PATH directory fd (CREATE), else -1.
    unsigned file_type; ///< st_mode & S_IFMT of the existing object (0 for CREATE).
    unsigned link_count; ///< st_nlink of the existing object: 0 for a memfd, a deleted or an O_TMPFILE file.
    uint64_t device_number; ///< st_rdev of an existing device node, else 0.
    uint64_t object_device; ///< st_dev of the existing object (EXISTING), else 0.
    uint64_t object_inode;  ///< st_ino of the existing object (EXISTING), else 0.
    char name[AGENTGATE_NAME_CAPACITY]; ///< Final component to create (CREATE).
    char resolved[AGENTGATE_RESOLVED_CAPACITY]; ///< Absolute path as the kernel resolved it (readlink of the fd).
    size_t resolved_len;
} agentgate_open_prepared;

/// Resolves `path` relative to `dirfd` (an fd the supervisor owns: the agent's cwd or dirfd)
/// with the agent's open `flags` and openat2 `resolve` flags, without creating, truncating or
/// opening for I/O anything. Symlinks, `..` and magic links are resolved by the kernel; the
/// resolved path is read back from /proc/self/fd. Returns 0 or -errno (the errno the agent's
/// own open would most likely have seen).
int agentgate_open_prepare(int dirfd, const char *path, uint64_t flags, uint64_t resolve,
                           agentgate_open_prepared *out);

/// Prepares the object an fd refers to (AT_EMPTY_PATH): `fd` is duplicated, not consumed.
int agentgate_open_prepare_fd(int fd, agentgate_open_prepared *out);

/// Whether the directory `directory_fd` (an O_PATH fd is fine) has a default ACL, which the
/// kernel builds a new entry's mode from instead of applying the umask.
bool agentgate_has_default_acl(int directory_fd);

/// Performs the open decided on: reopens the existing object through /proc/self/fd with the
/// agent's flags, or creates `name` under the parent with O_NOFOLLOW and `mode & ~umask`.
/// Returns the new fd (always O_CLOEXEC in the supervisor) or -errno. -EAGAIN means the object
/// changed since it was prepared (a symlink was swapped in): prepare and decide again. Unless
/// `may_block`, an existing object is reopened non-blocking first (a lease or a device could
/// make the open wait): -EWOULDBLOCK then means "retry with may_block on a thread of its own".
int agentgate_open_finish(const agentgate_open_prepared *prepared, uint64_t flags, uint64_t mode, unsigned umask, bool may_block);

/// The resolved path of a prepared open (NUL-terminated).
const char *agentgate_open_resolved(const agentgate_open_prepared *prepared);

/// Reads up to `capacity - 1` bytes from the start of the regular file behind the O_PATH fd
/// `fd` (reopened O_RDONLY|O_NONBLOCK|O_NOCTTY, so nothing can make it wait). Returns the
/// length, or -errno (-EINVAL when it isn't a regular file).
ssize_t agentgate_read_head(int fd, char *buf, size_t capacity);

/// Closes the fds held by a prepared open.
void agentgate_open_release(agentgate_open_prepared *prepared);

// MARK: - Path mutations (unlink, rename, mkdir, chmod, …)

/// What the final component of a path is, as the kernel's lookup classifies it. Calls that
/// create, remove or rename an entry fail on the last three whatever the permissions (EEXIST,
/// EISDIR, EBUSY, EINVAL, ENOTEMPTY: each call has its own answer).
typedef enum agentgate_entry_type {
    AGENTGATE_ENTRY_NAME = 0,   ///< An ordinary name (LAST_NORM).
    AGENTGATE_ENTRY_DOT = 1,    ///< "." (LAST_DOT).
    AGENTGATE_ENTRY_DOTDOT = 2, ///< ".." (LAST_DOTDOT).
    AGENTGATE_ENTRY_ROOT = 3,   ///< "/", "//"… (LAST_ROOT): parent_fd is the root, name ".".
} agentgate_entry_type;

/// The directory entry a path names, for calls that act on the entry itself (unlink, rename,
/// mkdir, l* variants): the parent directory resolved by the kernel, and the final name.
typedef struct agentgate_path_entry {
    agentgate_lookup_context context; ///< Set agent_tgid/agent_tid before resolving.
    int parent_fd;       ///< O_PATH fd of the parent directory.
    bool trailing_slash; ///< The path ended in '/', which the caller must keep.
    agentgate_entry_type last_type;
    char name[AGENTGATE_NAME_CAPACITY];
    char resolved[AGENTGATE_RESOLVED_CAPACITY]; ///< parent as resolved + "/" + name.
    size_t resolved_len;
} agentgate_path_entry;

/// Resolves everything but the final component of `path` relative to `dirfd`. Returns 0 or
/// -errno. A final ".", ".." or "/" resolves too (see `last_type`): the caller decides what
/// the call does with it.
int agentgate_path_entry_resolve(int dirfd, const char *path, agentgate_path_entry *out);

/// The resolved path of an entry (NUL-terminated).
const char *agentgate_path_entry_resolved(const agentgate_path_entry *entry);

/// A raw syscall with six arguments. Returns the result or -errno.
long agentgate_syscall6(long number, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5);

// MARK: - Processes and their handles

/// pidfd_open(pid, flags). Returns the pidfd or -errno.
int agentgate_pidfd_open_flags(pid_t pid, unsigned flags);

/// pidfd_send_signal(pidfd, sig, info, flags). Returns 0 or -errno.
int agentgate_pidfd_send_signal(int pidfd, int sig, const void *info, unsigned flags);

/// The process a process handle refers to: a pidfd (its fdinfo "Pid:") or a /proc/PID directory
/// fd, which pidfd_send_signal also accepts. `*pid` is 0 when the process has exited. Returns 0,
/// or -EBADF when `fd` is neither.
int agentgate_process_handle_target(int fd, pid_t *pid, bool *is_proc_directory);

/// The inode of a socket (fstat). Returns 0 or -errno (-ENOTSOCK).
int agentgate_socket_inode(int fd, uint64_t *inode);

/// The inode of the socket connected to the unix socket with inode `inode`, through
/// NETLINK_SOCK_DIAG (UDIAG_SHOW_PEER). Returns 0 or -errno (-ENOTCONN without a peer).
int agentgate_unix_peer_inode(uint64_t inode, uint64_t *peer);

/// The calling thread's effective capability set, saved by agentgate_lower_capabilities.
typedef struct agentgate_capability_state {
    uint32_t effective[2];
} agentgate_capability_state;

/// Lowers `capabilities` from the calling thread's effective set (capset on this thread only),
/// saving the set for agentgate_restore_capabilities. Returns 0 or -errno.
int agentgate_lower_capabilities(const int *capabilities, int count, agentgate_capability_state *saved);

/// Restores an effective set saved by agentgate_lower_capabilities. Returns 0 or -errno.
int agentgate_restore_capabilities(const agentgate_capability_state *saved);

/// The identity a thread acts with on files and sockets: what the kernel checks and records.
typedef struct agentgate_thread_credentials {
    uint32_t ruid, euid, suid, fsuid;
    uint32_t rgid, egid, sgid, fsgid;
    uint32_t group_count;          ///< Supplementary groups in `groups` (at most 256).
    uint32_t groups[256];
    uint32_t effective[2];         ///< Effective capabilities (for an assumed identity: wanted).
    uint32_t permitted[2], inheritable[2];
    uint32_t securebits;
} agentgate_thread_credentials;

/// Makes the calling thread act as `as` (its real, effective, saved and fs uids and gids, its
/// supplementary groups, and effective capabilities within the thread's permitted set) until
/// agentgate_thread_restore_credentials. Raw syscalls, so only this thread changes (glibc's
/// wrappers change every thread): PR_SET_SECUREBITS with SECBIT_NO_SETUID_FIXUP, setgroups,
/// setresgid, setfsgid, setresuid, setfsuid, capset. Needs CAP_SETUID, CAP_SETGID and
/// CAP_SETPCAP. Returns 0 or -errno (-EBUSY when the thread already acts as someone); on
/// failure the thread is itself again.
int agentgate_thread_assume_credentials(const agentgate_thread_credentials *as);

/// Gives the calling thread back its own identity. Aborts the process if it can't: no thread
/// may go on with a borrowed identity.
void agentgate_thread_restore_credentials(void);

/// The identity the calling thread currently acts as (copied to `out`): 1, or 0 when it acts
/// as itself. Work handed to another thread takes the same identity there.
int agentgate_thread_assumed_credentials(agentgate_thread_credentials *out);


/// socket(domain, type, protocol) created by the calling thread with `capabilities` lowered
/// from its effective set for the call (capget/capset on this thread only). Returns the fd or
/// -errno.
int agentgate_socket_without_capabilities(int domain, int type, int protocol, const int *capabilities, int count);

/// getsockopt(fd, level, name, value, length). Returns 0 or -errno.
int agentgate_getsockopt(int fd, int level, int name, void *value, uint32_t *length);

/// The numeric entries of the /proc directory open as `proc_fd` (getdents64 from offset 0, so
/// no new fd is needed). Returns 0, or -ENOBUFS when more than `capacity` were found.
int agentgate_proc_pids(int proc_fd, pid_t *pids, size_t capacity, size_t *count);

/// The 16 bytes AT_RANDOM points at in `pid` (/proc/PID/auxv, then process_vm_readv, or
/// /proc/PID/mem where the page is unreadable to it): fresh at
/// every execve. Returns 0 or -errno.
int agentgate_exec_random(pid_t pid, uint8_t out[16]);

// MARK: - ELF images

enum { AGENTGATE_ELF_INTERPRETER_CAPACITY = 4096 };

/// What binfmt_elf would see in an image.
typedef struct agentgate_elf_info {
    bool is_elf;         ///< Starts with the ELF magic.
    int elf_class;       ///< ELFCLASS32 (1) or ELFCLASS64 (2).
    int type;            ///< e_type: ET_EXEC (2) or ET_DYN (3).
    int machine;         ///< e_machine (EM_X86_64 is 62).
    bool has_interpreter; ///< A PT_INTERP segment names the program the kernel maps first.
    char interpreter[AGENTGATE_ELF_INTERPRETER_CAPACITY];
    bool has_soname;     ///< A DT_SONAME entry: the image is a shared object.
    char soname[128];
} agentgate_elf_info;

/// Reads the ELF header, program headers and dynamic section of the regular file behind the
/// O_PATH fd `fd` (reopened O_RDONLY|O_NONBLOCK). A file that isn't ELF returns 0 with
/// `is_elf` 0. Returns 0 or -errno (-ENOEXEC for a malformed PT_INTERP).
int agentgate_elf_inspect(int fd, agentgate_elf_info *out);

/// `agentgate_read_head` and, when the head is not a `#!` line, `agentgate_elf_inspect`, on one
/// reopening of `fd` (the exec path's usual case: one open, one fstat). Returns what
/// agentgate_read_head returns; `*inspected` gets what agentgate_elf_inspect would return, or 1
/// when the file starts with `#!` and was not inspected.
ssize_t agentgate_image_read(int fd, char *head, size_t capacity, agentgate_elf_info *out, int *inspected);

// MARK: - Small helpers (wrapped once here so Swift never sees raw syscall numbers)

/// pidfd_open(pid, PIDFD_THREAD), falling back to pidfd_open(pid, 0) on kernels without it.
int agentgate_pidfd_open(pid_t tid);
/// pidfd_getfd(pidfd, fd, 0).
int agentgate_pidfd_getfd(int pidfd, int fd);
/// openat(dirfd, path, flags | O_CLOEXEC, mode).
int agentgate_openat(int dirfd, const char *path, int flags, unsigned mode);
/// readlinkat(dirfd, path) into buf with a NUL. Returns the length or -errno.
ssize_t agentgate_readlinkat(int dirfd, const char *path, char *buf, size_t capacity);
/// Reads a whole small file (e.g. /proc/PID/status) into buf with a NUL. Returns length or -errno.
ssize_t agentgate_read_small_file(int dirfd, const char *path, char *buf, size_t capacity);
/// close(fd), ignoring EINTR.
void agentgate_close(int fd);
/// getxattr(path, name) into buf (no NUL added). Returns the length or -errno.
ssize_t agentgate_getxattr(const char *path, const char *name, void *buf, size_t capacity);

// MARK: - DNS capture (dns.c)

/// Starts the DNS capture namespace: a helper process (fork, then unshare(CLONE_NEWNET), inside
/// a new user namespace unless root) whose network routes every address to loopback. Returns 0
/// with `control` (the unix socket to ask it for sockets; the helper exits when it closes) and
/// `listeners` (port 53 there: UDP v4, UDP v6, TCP v4, TCP v6; -1 for a family the machine
/// lacks); or -errno with `stage` saying what failed (1 unshare, 2 loopback up, 3 route,
/// 4 listen, 0 the helper itself).
int agentgate_dns_namespace_start(int *control, int listeners[AGENTGATE_DNS_LISTENERS], int *stage);
/// socket(domain, type, protocol) made in the DNS capture namespace, close-on-exec; fd or -errno.
/// Not thread-safe: one request at a time on `control`.
int agentgate_dns_namespace_socket(int control, int domain, int type, int protocol);
/// recvmsg of one datagram with its sender and the local address it was sent to (IP_PKTINFO /
/// IPV6_PKTINFO). Returns the datagram's full length (MSG_TRUNC) or -errno.
int agentgate_dns_receive(int fd, void *buffer, size_t capacity, void *peer, uint32_t *peer_length,
                          void *local, uint32_t *local_length);
/// sendmsg of one datagram to `peer`, from the local address `local` (IP_PKTINFO / IPV6_PKTINFO).
int agentgate_dns_send(int fd, const void *buffer, size_t length, const void *peer, uint32_t peer_length,
                       const void *local, uint32_t local_length);
/// accept4(fd, NULL, NULL, SOCK_CLOEXEC): the connection or -errno.
int agentgate_accept_cloexec(int fd);
/// eventfd(0, EFD_CLOEXEC): an fd to wake a poll with, or -errno.
int agentgate_wake_fd(void);
/// Whether fd `fd` of process `pid` is close-on-exec (/proc/PID/fdinfo/FD): 1, 0, or -errno.
int agentgate_fd_cloexec(pid_t pid, int fd);
/// connect(fd, addr, len). Returns 0 or -errno.
int agentgate_connect(int fd, const void *addr, uint32_t len);
/// fcntl(fd, F_GETFL). Returns flags or -errno.
int agentgate_get_status_flags(int fd);
/// fstat(fd) device and inode. Returns 0 or -errno.
int agentgate_fstat_identity(int fd, uint64_t *dev, uint64_t *ino, unsigned *mode);
/// stat(path) device and inode, following symlinks. Returns 0 or -errno.
int agentgate_stat_identity(const char *path, uint64_t *dev, uint64_t *ino);
/// poll(fds, 1, timeout) for one fd; returns revents, 0 on timeout, or -errno.
int agentgate_poll_one(int fd, short events, int timeout_ms);
/// Sends one datagram of systemd's journal protocol from the AF_UNIX datagram socket `fd` to
/// the socket at `path` (sendmsg, named each time, as sd_journal_sendv does: a restarted
/// journald is found again), blocking while the journal doesn't read. A datagram too big for
/// the socket (EMSGSIZE, ENOBUFS) goes as a sealed memfd passed alone, which journald reads
/// instead. Returns 0 or -errno.
int agentgate_journal_send(int fd, const char *path, const void *datagram, size_t length);
/// waitid(P_ALL/P_PID, ..., WEXITED|WSTOPPED|WNOHANG). Returns pid (0 when none) or -errno;
/// `*code` gets CLD_* and `*status` the exit status or signal number.
int agentgate_wait_any(pid_t pid, int nohang, int *code, int *status);
/// waitid(P_ALL, ..., WEXITED|WSTOPPED|WCONTINUED|WNOHANG|WNOWAIT): what agentgate_wait_any would
/// take, left in place. Returns pid (0 when none) or -errno.
int agentgate_wait_peek(int *code, int *status);
/// The exec check (exectrace.c), each from the tracing thread: PTRACE_SEIZE(TRACEEXEC|EXITKILL)
/// then PTRACE_INTERRUPT (0 or -errno); waitid(P_PID or, pid 0, P_ALL, WEXITED|WSTOPPED|__WALL|__WNOTHREAD|WNOWAIT)
/// (pid or -errno, -EINTR when interrupted; CLD_* in *code); reaping an exited tracee; a stop's event (0 for a
/// signal-delivery stop) and signal (PTRACE_GETSIGINFO); PTRACE_DETACH with a signal.
int agentgate_exec_trace_attach(pid_t tid);
int agentgate_exec_trace_peek(pid_t pid, int nohang, int *code, int *status);
int agentgate_exec_trace_reap(pid_t pid);
int agentgate_exec_trace_stop(pid_t pid, int *event, int *signo);
int agentgate_exec_trace_detach(pid_t pid, int signo);
/// prctl(PR_SET_CHILD_SUBREAPER, 1) and prctl(PR_SET_DUMPABLE, 0).
int agentgate_become_subreaper(void);
int agentgate_set_undumpable(void);
/// signalfd for `mask` (also blocks it in the calling thread). Returns fd or -errno.
int agentgate_signalfd(const sigset_t *mask);
/// Reads one signalfd_siginfo; returns the signal number (0 if none) and whether it came from
/// a process (kill/sigqueue: SI_USER, SI_QUEUE, SI_TKILL) rather than the kernel (a terminal).
int agentgate_signalfd_read(int fd, int *from_process, int *sender_pid);
/// Installs a no-op handler without SA_RESTART for `signo` (used to interrupt blocked ioctls).
int agentgate_install_interrupt_handler(int signo);
/// unshare(CLONE_FS) for the calling thread, so it can fchdir without affecting other threads.
int agentgate_unshare_fs(void);

/// Where the file `fd` refers to lives: whether its mount (or file system) is read-only
/// (fstatvfs ST_RDONLY), and its mount id (statx STATX_MNT_ID). Returns 0 or -errno.
int agentgate_mount_of(int fd, int *read_only, uint64_t *mount_id);
/// fchdir(fd).
int agentgate_fchdir(int fd);
/// tcsetpgrp(fd, pgrp) with SIGTTOU blocked in the calling thread. Returns 0 or -errno.
int agentgate_tcsetpgrp(int fd, pid_t pgrp);
/// tcgetpgrp(fd). Returns pgrp or -errno.
pid_t agentgate_tcgetpgrp(int fd);
/// The terminal's width in columns (TIOCGWINSZ; 0 when unknown), or -errno.
int agentgate_terminal_columns(int fd);
/// CLOCK_MONOTONIC in nanoseconds.
uint64_t agentgate_monotonic_ns(void);
/// Builds a sigset from a list of signal numbers.
void agentgate_sigset(sigset_t *set, const int *signals, int count);
/// pthread_sigmask(SIG_BLOCK/SIG_SETMASK); `old` may be NULL.
int agentgate_sigmask(int how, const sigset_t *set, sigset_t *old);
/// pthread_kill on a pthread_t stored as uint64_t.
int agentgate_thread_kill(uint64_t thread, int signo);
uint64_t agentgate_thread_self(void);
/// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns the previous soft limit.
int64_t agentgate_raise_nofile(void);

/// Agent hooks: sends `bytes` with `fd` attached (SCM_RIGHTS) on a unix socket; bytes sent or -errno.
int agentgate_send_fd(int socket_fd, const void *bytes, size_t length, int fd);
/// Receives one message without waiting, and the first fd attached to it (-1 when none; any
/// other is closed; close-on-exec). Bytes received, or -errno (-EMSGSIZE when truncated).
long agentgate_receive_fd(int socket_fd, void *bytes, size_t capacity, int *fd_out);

#ifdef __cplusplus
}
#endif

#endif
