import Synchronization

/// A window of time a limit counts over: `30s`, `1m`, `1h`, `1d`, combinations such as
/// `1m30s`, or a plain number of seconds.
public struct LimitWindow: Sendable, Equatable, CustomStringConvertible {
    public let seconds: Int

    /// The longest window a limit may count over (one week).
    public static let maximumSeconds = 7 * 24 * 3600
    /// A window is counted in this many buckets: an action is counted for between 7/8 of the
    /// window and the whole of it, never longer.
    public static let buckets = 8

    public init?(seconds: Int) {
        guard seconds > 0, seconds <= Self.maximumSeconds else { return nil }
        self.seconds = seconds
    }

    /// `90`, `"90s"`, `"1m30s"`, `"2h"`, `"1d"`; nil for anything else, zero, or more than a week.
    public init?(parsing text: String) {
        if let plain = Int(text) {
            self.init(seconds: plain)
            return
        }
        var total = 0
        var number: Int?
        var lastUnit = Int.max
        for character in text {
            if let digit = character.wholeNumberValue, character.isASCII {
                let (times, overflow) = (number ?? 0).multipliedReportingOverflow(by: 10)
                guard !overflow, times <= Self.maximumSeconds else { return nil }
                number = times + digit
                continue
            }
            let unit: Int
            switch character {
            case "s": unit = 1
            case "m": unit = 60
            case "h": unit = 3600
            case "d": unit = 86400
            default: return nil
            }
            // Each unit once, largest first: "1h30m", not "30m1h" or "1m1m".
            guard let value = number, unit < lastUnit else { return nil }
            total += value * unit
            guard total <= Self.maximumSeconds else { return nil }
            lastUnit = unit
            number = nil
        }
        guard number == nil, lastUnit != Int.max else { return nil }
        self.init(seconds: total)
    }

    /// The shortest spelling: `1m`, `90s`, `2h`, `1d`.
    public var description: String {
        if seconds % 86400 == 0 { return "\(seconds / 86400)d" }
        if seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds % 60 == 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }

    /// Length of one bucket, in nanoseconds.
    public var bucketNanoseconds: UInt64 { UInt64(seconds) * 1_000_000_000 / UInt64(Self.buckets) }

    /// The bucket a moment (monotonic nanoseconds) falls in.
    public func bucket(at nanoseconds: UInt64) -> UInt64 { nanoseconds / bucketNanoseconds }

    /// Whether an action counted in bucket `counted` still counts at bucket `now`.
    public func counts(bucket counted: UInt64, now: UInt64) -> Bool {
        counted <= now && now - counted < UInt64(Self.buckets)
    }
}

/// One entry of `limits:`: at most `count` actions of `actions` (matching `match`, or allowed by
/// rule `ruleIndex`) per `window`, per session.
public struct RateLimit: Sendable, Equatable {
    /// 0-based position in `Policy.limits`.
    public let index: Int
    public let id: String?
    /// The actions the limit counts.
    public let actions: [ActionKind]
    /// The rule whose allowed actions are counted (`rule:`), as its index in `Policy.rules`.
    public let ruleIndex: Int?
    /// Whether the limit has a `match:` of its own beyond the action.
    public let hasMatch: Bool
    public let count: Int
    public let window: LimitWindow
    /// What happens over the limit: deny, or ask (a person decides, as for an `ask` rule).
    public let decision: Decision
    public let reason: String?
    public let file: String
    public let line: Int
    public let column: Int

    /// The most a limit may count in one window.
    public static let maximumCount = 1_000_000

    /// How the limit is named to people: its `id`, else its 1-based number.
    public var displayID: String { id ?? "\(index + 1)" }

    public var location: String { "\(file):\(line):\(column)" }

    /// The reason an action over the limit is refused, as recorded and shown:
    /// `rate limit: at most 30 exec per 1m (limit net-tools)`, then the limit's own reason.
    public var explanation: String {
        let what = actions.count == ActionKind.allCases.count ? "actions" : actions.map(\.name).joined(separator: "/")
        let text = "rate limit: at most \(count) \(what) per \(window) (limit \(displayID))"
        guard let reason, !reason.isEmpty else { return text }
        return text + ": " + reason
    }
}

/// `runaway:`: a session that piles up `denials` denials within `window` is stopped.
public struct RunawayRule: Sendable, Equatable {
    public enum Action: String, Sendable, CaseIterable {
        /// Pause the session: every new trapped call waits until it is resumed.
        case pause
    }

    public let denials: Int
    public let window: LimitWindow
    public let action: Action
    public let file: String
    public let line: Int
    public let column: Int

    /// `runaway: 20 denials within 10s`.
    public var explanation: String { "runaway: \(denials) denials within \(window)" }
}

