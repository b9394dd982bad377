#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The JSONL fallback file, `<database>.fallback.jsonl`: where records go when the database
/// can't be written (disk full, read-only, locked past the busy timeout), one JSON object per
/// line, each with a `type` (see docs/audit-schema.md, "Fallback file"). Records carry their
/// chain position and hash, so they verify once imported.
///
/// Writers and the importer serialize on `flock` of the file. An importer removes the file
/// after its transaction commits, so an appender re-checks, once it holds the lock, that the
/// path still names the file it opened.
enum AuditFallbackFile {
    /// Appends `text` (whole lines) to `path`, created 0600 if missing. If the file ends in a
    /// partial line (a writer crashed mid-write), a newline is written first, so the partial
    /// line stays a line of its own (rejected at import) instead of corrupting this one.
    /// `sync: false` leaves the write in the page cache (it survives the process, not a power
    /// loss): for a caller on the decision path, which must not wait for the disk.
    static func append(_ text: String, to path: String, sync: Bool = true) throws(StoreError) {
        _ = try withLockedFile(path, for: .appending) { (descriptor, opened) throws(StoreError) in
            var bytes: [UInt8] = []
            if opened.st_size > 0 {
                var last: UInt8 = 0
                if pread(descriptor, &last, 1, opened.st_size - 1) == 1, last != UInt8(ascii: "\n") {
                    bytes.append(UInt8(ascii: "\n"))
                }
            }
            bytes.append(contentsOf: text.utf8)
            try writeAll(descriptor, bytes, path: path)
            // The lock orders writers and the importer; durability needs no lock, so the
            // (slow) sync doesn't hold up an overflowing decision behind it.
            _ = flock(descriptor, LOCK_UN)
            guard !sync || fsync(descriptor) == 0 else { throw Purpose.appending.failure("syncing the fallback file failed", path: path) }
        }
    }

    /// Runs `body` with a reader of the file while holding its lock; `body` returns whether to
    /// remove the file (still under the lock). nil when there is no file.
    static func withLockedReader<T>(
        _ path: String, _ body: (Reader) throws(StoreError) -> (result: T, remove: Bool)
    ) throws(StoreError) -> T? {
        try withLockedFile(path, for: .importing) { (descriptor, _) throws(StoreError) -> T in
            let (result, remove) = try body(Reader(descriptor: descriptor, path: path))
            if remove && unlink(path) != 0 {
                throw Purpose.importing.failure("removing the imported fallback file failed", path: path)
            }
            return result
        }
    }

    /// Runs `body` with the file's whole contents while holding its lock (tests; an import
    /// reads through `withLockedReader`).
    static func withLockedContents<T>(
        _ path: String, _ body: ([UInt8]) throws(StoreError) -> (result: T, remove: Bool)
    ) throws(StoreError) -> T? {
        try withLockedReader(path) { (reader) throws(StoreError) -> (result: T, remove: Bool) in
            var contents: [UInt8] = []
            try reader.forEachChunk { (chunk) throws(StoreError) in contents.append(contentsOf: chunk) }
            return try body(contents)
        }
    }

    /// Appends the lines of `source` to `destination` (a chunk at a time, synced), then
    /// removes `source`, all under `source`'s lock. A partial last line stays partial (the
    /// next appender ends it; an import rejects it as such). If an append fails, `source` is
    /// kept whole: the lines already moved are then in both, and an import skips them again.
    static func moveLines(from source: String, to destination: String) throws(StoreError) {
        _ = try withLockedReader(source) { (reader) throws(StoreError) -> (result: Void, remove: Bool) in
            var lines = ""
            try reader.forEachLine { (bytes, complete) throws(StoreError) in
                lines += String(decoding: bytes, as: UTF8.self)
                if complete { lines += "\n" }
                if lines.utf8.count >= chunkSize {
                    try append(lines, to: destination)
                    lines = ""
                }
            }
            if !lines.isEmpty { try append(lines, to: destination) }
            return ((), true)
        }
    }

    /// How much a reader holds at once, and how much a writer gathers before appending.
    static let chunkSize = 8 << 20

    /// The locked file, read from its start in chunks of `chunkSize`, as often as needed.
    struct Reader {
        let descriptor: Int32
        let path: String
        var chunkSize = AuditFallbackFile.chunkSize

