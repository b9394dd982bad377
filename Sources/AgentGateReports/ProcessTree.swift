import AgentGateStore

/// A session's processes as a tree, from its process records (or, for sessions without
/// any, from the pid/ppid/exec of its events).
public struct ProcessTree: Sendable {
    /// One program a process ran (a process that execs runs several).
    public struct Image: Sendable {
        public var executable: String
        public var argv: [String]?
        public var startTime: Int64?
        public var exitTime: Int64?
        public var exitStatus: Int32?
    }

    /// One process: what it ran, and the processes it started.
    public struct Node: Sendable {
        public var pid: Int32
        public var ppid: Int32
        public var images: [Image]
        public var children: [Int32] = []
    }

    public private(set) var nodes: [Int32: Node] = [:]
    public private(set) var roots: [Int32] = []
    public let fromEvents: Bool

    public init(processes: [StoredProcess]) {
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

    public init(events: [StoredEvent]) {
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
            if event.isExecAction, !AuditFormat.isSyscall(event), event.wentAhead {
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
    public struct Limits: Sendable {
        /// Process lines in all.
        public var lines: Int
        /// Children listed under one parent.
        public var children: Int

        public init(lines: Int, children: Int) {
            self.lines = lines
            self.children = children
        }

        public static let folded = Limits(lines: 50, children: 10)
    }

    /// What one process ran, redacted like its events: `npm install chalk → node …`.
    public func images(_ node: Node) -> [String] {
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
    public func size(of pid: Int32) -> Int {
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
    public func lines(limits: Limits? = nil, showAll: String = "--all") -> [String] {
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
