/// One supervised session's audit trail from start to end, for any front end (the CLI, a
/// server): what an earlier session left in the fallback file goes in first, then the session
/// is recorded (in the fallback file when the database refuses it), its writer runs, and its
/// end is recorded. Enforcement never depends on the database: every failure short of not
/// being able to record the session at all degrades to the fallback file.
public final class AuditSession: Sendable {
    public let store: AuditStore
    public let writer: AuditWriter
    public let record: SessionRecord
    /// Why the session's start went to the fallback file instead of the database; nil when
    /// the database took it.
    public let startFallbackReason: StoreError?

    /// Why a session could not be begun; nothing was recorded, and the command must not run.
    public enum BeginError: Error, Sendable {
        /// The database already has a session with this id.
        case duplicateSession(id: String)
        /// Neither the database nor the fallback file took the session's start.
        case cannotRecord(StoreError)
    }

    private init(store: AuditStore, record: SessionRecord, startFallbackReason: StoreError?) {
        self.store = store
        self.record = record
        self.startFallbackReason = startFallbackReason
        writer = AuditWriter(store: store, sessionID: record.id)
    }

    /// Imports the records an earlier session could only write to the fallback file, before a
    /// new session's go in. Returns what to tell the user: the import when it stored or
    /// rejected anything, or why it has to wait (the database still refuses writes); nil
    /// when there is nothing to say.
    public static func importEarlierRecords(into store: AuditStore) -> String? {
        do {
            guard let imported = try store.importFallback(), imported.imported > 0 || imported.rejected > 0 else { return nil }
            return imported.description
        } catch {
            return "warning: could not import \(store.fallbackPath) yet: \(error)"
        }
    }

    /// Records the session's start, in the database or else in the fallback file, and starts
    /// its writer.
    public static func begin(_ record: SessionRecord, in store: AuditStore) throws(BeginError) -> AuditSession {
        do throws(StoreError) {
            try store.createSession(record)
            return AuditSession(store: store, record: record, startFallbackReason: nil)
        } catch where error.code == .constraintViolation {
            throw .duplicateSession(id: record.id)
        } catch {
            // The database opened but can't take the session (disk full, read-only, locked):
            // enforcement doesn't depend on it; the session goes to the fallback file.
            do throws(StoreError) {
                try store.recordSessionStartInFallback(record)
            } catch {
                throw .cannotRecord(error)
            }
            return AuditSession(store: store, record: record, startFallbackReason: error)
        }
    }

    /// Writes every recorded event and the session's end (to the database, or the fallback
    /// file) and closes the store. Returns what to tell the user when something didn't reach
    /// the database as it went (lost, or left in the fallback file, or imported from it at
    /// close: the warning given mid-session needs its ending); nil otherwise.
    public func finish(exitStatus: Int32) -> String? {
        writer.finishSession(endTimeMicros: AuditClock.nowMicros(), exitStatus: exitStatus)
        defer { store.close() }
        let overflow = writer.overflowCount
        guard writer.lostEventCount > 0 || overflow > 0 || writer.isUsingFallback else { return nil }
        let why = overflow > 0
            ? "the audit queue overflowed (\(overflow) records found it full and went to the fallback file with the rest of the session)"
            : nil
        return [why, writer.lastErrorMessage].compactMap { $0 }.joined(separator: "; ")
    }
}
