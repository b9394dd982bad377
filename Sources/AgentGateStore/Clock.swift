#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Wall-clock time in the unit the store records: the one clock for every timestamp AgentGate
/// writes (events, process records, sessions).
public enum AuditClock {
    /// Microseconds since the Unix epoch (CLOCK_REALTIME).
    public static func nowMicros() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1_000
    }
}
