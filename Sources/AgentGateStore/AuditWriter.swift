import Dispatch
import Foundation
import Synchronization

/// Batched, asynchronous event writer for one session.
///
/// `record` only appends to an in-memory buffer; a dedicated background thread swaps the
/// whole buffer out (double buffering) and inserts it in one transaction, when `batchSize`
/// events are waiting, every `flushInterval`, or on `flush`/`close`. The buffer lock is never
/// held while SQLite runs.
///
/// No event is silently dropped: a batch whose write fails is retried once at once, then
/// kept in memory and retried at `close`; what still fails then is appended as JSON lines
/// to `fallbackPath` and described in `lastErrorMessage`. Memory is unbounded by design:
/// `record` never blocks the supervisor, whatever the disk does.
public final class AuditWriter: Sendable {
    private let core: WriterCore

    /// Starts the background writer thread.
    /// - Parameters:
    ///   - store: Where to write; the writer does not close it.
    ///   - sessionID: The session every recorded event belongs to (must already exist in `store`).
    ///   - batchSize: Waiting events that wake the writer before `flushInterval` ends.
    ///   - flushInterval: Longest time an event waits in memory when nobody flushes.
    public init(
        store: AuditStore, sessionID: String, batchSize: Int = 512,
        flushInterval: Duration = .milliseconds(50)
    ) {
        core = WriterCore(
            store: store, sessionID: sessionID, batchSize: max(1, batchSize),
            flushInterval: flushInterval)
        let core = self.core
        let thread = Thread { core.run() }
        thread.name = "agentgate-audit-writer"
        thread.start()
    }

    deinit {
        core.close()
    }

    /// Queues `event` for writing. O(1) amortized, no I/O, safe from any thread.
    /// Events recorded after `close` are not written; they are counted in `lostEventCount`.
    public func record(_ event: DecisionEvent) {
        core.record(event)
    }

    /// Blocks until every event recorded before this call has been committed, or (if its
    /// write failed) is held for retry at `close` — see `writeErrors`.
    public func flush() {
        core.flush()
    }

    /// Writes everything still queued, retries failed batches, falls back to JSONL for what
    /// still fails, and stops the background thread. Idempotent and safe to call from several
    /// threads at once; every caller returns once the writer has finished.
    public func close() {
        core.close()
    }

    /// Number of failed batch writes (each counted once, however often it was retried).
    public var writeErrors: Int {
        core.state.withLock { $0.writeErrors }
    }

    /// The most recent write failure, and after `close` what became of the failed events;
    /// nil when every write succeeded.
    public var lastErrorMessage: String? {
        core.state.withLock { $0.lastErrorMessage }
    }

    /// Events currently held in memory after failed writes, waiting for `close`.
    public var heldEventCount: Int {
        core.state.withLock { $0.heldEventCount }
    }

    /// Events written to `fallbackPath` because the database refused them.
    public var fallbackEventCount: Int {
        core.state.withLock { $0.fallbackEventCount }
    }

    /// Events stored nowhere: recorded after `close`, or failed both the database and the
    /// fallback file. Zero in a healthy run.
    public var lostEventCount: Int {
        core.state.withLock { $0.lostEventCount }
    }

