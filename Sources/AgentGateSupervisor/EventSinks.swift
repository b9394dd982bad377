import AgentGatePolicy
import AgentGateStore
import Dispatch
import Glibc
import Synchronization

/// What a sink is sent: a decision as recorded, or a session event (a kill, a reload).
public struct SinkEvent: Sendable {
    public enum Kind: Sendable {
        case decision(DecisionEvent)
        /// `agentgate kill`, by whom (`alice (uid 1000)`).
        case kill(by: String)
        /// The policy was read again and put in force (`accepted`) or rejected (`message` says why).
        case reload(accepted: Bool, policySHA256: String?, message: String)
    }

    public var kind: Kind
    public var timeMicros: Int64

    public init(_ kind: Kind, timeMicros: Int64 = AuditClock.nowMicros()) {
        self.kind = kind
        self.timeMicros = timeMicros
    }

    /// The event as the database stores it: secrets in paths, URLs and argv redacted
    /// (`Redactor`), since the journal and collectors are read by more people than the
    /// database. Done on the sink's thread, never on the decision path.
    var redacted: SinkEvent {
        guard case .decision(var event) = kind else { return self }
        event.executable = Redactor.redact(text: event.executable)
        event.target = Redactor.redact(text: event.target)
        event.argv = event.argv.map { Redactor.redact(argv: $0) }
        event.intent = event.intent.map(Redactor.redact(commandText:))
        return SinkEvent(.decision(event), timeMicros: timeMicros)
    }
}

/// Who and where, the same for every event of a session: what sinks say besides the event.
public struct SinkSession: Sendable {
    public var sessionID: String
    public var agent: String
    public var hostName: String
    public var userID: UInt32

    public init(sessionID: String, agent: String, hostName: String = SinkSession.currentHostName(), userID: UInt32 = getuid()) {
        self.sessionID = sessionID
        self.agent = agent
        self.hostName = hostName
        self.userID = userID
    }

    public static func currentHostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "" }
        return String(cString: buffer)
    }
}

/// One destination for events (the journal, an OTLP collector, a webhook). Its `deliver` runs
/// on the sink's own thread, never on a decision's; it may block (bounded by its own timeouts).
protocol EventSink: Sendable {
    /// `journal`, `otlp http://…`, `webhook http://…`: names the sink in warnings and the account.
    var name: String { get }
    /// Whether `event` goes to this sink at all (a webhook takes denials, not every allow).
    func wants(_ event: SinkEvent) -> Bool
    /// Sends `batch`; returns how many of its events could not be delivered (after retries).
    func deliver(_ batch: [SinkEvent]) -> Int
    /// Called on the sink's thread when it has been idle for `idleInterval` (periodic metrics).
    func idle()
    /// Called on the sink's thread before it ends, after the last batch.
    func close()
}

extension EventSink {
    func idle() {}
    func close() {}
}

/// A sink's bounded queue and its thread. Enqueueing takes this queue's own lock (never the
/// audit writer's) for an append; when the queue is full the event is dropped and counted, and
/// the first drop is said once.
final class SinkQueue: Sendable {
    struct State {
        var pending: [SinkEvent] = []
        var dropped = 0
        var closing = false
    }

    let sink: any EventSink
    let capacity: Int
    /// Wake the thread when this many events wait (1: at once); else it wakes every `interval`.
    let wakeAt: Int
    let interval: DispatchTimeInterval
    private let state: Mutex<State>
    private let wakeup = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let failed = Atomic<Int>(0)
    private let delivered = Atomic<Int>(0)
    private let warn: @Sendable (String) -> Void

    init(sink: any EventSink, capacity: Int, wakeAt: Int = 1, interval: DispatchTimeInterval = .seconds(1),
         warn: @escaping @Sendable (String) -> Void) {
        self.sink = sink
        self.capacity = max(1, capacity)
        self.wakeAt = max(1, min(wakeAt, capacity))
        self.interval = interval
        self.warn = warn
        var pending: [SinkEvent] = []
        pending.reserveCapacity(min(capacity, 1024))
        state = Mutex(State(pending: pending))
    }

