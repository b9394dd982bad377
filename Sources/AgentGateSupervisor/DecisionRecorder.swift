import AgentGatePolicy
import AgentGateStore
import CSupport
import Glibc
import Synchronization

/// Hands each decision to the audit writer (after the response has been sent) and, with -v,
/// echoes it on stderr.
struct DecisionRecorder: Sendable {
    let writer: AuditWriter?
    /// Sees every decision as it is made (`-v`, `--log`).
    let echo: (@Sendable (DecisionEvent) -> Void)?
    let counts: DecisionCounts
    /// The user's home, so intent lines can say `~/.ssh/id_rsa`.
    let home: String?

    init(writer: AuditWriter?, echo: (@Sendable (DecisionEvent) -> Void)? = nil, counts: DecisionCounts = DecisionCounts(),
         home: String? = nil) {
        self.writer = writer
        self.echo = echo
        self.counts = counts
        self.home = home
    }

    /// One decided syscall.
    struct Entry {
        var syscall: String
        var action: ActionKind
        var target: String
        var argv: [String]? = nil
        var decision: Decision
        var ruleIndex: Int? = nil
        var reason: String
        var errno: Int32? = nil
        /// The policy's verdict, when the policy decided (not a self-protection refusal).
        var verdict: Verdict? = nil
        /// A syscall decided on its own (an unsupervised route, a process it targets, a value it
        /// sets), not one of the policy's actions: recorded as action `syscall`.
        var isSyscall = false
        /// How a person (or the timeout) settled the `ask` that decided this call.
        var askOutcome: AskOutcome? = nil
        /// Said after the reason, whatever decided ("not resolved by the agent: …").
        var note: String? = nil

        /// The action as recorded.
        var recordedAction: RecordedAction {
            if isSyscall { return .syscall }
            return switch action {
            case .exec: .exec
            case .fsRead: .fsRead
            case .fsWrite: .fsWrite
            case .netEgress: .netEgress
            case .mcp: .mcp
            }
        }

        var recordedDecision: RecordedDecision { RecordedDecision(decision) }
    }

    /// Records one decision; `policy` is the version that made it (for its rule's id and
    /// reason, and the policy hash recorded).
    func record(_ entry: Entry, notification n: Notification, process: ProcessFacts, respondedAt: UInt64,
                policy version: PolicyVersion? = nil) {
        let latency = Int64((respondedAt &- n.receivedAt) / 1000)
        var ruleID: String?
        var reason = entry.reason
        if let index = entry.ruleIndex, let policy = version?.policy, policy.rules.indices.contains(index) {
            let rule = policy.rules[index]
            ruleID = rule.displayID
            if let ruleReason = rule.reason, entry.verdict?.reason != .escapesScope { reason = ruleReason }
        }
        if let index = entry.verdict?.limitIndex, let policy = version?.policy, policy.limits.indices.contains(index) {
            reason = policy.limits[index].explanation
        }
        if let note = entry.note { reason += "; " + note }
        if let outcome = entry.askOutcome {
            reason += "; " + outcome.description
        } else if let verdict = entry.verdict, verdict.reason == .askInterrupted || verdict.reason == .askWithdrawn {
            reason += "; " + verdict.reason.text
        }
        let enforced = entry.verdict?.enforced ?? true
        // Intent lines are built after the response, and only where people read them: execs,
        // and whatever wasn't a plain allow. Plain allowed opens and connects don't pay for one.
        var intent: String?
        if entry.action == .exec || entry.decision != .allow {
            intent = Intent.describe(entry.action, target: entry.target, argv: entry.argv, home: home).text
        }
        // The one place a typed decision becomes the store's event.
        var event = DecisionEvent(
            timeMicros: AuditClock.nowMicros(), pid: process.tgid, ppid: process.ppid,
            executable: process.executable, syscall: entry.syscall, action: entry.recordedAction,
            target: entry.target, argv: entry.argv.map(Self.recordable), decision: entry.recordedDecision, ruleIndex: entry.ruleIndex,
            reason: reason, errno: entry.errno, latencyMicros: latency,
            ruleID: ruleID, intent: intent, notable: entry.decision == .log, enforced: enforced)
        event.policySHA256 = version?.sha256
        event.answeredVia = entry.askOutcome?.responder.via
        event.answeredBy = entry.askOutcome?.responder.user
        counts.count(entry.decision)
        counts.note(entry.recordedAction, entry.decision, latencyMicros: latency)
        // An answered ask counts as its answer, and as asked.
        if entry.askOutcome != nil { counts.noteAnsweredAsk() }
        if entry.action == .exec { counts.noteExec(event, enforcedDenial: entry.decision == .deny && enforced) }
        if let echo {
            echo(event)
            // The failure, held until now, reaches the process after its echo (see
            // agentgate_notif_defer_failures).
            agentgate_notif_flush_deferred()
        }
        writer?.record(event)
    }
}

