import CSupport
import Glibc

/// An fd the supervisor opened or copied from the agent, closed exactly once when the value goes
/// away: an early return can neither leak it nor close it twice. A negative `raw` is the -errno
/// of the call that failed to produce one.
struct OwnedFD: ~Copyable {
    let raw: Int32

    init(_ raw: Int32) { self.raw = raw }

    /// The supervisor's own copy of the agent's fd `fd` (pidfd_getfd through a pidfd of the
    /// agent's thread `tid`): the object itself, whatever the number means later.
    static func copy(of fd: Int32, from tid: pid_t) -> OwnedFD {
        let pidfd = agentgate_pidfd_open(tid)
        let copy = pidfd >= 0 ? agentgate_pidfd_getfd(pidfd, fd) : pidfd
        agentgate_close(pidfd)
        return OwnedFD(copy)
    }

    var isValid: Bool { raw >= 0 }

    /// Runs `body` with the fd number, which stays open until `body` returns: for calls that
    /// carry the number somewhere other than the expression that reads it (an argument array).
    borrowing func withRaw<R>(_ body: (Int32) -> R) -> R { body(raw) }

    /// Hands the fd on (to a closure or a worker that closes it): this value no longer closes it.
    consuming func release() -> Int32 {
        let fd = raw
        discard self
        return fd
    }

    deinit { agentgate_close(raw) }
}
