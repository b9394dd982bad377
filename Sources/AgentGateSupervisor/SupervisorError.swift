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

    public var description: String {
        guard let errno else { return message }
        return "\(message): \(errno)"
    }
}