/// One counter that lives in an array.
final class AtomicCount: Sendable {
    let value = Atomic<UInt64>(0)
}

/// How many decisions of each kind a session has had.
public final class DecisionCounts: Sendable {
    private let allowed = Atomic<Int>(0)
    private let denied = Atomic<Int>(0)
    private let asked = Atomic<Int>(0)
    private let logged = Atomic<Int>(0)
    private let sawExec = Atomic<Bool>(false)
    private let firstExecEvent = Mutex<(event: DecisionEvent, enforcedDenial: Bool)?>(nil)

    public init() {}

    /// The session's first exec decision: CMD's own.
    public var firstExec: DecisionEvent? { firstExecEvent.withLock { $0?.event } }

    /// The session's first exec decision when the policy refused it (and was enforced).
    var firstExecDenial: DecisionEvent? { firstExecEvent.withLock { $0.flatMap { $0.enforcedDenial ? $0.event : nil } } }

    func noteExec(_ event: DecisionEvent, enforcedDenial: Bool) {
        guard !sawExec.load(ordering: .relaxed) else { return }
        firstExecEvent.withLock { if $0 == nil { $0 = (event, enforcedDenial) } }
        sawExec.store(true, ordering: .relaxed)
    }

    func count(_ decision: Decision) {
        switch decision {
        case .allow: allowed.add(1, ordering: .relaxed)
        case .deny: denied.add(1, ordering: .relaxed)
        case .ask: asked.add(1, ordering: .relaxed)
        case .log: logged.add(1, ordering: .relaxed)
        }
    }

    func noteAnsweredAsk() { asked.add(1, ordering: .relaxed) }

    // For `agentgate serve`'s /metrics (through the control socket's `status`): decisions by
    // action and decision, and a fixed-bucket latency histogram. Relaxed atomic adds only,
    // made after the response has been sent.
    private static let actions: [RecordedAction] = [.exec, .fsRead, .fsWrite, .netEgress, .syscall, .mcp]
    private static let decisions: [Decision] = [.allow, .deny, .ask, .log]
    /// Bucket upper bounds in µs; an ask's latency includes the person's answer, hence the top ones.
    static let latencyBoundsMicros: [Int64] = [10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 100_000,
                                                1_000_000, 10_000_000, 60_000_000]
    private let byActionAndDecision = (0..<(DecisionCounts.actions.count * DecisionCounts.decisions.count)).map { _ in AtomicCount() }
    private let latencyBuckets = (0...DecisionCounts.latencyBoundsMicros.count).map { _ in AtomicCount() }
    private let latencySumMicros = AtomicCount()

    func note(_ action: RecordedAction, _ decision: Decision, latencyMicros: Int64) {
        if let row = Self.actions.firstIndex(of: action), let column = Self.decisions.firstIndex(of: decision) {
            byActionAndDecision[row * Self.decisions.count + column].value.add(1, ordering: .relaxed)
        }
        let bucket = Self.latencyBoundsMicros.firstIndex { latencyMicros <= $0 } ?? Self.latencyBoundsMicros.count
        latencyBuckets[bucket].value.add(1, ordering: .relaxed)
        latencySumMicros.value.add(UInt64(max(0, latencyMicros)), ordering: .relaxed)
    }

    /// What has been counted, for the control socket's `status`.
    func metrics(auditQueueDepth: Int, auditWriteErrors: Int, asksPending: Int) -> SupervisorMetrics {
        var decided: [String: [String: UInt64]] = [:]
        for (row, action) in Self.actions.enumerated() {
            for (column, decision) in Self.decisions.enumerated() {
                let count = byActionAndDecision[row * Self.decisions.count + column].value.load(ordering: .relaxed)
                if count > 0 { decided[action.text, default: [:]][decision.name] = count }
            }
        }
        return SupervisorMetrics(
            decisions: decided, latencyBounds: Self.latencyBoundsMicros.map { Double($0) / 1_000_000 },
            latencyCounts: latencyBuckets.map { $0.value.load(ordering: .relaxed) },
            latencySumSeconds: Double(latencySumMicros.value.load(ordering: .relaxed)) / 1_000_000,
            auditQueueDepth: auditQueueDepth, auditWriteErrors: UInt64(max(0, auditWriteErrors)), asksPending: asksPending)
    }

    public var allowedCount: Int { allowed.load(ordering: .relaxed) }
    public var deniedCount: Int { denied.load(ordering: .relaxed) }
    /// Asks: answered (also counted as their answer) or not (nobody to ask, or withdrawn).
    public var askedCount: Int { asked.load(ordering: .relaxed) }
    /// Allowed and flagged (`log` rules).
    public var loggedCount: Int { logged.load(ordering: .relaxed) }
}

