import Foundation
import Glibc
import Testing
import Synchronization
@testable import AgentGateSupervisor
import AgentGatePolicy

/// `limits:` and `runaway:` enforced on real processes: the count is the session's, across
/// every process the shell forks, and what is over the limit is denied and recorded.
@Suite("Rate limits under the supervisor", .serialized) struct RateLimitSupervisorTests {
    /// Runs /bin/true ten times from one shell, each in a forked child, printing ok or failed.
    static let loop = ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do if /bin/true; then echo ok; else echo failed; fi; done"]

    static func lines(_ text: String, _ word: String) -> Int {
        text.split(separator: "\n").filter { $0 == word }.count
    }

    @Test func execsOverTheLimitAreDeniedAndRecorded() throws {
        let h = try Harness()
        let policy = try h.policy("""
            version: 2
            default: allow
            limits:
              - id: true-execs
                action: exec
                match: {target_glob: "true"}
                count: 5
                per: 1m
            """)
        let result = h.supervised(Self.loop, policy: policy)
        #expect(Self.lines(result.stdout, "ok") == 5, "\(result.stdout)\n\(result.stderr)")
        #expect(Self.lines(result.stdout, "failed") == 5)
        #expect(result.stderr.contains("Permission denied"), "\(result.stderr)")
        #expect(result.stderr.contains("rate limit: at most 5 exec per 1m (limit true-execs)"), "\(result.stderr)")
        let denials = h.query("SELECT reason, errno FROM events WHERE action = 'exec' AND decision = 'deny'")
        #expect(denials.count == 5)
        #expect(denials.allSatisfy { $0 == ["rate limit: at most 5 exec per 1m (limit true-execs)", "\(EACCES)"] }, "\(denials)")
        // The shell itself was not counted: the limit matches only `true`.
        #expect(h.query("SELECT count(*) FROM events WHERE action = 'exec' AND decision = 'allow'").first == ["6"])
    }

    @Test func aPolicyWithoutLimitsRunsEveryExec() throws {
        let h = try Harness()
        let policy = try h.policy("version: 2\ndefault: allow\n")
        let result = h.supervised(Self.loop, policy: policy)
        #expect(result.status == 0)
        #expect(Self.lines(result.stdout, "ok") == 10, "\(result.stdout)\n\(result.stderr)")
        #expect(h.query("SELECT count(*) FROM events WHERE decision = 'deny'").first == ["0"])
    }

    @Test func aLimitOnOneRuleCountsOnlyWhatThatRuleAllows() throws {
        let h = try Harness()
        let policy = try h.policy("""
            version: 2
            default: allow
            ask_timeout: 1s
            rules:
              - id: echo-tools
                match: {action: exec, target_glob: "echo"}
                decision: allow
            limits:
              - rule: echo-tools
                count: 2
                per: 1h
                decision: ask
            """)
        // `true` is allowed by the default, not the rule: never counted.
        let result = h.supervised(Self.loop, policy: policy)
        #expect(Self.lines(result.stdout, "ok") == 10, "\(result.stdout)\n\(result.stderr)")
        let echoes = h.supervised(["sh", "-c", "for i in 1 2 3; do /bin/echo e$i || echo refused; done"], policy: policy)
        #expect(echoes.stdout == "e1\ne2\nrefused\n", "\(echoes.stdout)\n\(echoes.stderr)")
        // Over the limit the exec is asked about; nobody answers, and the timeout denies it.
        #expect(echoes.stderr.contains("rate limit: at most 2 exec per 1h (limit 1) (asked: nobody answered in time)"), "\(echoes.stderr)")
        let asked = h.query("SELECT decision, answered_via, reason FROM events WHERE decision != 'allow'")
        #expect(asked.count == 1 && asked.first?[0] == "deny" && asked.first?[1] == "timeout", "\(asked)")
        #expect(asked.first?[2].hasPrefix("rate limit: at most 2 exec per 1h (limit 1); asked (ask ") == true, "\(asked)")
    }

    @Test func fileWritesOverTheLimitAreDenied() throws {
        let h = try Harness()
        let policy = try h.policy("""
            version: 2
            default: allow
            limits:
              - id: scratch-writes
                action: fs_write
                match: {target_glob: "**/scratch-*"}
                count: 3
                per: 30s
            """)
        let script = ["sh", "-c", "for i in 1 2 3 4 5; do (echo x > scratch-$i) 2>/dev/null && echo ok || echo failed; done; echo y > other && echo other"]
        let result = h.supervised(script, policy: policy)
        #expect(result.stdout == "ok\nok\nok\nfailed\nfailed\nother\n", "\(result.stdout)\n\(result.stderr)")
        #expect(h.exists("scratch-3") && !h.exists("scratch-4") && h.exists("other"))
        let denials = h.query("SELECT target, reason FROM events WHERE decision = 'deny'")
        #expect(denials.count == 2)
        #expect(denials.allSatisfy { $0[1] == "rate limit: at most 3 fs_write per 30s (limit scratch-writes)" }, "\(denials)")
    }

