import Testing
import AgentGatePolicy

private func parse(_ yaml: String) throws(PolicyLoadError) -> Policy {
    try Policy.parse(yaml: yaml, source: "policy.yaml", variables: testVariables)
}

private func expectLimitError(_ yaml: String, line: Int, column: Int, _ fragment: String,
                              sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try parse(yaml)
        Issue.record("policy loaded but should have failed", sourceLocation: sourceLocation)
    } catch {
        #expect(error.line == line, "\(error)", sourceLocation: sourceLocation)
        #expect(error.column == column, "\(error)", sourceLocation: sourceLocation)
        #expect(error.message.contains(fragment), "\(error)", sourceLocation: sourceLocation)
    }
}

private let second: UInt64 = 1_000_000_000

@Suite("Rate limits")
struct RateLimitTests {
    @Test("windows parse from seconds and units, and print in their shortest form")
    func windows() {
        #expect(LimitWindow(parsing: "30s")?.seconds == 30)
        #expect(LimitWindow(parsing: "1m")?.seconds == 60)
        #expect(LimitWindow(parsing: "1h")?.seconds == 3600)
        #expect(LimitWindow(parsing: "1m30s")?.seconds == 90)
        #expect(LimitWindow(parsing: "1d")?.seconds == 86400)
        #expect(LimitWindow(parsing: "45")?.seconds == 45)
        #expect(LimitWindow(parsing: "1m30s")?.description == "90s")
        #expect(LimitWindow(parsing: "120")?.description == "2m")
        #expect(LimitWindow(parsing: "7200s")?.description == "2h")
        for bad in ["", "0", "0s", "-5", "1x", "m", "30m1h", "1m1m", "8d", "1.5m", "s30"] {
            #expect(LimitWindow(parsing: bad) == nil, "\(bad)")
        }
    }

    @Test("a window counts in eighths: an action counts for at least 7/8 of the window and never longer")
    func windowArithmetic() {
        let window = LimitWindow(seconds: 80)!
        #expect(window.bucketNanoseconds == 10 * second)
        #expect(window.bucket(at: 25 * second) == 2)
        #expect(window.counts(bucket: 2, now: 2))
        #expect(window.counts(bucket: 2, now: 9))
        #expect(!window.counts(bucket: 2, now: 10))
        #expect(!window.counts(bucket: 3, now: 2))
    }

    @Test("a counter admits up to its limit per window, then refuses, then admits again once time moves on")
    func counterAdmits() {
        let counter = WindowCounter(window: LimitWindow(seconds: 60)!)
        let start = 1_000 * second
        let admitted = (0..<10).filter { counter.admit(at: start + UInt64($0) * second, limit: 5) }
        #expect(admitted == [0, 1, 2, 3, 4])
        // Refusals are not counted.
        #expect(counter.total(at: start + 10 * second) == 5)
        // A window later, every earlier action has left it.
        #expect(counter.total(at: start + 61 * second) == 0)
        #expect(counter.admit(at: start + 61 * second, limit: 5))
    }

    @Test("a counter forgets old buckets when their slot is reused")
    func counterReusesSlots() {
        let counter = WindowCounter(window: LimitWindow(seconds: 8)!)
        #expect(counter.add(at: 100 * second) == 1)
        #expect(counter.add(at: 100 * second) == 2)
        // Bucket 108 lands in the same slot as bucket 100; the old count is gone.
        #expect(counter.add(at: 108 * second) == 1)
        #expect(counter.add(at: 109 * second) == 2)
    }

    @Test("limits parse with defaults, ids, rules and matches")
    func parsing() throws {
        let policy = try parse("""
            default: allow
            rules:
              - id: net-tools
                match: {action: exec, target_glob: "{curl,wget}"}
                decision: allow
            limits:
              - id: net-tool-execs
                rule: net-tools
                count: 30
                per: 1m
              - action: exec
                match: {target_glob: "/usr/bin/*"}
                count: 100
                per: "1h"
                decision: ask
                reason: slow down
              - action: [fs_write]
                count: 5
                per: 10
            runaway: {denials: 20, within: "10s", then: pause}
            """)
        #expect(policy.limits.count == 3)
        let first = policy.limits[0]
        #expect(first.id == "net-tool-execs" && first.ruleIndex == 0 && first.count == 30 && first.window.seconds == 60)
        #expect(first.decision == .deny && first.actions == [.exec])
        #expect(first.explanation == "rate limit: at most 30 exec per 1m (limit net-tool-execs)")
        #expect(policy.limits[1].decision == .ask && policy.limits[1].actions == [.exec])
        #expect(policy.limits[1].explanation == "rate limit: at most 100 exec per 1h (limit 2): slow down")
        #expect(policy.limits[2].actions == [.fsWrite] && policy.limits[2].window.seconds == 10)
        let runaway = try #require(policy.runaway)
        #expect(runaway.denials == 20 && runaway.window.seconds == 10 && runaway.action == .pause)
        #expect(runaway.line == 20 && runaway.column == 10 && runaway.explanation == "runaway: 20 denials within 10s")
    }