extension DecisionRecorder {
    /// The most argv bytes one event keeps. An agent can make argv megabytes long on every exec;
    /// the audit keeps the start and the end (where `sh -c "<padding>; cmd"` puts the command),
    /// and says how much it left out between them, so memory and the database stay bounded
    /// whatever the agent does.
    static let recordedArgvBytes = 16 << 10
    static let recordedArgvTailBytes = 4 << 10

    static func recordable(_ argv: [String]) -> [String] {
        let total = argv.reduce(0) { $0 + $1.utf8.count }
        guard total > recordedArgvBytes else { return argv }
        // Head: whole arguments, then the start of the one that doesn't fit.
        var head: [String] = []
        var room = recordedArgvBytes - recordedArgvTailBytes
        var first = 0, firstCut = 0 // the argument the head stops in, and its bytes kept
        while first < argv.count {
            let bytes = argv[first].utf8
            if bytes.count <= room { head.append(argv[first]); room -= bytes.count; first += 1; continue }
            firstCut = scalarBoundary(Array(bytes), at: room, fromEnd: false)
            break
        }
        // Tail: whole arguments from the end, then the end of the one that doesn't fit; never
        // reaching back into what the head kept.
        var tail: [String] = []
        room = recordedArgvTailBytes
        var last = argv.count - 1, lastCut = 0
        while last > first {
            let bytes = argv[last].utf8
            if bytes.count <= room { tail.insert(argv[last], at: 0); room -= bytes.count; last -= 1; continue }
            lastCut = scalarBoundary(Array(bytes), at: room, fromEnd: true)
            break
        }
        if last == first {
            // One argument holds both cuts.
            let bytes = Array(argv[first].utf8)
            lastCut = min(scalarBoundary(bytes, at: room, fromEnd: true), bytes.count - firstCut)
        }
        // Kept: head, the start of argv[first], the end of argv[last], tail.
        let partialFirst = firstCut > 0, partialLast = lastCut > 0
        var kept = head
        if partialFirst { kept.append(String(decoding: Array(argv[first].utf8)[..<firstCut], as: UTF8.self) + "…") }
        let keptBytes = (head + tail).reduce(0) { $0 + $1.utf8.count } + firstCut + lastCut
        let touched = last - first + 1 // arguments from argv[first] to argv[last]
        let partlyKept = first == last ? (partialFirst || partialLast ? 1 : 0) : (partialFirst ? 1 : 0) + (partialLast ? 1 : 0)
        let omittedArguments = touched - partlyKept
        kept.append("…(\(total - keptBytes) bytes" + (omittedArguments > 0 ? " in \(omittedArguments) arguments" : "") + " not recorded)…")
        if partialLast {
            let bytes = Array(argv[last].utf8)
            kept.append("…" + String(decoding: bytes[(bytes.count - lastCut)...], as: UTF8.self))
        }
        return kept + tail
    }

    /// `count` bytes from the start (or the end) of `bytes`, fewer if needed to cut between
    /// UTF-8 sequences.
    private static func scalarBoundary(_ bytes: [UInt8], at count: Int, fromEnd: Bool) -> Int {
        var n = min(count, bytes.count)
        if fromEnd {
            while n > 0 && bytes[bytes.count - n] & 0xC0 == 0x80 { n -= 1 }
        } else {
            while n > 0 && n < bytes.count && bytes[n] & 0xC0 == 0x80 { n -= 1 }
        }
        return n
    }
}

extension DecisionRecorder.Entry {
    /// An entry for a policy verdict.
    init(syscall: String, action: ActionKind, target: String, verdict: Verdict, argv: [String]? = nil, errno: Int32? = nil) {
        self.init(syscall: syscall, action: action, target: target, argv: argv, decision: verdict.decision,
                  ruleIndex: verdict.ruleIndex, reason: verdict.reason.text, errno: errno, verdict: verdict)
    }

    /// An entry for a denial the policy didn't make (unreadable argument, self-protection…).
    static func denied(syscall: String, action: ActionKind, target: String, reason: String, errno: Int32) -> Self {
        Self(syscall: syscall, action: action, target: target, decision: .deny, reason: reason, errno: errno)
    }

    /// A syscall refused on its own account (see `isSyscall`).
    static func deniedSyscall(_ syscall: String, target: String, reason: String, errno: Int32) -> Self {
        var entry = Self(syscall: syscall, action: .exec, target: target, decision: .deny, reason: reason, errno: errno)
        entry.isSyscall = true
        return entry
    }
}

extension RecordedDecision {
    /// The stored form of a policy decision.
    public init(_ decision: Decision) {
        switch decision {
        case .allow: self = .allow
        case .deny: self = .deny
        case .ask: self = .ask
        case .log: self = .log
        }
    }
}
