/// A `net_egress` target pattern, compiled once and matched without allocating.
///
/// Targets look like `1.2.3.4:443`, `[2001:db8::1]:443`, `host:port`, `unix:/path` or
/// `unix:@abstract`. Pattern forms:
/// - `unix:GLOB`: a path glob against what follows `unix:` in a `unix:` target.
/// - A token with `*`, `?`, `[` or `\` (other than the brackets of `[v6]`): a case-insensitive
///   glob against the whole target and against its host part (`*.example.com` matches
///   `a.example.com:443`, `127.0.0.1:*` matches `127.0.0.1:9`).
/// - A bare token: a host, optionally with a port (`host:port`, `[v6]:port`). It matches a target
///   whose host part equals it, case-insensitively, on any port unless a port is given. It never
///   matches by substring: `github.com` does not match `github.com.evil.com` or `evilgithub.com`.
///   A leading dot (`.github.com`) matches every subdomain but not the domain itself. IPv6
///   tokens may be written with or without brackets and are compared in canonical form.
///   `localhost` also matches loopback literals (`127.0.0.0/8`, `::1`), which is what the
///   supervisor sees after name resolution.
///
/// An IPv4-mapped IPv6 target (`[::ffff:169.254.169.254]:80`) is also tried as its IPv4 form, so a
/// rule about an IPv4 address cannot be sidestepped through an AF_INET6 socket.
public struct HostPattern: Sendable {
    /// The pattern as given.
    public let pattern: String
    let code: HostCode
    let arena: MatchArena

    public init(_ pattern: String) throws(GlobError) {
        self.pattern = pattern
        if pattern.hasPrefix("unix:") {
            do throws(GlobError) {
                let glob = try Glob(String(pattern.dropFirst(5)))
                (code, arena) = (HostCode(form: .unixSocket, glob: glob.code), glob.arena)
            } catch {
                // Report the offset within the whole pattern, not the part after "unix:".
                throw GlobError(pattern: pattern, utf8Offset: error.utf8Offset + 5, message: error.message)
            }
            return
        }
        // "[v6]" is a bracketed IPv6 host, not a character class, when it holds an IPv6 address.
        let bracketed = Self.bracketedIPv6Length(pattern)
        let rest = pattern.utf8.dropFirst(bracketed)
        if rest.contains(where: { Self.wildcardBytes.contains($0) }) {
            var globPattern = pattern
            if bracketed > 0 {
                // Escape the brackets so "[::1]:*" means that address on any port.
                let inside = String(decoding: pattern.utf8.dropFirst().prefix(bracketed - 2), as: UTF8.self)
                globPattern = "\\[" + inside + "\\]" + String(decoding: rest, as: UTF8.self)
            }
            do throws(GlobError) {
                let glob = try Glob(globPattern, caseInsensitive: true)
                var wildcard = HostCode(form: .wildcard, glob: glob.code)
                wildcard.isAddress = bracketed > 0 || pattern.utf8.first.map { $0 == UInt8(ascii: "[") || ($0 >= 48 && $0 <= 57) } == true
                (code, arena) = (wildcard, glob.arena)
            } catch {
                // Escaping added two bytes before anything after the brackets.
                let shift = bracketed > 0 && error.utf8Offset >= bracketed ? 2 : 0
                throw GlobError(pattern: pattern, utf8Offset: error.utf8Offset - shift, message: error.message)
            }
            return
        }
        let token = try Self.parseHostToken(pattern)
        var arena = MatchArena()
        var code = HostCode(form: .host, glob: GlobCode())
        code.nameStart = arena.appendBytes(token.name)
        code.nameCount = Int32(token.name.count)
        if let port = token.port {
            code.portStart = arena.appendBytes(port)
            code.portCount = Int32(port.count)
        }
        code.subdomains = token.subdomains
        code.isLocalhost = token.isLocalhost
        code.isAddress = token.isAddress
        (self.code, self.arena) = (code, arena)
    }

    private static let wildcardBytes = Array("*?[\\".utf8)

    /// The length of a leading "[...]" whose content is an IPv6 address, or 0.
    private static func bracketedIPv6Length(_ pattern: String) -> Int {
        let bytes = Array(pattern.utf8)
        guard bytes.first == UInt8(ascii: "["),
              let close = bytes.firstIndex(of: UInt8(ascii: "]")),
              IPAddress.parseIPv6(String(decoding: bytes[1..<close], as: UTF8.self)) != nil
        else { return 0 }
        return close + 1
    }

    private struct HostToken {
        var name: [UInt8]
        var port: [UInt8]?
        var subdomains: Bool
        var isLocalhost: Bool
        /// An IP literal or `localhost`: the pattern names an address, not a DNS name.
        var isAddress: Bool
    }

