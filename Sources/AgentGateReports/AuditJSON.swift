import AgentGateStore
import Foundation

/// Events, sessions and process records as JSON objects: the shapes `audit --json`,
/// `sessions --json` and the evidence pack share.
extension AuditFormat {
    /// An event as `audit --json` and the evidence pack write it.
    public static func jsonObject(_ stored: StoredEvent) -> [String: Any] {
        let event = stored.event
        var object: [String: Any] = [
            "id": stored.id, "session": stored.sessionID, "time": AuditTime.iso8601(event.timeMicros),
            "time_us": event.timeMicros, "pid": event.pid, "ppid": event.ppid, "executable": event.executable,
            "syscall": event.syscall, "action": event.actionName, "target": event.target, "decision": event.decisionName,
            "reason": event.reason, "latency_us": event.latencyMicros, "notable": event.notable, "enforced": event.enforced,
            "source": event.source.text,
        ]
        if let rule = event.ruleIndex { object["rule"] = rule }
        if let ruleID = event.ruleID { object["rule_id"] = ruleID }
        if let policySHA256 = event.policySHA256 { object["policy_sha256"] = policySHA256 }
        if let answeredVia = event.answeredVia { object["answered_via"] = answeredVia }
        if let answeredBy = event.answeredBy { object["answered_by"] = answeredBy }
        if let intent = event.intent { object["intent"] = intent }
        if let argv = event.argv { object["argv"] = argv }
        if let errno = event.errno { object["errno"] = errno }
        if let seq = stored.seq { object["seq"] = seq }
        if let hash = stored.hash { object["hash"] = hash }
        // A read aggregate: this many allowed reads, the first at `time`, the last at `last_time`;
        // its seq and hash are its read set's.
        if let count = event.readCount {
            object["read_count"] = count
            if let last = event.lastReadMicros {
                object["last_time"] = AuditTime.iso8601(last)
                object["last_time_us"] = last
            }
        }
        return object
    }

    /// A session record as `sessions --json` and the evidence pack write it.
    public static func sessionObject(_ session: SessionRecord) -> [String: Any] {
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
        if let unit = session.unit {
            object["unit"] = ["name": unit.name, "cgroup": unit.cgroup, "invocation_id": unit.invocationID]
        }
        return object
    }

    /// A session with its event and denial counts, as `sessions --json` and the evidence pack
    /// write it.
    public static func sessionObject(_ session: SessionRecord, events: Int, denied: Int) -> [String: Any] {
        var object = sessionObject(session)
        object["events"] = events
        object["denied"] = denied
        return object
    }

    /// A process record as the evidence pack writes it.
    public static func processObject(_ stored: StoredProcess) -> [String: Any] {
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
    public static func json(_ object: Any, pretty: Bool = false) -> String {
        var options: JSONSerialization.WritingOptions = [.sortedKeys, .withoutEscapingSlashes]
        if pretty { options.insert(.prettyPrinted) }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: options) else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }
}
