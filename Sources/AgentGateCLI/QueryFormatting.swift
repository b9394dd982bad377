import AgentGatePolicy
import AgentGateStore
import ArgumentParser
import Foundation
import Glibc

/// Times as the query commands read and print them. The store keeps µs since the epoch.
enum AuditTime {
    /// A relative duration: `30s`, `15m`, `2h`, `7d`, `2w` (also `1.5h`), in µs; nil otherwise.
    static func duration(_ text: String) -> Int64? {
        guard let unit = text.last, let number = Double(text.dropLast()), number >= 0, number.isFinite else { return nil }
        let seconds: Double
        switch unit {
        case "s": seconds = number
        case "m": seconds = number * 60
        case "h": seconds = number * 3600
        case "d": seconds = number * 86_400
        case "w": seconds = number * 604_800
        default: return nil
        }
        guard seconds * 1e6 < Double(Int64.max) else { return nil }
        return Int64(seconds * 1_000_000)
    }

    /// `--since`: a duration before `now` (`2h`), or an absolute ISO-8601 time
    /// (`2025-01-31T13:20:00Z`, with an offset, or local: `2025-01-31 13:20`, `2025-01-31`).
    static func since(_ text: String, now: Int64 = AuditClock.nowMicros()) throws -> Int64 {
        if let duration = duration(text) { return now - duration }
        if let absolute = absolute(text) { return absolute }
        throw ValidationError("""
            cannot read the time "\(text)": use a duration (30s, 15m, 2h, 7d, 2w) or an ISO-8601 time \
            (2025-01-31T13:20:00Z, 2025-01-31T13:20:00+02:00, 2025-01-31 13:20 local, 2025-01-31)
            """)
    }

    /// An absolute ISO-8601 time in µs, or nil.
    static func absolute(_ text: String) -> Int64? {
        let withZone = ISO8601DateFormatter()
        for options: ISO8601DateFormatter.Options in [[.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime]] {
            withZone.formatOptions = options
            if let date = withZone.date(from: text) { return Int64((date.timeIntervalSince1970 * 1_000_000).rounded()) }
        }
        let local = DateFormatter()
        local.locale = Locale(identifier: "en_US_POSIX")
        local.timeZone = TimeZone.current
        for format in ["yyyy-MM-dd'T'HH:mm:ss.SSS", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd HH:mm:ss",
                       "yyyy-MM-dd HH:mm", "yyyy-MM-dd"] {
            local.dateFormat = format
            if let date = local.date(from: text) { return Int64((date.timeIntervalSince1970 * 1_000_000).rounded()) }
        }
        return nil
    }

    /// Local `HH:MM:SS`.
    static func clock(_ micros: Int64) -> String { format(micros, "%H:%M:%S") }

    /// Local `YYYY-MM-DD HH:MM:SS`.
    static func dateTime(_ micros: Int64) -> String { format(micros, "%Y-%m-%d %H:%M:%S") }

    /// UTC ISO-8601 with milliseconds, `2025-01-31T13:20:26.123Z`.
    static func iso8601(_ micros: Int64) -> String {
        var seconds = time_t(micros.floorDivided(by: 1_000_000))
        let millis = Int(micros - Int64(seconds) * 1_000_000) / 1000
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), millis)
    }

    private static func format(_ micros: Int64, _ pattern: String) -> String {
        var seconds = time_t(micros.floorDivided(by: 1_000_000))
        var parts = tm()
        localtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, pattern, &parts)
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `850 ms`, `36.0 s`, `2 min 5 s`, `1 h 3 min`, `2 d 4 h`.
    static func duration(micros: Int64) -> String {
        let seconds = Double(micros) / 1e6
        if seconds < 1 { return "\(Int((seconds * 1000).rounded())) ms" }
        if seconds < 60 { return String(format: "%.1f s", seconds) }
        let whole = Int(seconds)
        if whole < 3600 { return "\(whole / 60) min \(whole % 60) s" }
        if whole < 86_400 { return "\(whole / 3600) h \(whole % 3600 / 60) min" }
        return "\(whole / 86_400) d \(whole % 86_400 / 3600) h"
    }
}

extension Int64 {
    fileprivate func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}

/// How events and sessions look in listings, on a terminal and as JSON.
enum AuditFormat {
    /// ✓ allow, ✗ deny, ? ask, ! log (allowed and flagged).
    static func mark(_ decision: String) -> String {
        switch decision {
        case "allow": "✓"
        case "deny": "✗"
        case "ask": "?"
        case "log": "!"
        default: "·"
        }
    }

    /// The decision as shown: in audit mode a deny or ask that wasn't applied is "would deny".
    static func decisionText(_ event: DecisionEvent) -> String {
        !event.enforced && (event.decision == .deny || event.decision == .ask) ? "would \(event.decision.text)" : event.decision.text
    }

