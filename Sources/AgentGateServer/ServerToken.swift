import AgentGateCLI
import Foundation
import Glibc

/// The bearer token mutating requests carry: 32 random bytes as hex, in the user's configuration
/// directory (`server.token`, mode 0600). Created once, with O_EXCL, so two servers starting
/// together agree on one; a file someone else owns or others can read is refused.
public struct ServerToken: Sendable {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public enum Code: String, Sendable { case directory, create, unsafe, unreadable, malformed }
        public let code: Code
        public let errno: Int32
        public let description: String
    }

    public let value: String
    public let path: String

    /// `$XDG_CONFIG_HOME/agentgate/server.token` (or wherever `agentgate paths` puts the configuration).
    public static func defaultPath(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        AgentGatePaths.serverToken(environment)
    }

    /// Reads the token at `path`, creating it (and its directory, 0700) when there is none.
    public static func loadOrCreate(at path: String) throws(Failure) -> ServerToken {
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        if !directory.isEmpty, access(directory, F_OK) != 0 {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw Failure(code: .directory, errno: Glibc.errno, description: "cannot create \(directory) for the server token: \(error.localizedDescription)")
            }
        }
        let created = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if created >= 0 {
            defer { close(created) }
            guard let value = randomHex(bytes: 32) else {
                unlink(path)
                throw Failure(code: .create, errno: Glibc.errno, description: "cannot draw random bytes for the server token")
            }
            let line = Array((value + "\n").utf8)
            let written = line.withUnsafeBytes { write(created, $0.baseAddress, $0.count) }
            // Exactly 0600 whatever the umask: a umask that takes the owner's bits (0277) would
            // leave a token its own server refuses or can't read back.
            guard written == line.count, fchmod(created, 0o600) == 0, fsync(created) == 0 else {
                let error = Glibc.errno
                unlink(path)
                throw Failure(code: .create, errno: error, description: "cannot write the server token \(path): \(String(cString: strerror(error)))")
            }
            return ServerToken(value: value, path: path)
        }
        guard Glibc.errno == EEXIST else {
            let error = Glibc.errno
            throw Failure(code: .create, errno: error, description: "cannot create the server token \(path): \(String(cString: strerror(error)))")
        }
        return try load(at: path)
    }

    /// Reads an existing token, refusing one that is not a regular file of this user's with mode 0600 (or stricter).
    public static func load(at path: String) throws(Failure) -> ServerToken {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            let error = Glibc.errno
            throw Failure(code: .unreadable, errno: error, description: "cannot read the server token \(path): \(String(cString: strerror(error)))"
                          + (error == ELOOP ? " (it is a symlink; remove it and start agentgate serve again)" : ""))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw Failure(code: .unreadable, errno: Glibc.errno, description: "cannot stat the server token \(path)")
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw Failure(code: .unsafe, errno: 0, description: "the server token \(path) is not a regular file; remove it and start agentgate serve again")
        }
        guard info.st_uid == geteuid() else {
            throw Failure(code: .unsafe, errno: 0, description: "the server token \(path) belongs to uid \(info.st_uid), not to you (uid \(geteuid())); "
                          + "remove it and start agentgate serve again")
        }
        guard info.st_mode & 0o077 == 0 else {
            throw Failure(code: .unsafe, errno: 0, description: "the server token \(path) has mode \(String(info.st_mode & 0o7777, radix: 8)): others could read it; "
                          + "run chmod 600 \(path), or remove it and start agentgate serve again for a new one")
        }
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        let text = count > 0 ? String(decoding: buffer[..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : ""
        guard text.utf8.count == 64, text.utf8.allSatisfy({ isHexDigit($0) }) else {
            throw Failure(code: .malformed, errno: 0, description: "the server token \(path) is not 64 hex digits; remove it and start agentgate serve again")
        }
        return ServerToken(value: text, path: path)
    }

    /// Whether `header` (an Authorization header's value) is `Bearer <this token>`, compared in
    /// constant time.
    public func authorizes(_ header: String?) -> Bool {
        guard let header, header.utf8.count > 7, header.prefix(7).lowercased() == "bearer " else { return false }
        let given = Array(header.utf8.dropFirst(7))
        let expected = Array(value.utf8)
        guard given.count == expected.count else { return false }
        var difference: UInt8 = 0
        for index in 0..<expected.count { difference |= given[index] ^ expected[index] }
        return difference == 0
    }

    static func isHexDigit(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66)
    }

    /// `count` random bytes as hex, from the system's generator (getrandom(2) on Linux,
    /// cryptographically secure).
    static func randomHex(bytes count: Int) -> String? {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return bytes.map { String(format: "%02x", $0) }.joined()
    }
}
