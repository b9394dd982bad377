/// An IP network (`10.0.0.0/8`, `fd00::/8`, or a single address) as a 128-bit prefix. IPv4
/// networks live in the IPv4-mapped range `::ffff:0:0/96`, so an IPv4-mapped IPv6 target
/// (`[::ffff:10.1.2.3]:80`) meets IPv4 rules as the IPv4 address it is.
public struct IPNetwork: Sendable, Equatable, CustomStringConvertible {
    var high: UInt64
    var low: UInt64
    /// Prefix length over the 128-bit form (an IPv4 /8 is 104 here).
    var prefixLength: Int
    /// As written.
    public let text: String

    /// Parses `ADDRESS[/LENGTH]`; the address may be IPv4 or IPv6 (brackets allowed). Host bits
    /// set below the prefix (`10.1.2.3/8`) are an error: the writer probably meant something else.
    public init(parsing text: String) throws(GlobError) {
        self.text = text
        var address = Substring(text)
        var length: Int?
        if let slash = text.firstIndex(of: "/") {
            address = text[..<slash]
            guard let value = Int(text[text.index(after: slash)...]), value >= 0 else {
                throw GlobError(pattern: text, utf8Offset: text.utf8.distance(from: text.startIndex, to: slash) + 1,
                                message: "expected a prefix length after '/'")
            }
            length = value
        }
        if address.hasPrefix("["), address.hasSuffix("]") { address = address.dropFirst().dropLast() }
        if let v4 = IPAddress.parseIPv4(address.utf8) {
            let bits = length ?? 32
            guard bits <= 32 else {
                throw GlobError(pattern: text, utf8Offset: 0, message: "an IPv4 prefix length is at most 32")
            }
            high = 0
            low = 0xffff_0000_0000 | UInt64(v4[0]) << 24 | UInt64(v4[1]) << 16 | UInt64(v4[2]) << 8 | UInt64(v4[3])
            prefixLength = 96 + bits
        } else if let groups = IPAddress.parseIPv6(String(address)) {
            let bits = length ?? 128
            guard bits <= 128 else {
                throw GlobError(pattern: text, utf8Offset: 0, message: "an IPv6 prefix length is at most 128")
            }
            high = groups[0..<4].reduce(0) { $0 << 16 | UInt64($1) }
            low = groups[4..<8].reduce(0) { $0 << 16 | UInt64($1) }
            prefixLength = bits
        } else {
            throw GlobError(pattern: text, utf8Offset: 0,
                            message: "expected an IP address or network such as 10.0.0.0/8 or fd00::/8")
        }
        let (maskHigh, maskLow) = Self.mask(prefixLength)
        guard high & ~maskHigh == 0, low & ~maskLow == 0 else {
            throw GlobError(pattern: text, utf8Offset: 0,
                            message: "host bits are set below the /\(length ?? 0) prefix; write the network address")
        }
    }

    static func mask(_ length: Int) -> (UInt64, UInt64) {
        let high: UInt64 = length >= 64 ? ~0 : (length == 0 ? 0 : ~0 << UInt64(64 - length))
        let low: UInt64 = length >= 128 ? ~0 : (length <= 64 ? 0 : ~0 << UInt64(128 - length))
        return (high, low)
    }

    @inline(__always)
    func contains(_ address: (UInt64, UInt64)) -> Bool {
        let (maskHigh, maskLow) = Self.mask(prefixLength)
        return address.0 & maskHigh == high && address.1 & maskLow == low
    }

    public var description: String { text }
}

/// A port or an inclusive range of ports.
public struct PortRange: Sendable, Equatable, CustomStringConvertible {
    public let lower: UInt16
    public let upper: UInt16

    public init(_ lower: UInt16, _ upper: UInt16) {
        self.lower = lower
        self.upper = upper
    }

    /// Parses `443` or `8000-9000`.
    public init?(parsing text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2,
              let lower = UInt16(parts[0].trimmingSpaces()),
              let upper = parts.count == 2 ? UInt16(parts[1].trimmingSpaces()) : lower,
              lower <= upper else { return nil }
        self.init(lower, upper)
    }

    public var description: String { lower == upper ? "\(lower)" : "\(lower)-\(upper)" }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return s
    }
}

/// An `IPNetwork` as plain data for the hot path: the 128-bit prefix and its mask.
struct NetworkCode: Sendable {
    var high: UInt64
    var low: UInt64
    var maskHigh: UInt64
    var maskLow: UInt64

    init(_ network: IPNetwork) {
        high = network.high
        low = network.low
        (maskHigh, maskLow) = IPNetwork.mask(network.prefixLength)
    }

    @inline(__always)
    func contains(_ address: (UInt64, UInt64)) -> Bool {
        address.0 & maskHigh == high && address.1 & maskLow == low
    }
}

/// `cidr:` and `ports:` of a net_egress rule, tested after its host pattern.
struct NetworkConstraint: Sendable {
    var networks: [IPNetwork] = []
    var ports: [PortRange] = []
}

/// The parts of a network target the `cidr:`/`ports:` tests need, parsed at most once per
/// evaluation.
struct NetworkTargetFacts {
    private var parsed = false
    private(set) var address: (UInt64, UInt64)?
    private(set) var port: UInt16?

    @inline(__always)
    mutating func load(_ target: UnsafeBufferPointer<UInt8>, _ parts: HostTarget) {
        guard !parsed else { return }
        parsed = true
        guard !parts.isUnix else { return }
        if let range = parts.port { port = Self.port(target, range) }
        address = Self.address(target, parts.host)
    }

    static func port(_ target: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> UInt16? {
        guard !range.isEmpty, range.count <= 5 else { return nil }
        var value = 0
        for i in range {
            let byte = target[i]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value <= 65535 ? UInt16(value) : nil
    }

    /// The 128-bit form of an address literal host (IPv4 as IPv4-mapped), without allocating
    /// for IPv4.
    static func address(_ target: UnsafeBufferPointer<UInt8>, _ host: Range<Int>) -> (UInt64, UInt64)? {
        let bytes = UnsafeBufferPointer(rebasing: target[host])
        if IPAddress.looksLikeIPv4(bytes) {
            var value: UInt64 = 0
            var octet: UInt64 = 0
            var digits = 0
            var octets = 0
            for byte in bytes {
                if byte == UInt8(ascii: ".") {
                    guard digits > 0 else { return nil }
                    value = value << 8 | octet
                    octets += 1
                    octet = 0
                    digits = 0
                } else {
                    // No leading zeros, as inet_pton requires.
                    if digits == 1 && octet == 0 { return nil }
                    octet = octet * 10 + UInt64(byte - UInt8(ascii: "0"))
                    digits += 1
                    guard octet <= 255 else { return nil }
                }
            }
            guard digits > 0, octets == 3 else { return nil }
            return (0, 0xffff_0000_0000 | value << 8 | octet)
        }
        guard bytes.contains(UInt8(ascii: ":")),
              let groups = IPAddress.parseIPv6(String(decoding: bytes, as: UTF8.self)) else { return nil }
        return (groups[0..<4].reduce(0) { $0 << 16 | UInt64($1) }, groups[4..<8].reduce(0) { $0 << 16 | UInt64($1) })
    }
}
