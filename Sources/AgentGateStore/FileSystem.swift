#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Plain POSIX file helpers, so failures carry an errno the caller can report.
enum AuditFileSystem {
    /// The directory part of `path` ("." for a bare file name, "/" for a file in the root).
    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let parent = String(path[..<slash])
        return parent.isEmpty ? "/" : parent
    }

    /// Creates `directory` and any missing ancestors with `mode` (0700: audit logs are private).
    /// Existing directories are left as they are.
    static func createDirectories(_ directory: String, mode: mode_t = 0o700, forDatabase databasePath: String) throws(StoreError) {
        if isDirectory(directory) { return }
        let parent = parentDirectory(of: directory)
        if parent != directory && parent != "." {
            try createDirectories(parent, mode: mode, forDatabase: databasePath)
        }
        if mkdir(directory, mode) == 0 { return }
        var failure = errno
        // The error's description adds errno's text, so the message only says what it doesn't.
        var detail = ""
        if failure == EEXIST {
            // Lost a race with another creator: fine if what's there now is a directory.
            if isDirectory(directory) { return }
            failure = ENOTDIR
            detail = ": it exists and is not a directory"
        }
        throw StoreError(
            code: .cannotCreateDirectory, path: databasePath,
            message: "cannot create directory \(directory)\(detail)",
            systemErrno: failure)
    }

    /// Creates an empty database file readable by its owner only (SQLite would use 0644, and
    /// gives the -wal and -shm files the database's mode). An existing file is left alone.
    static func createPrivateFileIfMissing(_ path: String) throws(StoreError) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if descriptor >= 0 {
            close(descriptor)
            return
        }
        let failure = errno
        if failure == EEXIST { return }
        throw StoreError(
            code: .cannotOpen, path: path, message: "cannot create the database file", systemErrno: failure)
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        return (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Appends `text` to `path` (created 0600 if missing), retrying short writes and EINTR.
    static func append(_ text: String, to path: String) throws(StoreError) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            let failure = errno
            throw StoreError(
                code: .fallbackWriteFailed, path: path,
                message: "opening the fallback file failed",
                systemErrno: failure)
        }
        defer { close(descriptor) }
        var bytes = Array(text.utf8)
        let failure: Int32? = bytes.withUnsafeMutableBytes { buffer -> Int32? in
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
        if let failure {
            throw StoreError(
                code: .fallbackWriteFailed, path: path,
                message: "writing the fallback file failed",
                systemErrno: failure)
        }
        if fsync(descriptor) != 0 {
            let failure = errno
            throw StoreError(
                code: .fallbackWriteFailed, path: path,
                message: "syncing the fallback file failed",
                systemErrno: failure)
        }
    }
}
