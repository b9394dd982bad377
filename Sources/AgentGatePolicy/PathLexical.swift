/// Lexical path handling (no filesystem access): cleaning and containment. The supervisor uses
/// it too, to name a path the kernel could not resolve.
public enum PathLexical {
    /// Go `filepath.Clean` semantics: collapse `//`, drop `.`, resolve `..` lexically, drop a
    /// trailing `/`. `..` above the root of an absolute path stays at the root.
    static func clean(_ path: String) -> String {
        if path.isEmpty { return "." }
        // Most absolute paths are clean already (the kernel's resolved names always are).
        if path.utf8.withContiguousStorageIfAvailable(isCleanAbsolute) ?? false { return path }
        let absolute = path.utf8.first == UInt8(ascii: "/")
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".":
                continue
            case "..":
                if let last = parts.last, last != ".." {
                    parts.removeLast()
                } else if !absolute {
                    parts.append(part)
                }
            default:
                parts.append(part)
            }
        }
        let joined = parts.joined(separator: "/")
        if absolute { return "/" + joined }
        return joined.isEmpty ? "." : joined
    }

    /// Whether an absolute path is already in clean form (so it can be compared byte-wise).
    @inline(__always)
    static func isCleanAbsolute(_ path: UnsafeBufferPointer<UInt8>) -> Bool {
        let slash = UInt8(ascii: "/")
        let dot = UInt8(ascii: ".")
        guard let first = path.first, first == slash else { return false }
        if path.count == 1 { return true }
        if path[path.count - 1] == slash { return false }
        // Every segment must be non-empty and neither "." nor "..".
        var segmentStart = 1
        var i = 1
        while i <= path.count {
            if i == path.count || path[i] == slash {
                let length = i - segmentStart
                if length == 0 { return false }
                if length == 1, path[segmentStart] == dot { return false }
                if length == 2, path[segmentStart] == dot, path[segmentStart + 1] == dot { return false }
                segmentStart = i + 1
            }
            i += 1
        }
        return true
    }

    /// Whether `path` equals `scope` or lies under `scope + "/"`. `scope` must be clean and
    /// absolute. A non-clean `path` is cleaned first (the only allocating case); a relative
    /// path is never within an absolute scope.
    static func isWithin(scope: UnsafeBufferPointer<UInt8>, path: UnsafeBufferPointer<UInt8>) -> Bool {
        if isCleanAbsolute(path) { return cleanIsWithin(scope: scope, path: path) }
        guard path.first == UInt8(ascii: "/") else { return false }
        var cleaned = clean(String(decoding: path, as: UTF8.self))
        return cleaned.withUTF8 { cleanIsWithin(scope: scope, path: $0) }
    }

    @inline(__always)
    private static func cleanIsWithin(scope: UnsafeBufferPointer<UInt8>, path: UnsafeBufferPointer<UInt8>) -> Bool {
        // The root contains every absolute path.
        if scope.count == 1 { return true }
        guard path.count >= scope.count else { return false }
        for i in 0..<scope.count where path[i] != scope[i] { return false }
        return path.count == scope.count || path[scope.count] == UInt8(ascii: "/")
    }

    /// Joins `path` onto `base` (when relative) and cleans the result as an absolute path: how
    /// the audit names a path the kernel could not resolve.
    public static func absolute(_ path: String, base: String) -> String {
        clean("/" + (path.hasPrefix("/") ? path : base + "/" + path))
    }

    /// Whether `path` is `root` or lies below it, comparing the text as given (both already
    /// resolved).
    public static func isWithin(_ path: String, root: String) -> Bool {
        path == root || path.hasPrefix(root.hasSuffix("/") ? root : root + "/")
    }
}
