import AgentGateStore
import CSupport
import Glibc

/// Where systemd put this process: the unit whose cgroup it is in, that cgroup, and the
/// unit's invocation id. `agentgate-supervise --unit` re-executes itself under systemd-run; the
/// re-executed supervisor checks with this that it really is in the unit before it runs anything.
public enum SystemdUnitPlacement {
    public struct Mismatch: Error, CustomStringConvertible {
        public let description: String
    }

    /// The unit `expected` ("nightly.scope") this process runs in, or why not: its cgroup's
    /// last component must be the unit's name.
    public static func current(expected: String, environment: [String: String]) -> Result<SessionUnit, Mismatch> {
        let cgroup = SessionContextCollector.cgroup()
        guard cgroup.hasPrefix("/") else {
            return .failure(Mismatch(description: "cannot tell which unit this process is in: no cgroup v2 path in /proc/self/cgroup"))
        }
        guard cgroup.split(separator: "/").last.map(String.init) == expected else {
            return .failure(Mismatch(description: "expected to run in unit \(expected), but this process is in cgroup \(cgroup)"))
        }
        return .success(SessionUnit(name: expected, cgroup: cgroup,
                                    invocationID: invocationID(cgroup: cgroup, environment: environment)))
    }

    /// systemd's invocation id of the unit: the xattr systemd sets on the unit's cgroup
    /// (`trusted.invocation_id` for the system manager, `user.invocation_id` for a user's), or a
    /// service's $INVOCATION_ID. "" when neither is there.
    static func invocationID(cgroup: String, environment: [String: String]) -> String {
        if let root = cgroup2Mount() {
            let directory = cgroup == "/" ? root : root + cgroup
            for name in ["trusted.invocation_id", "user.invocation_id"] {
                var buffer = [UInt8](repeating: 0, count: 64)
                let count = agentgate_getxattr(directory, name, &buffer, buffer.count)
                if count == 16 { return AuditChain.hex(Array(buffer.prefix(16))) }
                if count == 32, let text = String(validating: buffer.prefix(32), as: UTF8.self), isHex(text) {
                    return text.lowercased()
                }
            }
        }
        if let fromEnvironment = environment["INVOCATION_ID"], fromEnvironment.count == 32, isHex(fromEnvironment) {
            return fromEnvironment.lowercased()
        }
        return ""
    }

    private static func isHex(_ text: String) -> Bool {
        text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) || ($0 >= 0x41 && $0 <= 0x46) }
    }

    /// The mount point of the cgroup2 hierarchy.
    static func cgroup2Mount() -> String? {
        for line in (SessionCgroup.readFile("/proc/self/mountinfo") ?? "").split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count, fields.count > 4 else { continue }
            if fields[dash + 1] == "cgroup2" { return String(fields[4]) }
        }
        return nil
    }
}
