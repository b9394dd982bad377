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
    static func append(_ text: String, to path: String) throws(StoreError) {
        for _ in 0..<16 {
            let descriptor = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else {
                throw failure("opening the fallback file failed", path: path)
            }
            defer { close(descriptor) }
            guard lock(descriptor) else { throw failure("locking the fallback file failed", path: path) }
            var opened = stat()
            var named = stat()
            guard fstat(descriptor, &opened) == 0 else { throw failure("stat of the fallback file failed", path: path) }
            // An importer removed (or replaced) the file while we waited for the lock: start over.
            guard stat(path, &named) == 0, named.st_ino == opened.st_ino, named.st_dev == opened.st_dev else { continue }
            var bytes: [UInt8] = []
            if opened.st_size > 0 {
                var last: UInt8 = 0
                if pread(descriptor, &last, 1, opened.st_size - 1) == 1, last != UInt8(ascii: "\n") {
                    bytes.append(UInt8(ascii: "\n"))
                }
            }
            bytes.append(contentsOf: text.utf8)
            try writeAll(descriptor, bytes, path: path)
            guard fsync(descriptor) == 0 else { throw failure("syncing the fallback file failed", path: path) }
            return
        }
        throw StoreError(code: .fallbackWriteFailed, path: path, message: "the fallback file kept being replaced while appending")
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

    private static func failure(_ message: String, path: String) -> StoreError {
        StoreError(code: .fallbackWriteFailed, path: path, message: message, systemErrno: errno)
    }

    /// Runs `body` with the file's contents while holding its lock; `body` returns whether to
    /// remove the file (still under the lock). nil when there is no file.
    static func withLockedContents<T>(
        _ path: String, _ body: ([UInt8]) throws(StoreError) -> (result: T, remove: Bool)
    ) throws(StoreError) -> T? {
        for _ in 0..<16 {
            let descriptor = open(path, O_RDWR | O_CLOEXEC)
            if descriptor < 0 {
                if errno == ENOENT { return nil }
                throw StoreError(code: .cannotOpen, path: path, message: "opening the fallback file for import failed", systemErrno: errno)
            }
            defer { close(descriptor) }
            guard lock(descriptor) else {
                throw StoreError(code: .sqlite, path: path, message: "locking the fallback file failed", systemErrno: errno)
            }
            var opened = stat()
            var named = stat()
            guard fstat(descriptor, &opened) == 0 else {
                throw StoreError(code: .sqlite, path: path, message: "stat of the fallback file failed", systemErrno: errno)
            }
            guard stat(path, &named) == 0, named.st_ino == opened.st_ino, named.st_dev == opened.st_dev else { continue }
            var contents: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            var offset: off_t = 0
            while true {
                let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, offset) }
                if count < 0 {
                    if errno == EINTR { continue }
                    throw StoreError(code: .sqlite, path: path, message: "reading the fallback file failed", systemErrno: errno)
                }
                if count == 0 { break }
                contents.append(contentsOf: buffer[0..<count])
                offset += off_t(count)
            }
            let (result, remove) = try body(contents)
            if remove && unlink(path) != 0 {
                throw StoreError(code: .sqlite, path: path, message: "removing the imported fallback file failed", systemErrno: errno)
            }
            return result
        }
        throw StoreError(code: .sqlite, path: path, message: "the fallback file kept being replaced during import")
    }
}