    func start() -> Bool {
        Thread(stackSize: 512 << 10) { [self] in
            // Process signals are the supervisor's (its signalfd), as for the audit writer's thread.
            var all = sigset_t()
            sigfillset(&all)
            pthread_sigmask(SIG_BLOCK, &all, nil)
            run()
        }.start()
    }

    /// Called where decisions are recorded: one short lock of this queue's own, never blocks.
    func enqueue(_ event: SinkEvent) {
        guard sink.wants(event) else { return }
        let (wake, firstDrop) = state.withLock { state -> (Bool, Bool) in
            guard !state.closing else { return (false, false) }
            guard state.pending.count < capacity else {
                state.dropped += 1
                return (false, state.dropped == 1)
            }
            state.pending.append(event)
            return (state.pending.count == wakeAt, false)
        }
        if wake { wakeup.signal() }
        if firstDrop {
            warn("\(sink.name): the queue is full (\(capacity) events: the destination is slower than the decisions, or stuck); "
                 + "enforcement and the audit database are unchanged, and events for it are dropped and counted until it catches up")
        }
    }

    private func run() {
        var lastIdle = DispatchTime.now()
        while true {
            _ = wakeup.wait(timeout: .now() + interval)
            let (batch, closing) = state.withLock { state -> ([SinkEvent], Bool) in
                let batch = state.pending
                state.pending.removeAll(keepingCapacity: true)
                return (batch, state.closing)
            }
            if !batch.isEmpty {
                let failures = sink.deliver(batch.map(\.redacted))
                if failures > 0 && failed.add(failures, ordering: .relaxed).oldValue == 0 {
                    warn("\(sink.name): \(failures) events could not be delivered; counting the rest until the session ends")
                }
                delivered.add(batch.count - failures, ordering: .relaxed)
            }
            if DispatchTime.now() >= lastIdle + interval {
                sink.idle()
                lastIdle = .now()
            }
            if closing && state.withLock({ $0.pending.isEmpty }) { break }
        }
        sink.close()
        finished.signal()
    }

    /// Asks the thread to deliver what is queued and end, waiting until `deadline`. Returns
    /// whether it ended; what it hadn't delivered by then counts as dropped.
    func finish(deadline: DispatchTime) -> Bool {
        state.withLock { $0.closing = true }
        wakeup.signal()
        if finished.wait(timeout: deadline) == .success { return true }
        state.withLock { state in
            state.dropped += state.pending.count
            state.pending.removeAll()
        }
        return false
    }

    /// What happened to this sink's events: nil when every one was delivered.
    func account(ended: Bool) -> String? {
        let dropped = state.withLock { $0.dropped }
        let failures = failed.load(ordering: .relaxed)
        guard dropped > 0 || failures > 0 || !ended else { return nil }
        var parts: [String] = []
        if dropped > 0 { parts.append("\(dropped) events dropped (its queue was full)") }
        if failures > 0 { parts.append("\(failures) not delivered after retries") }
        if !ended { parts.append("still sending at the session's end") }
        return "\(sink.name): " + parts.joined(separator: ", ")
    }

    var droppedCount: Int { state.withLock { $0.dropped } }
    var failedCount: Int { failed.load(ordering: .relaxed) }
}

/// The session's event sinks: fed where decisions are recorded (after the answer), each on its
/// own bounded queue and thread, so no destination can slow or block a decision.
public final class EventSinks: Sendable {
    let queues: [SinkQueue]
    public let session: SinkSession

    init(session: SinkSession, queues: [SinkQueue]) {
        self.session = session
        self.queues = queues
    }

    /// Starts every sink's thread; false when one could not be started.
    public func start() -> Bool {
        queues.allSatisfy { $0.start() }
    }

    public var isEmpty: Bool { queues.isEmpty }

