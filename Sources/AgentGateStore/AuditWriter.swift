import Dispatch
import Foundation
import Synchronization

/// Batched, asynchronous writer for one session's events and process records.
///
/// `record`, `recordProcessStart` and `recordProcessExit` only append to an in-memory buffer,
/// in call order; a dedicated background thread swaps the whole buffer out (double
/// buffering), redacts, chains (SHA-256, in record order) and inserts it in one transaction,
/// when `batchSize` records are waiting, every `flushInterval`, or on `flush`/`close`. The
/// buffer lock is never held while SQLite runs, so the decision path never waits on the disk.
///
/// Nothing is silently dropped. A batch whose write fails is retried once at once; if it
/// fails again the database is taken as unwritable (disk full, read-only, locked past the
/// busy timeout) for the rest of the session: that batch and every later one are appended,
/// chained as they would have been stored, to the fallback file (`fallbackPath`), and one
/// warning goes to `warningHandler`. At close the writer tries to import the fallback file
/// (the database may be writable again); otherwise the next supervisor start imports it.
/// Records that neither the database nor the fallback file took are kept in memory and
/// retried, and only at close counted in `lostEventCount`.
///
/// The queue is bounded (`queueCapacity` records). When the database is slower than the
/// decisions (a lock held elsewhere, a slow disk) and the queue is full, the call that finds
/// it full never waits for the writer: it takes the oldest `batchSize` queued records, chains
/// them itself in record order, appends them to the fallback file (no fsync), and counts them
/// (`overflowCount`, one warning). The rest of the session goes to the fallback file too,
/// imported at close.
public final class AuditWriter: Sendable {
    private let core: WriterCore

    /// Starts the background writer thread.
    /// - Parameters:
    ///   - store: Where to write; the writer does not close it.
    ///   - sessionID: The session every record belongs to (normally already in `store`).
    ///     Its chain continues after the session's last stored link.
    ///   - batchSize: Waiting records that wake the writer before `flushInterval` ends.
    ///   - flushInterval: Longest time a record waits in memory when nobody flushes.
    ///   - warningHandler: Called once, on the writer thread, when the database is first
    ///     found unwritable; nil prints `agentgate: warning: …` on standard error.
    public init(
        store: AuditStore, sessionID: String, batchSize: Int = 512,
        flushInterval: Duration = .milliseconds(50), queueCapacity: Int = AuditWriter.defaultQueueCapacity,
        warningHandler: (@Sendable (String) -> Void)? = nil
    ) {
        let head = try? store.chainHead(sessionID: sessionID)
        core = WriterCore(
            store: store, sessionID: sessionID, batchSize: max(1, batchSize),
            flushInterval: flushInterval, queueCapacity: max(1, queueCapacity), chain: ChainBuilder(
                sessionID: sessionID, key: head == nil ? store.chainKey : head?.key, count: head?.count ?? 0, lastHash: head?.lastHash,
                sessionPolicySHA256: head?.policySHA256),
            warningHandler: warningHandler ?? { message in
                FileHandle.standardError.write(Data("agentgate: warning: \(message)\n".utf8))
            })
        let core = self.core
        let thread = Thread {
            // Process signals are not this thread's business. The supervisor blocks them in its
            // threads and reads them from a signalfd; a thread that left them unblocked would be
            // picked to take them, and SIGTERM's default action there ends the whole process
            // before the last batch is written.
            var all = sigset_t()
            sigfillset(&all)
            pthread_sigmask(SIG_BLOCK, &all, nil)
            core.run()
        }
        thread.name = "agentgate-audit-writer"
        thread.start()
    }

    deinit {
        core.close(end: nil)
    }

    /// Queues `event` for writing. O(1) amortized, no I/O, safe from any thread.
    /// Events recorded after `close` are not written; they are counted in `lostEventCount`.
    public func record(_ event: DecisionEvent) {
        core.enqueue(.event(event))
    }

    /// Queues a process image's start (on exec, or when a process is first seen): a new
    /// `processes` row, chained with the session's events in call order.
    public func recordProcessStart(_ process: ProcessRecord) {
        core.enqueue(.processStart(process))
    }

