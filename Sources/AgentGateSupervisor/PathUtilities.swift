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
