/// A DNS message (RFC 1035) as far as the forwarder needs it: the question it asks, the
/// addresses an answer gives and their TTLs. Parsing never trusts a length or a pointer: a
/// malformed message is nil, and compression pointers may only point backwards.
struct DNSMessage: Sendable, Equatable {
    struct Question: Sendable, Equatable {
        /// Lowercased, without the trailing dot; "" for the root.
        var name: String
        var type: UInt16
        var questionClass: UInt16
    }

    /// One A or AAAA record of an answer.
    struct Address: Sendable, Equatable {
        /// 16 bytes; an IPv4 address as IPv4-mapped IPv6 (::ffff:a.b.c.d).
        var bytes: [UInt8]
        var ttl: UInt32
        /// The name the record is under.
        var owner: String = ""
    }

    /// One CNAME record: `owner` is an alias of `target`.
    struct Alias: Sendable, Equatable {
        var owner: String
        var target: String
    }

    var id: UInt16
    var flags: UInt16
    var question: Question?
    /// A and AAAA records of the answer section, under whatever name.
    var addresses: [Address] = []
    /// CNAME records of the answer section.
    var cnames: [Alias] = []
    var answerCount: UInt16 = 0
    var authorityCount: UInt16 = 0

    /// CNAME targets met in the answer.
    var aliases: [String] { cnames.map(\.target) }

    /// The addresses that answer the question: A/AAAA records under the question's name or a
    /// name the CNAME chain from it reaches. Records under any other name are not the answer,
    /// whatever the resolver put in the section.
    var answeringAddresses: [Address] {
        guard let question else { return [] }
        var chain: Set<String> = [question.name]
        var grew = true
        while grew {
            grew = false
            for alias in cnames where chain.contains(alias.owner) && !chain.contains(alias.target) {
                chain.insert(alias.target)
                grew = true
            }
        }
        return addresses.filter { chain.contains($0.owner) }
    }

    /// Whether `answer` answers this query: a response with the same question.
    func isAnswered(by answer: DNSMessage) -> Bool {
        answer.isResponse && answer.id == id && answer.question == question
    }

    /// A standard query (opcode 0) with nothing but its question (and EDNS in the additional
    /// section): the only kind the forwarder relays.
    var isPlainQuery: Bool { !isResponse && flags & 0x7800 == 0 && question != nil && answerCount == 0 && authorityCount == 0 }

    var isResponse: Bool { flags & 0x8000 != 0 }
    var responseCode: UInt16 { flags & 0x000f }
    var isTruncated: Bool { flags & 0x0200 != 0 }

    static let typeA: UInt16 = 1
    static let typeCNAME: UInt16 = 5
    static let typeAAAA: UInt16 = 28

    static func typeName(_ type: UInt16) -> String {
        switch type {
        case 1: "A"
        case 2: "NS"
        case 5: "CNAME"
        case 6: "SOA"
        case 12: "PTR"
        case 15: "MX"
        case 16: "TXT"
        case 28: "AAAA"
        case 33: "SRV"
        case 65: "HTTPS"
        case 255: "ANY"
        default: "TYPE\(type)"
        }
    }