    /// Queues a process's exit: fills the exit time and status of the latest image recorded
    /// for `pid`. Ignored when no start was recorded for `pid` (or its exit already was).
    /// - Parameter exitStatus: the exit code, or 128+N when killed by signal N.
    public func recordProcessExit(pid: Int32, timeMicros: Int64, exitStatus: Int32) {
        core.enqueue(.processExit(pid: pid, timeMicros: timeMicros, exitStatus: exitStatus))
    }

    /// Blocks until every record queued before this call has been committed, or appended to
    /// the fallback file, or (if both failed) is held for retry — see `writeErrors`. Aggregated
    /// reads are flushed too.
    public func flush() {
        core.flush()
    }

    /// Writes everything still queued, retries what failed, falls back to JSONL for what
    /// still fails, and stops the background thread. Idempotent and safe to call from several
    /// threads at once; every caller returns once the writer has finished. Does not record
    /// the session's end: see `finishSession`.
    public func close() {
        core.close(end: nil)
    }

    /// Closes the writer (as `close`) and then records the session's end: its end time and
    /// exit status, and the length and last hash of its chain, linked into the global session
    /// chain. Goes to the fallback file like any record when the database can't be written.
    /// Does nothing when the writer was already closed.
    public func finishSession(endTimeMicros: Int64, exitStatus: Int32) {
        core.close(end: (endTimeMicros, exitStatus))
    }

    /// Number of failed batch writes to the database (each counted once, however often retried).
    public var writeErrors: Int {
        core.read(\.writeErrors)
    }

    /// The most recent write failure, and after `close` what became of the failed records;
    /// nil when every write succeeded.
    public var lastErrorMessage: String? {
        core.read(\.lastErrorMessage)
    }

    /// Records currently held in memory because neither the database nor the fallback file
    /// took them; retried with every batch and at close.
    public var heldEventCount: Int {
        core.read(\.heldEventCount)
    }

    /// Records (events, process records, the session end) written to `fallbackPath` because
    /// the database refused them.
    public var fallbackEventCount: Int {
        core.read(\.fallbackEventCount)
    }

    /// Whether the database was found unwritable during the session (the rest went to the
    /// fallback file).
    public var isUsingFallback: Bool {
        core.read(\.degraded)
    }

    /// What the import of the fallback file at close did, when there was one and it worked.
    public var closeImport: FallbackImportReport? {
        core.read(\.closeImport)
    }

    /// Records stored nowhere: recorded after `close`, or refused by both the database and the
    /// fallback file. Zero in a healthy run.
    public var lostEventCount: Int {
        core.read(\.lostEventCount)
    }

    /// Records the queue holds at most: 32768, about 10 MB of typical events, and over a
    /// second of the fastest decision rate measured (README).
    public static let defaultQueueCapacity = 32768

    /// Records held in memory (the database and the fallback file both refusing them) past
    /// which they go to the spill file (`AuditDatabaseFiles.spill`) at once, not at the end.
    public static let heldLimit = 8192

    /// Records that found the queue full and went to the fallback file with those queued
    /// before them (0 in a healthy run).
    public var overflowCount: Int {
        core.read(\.overflowCount)
    }

    /// Process images whose exit the chain could still record (bounded; see `ChainBuilder`).
    public var openProcessCount: Int {
        core.chain.withLock { $0.builder.openProcessCount }
    }

    /// Records waiting in memory now (at most `queueCapacity`).
    public var queuedCount: Int {
        core.read(\.pending.count)
    }

    /// `<database path>.fallback.jsonl`: one JSON object per record (see docs/audit-schema.md).
    public var fallbackPath: String {
        core.store.fallbackPath
    }
}

/// A record as queued by the decision path, before redaction and chaining.
private enum WriterItem: Sendable {
    case event(DecisionEvent)
    case processStart(ProcessRecord)
    case processExit(pid: Int32, timeMicros: Int64, exitStatus: Int32)
}

/// Everything the writer thread and the callers share. Separate from `AuditWriter` so the
/// thread doesn't keep the public object alive: dropping the last reference closes it.
private final class WriterCore: Sendable {
    struct FlushWaiter: Sendable {
        /// The waiter returns once `handledCount` reaches this.
        let target: UInt64
        let wakeup: DispatchSemaphore
    }

