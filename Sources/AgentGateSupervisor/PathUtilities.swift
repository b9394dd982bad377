import Glibc

/// Lexical path helpers. They never touch the file system: resolution is the kernel's job, and
/// these only name a path for the audit when the kernel could not resolve it.
enum LexicalPath {
    /// Joins `path` onto `base` (when relative) and removes `.`, `..` and repeated slashes.
    static func absolute(_ path: String, base: String) -> String {
        let joined = path.hasPrefix("/") ? path : base + "/" + path
        var parts: [Substring] = []
        for component in joined.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            if component == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(component)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// Whether `path` is `root` or lies below it.
    static func isWithin(_ path: String, _ root: String) -> Bool {
        path == root || path.hasPrefix(root.hasSuffix("/") ? root : root + "/")
    }
}

extension String {
    /// Builds a String from a NUL-terminated C buffer of known length.
    init(cBuffer: UnsafePointer<CChar>, count: Int) {
        self = cBuffer.withMemoryRebound(to: UInt8.self, capacity: count) {
            String(decoding: UnsafeBufferPointer(start: $0, count: count), as: UTF8.self)
        }
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
/// resolves what the kernel will; `text` (invalid UTF-8 shown as U+FFFD) is only for naming.
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
    var text: String { String(decoding: bytes, as: UTF8.self) }

    /// Calls `body` with a NUL-terminated copy.
    func withCString<R>(_ body: (UnsafePointer<CChar>) -> R) -> R {
        var terminated = bytes
        terminated.append(0)
        return terminated.withUnsafeBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) { body($0) }
        }
    }
}
