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
    @Flag(help: "Show the whole process tree (by default a large one is folded).") var all = false

    func run() throws {
        let store = try database.open()
        defer { store.close() }
        let id = try DatabaseOption.resolveSession(session, in: store)
        let summary = try SessionReport.load(id: id, store: store, deniedLimit: denials)
        for line in summary.text(treeLimits: all ? nil : .folded) { print(line) }
    }
}

/// Everything `show` and `export` say about a session.
struct SessionReport {
    var record: SessionRecord
    /// Per action as shown (syscalls that older supervisors stored as execs count as syscalls).
    var counts: [AuditStore.EventCount]
    /// Per action as stored, for the JSON export.
    var storedCounts: [AuditStore.EventCount]
    var denied: [StoredEvent]
    var deniedTotal: Int
    var processes: [StoredProcess]
    var tree: ProcessTree

    var eventTotal: Int { counts.reduce(0) { $0 + $1.count } }

    static func load(id: String, store: AuditStore, deniedLimit: Int?) throws -> SessionReport {
        guard let record = try store.session(id: id) else { throw ExitCode(2) }
        // Older supervisors recorded syscall refusals as execs: count them as what they are.
        let recordedAsExec = try store.events(matching: .init(sessionID: id, action: .exec, excludedSyscalls: ["execve", "execveat"]))
        let storedCounts = try store.eventCounts(sessionID: id)
        let counts = Self.counts(storedCounts, moving: recordedAsExec.map(\.event).filter(AuditFormat.isSyscall))
        let deniedTotal = counts.filter { $0.decision == "deny" }.reduce(0) { $0 + $1.count }
        let denied = try store.events(matching: .init(sessionID: id, decision: .deny, limit: deniedLimit))
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
        func add(_ action: String, _ decision: String, _ enforced: Bool, _ count: Int) {
            let key = "\(action)\u{0}\(decision)\u{0}\(enforced)"
            if table[key] == nil {
                table[key] = AuditStore.EventCount(action: action, decision: decision, enforced: enforced, count: 0)
                order.append(key)
            }
            table[key]!.count += count
        }
        for count in counts { add(count.action, count.decision, count.enforced, count.count) }
        for event in syscalls {
            add(event.action.text, event.decision.text, event.enforced, -1)
            add("syscall", event.decision.text, event.enforced, 1)
        }
        return order.compactMap { table[$0] }.filter { $0.count > 0 }
            .sorted { ($0.action, $0.decision, $0.enforced ? 1 : 0) < ($1.action, $1.decision, $1.enforced ? 1 : 0) }
    }

    /// Per action: decision → count.
    var byAction: [(action: String, decisions: [String: Int])] {
        var table: [String: [String: Int]] = [:]
        for count in counts { table[count.action, default: [:]][count.decision, default: 0] += count.count }
        return table.keys.sorted().map { ($0, table[$0]!) }
    }

    func text(treeLimits: ProcessTree.Limits?) -> [String] {
        // Redacted like its events (the JSON export keeps the record as stored).
        let record = AuditFormat.redacted(self.record)
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
        let treeLines = tree.lines(limits: treeLimits, showAll: "agentgate show \(record.id) --all")
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
            // An allowed exec replaces the image (what the process runs next); an allowed
            // syscall an older supervisor recorded as an exec doesn't.
            if AuditFormat.shownAction(event) == "exec", event.decision == .allow || event.decision == .log || !event.enforced {
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

    /// How much of a large tree `show` prints.
    struct Limits {
        /// Process lines in all.
        var lines: Int
        /// Children listed under one parent.
        var children: Int

        static let folded = Limits(lines: 50, children: 10)
    }

    /// What one process ran, redacted like its events: `npm install chalk → node …`.
    func images(_ node: Node) -> [String] {
        let images = node.images.map { image -> String in
            if let argv = image.argv, !argv.isEmpty { return Redactor.redact(argv: argv).joined(separator: " ") }
            return Redactor.redact(text: image.executable)
        }
        // Collapse repeats (an exec of the same image, e.g. a re-exec).
        var collapsed: [String] = []
        for image in images where collapsed.last != image { collapsed.append(image) }
        return collapsed
    }

    /// Processes in the subtree of `pid`, itself included.
    func size(of pid: Int32) -> Int {
        var count = 0
        var pending = [pid]
        while let next = pending.popLast() {
            guard let node = nodes[next] else { continue }
            count += 1
            pending += node.children
        }
        return count
    }

    /// One line per process, children under their parent: `├─ 1235 npm install chalk → node …  [exit 0]`.
    /// With `limits`, a parent's children past `limits.children` fold into one
    /// `└─ … N more processes (SHOW_ALL)` line, and so does everything past `limits.lines`.
    func lines(limits: Limits? = nil, showAll: String = "--all") -> [String] {
        var output: [String] = []
        var printed = 0, folded = 0
        var exhausted = false
        func describe(_ node: Node) -> String {
            var text = "\(node.pid) " + images(node).joined(separator: " → ")
            if let last = node.images.last, let status = last.exitStatus {
                text += "  [exit \(status)"
                if let start = node.images.first?.startTime, let end = last.exitTime {
                    text += ", \(AuditTime.duration(micros: end - start))"
                }
                text += "]"
            }
            return text
        }
        func more(_ count: Int) -> String { "… \(count) more process\(count == 1 ? "" : "es") (\(showAll))" }
        func walk(_ pid: Int32, prefix: String, isLast: Bool, isRoot: Bool) {
            guard let node = nodes[pid], !exhausted else { return }
            if let limits, printed >= limits.lines {
                exhausted = true
                return
            }
            output.append(isRoot ? describe(node) : prefix + (isLast ? "└─ " : "├─ ") + describe(node))
            printed += 1
            let childPrefix = isRoot ? "" : prefix + (isLast ? "   " : "│  ")
            var shown = node.children[...]
            if let limits, shown.count > limits.children { shown = shown.prefix(limits.children) }
            let hidden = node.children.dropFirst(shown.count).reduce(0) { $0 + size(of: $1) }
            for (index, child) in shown.enumerated() {
                walk(child, prefix: childPrefix, isLast: index == shown.count - 1 && hidden == 0, isRoot: false)
            }
            if hidden > 0 && !exhausted {
                output.append(childPrefix + "└─ " + more(hidden))
                folded += hidden
            }
        }
        for root in roots { walk(root, prefix: "", isLast: true, isRoot: true) }
        let rest = roots.reduce(0) { $0 + size(of: $1) } - printed - folded
        if rest > 0 { output.append(more(rest)) }
        return output
    }
}