    private static func parseHostToken(_ pattern: String) throws(GlobError) -> HostToken {
        func fail(_ offset: Int, _ message: String) -> GlobError {
            GlobError(pattern: pattern, utf8Offset: offset, message: message)
        }
        let subdomains = pattern.hasPrefix(".")
        let body = subdomains ? String(pattern.dropFirst()) : pattern
        let bodyOffset = subdomains ? 1 : 0
        var host: String
        var port: String?
        if body.hasPrefix("[") {
            guard let close = body.firstIndex(of: "]") else {
                throw fail(bodyOffset, "unterminated '[' in IPv6 host; expected ']'")
            }
            host = String(body[body.index(after: body.startIndex)..<close])
            let rest = body[body.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else {
                    throw fail(bodyOffset + body.utf8.distance(from: body.startIndex, to: close) + 1,
                               "expected ':port' after ']'")
                }
                port = String(rest.dropFirst())
            }
            guard host.contains(":") else { throw fail(bodyOffset, "brackets are only for IPv6 addresses") }
        } else {
            let colons = body.utf8.count(where: { $0 == UInt8(ascii: ":") })
            if colons == 1, let colon = body.firstIndex(of: ":") {
                host = String(body[..<colon])
                port = String(body[body.index(after: colon)...])
            } else {
                host = body
            }
        }
        if let port {
            let portOffset = pattern.utf8.count - port.utf8.count
            guard !port.isEmpty, port.utf8.count <= 5, port.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                  let value = Int(port), value <= 65535
            else { throw fail(portOffset, "invalid port \"\(port)\"; expected a number 0-65535") }
        }
        guard !host.isEmpty else { throw fail(bodyOffset, "empty host name") }
        host = host.lowercased()
        if host.contains(":") {
            guard !subdomains else { throw fail(0, "a leading '.' (subdomains) cannot apply to an IPv6 address") }
            guard let groups = IPAddress.parseIPv6(host) else {
                throw fail(bodyOffset, "invalid IPv6 address \"\(host)\"")
            }
            host = IPAddress.formatIPv6(groups)
        }
        let name = Array((subdomains ? "." + host : host).utf8)
        let isLocalhost = !subdomains && host == "localhost"
        let isLiteral = host.contains(":") || IPAddress.parseIPv4(host.utf8) != nil
        return HostToken(name: name, port: port.map { Array($0.utf8) }, subdomains: subdomains,
                         isLocalhost: isLocalhost, isAddress: isLocalhost || isLiteral)
    }

    /// Whether `target` matches.
    public func matches(target: String) -> Bool {
        if let result = target.utf8.withContiguousStorageIfAvailable({ matches(utf8: $0) }) {
            return result
        }
        var contiguous = target
        return contiguous.withUTF8 { matches(utf8: $0) }
    }

    /// Whether the UTF-8 bytes of a target match.
    public func matches(utf8 target: UnsafeBufferPointer<UInt8>) -> Bool {
        arena.withPointers { code.matches(target, HostTarget(target), $0) }
    }
}

/// A compiled host pattern as offsets into a `MatchArena` (plain data, like `GlobCode`).
struct HostCode: Sendable {
    enum Form: UInt8, Sendable {
        /// `glob` matches the path after `unix:`.
        case unixSocket
        /// `glob` matches the whole target or its host part.
        case wildcard
        /// A literal host (`name`), optionally with a port.
        case host
    }

    var form: Form
    var glob: GlobCode
    var nameStart: Int32 = 0
    var nameCount: Int32 = 0
    var portStart: Int32 = 0
    /// -1: any port.
    var portCount: Int32 = -1
    var subdomains = false
    var isLocalhost = false
    /// Whether the pattern names addresses rather than DNS names: an IP literal, `localhost`, or
    /// a glob whose text starts with a digit or `[`. A connect attributed to a name is also
    /// judged by these rules against its address (`Policy.evaluateConnection`).
    var isAddress = false

    init(form: Form, glob: GlobCode) {
        self.form = form
        self.glob = glob
    }

    func relocated(by shift: (bytes: Int32, words: Int32)) -> HostCode {
        var code = self
        code.glob = glob.relocated(by: shift)
        code.nameStart += shift.bytes
        code.portStart += shift.bytes
        return code
    }

    /// Whether `target` (already split into `parts`) matches; an IPv4-mapped IPv6 target is
    /// retried as plain IPv4.
    @inline(__always)
    func matches(_ target: UnsafeBufferPointer<UInt8>, _ parts: HostTarget, _ arena: ArenaPointers) -> Bool {
        if matchesDirectly(target, parts, arena) { return true }
        guard parts.isIPv4Mapped else { return false }
        return matchesUnmapped(target, parts, arena)
    }

