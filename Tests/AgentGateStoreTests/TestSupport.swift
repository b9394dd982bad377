import Foundation
import Synchronization
import Testing

@testable import AgentGateStore

/// A fresh directory under /tmp, removed when the test is done with it.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/agentgate-store-test-XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress.flatMap { mkdtemp($0) }.map { String(cString: $0) }
        }
        guard let created else {
            throw TestSetupError(message: "mkdtemp failed: errno \(errno)")
        }
        path = created
    }

    func file(_ name: String) -> String {
        path + "/" + name
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Waits until `condition` holds (polling), up to `timeout` seconds.
@discardableResult
func waitUntil(timeout: Double = 30, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

struct TestSetupError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

func sampleSession(id: String = "session-1", startTimeMicros: Int64 = 1_700_000_000_000_000) -> SessionRecord {
    SessionRecord(
        id: id, agent: "claude-code", command: ["claude", "--print", "fix the \"bug\""],
        cwd: "/work/project", policyPath: "/etc/agentgate/policy.yaml",
        policySHA256: SHA256Hex.digest(Array("rules: []".utf8)), startTimeMicros: startTimeMicros)
}

func sampleEvent(_ index: Int, pid: Int32 = 4242) -> DecisionEvent {
    DecisionEvent(
        timeMicros: 1_700_000_000_000_000 + Int64(index), pid: pid, ppid: 1, executable: "/usr/bin/cat",
        syscall: "openat", action: .fsRead, target: "/work/project/file-\(index).txt",
        argv: nil, decision: index % 7 == 0 ? .deny : .allow, ruleIndex: index % 3 == 0 ? nil : index % 5,
        reason: "matched rule", errno: index % 7 == 0 ? 13 : nil, latencyMicros: Int64(index % 100))
}

/// Collects the writer's warnings.
final class WarningLog: Sendable {
    private let lines = Mutex<[String]>([])
    var messages: [String] { lines.withLock { $0 } }
    var handler: @Sendable (String) -> Void {
        { [self] message in lines.withLock { $0.append(message) } }
    }
}
