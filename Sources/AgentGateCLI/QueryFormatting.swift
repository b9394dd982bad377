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
        !event.enforced && (event.decision == "deny" || event.decision == "ask") ? "would \(event.decision)" : event.decision
    }

    /// The rule as shown: its id, else its 1-based number; nil when the default applied.
    static func ruleLabel(_ event: DecisionEvent) -> String? {
        event.ruleID ?? event.ruleIndex.map { String($0 + 1) }
    }

    /// `✓ 13:20:26 exec allow npm install chalk`,
    /// `✗ 13:20:26 net_egress deny telemetry.example:443 (rule 7: undeclared host)`.
    static func line(_ event: DecisionEvent) -> String {
        let what = event.action == "exec" ? (event.argv.map { $0.joined(separator: " ") } ?? event.target) : event.target
        var line = "\(mark(event.decision)) \(AuditTime.clock(event.timeMicros)) \(event.action) \(decisionText(event)) \(what)"
        if event.decision != "allow" {
            if let rule = ruleLabel(event) { line += " (rule \(rule): \(event.reason))" } else { line += " (\(event.reason))" }
        }
        return printable(line)
    }

    /// Control characters (an agent-chosen path could hold escape sequences) shown as \u{…}.
    static func printable(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.value < 0x20 || ($0.value >= 0x7f && $0.value < 0xa0) }) else { return text }
        var result = ""
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || (scalar.value >= 0x7f && scalar.value < 0xa0) {
                result += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    static func jsonObject(_ stored: StoredEvent) -> [String: Any] {
        let event = stored.event
        var object: [String: Any] = [
            "id": stored.id, "session": stored.sessionID, "time": AuditTime.iso8601(event.timeMicros),
            "time_us": event.timeMicros, "pid": event.pid, "ppid": event.ppid, "executable": event.executable,
            "syscall": event.syscall, "action": event.action, "target": event.target, "decision": event.decision,
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