        /// Calls `body` with each chunk in order (a line may span two).
        func forEachChunk(_ body: (ArraySlice<UInt8>) throws(StoreError) -> Void) throws(StoreError) {
            var buffer = [UInt8](repeating: 0, count: max(1, chunkSize))
            var offset: off_t = 0
            while true {
                let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, offset) }
                if count < 0 {
                    if errno == EINTR { continue }
                    throw Purpose.importing.failure("reading the fallback file failed", path: path)
                }
                if count == 0 { return }
                try body(buffer[0..<count])
                offset += off_t(count)
            }
        }

        /// Calls `body` with each line, without its newline, in file order; `complete` is
        /// false for a last line with no newline (a write that was interrupted). A line longer
        /// than a chunk is gathered whole.
        func forEachLine(_ body: (ArraySlice<UInt8>, _ complete: Bool) throws(StoreError) -> Void) throws(StoreError) {
            var carried: [UInt8] = []
            try forEachChunk { (chunk) throws(StoreError) in
                var start = chunk.startIndex
                while let newline = chunk[start...].firstIndex(of: UInt8(ascii: "\n")) {
                    if carried.isEmpty {
                        try body(chunk[start..<newline], true)
                    } else {
                        carried.append(contentsOf: chunk[start..<newline])
                        try body(carried[...], true)
                        carried.removeAll(keepingCapacity: false)
                    }
                    start = newline + 1
                }
                carried.append(contentsOf: chunk[start...])
            }
            if !carried.isEmpty { try body(carried[...], false) }
        }
    }

    /// Why the file is opened, which decides how it is opened and how its failures are told.
    private enum Purpose {
        case appending
        case importing

        // O_NOFOLLOW: a symlink put in its place (the spill file's directory may be /tmp's)
        // would otherwise have the supervisor append to, or import, a file of someone else's.
        var flags: Int32 { self == .appending ? O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW : O_RDWR | O_CLOEXEC | O_NOFOLLOW }

        /// A failure of one step, with the current errno.
        func failure(_ message: String, path: String) -> StoreError {
            StoreError(code: self == .appending ? .fallbackWriteFailed : .sqlite, path: path, message: message, systemErrno: errno)
        }

        func openFailure(path: String) -> StoreError {
            self == .appending
                ? failure("opening the fallback file failed", path: path)
                : StoreError(code: .cannotOpen, path: path, message: "opening the fallback file for import failed", systemErrno: errno)
        }

        func keptBeingReplaced(path: String) -> StoreError {
            StoreError(code: self == .appending ? .fallbackWriteFailed : .sqlite, path: path,
                       message: "the fallback file kept being replaced " + (self == .appending ? "while appending" : "during import"))
        }
    }

    /// Opens `path`, takes its lock and runs `body` with the descriptor and the file's status,
    /// once the path still names the locked file: an importer may have removed or replaced it
    /// while this waited for the lock, and then it starts over. nil when importing and there
    /// is no file.
    private static func withLockedFile<T>(
        _ path: String, for purpose: Purpose, _ body: (Int32, stat) throws(StoreError) -> T
    ) throws(StoreError) -> T? {
        for _ in 0..<16 {
            let descriptor = open(path, purpose.flags, 0o600)
            if descriptor < 0 {
                if purpose == .importing && errno == ENOENT { return nil }
                throw purpose.openFailure(path: path)
            }
            defer { close(descriptor) }
            guard lock(descriptor) else { throw purpose.failure("locking the fallback file failed", path: path) }
            var opened = stat()
            var named = stat()
            guard fstat(descriptor, &opened) == 0 else { throw purpose.failure("stat of the fallback file failed", path: path) }
            guard stat(path, &named) == 0, named.st_ino == opened.st_ino, named.st_dev == opened.st_dev else { continue }
            // Only a regular file of this user's with one name: not a device or FIFO to read
            // without end, nor a hard link to a file that belongs elsewhere.
            guard opened.st_mode & S_IFMT == S_IFREG, opened.st_uid == geteuid(), opened.st_nlink == 1 else {
                throw StoreError(code: purpose == .appending ? .fallbackWriteFailed : .cannotOpen, path: path,
                                 message: "the fallback file is not a regular file of this user's with one link; it was left alone")
            }
            return try body(descriptor, opened)
        }
        throw purpose.keptBeingReplaced(path: path)
    }

    private static func lock(_ descriptor: Int32) -> Bool {
        while flock(descriptor, LOCK_EX) != 0 {
            if errno != EINTR { return false }
        }
        return true
    }

    private static func writeAll(_ descriptor: Int32, _ bytes: [UInt8], path: String) throws(StoreError) {
        let result: Int32? = bytes.withUnsafeBytes { buffer -> Int32? in
            var offset = 0
            while offset < buffer.count {
                let written = write(descriptor, buffer.baseAddress?.advanced(by: offset), buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += written
            }
            return nil
        }
        if let result {
            throw StoreError(code: .fallbackWriteFailed, path: path, message: "writing the fallback file failed", systemErrno: result)
        }
    }
}