    /// Parses a query or a response; nil when it isn't a well-formed message with at most one
    /// question.
    init?(parsing bytes: [UInt8]) {
        guard bytes.count >= 12 else { return nil }
        func u16(_ at: Int) -> UInt16 { UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]) }
        id = u16(0)
        flags = u16(2)
        let questions = u16(4), answers = u16(6)
        answerCount = answers
        authorityCount = u16(8)
        guard questions <= 1 else { return nil }
        var offset = 12
        if questions == 1 {
            guard let (name, next) = Self.name(bytes, at: offset), next + 4 <= bytes.count else { return nil }
            question = Question(name: name, type: u16(next), questionClass: u16(next + 2))
            offset = next + 4
        }
        guard flags & 0x8000 != 0 else { return }
        for _ in 0..<answers {
            guard let (owner, next) = Self.name(bytes, at: offset), next + 10 <= bytes.count else { return nil }
            let type = u16(next), recordClass = u16(next + 2)
            let ttl = UInt32(u16(next + 4)) << 16 | UInt32(u16(next + 6))
            let length = Int(u16(next + 8))
            let data = next + 10
            guard data + length <= bytes.count else { return nil }
            if recordClass == 1 && type == Self.typeA && length == 4 {
                addresses.append(Address(bytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] + bytes[data..<data + 4], ttl: ttl,
                                         owner: owner))
            } else if recordClass == 1 && type == Self.typeAAAA && length == 16 {
                addresses.append(Address(bytes: Array(bytes[data..<data + 16]), ttl: ttl, owner: owner))
            } else if type == Self.typeCNAME, let (alias, _) = Self.name(bytes, at: data) {
                cnames.append(Alias(owner: owner, target: alias))
            }
            offset = data + length
        }
    }

    /// A domain name at `offset`: its text (lowercase, dot-separated, no trailing dot) and the
    /// offset after it where it is stored.
    static func name(_ bytes: [UInt8], at start: Int) -> (String, Int)? {
        var labels: [String] = []
        var offset = start
        var end: Int?
        var total = 0
        var jumps = 0
        while true {
            guard offset < bytes.count else { return nil }
            let length = Int(bytes[offset])
            if length == 0 {
                if end == nil { end = offset + 1 }
                break
            }
            if length & 0xc0 == 0xc0 {
                guard offset + 1 < bytes.count else { return nil }
                let target = (length & 0x3f) << 8 | Int(bytes[offset + 1])
                // Only backwards, and not forever.
                guard target < offset, jumps < 64 else { return nil }
                jumps += 1
                if end == nil { end = offset + 2 }
                offset = target
                continue
            }
            guard length & 0xc0 == 0, offset + 1 + length <= bytes.count else { return nil }
            total += length + 1
            guard total <= 255 else { return nil }
            labels.append(label(bytes[(offset + 1)...(offset + length)]))
            offset += 1 + length
        }
        return (labels.joined(separator: "."), end!)
    }

    /// A label as text: lowercase, with bytes that can't appear in a host name (and the dot)
    /// escaped as \DDD, as dig shows them, so a name recorded or matched is never ambiguous.
    static func label(_ bytes: ArraySlice<UInt8>) -> String {
        var text = ""
        text.reserveCapacity(bytes.count)
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): text.unicodeScalars.append(Unicode.Scalar(byte + 32))
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "*"):
                text.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let digits = String(byte)
                text += "\\" + String(repeating: "0", count: 3 - digits.count) + digits
            }
        }
        return text
    }

    /// The answer the forwarder gives itself to `query` (its id, flags and question), with no
    /// records: REFUSED (5), NXDOMAIN (3) or SERVFAIL (2).
    static func answer(to query: [UInt8], responseCode: UInt16) -> [UInt8]? {
        guard query.count >= 12 else { return nil }
        var questionEnd = 12
        if query[4] == 0 && query[5] == 1 {
            guard let (_, next) = name(query, at: 12), next + 4 <= query.count else { return nil }
            questionEnd = next + 4
        }
        var answer = Array(query[0..<questionEnd])
        let recursionDesired = query[2] & 0x01
        answer[2] = 0x80 | (query[2] & 0x78) | recursionDesired // QR, opcode, RD
        answer[3] = 0x80 | UInt8(responseCode & 0x0f) // RA
        answer[6] = 0; answer[7] = 0 // no answers
        answer[8] = 0; answer[9] = 0
        answer[10] = 0; answer[11] = 0
        if questionEnd == 12 { answer[4] = 0; answer[5] = 0 }
        return answer
    }

    static let refused: UInt16 = 5
    static let nameError: UInt16 = 3
    static let serverFailure: UInt16 = 2

    /// An address's text: dotted quad for IPv4-mapped, RFC 5952 otherwise.
    static func addressText(_ bytes: [UInt8]) -> String {
        guard bytes.count == 16 else { return "?" }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
            return "\(bytes[12]).\(bytes[13]).\(bytes[14]).\(bytes[15])"
        }
        return SocketAddress.ipv6(bytes)
    }
}
