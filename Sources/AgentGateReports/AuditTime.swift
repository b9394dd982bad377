import AgentGateStore
import Foundation
import Glibc

/// A `--since` or `--older-than` value that is neither a duration nor an ISO-8601 time.
public struct AuditTimeError: Error, Sendable, CustomStringConvertible {
    public let text: String

    public init(text: String) {
        self.text = text
    }

    public var description: String {
        """
        cannot read the time "\(text)": use a duration (30s, 15m, 2h, 7d, 2w) or an ISO-8601 time \
        (2025-01-31T13:20:00Z, 2025-01-31T13:20:00+02:00, 2025-01-31 13:20 local, 2025-01-31)
        """
    }
}

/// Times as the query commands read and print them. The store keeps µs since the epoch.
public enum AuditTime {
    /// A relative duration: `30s`, `15m`, `2h`, `7d`, `2w` (also `1.5h`), in µs; nil otherwise.
    public static func duration(_ text: String) -> Int64? {
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
    public static func since(_ text: String, now: Int64 = AuditClock.nowMicros()) throws(AuditTimeError) -> Int64 {
        if let duration = duration(text) { return now - duration }
        if let absolute = absolute(text) { return absolute }
        throw AuditTimeError(text: text)
    }

    /// An absolute ISO-8601 time in µs, or nil.
    public static func absolute(_ text: String) -> Int64? {
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
    public static func clock(_ micros: Int64) -> String { format(micros, "%H:%M:%S") }

    /// Local `YYYY-MM-DD HH:MM:SS`.
    public static func dateTime(_ micros: Int64) -> String { format(micros, "%Y-%m-%d %H:%M:%S") }

    /// UTC ISO-8601 with milliseconds, `2025-01-31T13:20:26.123Z`.
    public static func iso8601(_ micros: Int64) -> String {
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
    public static func duration(micros: Int64) -> String {
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