    /// Hands `event` to every sink that wants it.
    public func publish(_ event: SinkEvent) {
        for queue in queues { queue.enqueue(event) }
    }

    /// Delivers what is queued, waiting at most `timeout` in all, and says what wasn't
    /// delivered (for the session's closing account); nil when everything was.
    public func finish(timeout: Duration = .seconds(3)) -> String? {
        let deadline = DispatchTime.now() + .milliseconds(Int(timeout.components.seconds * 1000
                                                               + timeout.components.attoseconds / 1_000_000_000_000_000))
        let accounts = queues.map { queue -> String? in
            let ended = queue.finish(deadline: deadline)
            return queue.account(ended: ended)
        }.compactMap { $0 }
        return accounts.isEmpty ? nil : accounts.joined(separator: "; ")
    }

    /// Where the OTLP exporter reads the supervisor's metrics at each export (on its own thread).
    func provideMetrics(_ source: @escaping @Sendable () -> SupervisorMetrics) {
        for queue in queues {
            if let otlp = queue.sink as? OTLPSink { otlp.metricsSource.withLock { $0 = source } }
        }
    }

    /// Events dropped or not delivered, by sink name (for tests and status).
    public var lossCounts: [(sink: String, dropped: Int, failed: Int)] {
        queues.map { ($0.sink.name, $0.droppedCount, $0.failedCount) }
    }
}

extension EventSinks {
    /// What a session sends where: `--journal` / `audit: {journal: true}`, `--otlp` /
    /// OTEL_EXPORTER_OTLP_*, and the policy's `webhooks:`.
    public struct Configuration: Sendable {
        public var journal = false
        public var otlp: OTLPConfiguration? = nil
        public var webhooks: [Webhook] = []
        /// Events each sink may hold before it drops.
        public var queueCapacity = 8192

        public init(journal: Bool = false, otlp: OTLPConfiguration? = nil, webhooks: [Webhook] = []) {
            self.journal = journal
            self.otlp = otlp
            self.webhooks = webhooks
        }

        public var isEmpty: Bool { !journal && otlp == nil && webhooks.isEmpty }
    }

    /// Why the sinks could not be set up (a webhook's secret can't be read): the session must
    /// not start with a destination silently missing.
    public struct SetupError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// The sinks `configuration` asks for, not yet started. A journal that isn't there is left
    /// out with one warning (`warn`); a webhook whose secret can't be read is an error.
    public static func make(_ configuration: Configuration, session: SinkSession, environment: [String: String],
                            warn: @escaping @Sendable (String) -> Void) throws(SetupError) -> EventSinks {
        var queues: [SinkQueue] = []
        if configuration.journal {
            if JournalSink.isAvailable {
                queues.append(SinkQueue(sink: JournalSink(session: session), capacity: configuration.queueCapacity, warn: warn))
            } else {
                warn("journal: \(JournalSink.socketPath) is missing (no systemd journal here); decisions are not sent to the journal")
            }
        }
        if let otlp = configuration.otlp {
            let sink = OTLPSink(configuration: otlp, session: session)
            let queue = SinkQueue(sink: sink, capacity: configuration.queueCapacity, wakeAt: 512, interval: .seconds(1), warn: warn)
            sink.droppedCount.withLock { $0 = { [weak queue] in queue?.droppedCount ?? 0 } }
            queues.append(queue)
        }
        for webhook in configuration.webhooks {
            let secret: [UInt8]
            do throws(WebhookSink.SecretUnavailable) {
                secret = try WebhookSink.secret(webhook.secret, environment: environment)
            } catch {
                throw SetupError(description: "\(webhook.endpoint): \(error.description)")
            }
            queues.append(SinkQueue(sink: WebhookSink(webhook: webhook, secret: secret, session: session),
                                    capacity: min(configuration.queueCapacity, 1024), warn: warn))
        }
        return EventSinks(session: session, queues: queues)
    }
}
