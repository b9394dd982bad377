import AgentGateStore
import Foundation

/// Everything `show` and `export` say about a session.
public struct SessionReport: Sendable {
    /// The session the report was asked for is not in the store.
    public struct NotFound: Error, Sendable, CustomStringConvertible {
        public let id: String
        public var description: String { "no session \(id)" }
    }

    public var record: SessionRecord
    /// Per action as shown (syscalls that older supervisors stored as execs count as syscalls).
    public var counts: [AuditStore.EventCount]
    /// Per action as stored, for the JSON export.
    public var storedCounts: [AuditStore.EventCount]
    public var denied: [StoredEvent]
    public var deniedTotal: Int
    public var processes: [StoredProcess]
    public var tree: ProcessTree

    public var eventTotal: Int { counts.reduce(0) { $0 + $1.count } }

    /// Reads the session's record, counts, denials (at most `deniedLimit`) and process tree;
    /// throws `NotFound` when the store has no such session.
    public static func load(id: String, store: AuditStore, deniedLimit: Int?) throws -> SessionReport {
        guard let record = try store.session(id: id) else { throw NotFound(id: id) }
        // Older supervisors recorded syscall refusals as execs: count them as what they are.
        let recordedAsExec = try store.events(matching: .init(sessionID: id, action: RecordedName.exec, excludedSyscalls: ["execve", "execveat"]))
        let storedCounts = try store.eventCounts(sessionID: id)
        let counts = Self.counts(storedCounts, moving: recordedAsExec.map(\.event).filter(AuditFormat.isSyscall))
        let deniedTotal = counts.filter(\.isDeny).reduce(0) { $0 + $1.count }
        let denied = try store.events(matching: .init(sessionID: id, decision: RecordedName.deny, limit: deniedLimit))
        let processes = try store.processes(sessionID: id)
        // Without process records (older sessions), the tree is rebuilt from the events' pids.
        let tree = processes.isEmpty
            ? ProcessTree(events: try store.events(sessionID: id))
            : ProcessTree(processes: processes)
        return SessionReport(
            record: record, counts: counts, storedCounts: storedCounts, denied: denied, deniedTotal: deniedTotal,
            processes: processes, tree: tree)
    }

    /// `counts` with each of `syscalls` (events stored as `exec`) counted as a syscall.
    static func counts(_ counts: [AuditStore.EventCount], moving syscalls: [DecisionEvent]) -> [AuditStore.EventCount] {
        guard !syscalls.isEmpty else { return counts }
        var table: [String: AuditStore.EventCount] = [:]
        var order: [String] = []
        func add(_ action: RecordedAction, _ decision: RecordedDecision, _ enforced: Bool, _ count: Int) {
            let key = "\(action.text)\u{0}\(decision.text)\u{0}\(enforced)"
            if table[key] == nil {
                table[key] = AuditStore.EventCount(action: action, decision: decision, enforced: enforced, count: 0)
                order.append(key)
            }
            table[key]!.count += count
        }
        for count in counts { add(count.action, count.decision, count.enforced, count.count) }
        for event in syscalls {
            add(event.action, event.decision, event.enforced, -1)
            add(RecordedName.syscall, event.decision, event.enforced, 1)
        }
        return order.compactMap { table[$0] }.filter { $0.count > 0 }
            .sorted { ($0.action.text, $0.decision.text, $0.enforced ? 1 : 0) < ($1.action.text, $1.decision.text, $1.enforced ? 1 : 0) }
    }

    /// Per action: decision → count.
    public var byAction: [(action: String, decisions: [String: Int])] {
        var table: [String: [String: Int]] = [:]
        for count in counts { table[count.action.text, default: [:]][count.decision.text, default: 0] += count.count }
        return table.keys.sorted().map { ($0, table[$0]!) }
    }

