import AgentGatePolicy
import CSupport
import Glibc
import Synchronization

/// One action paused by an `ask`, as a person sees it (the terminal prompt, `agentgate approvals`).
struct PendingAsk: Sendable, Equatable {
    /// Short and unique among the user's sessions' pending asks: what `agentgate approve` takes.
    let id: String
    /// CLOCK_MONOTONIC when the call was paused.
    let createdAt: UInt64
    /// Wall-clock microseconds when the call was paused (listings show the age).
    let createdAtMicros: Int64
    /// The asking process (thread group) and its executable's name.
    let pid: pid_t
    let executable: String
    /// The agent's name (`--agent`, else the command's basename).
    let agent: String
    let action: AskedAction
    /// What the listing and the prompt show as the target: the command line of an exec, else
    /// the path or network target.
    let shownTarget: String
    /// `agent wants to install npm package: chalk`.
    let intent: String
    /// `3 (ask: every install)`, `default (ask)`, or the limit that asked.
    let rule: String
    /// The index of the matching rule in the policy that asked (nil: the default or a limit).
    let ruleIndex: Int?
    /// When an unanswered ask is denied (CLOCK_MONOTONIC).
    let deadline: UInt64

    /// Whole seconds since it was paused.
    func ageSeconds(now: UInt64 = agentgate_monotonic_ns()) -> Int { Int((now &- createdAt) / 1_000_000_000) }
}

/// Who answered an ask, and how: what the audit records with the decision.
enum AskResponder: Sendable, Equatable {
    /// A person at the session's terminal (the supervisor's user).
    case terminal(user: String)
    /// A person over the control socket (`agentgate approve`/`deny`), by its peer's credentials.
    case socket(user: String, pid: pid_t)
    /// Nobody answered within `ask_timeout`.
    case timeout(seconds: Int)

    /// `tty`, `socket` or `timeout`, as stored.
    var via: String {
        switch self {
        case .terminal: "tty"
        case .socket: "socket"
        case .timeout: "timeout"
        }
    }

    /// The person, as stored (nil for a timeout).
    var user: String? {
        switch self {
        case .terminal(let user), .socket(let user, _): user
        case .timeout: nil
        }
    }

    /// `by alice (uid 1000) at the terminal`.
    var phrase: String {
        switch self {
        case .terminal(let user): "by \(user) at the terminal"
        case .socket(let user, let pid): "by \(user) with agentgate (pid \(pid))"
        case .timeout(let seconds): "by the timeout: nobody answered within \(seconds) s"
        }
    }
}

/// How an answered ask was settled, kept for the record of its call.
struct AskOutcome: Sendable, Equatable {
    let askID: String
    let answer: AskAnswer
    let responder: AskResponder
    /// What became of a rule the answer saved (`saved to …`, or why it wasn't), or nil.
    let ruleNote: String?

    /// `allowed once by alice (uid 1000) at the terminal`.
    var description: String {
        let what = switch answer {
        case .allowOnce: "allowed once"
        case .deny: "denied"
        case .always: "allowed always"
        case .never: "denied always"
        }
        let rule = ruleNote.map { "; \($0)" } ?? ""
        return "asked (ask \(askID)): \(what) \(responder.phrase)\(rule)"
    }
}

/// Why an answer was not taken.
struct AskAnswerFailure: Error, Sendable, Equatable {
    let message: String
}

/// What became of a paused call's ask (`AskBroker.wait`).
enum AskWaitResult: Sendable, Equatable {
    /// A person answered, or the timeout did.
    case settled(AskOutcome)
    /// A signal arrived for the waiting thread: the call is answered as an interrupted wait
    /// (-ERESTARTSYS), and the ask withdrawn.
    case interrupted
    /// The call is gone (its thread was killed) or the session is ending.
    case gone
    /// Nobody can be asked (no terminal, no control socket, or too many asks waiting).
    case unavailable(String)
}

