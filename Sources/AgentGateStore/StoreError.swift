#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CSQLite

/// An audit-store failure: what went wrong, the database path it concerns, and the
/// underlying SQLite result code and/or `errno` where there is one.
public struct StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of failure, stable enough for callers to branch on (e.g. to fall back to JSONL).
    public enum Code: String, Sendable, Equatable {
        /// A missing parent directory of the database could not be created.
        case cannotCreateDirectory
        /// SQLite could not open or create the database file.
        case cannotOpen
        /// The database opened, but only for reading.
        case readOnly
        /// The database was written by a newer AgentGate whose schema this build doesn't know.
        case schemaTooNew
        /// A constraint failed: duplicate session id, or events for an unknown session.
        case constraintViolation
        /// A row the caller named (e.g. a session id) doesn't exist.
        case notFound
        /// The store was closed before this call.
        case closed
        /// A stored value couldn't be decoded (e.g. malformed JSON in an argv column).
        case invalidData
        /// Any other SQLite failure (disk full, I/O error, busy past the timeout, ...).
        case sqlite
        /// Writing the JSONL fallback file failed.
        case fallbackWriteFailed
    }

    public var code: Code
    /// The database (or fallback file) path the failure concerns.
    public var path: String
    /// SQLite's extended result code, when SQLite reported the failure.
    public var sqliteResultCode: Int32?
    /// The OS error number, when a system call failed (for SQLite, `sqlite3_system_errno`).
    public var systemErrno: Int32?
    /// Human-readable detail, e.g. "creating directory /x/y: Not a directory".
    public var message: String

    public init(
        code: Code, path: String, message: String,
        sqliteResultCode: Int32? = nil, systemErrno: Int32? = nil
    ) {
        self.code = code
        self.path = path
        self.message = message
        self.sqliteResultCode = sqliteResultCode
        self.systemErrno = systemErrno
    }

    public var description: String {
        var text = "audit store error (\(code.rawValue)) for \(path): \(message)"
        if let sqliteResultCode {
            text += " [sqlite \(sqliteResultCode): \(String(cString: sqlite3_errstr(sqliteResultCode)))]"
        }
        if let systemErrno, systemErrno != 0 {
            text += " [errno \(systemErrno): \(String(cString: strerror(systemErrno)))]"
        }
        return text
    }
}