    @Test("which actions a limit counts: its action, its rule, its match")
    func counting() throws {
        let policy = try parse("""
            default: allow
            rules:
              - id: tools
                match: {action: exec, target_glob: "/usr/bin/*"}
                decision: allow
            limits:
              - rule: tools
                count: 1
                per: 1m
              - action: fs_write
                match: {target_glob: "/tmp/**"}
                count: 1
                per: 1m
            """)
        let exec = policy.decide(.exec, target: "/usr/bin/curl")
        #expect(policy.limit(0, counts: .exec, target: "/usr/bin/curl", exec: nil, verdict: exec))
        let other = policy.decide(.exec, target: "/bin/true")
        #expect(!policy.limit(0, counts: .exec, target: "/bin/true", exec: nil, verdict: other))
        let write = policy.decide(.fsWrite, target: "/tmp/a/b")
        #expect(policy.limit(1, counts: .fsWrite, target: "/tmp/a/b", exec: nil, verdict: write))
        #expect(!policy.limit(1, counts: .fsWrite, target: "/home/x", exec: nil, verdict: policy.decide(.fsWrite, target: "/home/x")))
        #expect(!policy.limit(1, counts: .fsRead, target: "/tmp/a", exec: nil, verdict: policy.decide(.fsRead, target: "/tmp/a")))
        let over = policy.overLimit(1, enforced: true)
        #expect(over.decision == .deny && over.reason == .rateLimited && !over.letsCallProceed)
        #expect(policy.explanation(of: over) == "rate limit: at most 1 fs_write per 1m (limit 2)")
    }

    @Test("a limit counts exec details when it matches argv, and the policy then builds them")
    func argvLimit() throws {
        let policy = try parse("""
            version: 2
            default: allow
            limits:
              - {action: exec, match: {argv: [npm, install, "**"]}, count: 10, per: 1m}
            """)
        #expect(policy.usesExecDetails)
        let install = ExecDetails(argv: ["npm", "install", "chalk"], programs: ["/usr/bin/npm"])
        let test = ExecDetails(argv: ["npm", "test"], programs: ["/usr/bin/npm"])
        let verdict = policy.decide(.exec, target: "/usr/bin/npm")
        #expect(policy.limit(0, counts: .exec, target: "/usr/bin/npm", exec: install, verdict: verdict))
        #expect(!policy.limit(0, counts: .exec, target: "/usr/bin/npm", exec: test, verdict: verdict))
    }

    @Test("lint: a limit that never counts, a runaway of one denial; an ask limit is no finding")
    func lint() throws {
        let policy = try parse("""
            default: deny
            limits:
              - {action: exec, count: 5, per: 1m}
              - {action: exec, count: 5, per: 1m, decision: ask}
            runaway: {denials: 1, within: 1m}
            """)
        let messages = PolicyLint.check(policy).map(\.description)
        #expect(messages.contains("policy.yaml:3:5: limit 1: counts only allowed actions, and the policy allows none of exec, so it never counts"), "\(messages)")
        #expect(!messages.contains { $0.contains("approver") }, "\(messages)")
        #expect(messages.contains("policy.yaml:5:10: runaway: a single denial stops the session"), "\(messages)")
    }

    @Test("a policy without limits has none")
    func noLimits() throws {
        let policy = try parse("default: allow\n")
        #expect(policy.limits.isEmpty && policy.runaway == nil)
    }

    @Test("mistakes in limits are load errors at their position")
    func errors() {
        expectLimitError("default: allow\nlimits:\n  - count: 5\n", line: 3, column: 5, "missing required key \"per\"")
        expectLimitError("default: allow\nlimits:\n  - per: 1m\n", line: 3, column: 5, "missing required key \"count\"")
        expectLimitError("default: allow\nlimits:\n  - {count: 0, per: 1m}\n", line: 3, column: 13, "from 1 to")
        expectLimitError("default: allow\nlimits:\n  - {count: 5, per: 1y}\n", line: 3, column: 21, "invalid \"per\" \"1y\"")
        expectLimitError("default: allow\nlimits:\n  - {count: 5, per: 1m, decision: allow}\n", line: 3, column: 35,
                         "must be deny or ask")
        expectLimitError("default: allow\nlimits:\n  - {count: 5, per: 1m, rule: nope}\n", line: 3, column: 31,
                         "limit names rule \"nope\"")
        expectLimitError("default: allow\nlimits:\n  - {count: 5, per: 1m, colour: red}\n", line: 3, column: 25,
                         "unknown key \"colour\" in limit")
        expectLimitError("default: allow\nlimits:\n  - {count: 5, per: 1m, action: exex}\n", line: 3, column: 33,
                         "unknown action \"exex\"")
        expectLimitError("default: allow\nlimits:\n  - {count: 5, per: 1m, match: {action: exec, target_glob: \"[\"}}\n",
                         line: 3, column: 61, "invalid target_glob")
        expectLimitError("default: allow\nlimits: {count: 5}\n", line: 2, column: 9, "expected \"limits\" to be a list")
        expectLimitError("""
            default: allow
            rules:
              - {id: stop, match: {action: exec}, decision: deny}
            limits:
              - {count: 5, per: 1m, rule: stop}
            """, line: 5, column: 31, "which is a deny rule")
        expectLimitError("""
            default: allow
            limits:
              - {id: a, count: 5, per: 1m}
              - {id: a, count: 5, per: 1m}
            """, line: 4, column: 5, "duplicate limit id \"a\"")
        expectLimitError("default: allow\nrunaway: {denials: 5}\n", line: 2, column: 10, "missing required key \"within\"")
        expectLimitError("default: allow\nrunaway: {denials: 5, within: 10s, then: kill}\n", line: 2, column: 42,
                         "unknown runaway action \"kill\"")
    }
}