/// The session's pending asks: the paused calls' threads wait here for an answer from the
/// terminal prompt or the control socket (`agentgate approve`/`deny`), or for `ask_timeout`.
///
/// Only the asking call waits. Its receiver thread waits in `wait`, and one of the receivers
/// started on standby with the session takes its place meanwhile (`ReceiverStandby`): no thread
/// is created on the agent's demand, and the other calls are answered as before.
final class AskBroker: Sendable {
    /// A paused call's thread waits on its semaphore; the answer is put in `State.outcomes`.
    private typealias Waiter = CountingSemaphore

    private struct Entry {
        var ask: PendingAsk
        var waiter: Waiter
        /// The call's thread, syscall and arguments: a call interrupted by a signal and
        /// restarted comes back with the same, and finds its ask again.
        let restartKey: String
        /// Set while no thread waits: the call was interrupted and may be restarted until then.
        var detachedUntil: UInt64? = nil
        /// A person's answer is being saved (`answer`): no other answer, nor the timeout, may
        /// settle it meanwhile.
        var claimed = false
        /// The policy version that asked: its rule numbers are the ask's (`ruleIndex`).
        unowned(unsafe) let policy: PolicyVersion
    }

    /// How long an ask whose call a signal interrupted stays pending for the restarted call
    /// (same thread, syscall and arguments) to take up again, with its id and deadline.
    static let restartWindowNanoseconds: UInt64 = 2_000_000_000

    private struct State {
        /// Pending asks, oldest first.
        var entries: [Entry] = []
        /// Answers given and not yet taken by their waiting thread, by ask id.
        var outcomes: [String: AskOutcome] = [:]
        /// Settled asks' outcomes, by notification id, until the call's record takes them.
        var recorded: [UInt64: AskOutcome] = [:]
        /// Asks denied moments ago, by process and action (`repeatKey`), with when that
        /// denial stops applying to a repeat.
        var recentDenials: [String: (outcome: AskOutcome, until: UInt64)] = [:]
        var stopping = false

        /// Removes a settled ask and keeps its outcome for the call's record; a denial also
        /// answers the same process repeating the action for a moment.
        mutating func settle(_ ask: PendingAsk, _ outcome: AskOutcome, for notificationID: UInt64) {
            entries.removeAll { $0.ask.id == ask.id }
            outcomes.removeValue(forKey: ask.id)
            record(outcome, for: notificationID)
            if !outcome.answer.allows {
                let now = agentgate_monotonic_ns()
                if recentDenials.count > 64 { recentDenials = recentDenials.filter { $0.value.until > now } }
                recentDenials[AskBroker.repeatKey(ask)] = (outcome, now + AskBroker.repeatWindowNanoseconds)
            }
        }

        /// Keeps `outcome` until the call's record takes it (bounded: a call whose record never
        /// asks for it must not make the table grow).
        mutating func record(_ outcome: AskOutcome, for notificationID: UInt64) {
            if recorded.count >= 1024 { recorded.removeAll() }
            recorded[notificationID] = outcome
        }

        /// Forgets asks whose interrupted call didn't come back in time.
        mutating func pruneDetached(now: UInt64) {
            let expired = entries.filter { ($0.detachedUntil ?? .max) <= now }.map(\.ask.id)
            guard !expired.isEmpty else { return }
            entries.removeAll { expired.contains($0.ask.id) }
            for id in expired { outcomes.removeValue(forKey: id) }
        }
    }

    /// How long a denied ask's answer also covers the same process repeating the same action
    /// (a shell tries each PATH directory in turn; a tool retries): it isn't asked again.
    static let repeatWindowNanoseconds: UInt64 = 5_000_000_000

    /// The same process's same action: what a recent denial covers.
    fileprivate static func repeatKey(_ ask: PendingAsk) -> String {
        var key = "\(ask.pid)\u{0}\(ask.action.kind.name)\u{0}\(ask.action.target)"
        for word in ask.action.argv ?? [] { key += "\u{0}" + word }
        return key
    }