    /// The report as `agentgate show` prints it, one string per line; `treeLimits` folds a
    /// large process tree.
    public func text(treeLimits: ProcessTree.Limits?) -> [String] {
        // Redacted like its events (the JSON export keeps the record as stored).
        let record = AuditFormat.redacted(self.record)
        var lines: [String] = []
        func field(_ name: String, _ value: String) {
            lines.append(name.padding(toLength: 10, withPad: " ", startingAt: 0) + AuditFormat.printable(value))
        }
        field("Session", record.id)
        field("Agent", record.agent + (record.mode == "audit" ? "  (audit mode: decided and recorded, not enforced)"
            : record.mode == "learn" ? "  (learning session: nothing was blocked but the supervisor's own files)" : ""))
        field("Command", record.command.joined(separator: " "))
        field("Cwd", record.cwd)
        field("Policy", "\(record.policyPath) (sha256 \(record.policySHA256.prefix(16))…)")
        var when = "\(AuditTime.dateTime(record.startTimeMicros))"
        if let end = record.endTimeMicros {
            when += " → \(AuditTime.dateTime(end)) (\(AuditTime.duration(micros: end - record.startTimeMicros)))"
        } else {
            when += " → no end recorded (running, or the supervisor was killed)"
        }
        field("Time", when)
        field("Exit", record.exitStatus.map { "\($0)" + ($0 > 128 ? " (signal \($0 - 128))" : "") } ?? "-")
        if let unit = record.unit {
            field("Unit", "\(unit.name) (cgroup \(unit.cgroup), invocation \(unit.invocationID.isEmpty ? "unknown" : unit.invocationID))")
        }
        if let context = record.context {
            let os = context.os
            field("Host", "\(os.hostname): \(os.distribution), \(os.kernelName) \(os.kernelRelease) \(os.machine)")
            let user = context.user
            field("User", "\(user.name ?? "?") (uid \(user.uid), gid \(user.gid), euid \(user.euid), groups \(user.groups.isEmpty ? "none" : user.groups.map(String.init).joined(separator: ",")))")
            field("Caps", context.capabilities.isEmpty ? "none" : "\(context.capabilities.count): " + context.capabilities.joined(separator: " "))
            field("Cgroup", context.cgroup)
            let addresses = context.interfaces.filter { !$0.flags.contains("loopback") && !$0.addresses.isEmpty }
                .map { "\($0.name) \($0.addresses.joined(separator: " "))" }
            if !addresses.isEmpty { field("Network", addresses.joined(separator: "; ")) }
            field("Env", "\(context.environment.count) variables recorded (secrets removed)")
            if let inherited = context.inheritedDescriptors?.filter({ !["0 ", "1 ", "2 "].contains(String($0.prefix(2))) }), !inherited.isEmpty {
                field("Files", "inherited open, never decided: " + inherited.joined(separator: "; "))
            }
        }
        lines.append("")
        let totals = Dictionary(grouping: counts, by: \.decision.text).mapValues { $0.reduce(0) { $0 + $1.count } }
        let order = RecordedName.decisionOrder
        let breakdown = (order + totals.keys.filter { !order.contains($0) }.sorted())
            .compactMap { decision in totals[decision].map { "\($0) \(decision)" } }
        lines.append("Events: \(eventTotal)" + (breakdown.isEmpty ? "" : " (\(breakdown.joined(separator: ", ")))"))
        if !counts.isEmpty {
            let decisions = order + totals.keys.filter { !order.contains($0) }.sorted()
            var rows: [[String]] = []
            for (action, values) in byAction {
                rows.append([action] + decisions.map { "\(values[$0] ?? 0)" })
            }
            let header = ["ACTION"] + decisions.map { $0.uppercased() }
            var widths = header.map(\.count)
            for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
            for row in [header] + rows {
                var line = "  "
                for (index, cell) in row.enumerated() {
                    line += index == 0 ? cell.padding(toLength: widths[0] + 2, withPad: " ", startingAt: 0)
                        : String(repeating: " ", count: widths[index] - cell.count) + cell + "  "
                }
                while line.last == " " { line.removeLast() }
                lines.append(line)
            }
        }
        lines.append("")
        if deniedTotal == 0 {
            lines.append("Denied: none")
        } else {
            lines.append("Denied (\(deniedTotal)):")
            for stored in denied { lines.append("  " + AuditFormat.line(stored.event)) }
            if denied.count < deniedTotal {
                lines.append("  … \(deniedTotal - denied.count) more: agentgate audit --session \(record.id) --decision deny")
            }
        }
        lines.append("")
        lines.append("Process tree" + (tree.fromEvents ? " (from the events' pids; no process records)" : "") + ":")
        let treeLines = tree.lines(limits: treeLimits, showAll: "agentgate show \(record.id) --all")
        lines.append(contentsOf: treeLines.isEmpty ? ["  (no processes recorded)"] : treeLines.map { "  " + AuditFormat.printable($0) })
        return lines
    }
}