    @Test func connectsOverTheLimitAreDenied() throws {
        let h = try Harness()
        let policy = try h.policy("""
            version: 2
            default: allow
            limits:
              - {action: net_egress, match: {cidr: [127.0.0.0/8], ports: [9]}, count: 2, per: 1m}
            """)
        // Nothing listens on port 9: an allowed connect is refused by the kernel, one over the
        // limit by the supervisor.
        let script = ["python3", "-c", """
            import errno, socket
            for _ in range(4):
                s = socket.socket()
                try:
                    s.connect(('127.0.0.1', 9))
                    print('connected')
                except OSError as e:
                    print(errno.errorcode[e.errno])
                s.close()
            """]
        let result = h.supervised(script, policy: policy)
        #expect(result.stdout == "ECONNREFUSED\nECONNREFUSED\nEACCES\nEACCES\n", "\(result.stdout)\n\(result.stderr)")
        #expect(h.query("SELECT reason FROM events WHERE action = 'net_egress' AND decision = 'deny'").count == 2)
    }

    @Test func aRunawaySessionIsPausedUntilResumed() throws {
        let c = try ControlHarness()
        let policy = try c.h.policy("""
            version: 2
            default: allow
            rules:
              - match: {action: exec, target_glob: "true"}
                decision: deny
            runaway: {denials: 3, within: 1m, then: pause}
            """)
        let run = try BackgroundRun([Harness.supervisor, "--policy", policy, "--db", c.h.db, "--session", "runaway", "--"] + Self.loop,
                                    directory: c.h.dir, name: "runaway", environment: c.environment)
        #expect(waitUntil { run.stderr.contains("runaway session: 3 denials within 1m; the session is paused") }, "\(run.stderr)")
        // An observation window: paused after the third denial, the loop's fourth exec waits.
        #expect(!waitUntil(timeout: 1) { Self.lines(run.stdout, "failed") > 3 }, "\(run.stdout)")
        #expect(Self.lines(run.stdout, "failed") == 3, "\(run.stdout)")
        let resume = c.control(["resume", "runaway"])
        #expect(resume.status == 0, "\(resume.stderr)")
        #expect(run.wait(timeout: 30) == 0)
        #expect(Self.lines(run.stdout, "failed") == 10, "\(run.stdout)")
        let rows = c.h.query("SELECT decision, reason FROM events WHERE syscall = 'runaway'")
        #expect(rows.count == 1, "\(rows)")
        #expect(rows.first?[0] == "log")
        #expect(rows.first?[1].hasPrefix("runaway: 3 denials within 1m (then: pause)") == true, "\(rows)")
        #expect(rows.first?[1].hasSuffix("the session is paused") == true, "\(rows)")
    }
}

/// The session's counters on their own: shared by many threads, and the runaway hook.
@Suite("Rate limiter") struct RateLimiterTests {
    static func policy(_ yaml: String) throws -> Policy {
        try Policy.parse(yaml: yaml, source: "policy.yaml", variables: PolicyVariables(workingDirectory: "/work", home: "/home/u"))
    }

    @Test("a policy without limits or runaway has no limiter")
    func noLimiter() throws {
        #expect(RateLimiter(policy: try Self.policy("default: allow\n")) == nil)
    }

    @Test("threads racing for one limit never get more than it between them")
    func racingThreads() throws {
        let limiter = try #require(RateLimiter(policy: try Self.policy("""
            default: allow
            limits: [{action: fs_read, count: 1000, per: 1h}]
            """)))
        let allowed = Verdict(decision: .allow, ruleIndex: nil, reason: .defaultDecision)
        let admitted = Atomic<Int>(0)
        let now: UInt64 = 5_000_000_000_000
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<500 where limiter.verdict(allowed, .fsRead, target: "/etc/hosts", exec: nil, at: now).letsCallProceed {
                admitted.add(1, ordering: .relaxed)
            }
        }
        #expect(admitted.load(ordering: .relaxed) == 1000)
        // Denials and other kinds are not counted.
        let denied = Verdict(decision: .deny, ruleIndex: nil, reason: .defaultDecision)
        #expect(limiter.verdict(denied, .fsRead, target: "/etc/hosts", exec: nil, at: now) == denied)
        #expect(limiter.verdict(allowed, .fsWrite, target: "/tmp/x", exec: nil, at: now) == allowed)
    }

    @Test("a runaway triggers once when the denials reach the rule's number, and runs the hook")
    func runawayHook() throws {
        let limiter = try #require(RateLimiter(policy: try Self.policy("""
            default: allow
            runaway: {denials: 3, within: 10s}
            """)))
        let second: UInt64 = 1_000_000_000
        #expect(!limiter.triggerRunaway())
        let triggered = (1...5).map { limiter.noteDenial(at: 100 * second + UInt64($0)) }
        #expect(triggered == [false, false, true, false, false])
        // Eleven seconds on, the window is empty again.
        #expect(!limiter.noteDenial(at: 111 * second))
        let paused = Atomic<Int>(0)
        limiter.onRunaway { rule in
            #expect(rule.denials == 3)
            paused.add(1, ordering: .relaxed)
        }
        #expect(limiter.triggerRunaway())
        #expect(paused.load(ordering: .relaxed) == 1)
    }
}