    private let state = Mutex(State())
    /// Posted for every new ask and every change a presenter should see.
    private let changed = CountingSemaphore()
    let standby: ReceiverStandby
    /// Whether anyone can answer: a terminal prompt runs, or the session has a control socket.
    private let answerable = Atomic<Bool>(false)
    /// Whether the terminal prompt runs (else each new ask is announced on the log).
    private let prompting = Atomic<Bool>(false)
    /// Saves the rule an Always or Never answer asks for and puts the policy in force; returns
    /// what became of it (`saved to …`, or why not). Set once before the agent starts.
    private let ruleSaver = Mutex<(@Sendable (PendingAsk, AskAnswer, PolicyVersion) -> String)?>(nil)
    /// Previews that rule (`RuleProposal`).
    private let ruleProposer = Mutex<(@Sendable (PendingAsk, AskAnswer, PolicyVersion) -> RuleProposal?)?>(nil)

    init(standby: ReceiverStandby) {
        self.standby = standby
    }

    /// Someone can answer from now on (a control socket listens, or the terminal prompt runs).
    func enableAnswers(prompting: Bool) {
        answerable.store(true, ordering: .releasing)
        if prompting { self.prompting.store(true, ordering: .releasing) }
    }

    var isPrompting: Bool { prompting.load(ordering: .acquiring) }

    /// The terminal prompt has stopped (its terminal went away): new asks are announced on the log.
    func stopPrompting() { prompting.store(false, ordering: .releasing) }

    func setRuleHandling(save: @escaping @Sendable (PendingAsk, AskAnswer, PolicyVersion) -> String,
                         propose: @escaping @Sendable (PendingAsk, AskAnswer, PolicyVersion) -> RuleProposal?) {
        ruleSaver.withLock { $0 = save }
        ruleProposer.withLock { $0 = propose }
    }

    /// A new id: five characters, unlikely to be pending in another session of the user, and
    /// never pending in this one.
    private func newID(taken: [Entry]) -> String {
        let alphabet = Array("abcdefghjkmnpqrstuvwxyz23456789")
        var generator = SystemRandomNumberGenerator()
        while true {
            let id = String((0..<5).map { _ in alphabet[Int(generator.next(upperBound: UInt32(alphabet.count)))] })
            if !taken.contains(where: { $0.ask.id == id }) { return id }
        }
    }

    /// Pauses the calling thread (a receiver deciding notification `notificationID` of agent
    /// thread `tid`) until `ask` is answered, its deadline passes, a signal arrives for the
    /// agent's thread, or the call is gone. `makeAsk` builds the ask given its new id.
    /// `restartKey` identifies the call (thread, syscall, arguments) so that the same call,
    /// restarted after a signal interrupted its wait, takes up the same ask.
    func wait(notificationID: UInt64, tid: pid_t, restartKey: String, listener: Listener, policy: PolicyVersion,
              makeAsk: (String) -> PendingAsk, announce: (PendingAsk) -> Void) -> AskWaitResult {
        guard answerable.load(ordering: .acquiring) else {
            return .unavailable(Self.nobodyToAsk)
        }
        guard standby.beginWait() else {
            return .unavailable("no approver free: \(standby.capacity) asks are already waiting")
        }
        defer { standby.endWait() }
        return waitForAnswer(key: notificationID, restartKey: restartKey, policy: policy, makeAsk: makeAsk, announce: announce,
                             isGone: { !listener.isValid(notificationID) },
                             isInterrupted: {
                                 agentgate_thread_signal_routed_ignoring(tid, Self.signalsThatDontInterrupt) == 1
                                     && listener.isValid(notificationID)
                             })
    }

    /// Pauses the calling thread (not a receiver: the one that reads the starting process's
    /// asks, `ParentAsks`) until `ask` is answered or its deadline passes; `isGone` says the
    /// asker has gone away (the ask is then withdrawn).
    func waitOnBehalfOfParent(key: UInt64, policy: PolicyVersion, isGone: () -> Bool, makeAsk: (String) -> PendingAsk,
                              announce: (PendingAsk) -> Void) -> AskWaitResult {
        guard answerable.load(ordering: .acquiring) else { return .unavailable(Self.nobodyToAsk) }
        return waitForAnswer(key: key, restartKey: "parent \(key)", policy: policy, makeAsk: makeAsk, announce: announce,
                             isGone: isGone, isInterrupted: { false })
    }