/// Counts events in a window of `LimitWindow.buckets` fixed buckets, lock-free: one atomic word
/// per bucket holds the bucket's number (high 40 bits) and its count (low 24 bits). Times are
/// passed in (monotonic nanoseconds), so the arithmetic is tested without a clock.
public final class WindowCounter: @unchecked Sendable {
    public let window: LimitWindow
    private let slots: UnsafeMutablePointer<Atomic<UInt64>>
    private static let countBits: UInt64 = 24
    private static let countMask: UInt64 = (1 << countBits) - 1

    public init(window: LimitWindow) {
        self.window = window
        slots = .allocate(capacity: LimitWindow.buckets)
        for i in 0..<LimitWindow.buckets { (slots + i).initialize(to: Atomic<UInt64>(0)) }
    }

    deinit {
        slots.deinitialize(count: LimitWindow.buckets)
        slots.deallocate()
    }

    /// Counts one event at `now`; returns how many the window holds with it.
    @discardableResult
    public func add(at now: UInt64) -> Int {
        let bucket = window.bucket(at: now)
        let slot = slots + Int(bucket % UInt64(LimitWindow.buckets))
        var old = slot.pointee.load(ordering: .relaxed)
        while true {
            let new = old >> Self.countBits == bucket
                ? old + (old & Self.countMask < Self.countMask ? 1 : 0)
                : bucket << Self.countBits | 1
            let (exchanged, current) = slot.pointee.compareExchange(expected: old, desired: new, ordering: .relaxed)
            if exchanged { break }
            old = current
        }
        return total(atBucket: bucket)
    }

    /// Takes back one event counted at `now` (when its bucket is still the current one).
    public func remove(at now: UInt64) {
        let bucket = window.bucket(at: now)
        let slot = slots + Int(bucket % UInt64(LimitWindow.buckets))
        var old = slot.pointee.load(ordering: .relaxed)
        while old >> Self.countBits == bucket, old & Self.countMask > 0 {
            let (exchanged, current) = slot.pointee.compareExchange(expected: old, desired: old - 1, ordering: .relaxed)
            if exchanged { return }
            old = current
        }
    }

    /// How many events the window ending at `now` holds.
    public func total(at now: UInt64) -> Int { total(atBucket: window.bucket(at: now)) }

    private func total(atBucket bucket: UInt64) -> Int {
        var sum = 0
        for i in 0..<LimitWindow.buckets {
            let word = (slots + i).pointee.load(ordering: .relaxed)
            if window.counts(bucket: word >> Self.countBits, now: bucket) { sum += Int(word & Self.countMask) }
        }
        return sum
    }

    /// Counts one action at `now` if the window has room for it under `limit`; returns whether
    /// it had. Racing callers may both be refused at the edge, never both admitted past it.
    public func admit(at now: UInt64, limit: Int) -> Bool {
        if add(at: now) <= limit { return true }
        remove(at: now)
        return false
    }
}

extension Policy {
    /// The verdict on an action that is over limit `index`: the limit's decision (ask is
    /// enforced as deny, as for rules), its explanation as the reason, enforced as the policy is.
    public func overLimit(_ index: Int, enforced: Bool) -> Verdict {
        var verdict = Verdict(decision: limits[index].decision, ruleIndex: nil, reason: .rateLimited, enforced: enforced)
        verdict.limitIndex = index
        return verdict
    }
}

extension PolicyLint {
    /// Limits that can never count, or can't do what they say.
    static func limitFindings(_ policy: Policy) -> [PolicyDiagnostic] {
        var findings: [PolicyDiagnostic] = []
        for limit in policy.limits {
            func report(_ message: String) {
                findings.append(PolicyDiagnostic(file: limit.file, line: limit.line, column: limit.column,
                                                 message: "limit \(limit.displayID): \(message)"))
            }
            if limit.decision == .ask && !approverAvailable {
                report("asks over the limit, but no approver can exist yet: ask is enforced as deny")
            }
            // Only allowed actions are counted.
            if limit.ruleIndex == nil,
               limit.actions.allSatisfy({ kind in
                   !policy.defaultDecision(for: kind).allows
                       && !policy.rules.contains { $0.decision.allows && $0.actions.contains(kind) }
               }) {
                report("counts only allowed actions, and the policy allows none of "
                       + limit.actions.map(\.name).joined(separator: ", ") + ", so it never counts")
            }
        }
        if let runaway = policy.runaway, runaway.denials == 1 {
            findings.append(PolicyDiagnostic(file: runaway.file, line: runaway.line, column: runaway.column,
                                             message: "runaway: a single denial stops the session"))
        }
        return findings
    }
}