    struct State: Sendable {
        /// Records queued and not yet taken by the writer thread.
        var pending: [WriterItem]
        /// Records ever accepted.
        var recordedCount: UInt64 = 0
        /// Records the writer thread has committed or set aside.
        var handledCount: UInt64 = 0
        var flushWaiters: [FlushWaiter] = []
        var closeRequested = false
        var sessionEnd: (endTime: Int64, exitStatus: Int32)?
        /// Cleared by the writer thread when it takes the final batch after a close request.
        var acceptingEvents = true
        var finished = false
        var closeWaiters: [DispatchSemaphore] = []
        var writeErrors = 0
        var lastErrorMessage: String?
        var heldEventCount = 0
        var fallbackEventCount = 0
        /// Of those, records that went to the spill file (the fallback file refused them too).
        var spilledCount = 0
        var lostEventCount = 0
        var degraded = false
        var closeImport: FallbackImportReport?
        /// Records spilled to the fallback file because the queue was full.
        var overflowCount = 0
        /// Turns at the chain, handed out with each take of the queue (see `chainInTurn`).
        var nextTicket: UInt64 = 0
    }

    /// The chain and whose turn it is to extend it.
    struct ChainSlot: Sendable {
        var builder: ChainBuilder
        var turn: UInt64 = 0
    }

    let store: AuditStore
    let sessionID: String
    let batchSize: Int
    let queueCapacity: Int
    let flushInterval: DispatchTimeInterval
    let state: Mutex<State>
    let warningHandler: @Sendable (String) -> Void
    /// The writer thread extends the chain, and a caller that finds the queue full; each in
    /// the turn it took the queue's records, so the chain stays in record order.
    let chain: Mutex<ChainSlot>
    /// Longest time, in nanoseconds, an aggregated read waits in memory (1 s): the window of
    /// reads a kill -9 of the supervisor can lose, beside the queue's `flushInterval`.
    let readFlushInterval: UInt64 = 1_000_000_000
    /// Signalled when there is work: a full batch, a flush or a close. A counting semaphore,
    /// so a signal sent while the thread is busy writing is not lost.
    let wakeup = DispatchSemaphore(value: 0)

    init(
        store: AuditStore, sessionID: String, batchSize: Int, flushInterval: Duration, queueCapacity: Int, chain: ChainBuilder,
        warningHandler: @escaping @Sendable (String) -> Void
    ) {
        self.store = store
        self.sessionID = sessionID
        self.batchSize = batchSize
        self.queueCapacity = max(queueCapacity, 1)
        let (seconds, attoseconds) = flushInterval.components
        let nanoseconds = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let totalNanoseconds = nanoseconds.overflow ? Int64.max : nanoseconds.partialValue &+ attoseconds / 1_000_000_000
        // At least 1 ms, so a zero interval doesn't turn the thread into a busy loop.
        self.flushInterval = .nanoseconds(Int(clamping: max(totalNanoseconds, 1_000_000)))
        self.chain = Mutex(ChainSlot(builder: chain))
        self.warningHandler = warningHandler
        var pending: [WriterItem] = []
        pending.reserveCapacity(batchSize)
        state = Mutex(State(pending: pending))
    }

    /// One value of the shared state, read under its lock.
    func read<Value: Sendable>(_ key: KeyPath<State, Value> & Sendable) -> Value {
        state.withLock { $0[keyPath: key] }
    }