    /// `<database path>.fallback.jsonl`: one JSON object per event, keys as in the events table.
    public var fallbackPath: String {
        core.fallbackPath
    }
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
        /// Events recorded and not yet taken by the writer thread.
        var pending: [DecisionEvent]
        /// Events ever accepted by `record`.
        var recordedCount: UInt64 = 0
        /// Events the writer thread has committed or set aside after a failure.
        var handledCount: UInt64 = 0
        var flushWaiters: [FlushWaiter] = []
        var closeRequested = false
        /// Cleared by the writer thread when it takes the final batch after a close request.
        var acceptingEvents = true
        var finished = false
        var closeWaiters: [DispatchSemaphore] = []
        var writeErrors = 0
        var lastErrorMessage: String?
        var heldEventCount = 0
        var fallbackEventCount = 0
        var lostEventCount = 0
    }

    let store: AuditStore
    let sessionID: String
    let batchSize: Int
    let flushInterval: DispatchTimeInterval
    let fallbackPath: String
    let state: Mutex<State>
    /// Signalled when there is work: a full batch, a flush or a close. A counting semaphore,
    /// so a signal sent while the thread is busy writing is not lost.
    let wakeup = DispatchSemaphore(value: 0)

    init(store: AuditStore, sessionID: String, batchSize: Int, flushInterval: Duration) {
        self.store = store
        self.sessionID = sessionID
        self.batchSize = batchSize
        let (seconds, attoseconds) = flushInterval.components
        let nanoseconds = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let totalNanoseconds = nanoseconds.overflow ? Int64.max : nanoseconds.partialValue &+ attoseconds / 1_000_000_000
        // At least 1 ms, so a zero interval doesn't turn the thread into a busy loop.
        self.flushInterval = .nanoseconds(Int(clamping: max(totalNanoseconds, 1_000_000)))
        self.fallbackPath = store.path + ".fallback.jsonl"
        var pending: [DecisionEvent] = []
        pending.reserveCapacity(batchSize)
        state = Mutex(State(pending: pending))
    }

    func record(_ event: DecisionEvent) {
        let batchIsFull = state.withLock { state -> Bool in
            guard state.acceptingEvents else {
                state.lostEventCount += 1
                return false
            }
            state.pending.append(event)
            state.recordedCount &+= 1
            // Signal once per batch, on the crossing, not on every event past it.
            return state.pending.count == batchSize
        }
        if batchIsFull { wakeup.signal() }
    }

    func flush() {
        let done = DispatchSemaphore(value: 0)
        let mustWait = state.withLock { state -> Bool in
            if state.finished || state.handledCount >= state.recordedCount { return false }
            state.flushWaiters.append(FlushWaiter(target: state.recordedCount, wakeup: done))
            return true
        }
        guard mustWait else { return }
        wakeup.signal()
        done.wait()
    }

    func close() {
        let done = DispatchSemaphore(value: 0)
        let mustWait = state.withLock { state -> Bool in
            if state.finished { return false }
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
        var batch: [DecisionEvent] = []
        batch.reserveCapacity(batchSize)
        // Batches whose write failed twice; only this thread touches them.
        var heldBatches: [[DecisionEvent]] = []

        while true {
            let hasWork = state.withLock { state in
                state.pending.count >= batchSize || !state.flushWaiters.isEmpty || state.closeRequested
            }
            if !hasWork {
                _ = wakeup.wait(timeout: .now() + flushInterval)
            }
            let (takenThrough, isFinal) = state.withLock { state in
                swap(&state.pending, &batch)
                if state.closeRequested { state.acceptingEvents = false }
                return (state.recordedCount, state.closeRequested)
            }

            if !batch.isEmpty {
                if let failure = writeWithOneRetry(batch) {
                    heldBatches.append(batch)
                    let heldCount = heldBatches.reduce(0) { $0 + $1.count }
                    state.withLock { state in
                        state.writeErrors += 1
                        state.heldEventCount = heldCount
                        state.lastErrorMessage = "\(batch.count) audit events not written (held for retry): \(failure)"
                    }
                }
                batch.removeAll(keepingCapacity: true)
            }

            if isFinal {
                let outcome = writeHeldBatches(heldBatches)
                heldBatches.removeAll()
                finish(outcome)
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

    /// Inserts `batch`, retrying once; returns the error if both attempts fail.
    private func writeWithOneRetry(_ batch: [DecisionEvent]) -> StoreError? {
        do {
            try store.insert(events: batch, sessionID: sessionID)
            return nil
        } catch {
            do {
                try store.insert(events: batch, sessionID: sessionID)
                return nil
            } catch {
                return error
            }
        }
    }

    struct CloseOutcome {
        var fallbackEvents = 0
        var lostEvents = 0
        var message: String?
    }

    /// At close: one more database attempt per held batch, then the fallback file.
    private func writeHeldBatches(_ heldBatches: [[DecisionEvent]]) -> CloseOutcome {
        var outcome = CloseOutcome()
        var stillFailing: [DecisionEvent] = []
        var lastDatabaseError: StoreError?
        for held in heldBatches {
            do {
                try store.insert(events: held, sessionID: sessionID)
            } catch {
                lastDatabaseError = error
                stillFailing.append(contentsOf: held)
            }
        }
        guard !stillFailing.isEmpty else { return outcome }

        var lines = ""
        for event in stillFailing {
            lines += AuditJSON.fallbackLine(sessionID: sessionID, event: event)
            lines += "\n"
        }
        let databaseProblem = lastDatabaseError.map { "\($0)" } ?? "unknown database error"
        do {
            try AuditFileSystem.append(lines, to: fallbackPath)
            outcome.fallbackEvents = stillFailing.count
            outcome.message =
                "\(stillFailing.count) audit events could not be written to the database and were written to \(fallbackPath) instead; last database error: \(databaseProblem)"
        } catch {
            outcome.lostEvents = stillFailing.count
            outcome.message =
                "\(stillFailing.count) audit events were lost: the database refused them (\(databaseProblem)) and so did the fallback file (\(error))"
        }
        return outcome
    }

    /// Publishes the close outcome and releases everyone waiting on flush or close.
    private func finish(_ outcome: CloseOutcome) {
        state.withLock { state in
            state.finished = true
            state.handledCount = state.recordedCount
            state.heldEventCount = 0
            state.fallbackEventCount += outcome.fallbackEvents
            state.lostEventCount += outcome.lostEvents
            if let message = outcome.message { state.lastErrorMessage = message }
            for waiter in state.flushWaiters { waiter.wakeup.signal() }
            state.flushWaiters.removeAll()
            for waiter in state.closeWaiters { waiter.signal() }
            state.closeWaiters.removeAll()
        }
    }
}