    /// The rule as shown: its id, else its 1-based number; nil when the default applied.
    static func ruleLabel(_ event: DecisionEvent) -> String? {
        event.ruleID ?? event.ruleIndex.map { String($0 + 1) }
    }

    /// The rule and reason: `rule ssh-keys: SSH private keys`; `rule 3` for a rule without a
    /// `reason:` (the recorder stores a rule's reason as the event's, so the bare verdict text
    /// "matched rule" only ever stands for "no reason given"); `no rule matched, …`.
    static func why(_ event: DecisionEvent) -> String {
        guard let rule = ruleLabel(event) else { return event.reason }
        let reason = event.reason
        return reason.isEmpty || reason == VerdictReason.matchedRule.text ? "rule \(rule)" : "rule \(rule): \(reason)"
    }

    /// The action as shown. Refusals on unsupervised routes (raw sockets, mount, …) are
    /// syscalls, not execs, whatever an older supervisor recorded them as.
    static func shownAction(_ event: DecisionEvent) -> String {
        isSyscall(event) ? "syscall" : event.action.text
    }

    /// Whether the event is a syscall decided on its own (an unsupervised route, a refused
    /// ioctl or owner change): recorded as `syscall`, or by older supervisors as an `exec` of
    /// the route's name or of a target that isn't a program path.
    static func isSyscall(_ event: DecisionEvent) -> Bool {
        if event.action == .syscall { return true }
        guard event.action == .exec, event.ruleIndex == nil else { return false }
        if legacyRoute(event) != nil { return true }
        return !event.syscall.isEmpty && event.syscall != "execve" && event.syscall != "execveat"
            && !event.target.hasPrefix("/")
    }

    /// The unsupervised route a syscall event went through, when its record names one.
    static func unsupervisedRoute(_ event: DecisionEvent) -> String? {
        if event.action == .syscall {
            // "raw_sockets: …", as the supervisor words it; older wordings too.
            let head = event.reason.prefix { $0 != ":" && $0 != " " }
            if routeNames.contains(String(head)) { return String(head) }
            return legacyRoute(event) ?? (routeNames.contains(event.target) ? event.target : nil)
        }
        return event.action == .exec && event.ruleIndex == nil ? legacyRoute(event) : nil
    }

    private static let routeNames = Set(UnsupervisedRoute.allCases.map(\.rawValue))

    /// The route in an older record: the target is the route ("raw_sockets"), or
    /// "namespaces:0x…", or the reason says "ROUTE is unsupervised; …", "new namespaces are
    /// unsupervised; …" or "allowed by allow_unsupervised: [ROUTE]".
    private static func legacyRoute(_ event: DecisionEvent) -> String? {
        if routeNames.contains(event.target) { return event.target }
        if event.target.hasPrefix("namespaces:") || event.reason.hasPrefix("new namespaces are unsupervised") {
            return UnsupervisedRoute.namespaces.rawValue
        }
        if let range = event.reason.range(of: " is unsupervised"),
           routeNames.contains(String(event.reason[..<range.lowerBound])) {
            return String(event.reason[..<range.lowerBound])
        }
        let allowed = "allowed by allow_unsupervised: ["
        if event.reason.hasPrefix(allowed), event.reason.hasSuffix("]") {
            let route = String(event.reason.dropFirst(allowed.count).dropLast())
            if routeNames.contains(route) { return route }
        }
        return nil
    }

    /// What the event acted on, as shown: an exec's argv, a syscall's target and route
    /// (`socket(AF_PACKET) — raw_sockets`, or just `raw_sockets`), else the target.
    static func subject(_ event: DecisionEvent) -> String {
        if isSyscall(event) {
            guard let route = unsupervisedRoute(event), route != event.target else { return event.target }
            return "\(event.target) — \(route)"
        }
        if event.action == .exec, let argv = event.argv { return argv.joined(separator: " ") }
        return event.target
    }

    /// `✓ 13:20:26 exec allow npm install chalk`,
    /// `✗ 13:20:26 fs_read deny ~/.ssh/id_rsa (rule ssh-keys: SSH private keys)`,
    /// `✗ 13:20:26 syscall deny socket(AF_PACKET) — raw_sockets`.
    static func line(_ event: DecisionEvent) -> String {
        let event = redacted(event)
        var line = "\(mark(event.decision.text)) \(AuditTime.clock(event.timeMicros)) \(shownAction(event)) "
            + "\(decisionText(event)) \(subject(event))"
        // A syscall's route says why; other refusals name their rule or reason.
        if event.decision != .allow && !(isSyscall(event) && unsupervisedRoute(event) != nil) {
            line += " (\(why(event)))"
        }
        return printable(line)
    }

    /// The event with every field that can carry a secret redacted the same way, whatever the
    /// supervisor that recorded it did: a value the argv hides is hidden in the intent, the
    /// target and the executable too. (Stored rows are redacted when written; this covers rows
    /// older supervisors wrote, and costs nothing when there is nothing to find.)
    static func redacted(_ event: DecisionEvent) -> DecisionEvent {
        var event = event
        event.executable = Redactor.redact(text: event.executable)
        event.target = Redactor.redact(text: event.target)
        event.argv = event.argv.map(Redactor.redact(argv:))
        event.intent = event.intent.map(Redactor.redact(commandText:))
        event.reason = Redactor.redact(text: event.reason)
        return event
    }