    func enqueue(_ item: WriterItem) {
        var spill: [WriterItem] = []
        let (batchIsFull, ticket, firstOverflow) = state.withLock { state -> (Bool, UInt64?, Bool) in
            guard state.acceptingEvents else {
                state.lostEventCount += 1
                return (false, nil, false)
            }
            state.recordedCount &+= 1
            guard state.pending.count < queueCapacity else {
                // Full: take the oldest batch out of the queue (bounded work for this call),
                // with a turn at the chain after the writer's last take, and queue this record.
                let count = min(batchSize, state.pending.count)
                spill.append(contentsOf: state.pending.prefix(count))
                state.pending.removeFirst(count)
                state.pending.append(item)
                let first = state.overflowCount == 0
                state.overflowCount += spill.count
                state.degraded = true
                let ticket = state.nextTicket
                state.nextTicket &+= 1
                return (false, ticket, first)
            }
            state.pending.append(item)
            // Signal once per batch, on the crossing, not on every record past it.
            return (state.pending.count == batchSize, nil, false)
        }
        if batchIsFull { wakeup.signal() }
        guard let ticket else { return }
        if firstOverflow {
            warningHandler(
                "the audit queue is full (\(queueCapacity) records: the database is slower than the decisions); "
                    + "enforcement is unchanged, and this session's records go to \(store.fallbackPath) until it ends, "
                    + "imported at close")
        }
        var rows: [ChainedRow] = []
        rows.reserveCapacity(spill.count)
        chainInTurn(ticket) { builder in Self.chain(spill, into: &rows, builder: &builder) }
        var lines = ""
        for row in rows {
            lines += AuditJSON.fallbackLine(row: row)
            lines += "\n"
        }
        do {
            try AuditFallbackFile.append(lines, to: store.fallbackPath, sync: false)
            state.withLock { $0.fallbackEventCount += rows.count }
        } catch {
            state.withLock { state in
                state.lostEventCount += rows.count
                state.lastErrorMessage = "\(rows.count) audit records were lost: the queue was full and the fallback file refused them (\(error))"
            }
        }
    }

    /// Runs `body` on the chain once every earlier turn has had it. Earlier turns belong to
    /// threads that are chaining now (CPU only, never I/O), so the wait is short.
    func chainInTurn(_ ticket: UInt64, _ body: (inout ChainBuilder) -> Void) {
        while true {
            let done = chain.withLock { slot -> Bool in
                guard slot.turn == ticket else { return false }
                body(&slot.builder)
                slot.turn &+= 1
                return true
            }
            if done { return }
            sched_yield()
        }
    }

    /// Redacts and chains `items` in order, appending the rows.
    static func chain(_ items: [WriterItem], into rows: inout [ChainedRow], builder chain: inout ChainBuilder) {
        for item in items {
            switch item {
            case .event(let event):
                if event.isAggregatedRead {
                    rows.append(contentsOf: chain.aggregate(event))
                } else {
                    rows.append(chain.event(event))
                }
            case .processStart(let process):
                // The reads of the image this exec ends are chained before the new image.
                rows.append(contentsOf: chain.flushReads(pid: process.pid))
                rows.append(chain.processStart(process))
            case .processExit(let pid, let time, let status):
                rows.append(contentsOf: chain.flushReads(pid: pid))
                if let row = chain.processExit(pid: pid, timeMicros: time, exitStatus: status) { rows.append(row) }
            }
        }
    }

    func flush() {
        let done = DispatchSemaphore(value: 0)
        // Aggregated reads wait in the chain's map after their records were handled.
        let holdsReads = chain.withLock { !$0.builder.reads.isEmpty }
        let mustWait = state.withLock { state -> Bool in
            if state.finished || (state.handledCount >= state.recordedCount && !holdsReads) { return false }
            state.flushWaiters.append(FlushWaiter(target: state.recordedCount, wakeup: done))
            return true
        }
        guard mustWait else { return }
        wakeup.signal()
        done.wait()
    }

    func close(end: (endTime: Int64, exitStatus: Int32)?) {
        let done = DispatchSemaphore(value: 0)
        let mustWait = state.withLock { state -> Bool in
            if state.finished { return false }
            if !state.closeRequested, let end { state.sessionEnd = end }
            state.closeRequested = true
            state.closeWaiters.append(done)
            return true
        }
        guard mustWait else { return }
        wakeup.signal()
        done.wait()
    }

