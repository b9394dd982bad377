import Testing

@testable import AgentGateReports

@Suite("Time formatting and parsing")
struct TimeFormatTests {
    @Test("UTC ISO-8601 with milliseconds, before the epoch too")
    func iso8601() {
        #expect(AuditTime.iso8601(0) == "1970-01-01T00:00:00.000Z")
        #expect(AuditTime.iso8601(Fixture.start + 123_456) == "2023-11-14T22:13:20.123Z")
        #expect(AuditTime.iso8601(-1) == "1969-12-31T23:59:59.999Z")
    }

    @Test("durations read the way a person says them")
    func shownDuration() {
        #expect(AuditTime.duration(micros: 850_000) == "850 ms")
        #expect(AuditTime.duration(micros: 36_000_000) == "36.0 s")
        #expect(AuditTime.duration(micros: 125_000_000) == "2 min 5 s")
        #expect(AuditTime.duration(micros: 3_780_000_000) == "1 h 3 min")
        #expect(AuditTime.duration(micros: 187_200_000_000) == "2 d 4 h")
    }

    @Test("local clock and date-time match an independent formatter")
    func localTimes() {
        let micros = Fixture.start + 2_750_000
        #expect(AuditTime.clock(micros) == localTime(micros, "HH:mm:ss"))
        #expect(AuditTime.dateTime(micros) == localTime(micros, "yyyy-MM-dd HH:mm:ss"))
    }

    @Test("relative durations: s, m, h, d, w, fractions; anything else is nil")
    func parsedDuration() {
        #expect(AuditTime.duration("30s") == 30_000_000)
        #expect(AuditTime.duration("15m") == 900_000_000)
        #expect(AuditTime.duration("1.5h") == 5_400_000_000)
        #expect(AuditTime.duration("7d") == 604_800_000_000)
        #expect(AuditTime.duration("2w") == 1_209_600_000_000)
        #expect(AuditTime.duration("-1s") == nil)
        #expect(AuditTime.duration("2y") == nil)
        #expect(AuditTime.duration("h") == nil)
        #expect(AuditTime.duration("1e300d") == nil)
    }

    @Test("--since: a duration before now, or an absolute time")
    func since() throws {
        #expect(try AuditTime.since("2h", now: Fixture.start) == Fixture.start - 7_200_000_000)
        #expect(try AuditTime.since("2023-11-14T22:13:20Z") == Fixture.start)
        #expect(try AuditTime.since("2023-11-14T22:13:20.250Z") == Fixture.start + 250_000)
        #expect(try AuditTime.since("2023-11-15T00:13:20+02:00") == Fixture.start)
        #expect(AuditTime.absolute("2023-11-14") != nil)
        #expect(AuditTime.absolute("2023-11-14 22:13") != nil)
    }

    @Test("an unreadable time says what it accepts")
    func unreadable() {
        #expect(throws: AuditTimeError.self) { try AuditTime.since("yesterday") }
        let message = AuditTimeError(text: "yesterday").description
        #expect(message.hasPrefix("cannot read the time \"yesterday\": use a duration (30s, 15m, 2h, 7d, 2w) or an ISO-8601 time (2025-01-31T13:20:00Z,"))
        #expect(!message.contains("\n"))
    }
}