    private func matchesUnmapped(_ target: UnsafeBufferPointer<UInt8>, _ parts: HostTarget,
                                 _ arena: ArenaPointers) -> Bool {
        // Rebuild as "a.b.c.d" or "a.b.c.d:port" on the stack.
        let v4 = parts.host.lowerBound + 7
        let v4Length = parts.host.upperBound - v4
        let portLength = parts.port.map { $0.count + 1 } ?? 0
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: v4Length + portLength) { buffer in
            var out = 0
            for i in v4..<parts.host.upperBound { buffer[out] = target[i]; out += 1 }
            if let port = parts.port {
                buffer[out] = UInt8(ascii: ":"); out += 1
                for i in port { buffer[out] = target[i]; out += 1 }
            }
            let unmapped = UnsafeBufferPointer(buffer)
            return matchesDirectly(unmapped, HostTarget(unmapped), arena)
        }
    }

    @inline(__always)
    private func matchesDirectly(_ target: UnsafeBufferPointer<UInt8>, _ parts: HostTarget,
                                 _ arena: ArenaPointers) -> Bool {
        switch form {
        case .unixSocket:
            guard parts.isUnix else { return false }
            return glob.matches(UnsafeBufferPointer(rebasing: target[5...]), arena)
        case .wildcard:
            if glob.matches(target, arena) { return true }
            guard !parts.isUnix, parts.host.count != target.count else { return false }
            return glob.matches(UnsafeBufferPointer(rebasing: target[parts.host]), arena)
        case .host:
            guard !parts.isUnix, let base = target.baseAddress else { return false }
            if portCount >= 0 {
                guard let port = parts.port, port.count == Int(portCount),
                      GlobCode.equal(base + port.lowerBound, arena.bytes + Int(portStart), port.count, foldCase: false)
                else { return false }
            }
            let host = parts.host
            let nameCount = Int(self.nameCount)
            let name = arena.bytes + Int(nameStart)
            if subdomains {
                if host.count > nameCount,
                   GlobCode.equal(base + (host.upperBound - nameCount), name, nameCount, foldCase: true) {
                    return true
                }
            } else if host.count == nameCount, GlobCode.equal(base + host.lowerBound, name, nameCount, foldCase: true) {
                return true
            }
            return isLocalhost && Self.isLoopbackLiteral(UnsafeBufferPointer(rebasing: target[host]))
        }
    }

    private static func isLoopbackLiteral(_ host: UnsafeBufferPointer<UInt8>) -> Bool {
        if host.count == 3, host[0] == UInt8(ascii: ":"), host[1] == UInt8(ascii: ":"), host[2] == UInt8(ascii: "1") {
            return true
        }
        return IPAddress.looksLikeIPv4(host) && host.count > 4
            && host[0] == UInt8(ascii: "1") && host[1] == UInt8(ascii: "2")
            && host[2] == UInt8(ascii: "7") && host[3] == UInt8(ascii: ".")
    }
}

/// Host and port ranges of a network target, found without allocating.
struct HostTarget {
    var host: Range<Int>
    var port: Range<Int>?
    /// Whether the host is `::ffff:a.b.c.d`.
    var isIPv4Mapped: Bool
    /// Whether the target is a `unix:` socket (then `host`/`port` are meaningless).
    var isUnix: Bool

    /// Whether the target starts with `unix:`.
    @inline(__always)
    static func hasUnixPrefix(_ target: UnsafeBufferPointer<UInt8>) -> Bool {
        target.count >= 5 && target[0] == UInt8(ascii: "u") && target[1] == UInt8(ascii: "n")
            && target[2] == UInt8(ascii: "i") && target[3] == UInt8(ascii: "x") && target[4] == UInt8(ascii: ":")
    }

    init(_ target: UnsafeBufferPointer<UInt8>) {
        let colon = UInt8(ascii: ":")
        let count = target.count
        host = 0..<count
        port = nil
        isIPv4Mapped = false
        isUnix = Self.hasUnixPrefix(target)
        if isUnix { return }
        if count > 0, target[0] == UInt8(ascii: "[") {
            // [v6] or [v6]:port
            guard let close = (1..<count).first(where: { target[$0] == UInt8(ascii: "]") }) else { return }
            if close + 1 == count {
                host = 1..<close
            } else if target[close + 1] == colon {
                host = 1..<close
                port = (close + 2)..<count
            }
        } else {
            var colons = 0
            var lastColon = 0
            for i in 0..<count where target[i] == colon {
                colons += 1
                lastColon = i
            }
            if colons == 1 {
                host = 0..<lastColon
                port = (lastColon + 1)..<count
            }
        }
        // "::ffff:" then a dotted quad.
        if host.count > 7 {
            let start = host.lowerBound
            let prefixMatches = target[start] == colon && target[start + 1] == colon
                && asciiLowercased(target[start + 2]) == UInt8(ascii: "f")
                && asciiLowercased(target[start + 3]) == UInt8(ascii: "f")
                && asciiLowercased(target[start + 4]) == UInt8(ascii: "f")
                && asciiLowercased(target[start + 5]) == UInt8(ascii: "f")
                && target[start + 6] == colon
            isIPv4Mapped = prefixMatches
                && IPAddress.looksLikeIPv4(UnsafeBufferPointer(rebasing: target[(start + 7)..<host.upperBound]))
        }
    }
}
