/// Textual IP helpers for host patterns (pure string work, no resolver).
enum IPAddress {
    /// Parses dotted-quad IPv4 ("1.2.3.4"; no leading zeros, as `inet_pton` requires).
    static func parseIPv4<C: Collection<UInt8>>(_ text: C) -> [UInt8]? {
        var octets: [UInt8] = []
        var value = 0
        var digits = 0
        var leadingZero = false
        for byte in text {
            if byte == UInt8(ascii: ".") {
                guard digits > 0 else { return nil }
                octets.append(UInt8(value))
                value = 0
                digits = 0
                leadingZero = false
                continue
            }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), !leadingZero else { return nil }
            if digits == 0, byte == UInt8(ascii: "0") { leadingZero = true }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
            digits += 1
            guard value <= 255 else { return nil }
        }
        guard digits > 0 else { return nil }
        octets.append(UInt8(value))
        return octets.count == 4 ? octets : nil
    }

    /// Whether the bytes look like a dotted quad (digits and exactly three dots); used on
    /// targets in the hot path, so it does not allocate.
    @inline(__always)
    static func looksLikeIPv4(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !text.isEmpty, text.count <= 15 else { return false }
        var dots = 0
        for byte in text {
            if byte == UInt8(ascii: ".") {
                dots += 1
            } else if byte < UInt8(ascii: "0") || byte > UInt8(ascii: "9") {
                return false
            }
        }
        return dots == 3
    }

    /// Parses an IPv6 address (with `::` compression and an optional trailing dotted quad) into
    /// eight 16-bit groups.
    static func parseIPv6(_ text: String) -> [UInt16]? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 2 else { return nil }
        func groups(_ part: ArraySlice<UInt8>, allowTrailingIPv4: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            let pieces = part.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if allowTrailingIPv4, index == pieces.count - 1, piece.contains(UInt8(ascii: ".")) {
                    guard let v4 = parseIPv4(piece) else { return nil }
                    result.append(UInt16(v4[0]) << 8 | UInt16(v4[1]))
                    result.append(UInt16(v4[2]) << 8 | UInt16(v4[3]))
                    continue
                }
                guard (1...4).contains(piece.count) else { return nil }
                var value: UInt16 = 0
                for byte in piece {
                    guard let digit = hexValue(byte) else { return nil }
                    value = value << 4 | UInt16(digit)
                }
                result.append(value)
            }
            return result
        }
        // Locate a single "::".
        var doubleColon: Int?
        var i = 0
        while i + 1 < bytes.count {
            if bytes[i] == UInt8(ascii: ":"), bytes[i + 1] == UInt8(ascii: ":") {
                if doubleColon != nil { return nil }
                doubleColon = i
                i += 2
                continue
            }
            i += 1
        }
        if let split = doubleColon {
            guard let head = groups(bytes[..<split], allowTrailingIPv4: false),
                  let tail = groups(bytes[(split + 2)...], allowTrailingIPv4: true),
                  head.count + tail.count <= 7
            else { return nil }
            return head + [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
        }
        guard let all = groups(bytes[...], allowTrailingIPv4: true), all.count == 8 else { return nil }
        return all
    }

    /// Formats eight groups the way glibc's `inet_ntop` does (RFC 5952 lower-case, longest zero
    /// run of two or more groups compressed, IPv4-mapped and -compatible tails dotted), so a
    /// pattern compares equal to what the supervisor prints for a `sockaddr_in6`.
    static func formatIPv6(_ groups: [UInt16]) -> String {
        precondition(groups.count == 8)
        var bestStart = -1, bestLength = 0, runStart = -1, runLength = 0
        for (index, group) in groups.enumerated() {
            if group == 0 {
                if runStart < 0 { runStart = index; runLength = 0 }
                runLength += 1
                if runLength > bestLength { bestStart = runStart; bestLength = runLength }
            } else {
                runStart = -1
            }
        }
        if bestLength < 2 { bestStart = -1 }
        var text = ""
        var index = 0
        while index < 8 {
            if bestStart >= 0, index >= bestStart, index < bestStart + bestLength {
                if index == bestStart { text += ":" }
                index += 1
                continue
            }
            if index != 0 { text += ":" }
            if index == 6, bestStart == 0, bestLength == 6 || (bestLength == 5 && groups[5] == 0xFFFF) {
                text += "\(groups[6] >> 8).\(groups[6] & 0xFF).\(groups[7] >> 8).\(groups[7] & 0xFF)"
                return text
            }
            text += String(groups[index], radix: 16)
            index += 1
        }
        if bestStart >= 0, bestStart + bestLength == 8 { text += ":" }
        return text
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