    /// The wait itself: `key` names the outcome for the record (`takeOutcome`), `isGone` says
    /// the asker went away, `isInterrupted` that a signal would interrupt its wait.
    private func waitForAnswer(key notificationID: UInt64, restartKey: String, policy: PolicyVersion,
                               makeAsk: (String) -> PendingAsk, announce: (PendingAsk) -> Void,
                               isGone: () -> Bool, isInterrupted: () -> Bool) -> AskWaitResult {
        let waiter = Waiter()
        enum Registration { case pending(PendingAsk), resumed(PendingAsk), repeated(AskOutcome), stopping }
        let registration: Registration = state.withLock { state in
            guard !state.stopping else { return .stopping }
            state.pruneDetached(now: agentgate_monotonic_ns())
            let ask = makeAsk(newID(taken: state.entries))
            if let index = state.entries.firstIndex(where: { $0.detachedUntil != nil && $0.restartKey == restartKey }) {
                // The same call restarted takes its ask up again, but only for the very action
                // the person is being asked about: a handler may have rewritten the arguments.
                if state.entries[index].ask.action == ask.action {
                    state.entries[index].detachedUntil = nil
                    state.entries[index].waiter = waiter
                    return .resumed(state.entries[index].ask)
                }
                state.outcomes.removeValue(forKey: state.entries[index].ask.id)
                state.entries.remove(at: index)
            }
            let key = Self.repeatKey(ask)
            if let recent = state.recentDenials[key] {
                if recent.until > ask.createdAt {
                    state.record(recent.outcome, for: notificationID)
                    return .repeated(recent.outcome)
                }
                state.recentDenials.removeValue(forKey: key)
            }
            state.entries.append(Entry(ask: ask, waiter: waiter, restartKey: restartKey, policy: policy))
            return .pending(ask)
        }
        let ask: PendingAsk
        switch registration {
        case .pending(let pending):
            ask = pending
            changed.signal()
            if !isPrompting { announce(ask) }
        case .resumed(let resumed): ask = resumed
        case .repeated(let outcome): return .settled(outcome)
        case .stopping: return .gone
        }

        var result: AskWaitResult?
        while result == nil {
            _ = waiter.wait(milliseconds: 50)
            let timedOut = agentgate_monotonic_ns() >= ask.deadline
            // Settled and removed in one step: an answer that comes later finds no ask.
            result = state.withLock { state -> AskWaitResult? in
                if let outcome = state.outcomes.removeValue(forKey: ask.id) {
                    state.settle(ask, outcome, for: notificationID)
                    return .settled(outcome)
                }
                if state.stopping { return .gone }
                // A person's answer is being saved: it, not the timeout, settles the ask.
                let claimed = state.entries.contains { $0.ask.id == ask.id && $0.claimed }
                if timedOut && !claimed {
                    let seconds = Int((ask.deadline &- ask.createdAt) / 1_000_000_000)
                    let outcome = AskOutcome(askID: ask.id, answer: .deny, responder: .timeout(seconds: seconds), ruleNote: nil)
                    state.settle(ask, outcome, for: notificationID)
                    return .settled(outcome)
                }
                return nil
            }
            if result != nil { break }
            if isGone() {
                result = .gone
            } else if isInterrupted() {
                // The kernel would interrupt a blocking wait: answer as it would, and the
                // call runs the handler, then restarts (and asks again) or fails with EINTR.
                result = .interrupted
            }
        }
        if result == .interrupted || result == .gone {
            let settledMeanwhile: AskOutcome? = state.withLock { state in
                // An answer that landed meanwhile still counts for a call that is still there.
                if result == .interrupted, let outcome = state.outcomes.removeValue(forKey: ask.id) {
                    state.settle(ask, outcome, for: notificationID)
                    return outcome
                }
                if result == .interrupted, let index = state.entries.firstIndex(where: { $0.ask.id == ask.id }) {
                    // Kept for the restarted call (an answer given meanwhile waits for it too).
                    state.entries[index].detachedUntil = agentgate_monotonic_ns() + Self.restartWindowNanoseconds
                } else {
                    state.entries.removeAll { $0.ask.id == ask.id }
                    state.outcomes.removeValue(forKey: ask.id)
                }
                return nil
            }
            if let settledMeanwhile { result = .settled(settledMeanwhile) }
        }
        changed.signal()
        // A thread killed while the person decided: nothing is done for it.
        if case .settled = result, isGone() { return .gone }
        return result!
    }