    /// The writer thread's loop.
    func run() {
        var batch: [WriterItem] = []
        batch.reserveCapacity(batchSize)
        var rows: [ChainedRow] = []
        rows.reserveCapacity(batchSize)
        // Rows neither the database nor the fallback file took; only this thread touches them.
        var held: [ChainedRow] = []
        var degraded = false
        var lastReadFlush = DispatchTime.now().uptimeNanoseconds

        while true {
            let hasWork = state.withLock { state in
                state.pending.count >= batchSize || !state.flushWaiters.isEmpty || state.closeRequested
            }
            if !hasWork {
                _ = wakeup.wait(timeout: .now() + flushInterval)
            }
            let (takenThrough, isFinal, end, ticket, overflowed, flushing) = state.withLock { state in
                swap(&state.pending, &batch)
                if state.closeRequested { state.acceptingEvents = false }
                let ticket = state.nextTicket
                state.nextTicket &+= 1
                return (state.recordedCount, state.closeRequested, state.sessionEnd, ticket, state.overflowCount > 0,
                        !state.flushWaiters.isEmpty)
            }
            // After an overflow, records go where the overflow put the ones before them.
            if overflowed { degraded = true }

            // Aggregated reads go out at a flush or close, and at least every
            // `readFlushInterval`: what a kill -9 of the supervisor can lose of them.
            let now = DispatchTime.now().uptimeNanoseconds
            let readsDue = isFinal || flushing || now &- lastReadFlush >= readFlushInterval
            chainInTurn(ticket) { builder in
                Self.chain(batch, into: &rows, builder: &builder)
                if readsDue { rows.append(contentsOf: builder.flushReads()) }
            }
            if readsDue { lastReadFlush = now }
            batch.removeAll(keepingCapacity: true)
            if !rows.isEmpty {
                write(&rows, held: &held, degraded: &degraded)
                rows.removeAll(keepingCapacity: true)
            }

            if isFinal {
                finish(held: held, degraded: degraded, end: end)
                return
            }
            state.withLock { state in
                state.handledCount = takenThrough
                state.flushWaiters.removeAll { waiter in
                    guard waiter.target <= takenThrough else { return false }
                    waiter.wakeup.signal()
                    return true
                }
            }
        }
    }

    /// Writes `rows` to the database, or once it has failed, to the fallback file.
    private func write(_ rows: inout [ChainedRow], held: inout [ChainedRow], degraded: inout Bool) {
        if !degraded {
            guard let failure = writeWithOneRetry(rows) else { return }
            degraded = true
            state.withLock { state in
                state.writeErrors += 1
                state.degraded = true
                state.lastErrorMessage = "\(rows.count) audit records not written to the database: \(failure)"
            }
            warningHandler(
                "the audit database can't be written (\(failure)); enforcement is unchanged, and this session's "
                    + "records go to \(store.fallbackPath) until it ends; they are imported at the next start")
        }
        // In order: what was held first, then this batch.
        held.append(contentsOf: rows)
        appendHeldToFallback(&held)
    }

    /// Fallback lines for `rows`, each ended by a newline.
    static func lines(_ rows: [ChainedRow]) -> String {
        var lines = ""
        for row in rows {
            lines += AuditJSON.fallbackLine(row: row)
            lines += "\n"
        }
        return lines
    }

    /// Appends `held` to the fallback file; keeps it when that fails too.
    private func appendHeldToFallback(_ held: inout [ChainedRow]) {
        guard !held.isEmpty else { return }
        let lines = Self.lines(held)
        do {
            try AuditFallbackFile.append(lines, to: store.fallbackPath)
            let count = held.count
            held.removeAll(keepingCapacity: true)
            state.withLock { state in
                state.fallbackEventCount += count
                state.heldEventCount = 0
            }
        } catch {
            let count = held.count
            // Memory is bounded: past `heldLimit` the rows go to the spill file (as at the end).
            if count >= AuditWriter.heldLimit, let spill = store.files.spill, (try? AuditFallbackFile.append(lines, to: spill, sync: false)) != nil {
                held.removeAll(keepingCapacity: true)
                state.withLock { state in
                    state.fallbackEventCount += count
                    state.spilledCount += count
                    state.heldEventCount = 0
                    state.lastErrorMessage = "audit records go to \(spill): the database and the fallback file both refuse them (\(error))"
                }
                return
            }
            state.withLock { state in
                state.heldEventCount = count
                state.lastErrorMessage = "\(count) audit records held in memory: the database and the fallback file both refused them (\(error))"
            }
        }
    }