    /// The session with its command line and paths redacted as its events are.
    static func redacted(_ session: SessionRecord) -> SessionRecord {
        var session = session
        session.command = Redactor.redact(argv: session.command)
        session.cwd = Redactor.redact(text: session.cwd)
        session.policyPath = Redactor.redact(text: session.policyPath)
        if let program = session.context?.program { session.context?.program = Redactor.redact(text: program) }
        if let environment = session.context?.environment {
            session.context?.environment = Redactor.redact(environment: environment)
        }
        return session
    }

    /// Text made safe and readable on a terminal (an agent chooses paths and arguments, and
    /// could put escape sequences in them): a line break shows as ⏎, a tab as ⇥, and other
    /// control characters and bidirectional overrides as \u{…}.
    static func printable(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var result = ""
        var previous: Unicode.Scalar?
        for scalar in text.unicodeScalars {
            defer { previous = scalar }
            switch scalar {
            case "\n" where previous == "\r": continue // \r\n is one line break
            case "\n", "\r": result += "⏎"
            case "\t": result += "⇥"
            case _ where needsEscape(scalar): result += "\\u{\(String(scalar.value, radix: 16))}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// C0 and C1 controls, DEL, line and paragraph separators, and the bidirectional controls
    /// that reorder what a terminal shows.
    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        return value < 0x20 || (0x7f..<0xa0).contains(value) || (0x2028...0x2029).contains(value)
            || (0x202a...0x202e).contains(value) || (0x2066...0x2069).contains(value)
            || value == 0x200e || value == 0x200f || value == 0x061c
    }

    static func jsonObject(_ stored: StoredEvent) -> [String: Any] {
        let event = stored.event
        var object: [String: Any] = [
            "id": stored.id, "session": stored.sessionID, "time": AuditTime.iso8601(event.timeMicros),
            "time_us": event.timeMicros, "pid": event.pid, "ppid": event.ppid, "executable": event.executable,
            "syscall": event.syscall, "action": event.action.text, "target": event.target, "decision": event.decision.text,
            "reason": event.reason, "latency_us": event.latencyMicros, "notable": event.notable, "enforced": event.enforced,
        ]
        if let rule = event.ruleIndex { object["rule"] = rule }
        if let ruleID = event.ruleID { object["rule_id"] = ruleID }
        if let intent = event.intent { object["intent"] = intent }
        if let argv = event.argv { object["argv"] = argv }
        if let errno = event.errno { object["errno"] = errno }
        if let seq = stored.seq { object["seq"] = seq }
        if let hash = stored.hash { object["hash"] = hash }
        return object
    }

    static func sessionObject(_ session: SessionRecord) -> [String: Any] {
        var object: [String: Any] = [
            "id": session.id, "agent": session.agent, "command": session.command, "cwd": session.cwd,
            "policy_path": session.policyPath, "policy_sha256": session.policySHA256, "mode": session.mode,
            "start_time": AuditTime.iso8601(session.startTimeMicros), "start_time_us": session.startTimeMicros,
        ]
        if let end = session.endTimeMicros {
            object["end_time"] = AuditTime.iso8601(end)
            object["end_time_us"] = end
            object["duration_us"] = end - session.startTimeMicros
        }
        if let status = session.exitStatus { object["exit_status"] = status }
        if let context = session.context,
           let data = try? JSONEncoder().encode(context),
           let decoded = try? JSONSerialization.jsonObject(with: data) {
            object["context"] = decoded
        }
        return object
    }

    static func processObject(_ stored: StoredProcess) -> [String: Any] {
        let process = stored.process
        var object: [String: Any] = [
            "id": stored.id, "pid": process.pid, "ppid": process.ppid, "executable": process.executable,
            "argv": process.argv, "uid": process.uid, "gid": process.gid, "capabilities": process.capabilities,
            "cgroup": process.cgroup, "start_time": AuditTime.iso8601(process.startTimeMicros),
            "start_time_us": process.startTimeMicros,
        ]
        if let exit = process.exitTimeMicros {
            object["exit_time"] = AuditTime.iso8601(exit)
            object["exit_time_us"] = exit
        }
        if let status = process.exitStatus { object["exit_status"] = status }
        return object
    }

    /// Compact JSON with sorted keys (stable output).
    static func json(_ object: Any, pretty: Bool = false) -> String {
        var options: JSONSerialization.WritingOptions = [.sortedKeys, .withoutEscapingSlashes]
        if pretty { options.insert(.prettyPrinted) }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: options) else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }
}

/// Writes to standard output without Swift's print buffering surprises in follow mode.
func writeOut(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}