    /// Why an ask is denied at once in a session nobody can answer in.
    static let nobodyToAsk = "no approver: the session has neither a terminal nor a control socket"

    /// Job-control signals the supervisor itself sends while it prompts (it stops the agent's
    /// group, then continues it and asks it to redraw): they must not withdraw the ask.
    static let signalsThatDontInterrupt: UInt64 = [SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT, SIGWINCH]
        .reduce(0) { $0 | (1 << UInt64($1 - 1)) }

    /// The pending asks, oldest first.
    func pending() -> [PendingAsk] {
        state.withLock { state in
            state.pruneDetached(now: agentgate_monotonic_ns())
            return state.entries.map(\.ask)
        }
    }

    func isPending(_ id: String) -> Bool {
        state.withLock { state in state.entries.contains { $0.ask.id == id && !$0.claimed } && state.outcomes[id] == nil }
    }

    /// Waits until an ask is pending (or `timeoutMilliseconds` pass) and returns them, oldest first.
    func waitForPending(timeoutMilliseconds: Int) -> [PendingAsk] {
        let current = pending()
        if !current.isEmpty { return current }
        _ = changed.wait(milliseconds: timeoutMilliseconds)
        return pending()
    }

    /// The rule an Always or Never answer to ask `id` would save, or nil (no such ask, or no
    /// policy file handling).
    func proposal(for id: String, _ answer: AskAnswer) -> RuleProposal? {
        guard let (ask, policy) = state.withLock({ state in
            state.entries.first { $0.ask.id == id }.map { ($0.ask, $0.policy) }
        }) else { return nil }
        return ruleProposer.withLock { $0 }?(ask, answer, policy)
    }

    /// Answers ask `id`. An Always or Never answer saves its rule first (and puts the policy
    /// with it in force); the call goes ahead or fails whatever became of the rule. Returns
    /// what the answer did, for whoever gave it.
    func answer(_ id: String, _ answer: AskAnswer, by responder: AskResponder) -> Result<AskOutcome, AskAnswerFailure> {
        // Claimed first: one answer per ask, and the timeout waits for a claimed one.
        guard let (ask, policy) = state.withLock({ state -> (PendingAsk, PolicyVersion)? in
            state.pruneDetached(now: agentgate_monotonic_ns())
            guard !state.stopping, state.outcomes[id] == nil,
                  let index = state.entries.firstIndex(where: { $0.ask.id == id }), !state.entries[index].claimed else { return nil }
            state.entries[index].claimed = true
            return (state.entries[index].ask, state.entries[index].policy)
        }) else {
            return .failure(AskAnswerFailure(message: "no pending ask \(id) (it may have been answered, timed out or withdrawn)"))
        }
        var note: String?
        if answer.savedDecision != nil, let save = ruleSaver.withLock({ $0 }) { note = save(ask, answer, policy) }
        let outcome = AskOutcome(askID: id, answer: answer, responder: responder, ruleNote: note)
        let waiter: Waiter? = state.withLock { state in
            guard let entry = state.entries.first(where: { $0.ask.id == id }) else { return nil }
            state.outcomes[id] = outcome
            return entry.waiter
        }
        guard let waiter else {
            let saved = note.map { " (\($0))" } ?? ""
            return .failure(AskAnswerFailure(message: "ask \(id)'s call ended meanwhile\(saved)"))
        }
        waiter.signal()
        return .success(outcome)
    }

    /// The outcome of the ask that settled notification `notificationID`, once: for its record.
    func takeOutcome(notificationID: UInt64) -> AskOutcome? {
        state.withLock { $0.recorded.removeValue(forKey: notificationID) }
    }

    /// The session is ending: every waiting call is released (and fails).
    func stop() {
        let waiters = state.withLock { state -> [Waiter] in
            state.stopping = true
            return state.entries.map(\.waiter)
        }
        for waiter in waiters { waiter.signal() }
        changed.signal()
    }
}