    /// Inserts `rows`, retrying once; returns the error if both attempts fail.
    private func writeWithOneRetry(_ rows: [ChainedRow]) -> StoreError? {
        do {
            try store.write(rows)
            return nil
        } catch {
            do {
                try store.write(rows)
                return nil
            } catch {
                return error
            }
        }
    }

    /// At close: the held rows, the session end, the import of the fallback file; then
    /// releases everyone waiting on flush or close.
    private func finish(held: [ChainedRow], degraded: Bool, end: (endTime: Int64, exitStatus: Int32)?) {
        var held = held
        var degraded = degraded
        var lost = 0
        var message: String?
        if !held.isEmpty {
            appendHeldToFallback(&held)
            // Last resort for what the fallback file refused: the database, out of order (the
            // chain positions are fixed, so verify still works once the rest is imported).
            if !held.isEmpty, writeWithOneRetry(held) == nil { held.removeAll() }
            if !held.isEmpty, let spill = store.files.spill, (try? AuditFallbackFile.append(Self.lines(held), to: spill)) != nil {
                state.withLock { state in
                    state.fallbackEventCount += held.count
                    state.spilledCount += held.count
                }
                held.removeAll()
            }
            if !held.isEmpty {
                lost = held.count
                message = "\(held.count) audit records were lost: the database and the fallback file \(store.fallbackPath) both refused them"
            }
        }
        let spilled = state.withLock { $0.spilledCount }
        if spilled > 0, lost == 0, let spill = store.files.spill {
            message = "\(spilled) audit records went to \(spill): the database and the fallback file \(store.fallbackPath) "
                + "both refused them; they are imported at the next start"
        }
        if let end {
            let (columns, keyID) = chain.withLock { ($0.builder.end(endTimeMicros: end.endTime, exitStatus: end.exitStatus), $0.builder.keyID) }
            // The head goes outside the database too, wherever the end itself goes.
            if let failure = store.anchor(sessionID: sessionID, lastSeq: columns.linkCount, headHash: columns.lastHash, keyID: keyID) {
                warningHandler(failure)
            }
            var wroteEnd = false
            if !degraded {
                do {
                    try store.finishSession(columns)
                    wroteEnd = true
                } catch {
                    degraded = true
                    state.withLock { state in
                        state.writeErrors += 1
                        state.degraded = true
                        state.lastErrorMessage = "the session end was not written to the database: \(error)"
                    }
                    warningHandler("the audit database can't be written (\(error)); the session's end goes to \(store.fallbackPath)")
                }
            }
            if !wroteEnd {
                do {
                    try AuditFallbackFile.append(AuditJSON.fallbackLine(columns) + "\n", to: store.fallbackPath)
                    state.withLock { $0.fallbackEventCount += 1 }
                } catch {
                    if let spill = store.files.spill, (try? AuditFallbackFile.append(AuditJSON.fallbackLine(columns) + "\n", to: spill)) != nil {
                        state.withLock { $0.fallbackEventCount += 1 }
                    } else {
                        lost += 1
                        message = (message.map { $0 + "; " } ?? "") + "the session end was lost: \(error)"
                    }
                }
            }
        }
        var imported: FallbackImportReport?
        if degraded {
            // The database may be writable again (a lock released): import now rather than at
            // the next start. If it still fails, the file stays for the next start.
            imported = try? store.importFallback()
            let fallbackCount = state.withLock { $0.fallbackEventCount }
            if let imported {
                // Spilled records, if any, were imported too.
                let importedAll = "\(fallbackCount) audit records went to \(store.fallbackPath) and were imported at close: \(imported)"
                message = lost == 0 ? importedAll : message ?? importedAll
            } else {
                message = message ?? "\(fallbackCount) audit records could not be written to the database and were written to \(store.fallbackPath) instead; they are imported at the next start"
            }
        }
        state.withLock { state in
            state.finished = true
            state.handledCount = state.recordedCount
            state.heldEventCount = 0
            state.lostEventCount += lost
            state.closeImport = imported
            if let message { state.lastErrorMessage = message }
            for waiter in state.flushWaiters { waiter.wakeup.signal() }
            state.flushWaiters.removeAll()
            for waiter in state.closeWaiters { waiter.signal() }
            state.closeWaiters.removeAll()
        }
    }
}
