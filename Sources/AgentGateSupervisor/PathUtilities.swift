import Glibc

extension String {
    /// A name from a C buffer of known length, as text (see `init(pathBytes:)`).
    init(cBuffer: UnsafePointer<CChar>, count: Int) {
        self = cBuffer.withMemoryRebound(to: UInt8.self, capacity: count) {
            String(pathBytes: UnsafeBufferPointer(start: $0, count: count))
        }
    }

    /// A path or name as text, without loss: Linux names are bytes, and a byte that isn't part
    /// of valid UTF-8 is written `\xHH` (with `\` doubled in such a name, and in a valid name that
    /// contains `\x`), never replaced by
    /// U+FFFD, so two different names never read the same in a decision or the audit. A
    /// valid UTF-8 name (nearly every one) is unchanged. Only for naming: the calls themselves
    /// are made on the bytes (RawPath).
    package init<Bytes: Collection>(pathBytes bytes: Bytes) where Bytes.Element == UInt8 {
        if let valid = String(validating: bytes, as: UTF8.self) {
            // A valid name that spells an escape (`a\xFF`) has its backslashes doubled, so it
            // can't read as the invalid name it imitates. Looked for in the bytes: with
            // Foundation in the module, `String.contains("\\x")` is NSString's range(of:),
            // microseconds per name on every open.
            self = Self.spellsEscape(bytes) ? valid.replacing("\\", with: "\\\\") : valid
            return
        }
        var result = ""
        var scalars = String.UnicodeScalarView()
        let array = Array(bytes)
        var index = 0
        func flush() { if !scalars.isEmpty { result.unicodeScalars.append(contentsOf: scalars); scalars = String.UnicodeScalarView() } }
        while index < array.count {
            let length = Self.validSequenceLength(array, at: index)
            if length == 0 {
                flush()
                result += "\\x" + String(array[index], radix: 16, uppercase: true).leftPadded(to: 2)
                index += 1
                continue
            }
            if length == 1 && array[index] == UInt8(ascii: "\\") {
                flush()
                result += "\\\\"
            } else {
                scalars.append(contentsOf: String(decoding: array[index..<index + length], as: UTF8.self).unicodeScalars)
            }
            index += length
        }
        flush()
        self = result
    }

    /// Whether the bytes hold `\x`.
    private static func spellsEscape<Bytes: Collection>(_ bytes: Bytes) -> Bool where Bytes.Element == UInt8 {
        var afterBackslash = false
        for byte in bytes {
            if afterBackslash && byte == UInt8(ascii: "x") { return true }
            afterBackslash = byte == UInt8(ascii: "\\")
        }
        return false
    }

    /// The length of the valid UTF-8 sequence starting at `index`, or 0 when the byte there
    /// doesn't start one (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF).
    private static func validSequenceLength(_ bytes: [UInt8], at index: Int) -> Int {
        let lead = bytes[index]
        let length: Int
        var low: UInt8 = 0x80, high: UInt8 = 0xBF
        switch lead {
        case 0x00...0x7F: return 1
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; high = 0x9F
        case 0xF0: length = 4; low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; high = 0x8F
        default: return 0
        }
        guard index + length <= bytes.count else { return 0 }
        for offset in 1..<length {
            let byte = bytes[index + offset]
            let (min, max): (UInt8, UInt8) = offset == 1 ? (low, high) : (0x80, 0xBF)
            if byte < min || byte > max { return 0 }
        }
        return length
    }

    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

/// Writes a line to stderr with one write(2), so lines from several threads don't interleave.
func writeStandardError(_ text: String) {
    var bytes = Array(text.utf8)
    bytes.withUnsafeMutableBytes { raw in
        var offset = 0
        while offset < raw.count {
            let n = write(2, raw.baseAddress! + offset, raw.count - offset)
            if n <= 0 { break }
            offset += n
        }
    }
}

/// A path exactly as the agent's memory (or a file the kernel reads, like a `#!` line or
/// PT_INTERP) holds it: bytes, not text. It is resolved as these bytes, so the supervisor
/// resolves what the kernel will; `text` (invalid UTF-8 escaped as \xHH) is only for naming.
struct RawPath: Sendable, Equatable {
    /// The bytes, without a terminating NUL.
    let bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }
    init<S: Sequence>(bytes: S) where S.Element == UInt8 { self.bytes = Array(bytes) }
    init(_ text: String) { bytes = Array(text.utf8) }

    /// Copies a NUL-terminated C buffer of known length.
    init(cBuffer: UnsafePointer<CChar>, count: Int) {
        bytes = cBuffer.withMemoryRebound(to: UInt8.self, capacity: count) { Array(UnsafeBufferPointer(start: $0, count: count)) }
    }

    var isEmpty: Bool { bytes.isEmpty }
    var isAbsolute: Bool { bytes.first == UInt8(ascii: "/") }
    var hasTrailingSlash: Bool { bytes.last == UInt8(ascii: "/") }
    /// The path as text, for decisions and the audit (invalid UTF-8 escaped, see
    /// `String(pathBytes:)`).
    var text: String { String(pathBytes: bytes) }

    /// Calls `body` with a NUL-terminated copy.
    func withCString<R>(_ body: (UnsafePointer<CChar>) -> R) -> R {
        var terminated = bytes
        terminated.append(0)
        return terminated.withUnsafeBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) { body($0) }
        }
    }
}
