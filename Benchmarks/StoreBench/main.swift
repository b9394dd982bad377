// agentgate-store-bench: events per second written to SQLite through AuditWriter, with
// redaction and hash chaining, as the supervisor writes them.
//
//   swift run -c release -j 2 agentgate-store-bench [EVENTS] [DB]
//   (AGENTGATE_BENCH_DEFAULT_QUEUE=1: the supervisor's queue bound, and so its overflow path)
//
// Prints the rate of the whole pipeline (record → redact → chain → SQLite commit, measured
// from the first record to the end of close) and the cost of record() on the caller's thread.
import AgentGateStore
import Foundation

let arguments = CommandLine.arguments
let count = arguments.count > 1 ? Int(arguments[1]) ?? 1_000_000 : 1_000_000
let directory = arguments.count > 2 ? nil : FileManager.default.temporaryDirectory.appendingPathComponent(
    "agentgate-store-bench-\(getpid())").path
let path = arguments.count > 2 ? arguments[2] : directory! + "/bench.db"
if let directory { try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
defer { if let directory { try? FileManager.default.removeItem(atPath: directory) } }

/// A realistic mix: 60% reads, 20% writes, 10% execs with argv (some carrying secrets to
/// redact), 10% connects; every 7th denied.
func event(_ index: Int) -> DecisionEvent {
    let time = 1_700_000_000_000_000 + Int64(index)
    let pid = Int32(1000 + index % 50)
    switch index % 10 {
    case 0:
        let argv = index % 20 == 0
            ? ["curl", "-H", "Authorization: Bearer abcdefghijklmnop\(index)", "https://user:pw@example.com/x"]
            : ["npm", "install", "left-pad@\(index % 100)", "--save"]
        return DecisionEvent(
            timeMicros: time, pid: pid, ppid: 999, executable: "/usr/bin/bash", syscall: "execve", action: .exec,
            target: "/usr/bin/\(argv[0])", argv: argv, decision: .allow, ruleIndex: 3, reason: "matched rule",
            latencyMicros: 40, ruleID: "allow-tools", intent: "agent wants to run \(argv[0])")
    case 1:
        return DecisionEvent(
            timeMicros: time, pid: pid, ppid: 999, executable: "/usr/bin/node", syscall: "connect", action: .netEgress,
            target: "104.16.\(index % 256).35:443", decision: index % 7 == 0 ? .deny : .allow, ruleIndex: 7,
            reason: "undeclared host", errno: index % 7 == 0 ? 13 : nil, latencyMicros: 55, ruleID: "7")
    case 2, 3:
        return DecisionEvent(
            timeMicros: time, pid: pid, ppid: 999, executable: "/usr/bin/node", syscall: "openat", action: .fsWrite,
            target: "/work/project/node_modules/pkg-\(index % 1000)/index.js", decision: .allow, ruleIndex: 1,
            reason: "matched rule", latencyMicros: 20, ruleID: "2")
    default:
        return DecisionEvent(
            timeMicros: time, pid: pid, ppid: 999, executable: "/usr/bin/node", syscall: "openat", action: .fsRead,
            target: "/work/project/src/module-\(index % 5000)/file.ts", decision: index % 7 == 0 ? .deny : .allow,
            ruleIndex: index % 7 == 0 ? 0 : nil, reason: index % 7 == 0 ? "credentials" : "no rule matched, fell through to default",
            errno: index % 7 == 0 ? 13 : nil, latencyMicros: 15)
    }
}

let events = (0..<count).map(event)
// A session id as the supervisor makes them (a UUID), so rows and index entries have their real size.
let sessionID = UUID().uuidString.lowercased()
let store = try AuditStore(path: path)
let session = SessionRecord(
    id: sessionID, agent: "bench", command: ["bench"], cwd: "/", policyPath: "builtin", policySHA256: "0",
    startTimeMicros: AuditClock.nowMicros())
try store.createSession(session)

// A queue that holds the whole run: this measures what the writer sustains. (With the
// default bound, a loop that records far faster than any disk overflows it within ~40 ms,
// and the rest of the run goes through the fallback file and its import at close instead.)
let queueCapacity = ProcessInfo.processInfo.environment["AGENTGATE_BENCH_DEFAULT_QUEUE"] == nil
    ? count : AuditWriter.defaultQueueCapacity
let writer = AuditWriter(store: store, sessionID: sessionID, queueCapacity: queueCapacity)
let clock = ContinuousClock()
let start = clock.now
for event in events { writer.record(event) }
let recorded = clock.now
writer.finishSession(endTimeMicros: AuditClock.nowMicros(), exitStatus: 0)
let end = clock.now

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}
let total = seconds(end - start)
let stored = try store.events(matching: .init(sessionID: sessionID, limit: 1)).count
print("events:            \(count)")
print("written in:        \(String(format: "%.3f", total)) s (record → redact → chain → commit, through close)")
print("rate:              \(Int(Double(count) / total)) events/s")
print("record() alone:    \(Int(seconds(recorded - start) / Double(count) * 1e9)) ns/event on the caller's thread")
print("queue capacity:    \(queueCapacity) records")
print("lost / fallback:   \(writer.lostEventCount) / \(writer.fallbackEventCount)")
let verifyStart = clock.now
let report = try store.verify(sessionID: sessionID)
print("verify:            \(report.isValid ? "ok" : "FAILED: \(report.firstBrokenLink!)"), \(report.eventsVerified) events in \(String(format: "%.3f", seconds(clock.now - verifyStart))) s")
store.close()
if stored == 0 || !report.isValid || writer.lostEventCount != 0 { exit(1) }
