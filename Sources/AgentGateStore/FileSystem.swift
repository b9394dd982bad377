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
}

/// The files that belong to one audit database: SQLite's own and the fallback file. They are
/// protected from the agent together, and go together.
public struct AuditDatabaseFiles: Sendable, Equatable {
    /// What each file's name adds to the database's: the database itself, SQLite's journals,
    /// the fallback file, the chain's key and its anchors.
    public static let suffixes = ["", "-wal", "-shm", "-journal", fallbackSuffix, keySuffix, anchorsSuffix]
    static let keySuffix = ".key"
    static let anchorsSuffix = ".anchors"
    static let fallbackSuffix = ".fallback.jsonl"
    static let rejectedSuffix = ".fallback.rejected.jsonl"

    public let databasePath: String

    public init(databasePath: String) {
        self.databasePath = databasePath
    }

    /// Every file of the database, whether it exists or not (the spill file too).
    /// (The rejected lines and an import's pending rejects are audit data too.)
    public var all: [String] {
        Self.suffixes.map { databasePath + $0 } + [fallbackRejected, fallbackRejected + ".pending"]
            + [spill, anchorSpill].compactMap { $0 }
    }

    /// Where a session's chain head goes when the anchor file refuses it (its file system
    /// read-only or full): beside the spill file. The next import appends it to `anchors`.
    public var anchorSpill: String? { spill.map { String($0.dropLast(".jsonl".count)) + ".anchors" } }

    /// Where a session's last records go when the database and the fallback file beside it
    /// both refuse them at its end (their file system full, or read-only for good): a file
    /// named for the database in a directory of the user's own, most often on another file
    /// system. The next import moves it into the fallback file. nil when there is no such
    /// directory.
    public var spill: String? {
        guard let directory = Self.spillDirectory() else { return nil }
        return directory + "/spill-" + SHA256Hex.digest(Array(databasePath.utf8)).prefix(16) + ".jsonl"
    }

    /// $XDG_RUNTIME_DIR/agentgate, else /run/agentgate-spill for root, else /tmp/agentgate-UID: made
    /// 0700 when missing, and used only when it is a directory of this user's that no one else
    /// may write to.
    public static func spillDirectory() -> String? {
        let uid = getuid()
        let base: String
        if let raw = getenv("XDG_RUNTIME_DIR"), case let runtime = String(cString: raw), runtime.hasPrefix("/") {
            base = runtime + "/agentgate"
        } else {
            // Not /run/agentgate itself: system services' runtime directories are made below
            // it for their own users, who could no longer reach them through a 0700 directory.
            base = uid == 0 ? "/run/agentgate-spill" : "/tmp/agentgate-\(uid)"
        }
        // Its parent must be one that nobody else can rename it out of: owned by this user or
        // root, and writable by no one else unless sticky (/tmp). Root given a user's
        // $XDG_RUNTIME_DIR (sudo -E) would otherwise trust a directory the user can swap.
        let parent = String(base[..<(base.lastIndex(of: "/") ?? base.startIndex)])
        var parentStatus = stat()
        guard lstat(parent.isEmpty ? "/" : parent, &parentStatus) == 0, parentStatus.st_mode & S_IFMT == S_IFDIR,
              parentStatus.st_uid == uid || parentStatus.st_uid == 0,
              parentStatus.st_mode & 0o022 == 0 || parentStatus.st_mode & 0o1000 != 0 else { return nil }
        _ = mkdir(base, 0o700)
        var status = stat()
        guard lstat(base, &status) == 0, status.st_mode & S_IFMT == S_IFDIR, status.st_uid == uid,
              status.st_mode & 0o022 == 0 else { return nil }
        return base
    }

    /// `<database>.fallback.jsonl`: where records go when the database can't be written.
    public var fallback: String { databasePath + Self.fallbackSuffix }

    /// `<database>.key`: the audit chain's HMAC key (`AuditKey`).
    public var key: String { databasePath + Self.keySuffix }

    /// `<database>.anchors`: one line per ended session, its chain head (`AuditAnchors`).
    public var anchors: String { databasePath + Self.anchorsSuffix }

    /// Where lines a fallback import could not use are kept, each with the reason.
    public var fallbackRejected: String { databasePath + Self.rejectedSuffix }
}

/// Symlink resolution, the one way the tools name files as the kernel reaches them.
public enum FilePaths {
    /// `path` with every symlink resolved (realpath), or unchanged when it doesn't exist.
    public static func resolved(_ path: String) -> String {
        realPath(path) ?? path
    }

    /// An absolute `path` named the way the kernel names what it reaches: realpath when it
    /// exists, else realpath of its deepest existing ancestor with the missing components
    /// appended, so a file about to be created under a symlinked directory is named by the real
    /// directory (the new entry itself is not followed). Unchanged when no ancestor resolves.
    public static func resolvedExisting(_ path: String) -> String {
        if access(path, F_OK) == 0 || !path.hasPrefix("/") { return resolved(path) }
        var missing: [Substring] = []
        var current = Substring(path)
        while let slash = current.lastIndex(of: "/") {
            let name = current[current.index(after: slash)...]
            if !name.isEmpty { missing.insert(name, at: 0) }
            current = current[..<slash]
            let parent = current.isEmpty ? "/" : String(current)
            let real = resolved(parent)
            if real != parent || access(parent, F_OK) == 0 {
                guard !missing.isEmpty else { return real }
                return (real == "/" ? "" : real) + "/" + missing.joined(separator: "/")
            }
            if current.isEmpty { break }
        }
        return path
    }

    /// `path` resolved whole when it exists; else (a file that may not exist yet) with only
    /// its directory resolved, a relative path taken from the current directory.
    public static func resolvedDirectory(of path: String) -> String {
        if let whole = realPath(path) { return whole }
        let absolute = path.hasPrefix("/") ? path : currentDirectory() + "/" + path
        let slash = absolute.lastIndex(of: "/") ?? absolute.startIndex
        let directory = String(absolute[..<slash])
        let name = String(absolute[absolute.index(after: slash)...])
        guard let base = realPath(directory.isEmpty ? "/" : directory) else { return absolute }
        return (base == "/" ? "" : base) + "/" + name
    }

    /// realpath(3); nil when some component doesn't exist or can't be read.
    public static func realPathOrNil(_ path: String) -> String? { realPath(path) }

    /// realpath(3); nil when some component doesn't exist or can't be read.
    private static func realPath(_ path: String) -> String? {
        guard let real = realpath(path, nil) else { return nil }
        defer { free(real) }
        return String(decoding: UnsafeRawBufferPointer(start: real, count: strlen(real)), as: UTF8.self)
    }

    /// The current directory as the kernel names it (`/proc/self/cwd`), "/" when unknown.
    private static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/cwd", &buffer, buffer.count - 1)
        guard count > 0 else { return "/" }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
