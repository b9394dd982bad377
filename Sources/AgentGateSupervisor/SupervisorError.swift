import CSupport
import SystemPackage

/// An error from the supervisor: what failed, and the errno underneath when there is one.
public struct SupervisorError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        case filterBuild
        case filterInstall
        case spawn
        case commandNotFound
        case kernelUnsupported
        case listener
    }
    public let code: Code
    public let errno: Errno?
    public let message: String

    public init(_ code: Code, _ message: String, errno: Errno? = nil) {
        self.code = code
        self.errno = errno
        self.message = message
    }

    /// Builds an error from a CSupport return value (-errno).
    init(_ code: Code, _ message: String, result: Int32) {
        self.init(code, message, errno: Errno(rawValue: -result))
    }

    /// A failed start, named by the step in words, with what to do about it. The command never ran.
    static func spawnFailure(stage: Int32, result: Int32) -> SupervisorError {
        let step: String
        var hint = ""
        var code = Code.spawn
        switch stage {
        case Int32(AGENTGATE_SPAWN_PIPE.rawValue): step = "could not create the pipes to the child"
        case Int32(AGENTGATE_SPAWN_FORK.rawValue): step = "could not fork the child"; hint = " (too many processes? see ulimit -u)"
        case Int32(AGENTGATE_SPAWN_NO_NEW_PRIVS.rawValue):
            step = "the child could not set no_new_privs"; code = .filterInstall
        case Int32(AGENTGATE_SPAWN_SECCOMP.rawValue):
            step = "the child could not install the seccomp filter"; code = .filterInstall
            hint = " (the kernel needs seccomp user notification, Linux 5.9+; a container may forbid seccomp)"
        case Int32(AGENTGATE_SPAWN_PIDFD.rawValue): step = "could not open a pidfd for the child"
        case Int32(AGENTGATE_SPAWN_GETFD.rawValue):
            step = "could not receive the notification fd from the child (SCM_RIGHTS over the start-up socket)"
        case Int32(AGENTGATE_SPAWN_HANDSHAKE.rawValue): step = "the child ended before the start-up handshake finished"
        case Int32(AGENTGATE_SPAWN_CGROUP.rawValue): step = "could not move the child into the session's cgroup"
        case Int32(AGENTGATE_SPAWN_LIMITS.rawValue):
            step = "the child could not set its resource limits"; hint = " (try --max-processes 0)"
        default: step = "the start failed at step \(stage)"
        }
        return SupervisorError(code, "cannot start the command under supervision: \(step)\(hint); it was not run", result: result)
    }

    public var description: String {
        guard let errno else { return message }
        return "\(message): \(errno)"
    }
}
