import AgentGateStore
import ArgumentParser
import Foundation

/// `agentgate show SESSION`: one session on a terminal.
struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Summarise one session: command, duration, exit status, counts, denials, process tree.")

    @OptionGroup var database: DatabaseOption
    @Argument(help: "The session: an id or a unique prefix (see `agentgate sessions`).") var session: String
    @Option(help: "Denied events to list.") var denials = 50

    func run() throws {
        let store = try database.open()
        defer { store.close() }
        let id = try DatabaseOption.resolveSession(session, in: store)
        guard let record = try store.session(id: id) else { throw ExitCode(2) }
        let summary = try SessionReport.load(id: id, store: store, deniedLimit: denials)
        for line in summary.text(record) { print(line) }
    }
}

/// Everything `show` and `export` say about a session.
struct SessionReport {
    var record: SessionRecord
    var counts: [AuditStore.EventCount]
    var denied: [StoredEvent]
    var deniedTotal: Int
    var processes: [StoredProcess]
    var tree: ProcessTree

    var eventTotal: Int { counts.reduce(0) { $0 + $1.count } }

    static func load(id: String, store: AuditStore, deniedLimit: Int?) throws -> SessionReport {
        guard let record = try store.session(id: id) else { throw ExitCode(2) }
        let counts = try store.eventCounts(sessionID: id)
        let deniedTotal = counts.filter { $0.decision == "deny" }.reduce(0) { $0 + $1.count }
        let denied = try store.events(matching: .init(sessionID: id, decision: "deny", limit: deniedLimit))
        let processes = try store.processes(sessionID: id)
        // Without process records (older sessions), the tree is rebuilt from the events' pids.
        let tree = processes.isEmpty
            ? ProcessTree(events: try store.events(sessionID: id))
            : ProcessTree(processes: processes)
        return SessionReport(
            record: record, counts: counts, denied: denied, deniedTotal: deniedTotal, processes: processes, tree: tree)
    }

    /// Per action: decision → count.
    var byAction: [(action: String, decisions: [String: Int])] {
        var table: [String: [String: Int]] = [:]
        for count in counts { table[count.action, default: [:]][count.decision, default: 0] += count.count }
        return table.keys.sorted().map { ($0, table[$0]!) }
    }

    func text(_ record: SessionRecord) -> [String] {
        var lines: [String] = []
        func field(_ name: String, _ value: String) {
            lines.append(name.padding(toLength: 10, withPad: " ", startingAt: 0) + AuditFormat.printable(value))
        }
        field("Session", record.id)
        field("Agent", record.agent + (record.mode == "audit" ? "  (audit mode: decided and recorded, not enforced)" : ""))
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
        }
        lines.append("")
        let totals = Dictionary(grouping: counts, by: \.decision).mapValues { $0.reduce(0) { $0 + $1.count } }
        let order = ["allow", "deny", "ask", "log"]
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
        let treeLines = tree.lines()
        lines.append(contentsOf: treeLines.isEmpty ? ["  (no processes recorded)"] : treeLines.map { "  " + AuditFormat.printable($0) })
        return lines
    }
}

/// A session's processes as a tree, from its process records (or, for sessions without
/// any, from the pid/ppid/exec of its events).
struct ProcessTree {
    struct Image {
        var executable: String
        var argv: [String]?
        var startTime: Int64?
        var exitTime: Int64?
        var exitStatus: Int32?
    }

    struct Node {
        var pid: Int32
        var ppid: Int32
        var images: [Image]
        var children: [Int32] = []
    }

    private(set) var nodes: [Int32: Node] = [:]
    private(set) var roots: [Int32] = []
    let fromEvents: Bool

    init(processes: [StoredProcess]) {
        fromEvents = false
        var order: [Int32] = []
        for stored in processes {
            let process = stored.process
            let image = Image(
                executable: process.executable, argv: process.argv, startTime: process.startTimeMicros,
                exitTime: process.exitTimeMicros, exitStatus: process.exitStatus)
            if nodes[process.pid] == nil {
                nodes[process.pid] = Node(pid: process.pid, ppid: process.ppid, images: [image])
                order.append(process.pid)
            } else {
                nodes[process.pid]!.images.append(image)
            }
        }
        link(order)
    }

    init(events: [StoredEvent]) {
        fromEvents = true
        var order: [Int32] = []
        for stored in events {
            let event = stored.event
            if nodes[event.pid] == nil {
                nodes[event.pid] = Node(
                    pid: event.pid, ppid: event.ppid,
                    images: [Image(executable: event.executable, startTime: event.timeMicros)])
                order.append(event.pid)
            }
            // An allowed exec replaces the image (what the process runs next).
            if event.action == "exec", event.decision == "allow" || event.decision == "log" || !event.enforced {
                nodes[event.pid]!.images.append(Image(executable: event.target, argv: event.argv, startTime: event.timeMicros))
            }
        }
        // The first image of a process seen through its own exec is the exec's caller.
        link(order)
    }

    private mutating func link(_ order: [Int32]) {
        for pid in order {
            let parent = nodes[pid]!.ppid
            if parent != pid, nodes[parent] != nil, !isAncestor(pid, of: parent) {
                nodes[parent]!.children.append(pid)
            } else {
                roots.append(pid)
            }
        }
    }

    private func isAncestor(_ candidate: Int32, of pid: Int32) -> Bool {
        var current = pid
        var seen = Set<Int32>()
        while let node = nodes[current], seen.insert(current).inserted {
            if node.ppid == candidate { return true }
            current = node.ppid
        }
        return false
    }

    /// One line per process: `├─ 1235 npm install chalk → node …  [exit 0]`.
    func lines() -> [String] {
        var output: [String] = []
        func describe(_ node: Node) -> String {
            let images = node.images.map { image -> String in
                if let argv = image.argv, !argv.isEmpty { return argv.joined(separator: " ") }
                return image.executable
            }
            // Collapse repeats (an exec of the same image, e.g. a re-exec).
            var collapsed: [String] = []
            for image in images where collapsed.last != image { collapsed.append(image) }
            var text = "\(node.pid) " + collapsed.joined(separator: " → ")
            if let last = node.images.last, let status = last.exitStatus {
                text += "  [exit \(status)"
                if let start = node.images.first?.startTime, let end = last.exitTime {
                    text += ", \(AuditTime.duration(micros: end - start))"
                }
                text += "]"
            }
            return text
        }
        func walk(_ pid: Int32, prefix: String, isLast: Bool, isRoot: Bool) {
            guard let node = nodes[pid] else { return }
            output.append(isRoot ? describe(node) : prefix + (isLast ? "└─ " : "├─ ") + describe(node))
            let childPrefix = isRoot ? "" : prefix + (isLast ? "   " : "│  ")
            for (index, child) in node.children.enumerated() {
                walk(child, prefix: childPrefix, isLast: index == node.children.count - 1, isRoot: false)
            }
        }
        for root in roots { walk(root, prefix: "", isLast: true, isRoot: true) }
        return output
    }
}
