import CSupport
import Glibc
import Synchronization

/// A cgroup of the session's own, below the supervisor's, when the supervisor may create one
/// (root, or a cgroup delegated to the user). The agent's first process is placed in it before
/// it execs, so every process of the session is in it: the session can be ended with one write
/// to cgroup.kill, and limits apply to the tree as a whole. The supervisor itself stays where it
/// was, outside the limits it sets.
struct SessionCgroup: Sendable {
    /// Directories created, deepest hierarchy first (cgroup v2, then a v1 pids hierarchy).
    let directories: [String]
    /// cgroup.kill of the v2 group (Linux 5.14+), if there is one.
    let killFile: String?
    /// What was set: "pids.max=4096", "memory.max=…".
    let limits: [String]
    /// `directories[0]` is on cgroup v2, so the agent can be created in it (CLONE_INTO_CGROUP).
    var unifiedFirst: Bool = false

    var procsFiles: [String] { directories.map { $0 + "/cgroup.procs" } }
    var hasProcessLimit: Bool { limits.contains { $0.hasPrefix("pids.max=") } }

    /// Creates the session's cgroup, or returns nil when no hierarchy lets the supervisor.
    static func create(name: String, maxProcesses: Int, maxMemoryBytes: UInt64?) -> SessionCgroup? {
        let mounts = Self.mounts()
        let memberships = Self.memberships()
        var directories: [String] = []
        var killFile: String? = nil
        var limits: [String] = []
        var unifiedFirst = false
        // cgroup v2: cgroup.kill, and pids/memory when the parent delegates those controllers.
        if let root = mounts.v2, let path = memberships["0::"] {
            let parent = Self.join(root, path)
            removeStale(in: parent)
            let directory = parent + "/" + name
            if mkdir(directory, 0o755) == 0 {
                directories.append(directory)
                unifiedFirst = true
                if access(directory + "/cgroup.kill", W_OK) == 0 { killFile = directory + "/cgroup.kill" }
                let controllers = (Self.readFile(parent + "/cgroup.subtree_control") ?? "").split(separator: " ").map {
                    $0.trimmingCharacters()
                }
                if maxProcesses > 0, controllers.contains("pids"), Self.write("\(maxProcesses)", to: directory + "/pids.max") {
                    limits.append("pids.max=\(maxProcesses)")
                }
                if let maxMemoryBytes, controllers.contains("memory"), Self.write("\(maxMemoryBytes)", to: directory + "/memory.max") {
                    limits.append("memory.max=\(maxMemoryBytes)")
                }
            }
        }
        // A v1 pids hierarchy (hybrid set-ups) when v2 couldn't limit the process count.
        if maxProcesses > 0, !limits.contains(where: { $0.hasPrefix("pids.max=") }),
           let root = mounts.v1Pids, let path = memberships["pids"] {
            removeStale(in: Self.join(root, path))
            let directory = Self.join(root, path) + "/" + name
            if mkdir(directory, 0o755) == 0 {
                if Self.write("\(maxProcesses)", to: directory + "/pids.max") {
                    directories.append(directory)
                    limits.append("pids.max=\(maxProcesses)")
                } else {
                    rmdir(directory)
                }
            }
        }
        guard !directories.isEmpty else { return nil }
        return SessionCgroup(directories: directories, killFile: killFile, limits: limits, unifiedFirst: unifiedFirst)
    }

    /// The processes still in the session's cgroups.
    func members() -> [pid_t] {
        var pids: Set<pid_t> = []
        for file in procsFiles {
            for line in (Self.readFile(file) ?? "").split(separator: "\n") {
                if let pid = pid_t(line) { pids.insert(pid) }
            }
        }
        return Array(pids)
    }

    /// Ends every process in the session's cgroups: cgroup.kill where the kernel has it, else a
    /// signal to each member.
    func killAll() {
        if let killFile, Self.write("1", to: killFile) { return }
        for pid in members() { kill(pid, SIGKILL) }
    }

    /// Removes the directories once empty. Returns false if one is still busy.
    @discardableResult
    func remove() -> Bool {
        var removed = true
        for directory in directories where rmdir(directory) != 0 && errno != ENOENT { removed = false }
        return removed
    }

    /// Removes the empty cgroups of earlier supervisors that were killed before they could.
    private static func removeStale(in parent: String) {
        guard let directory = opendir(parent) else { return }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.hasPrefix("agentgate-"), let pid = pid_t(name.dropFirst(10)), kill(pid, 0) != 0, errno == ESRCH else { continue }
            rmdir(parent + "/" + name) // fails, harmlessly, while processes remain in it
        }
    }

    private static func join(_ root: String, _ path: String) -> String {
        path == "/" ? root : root + path
    }

    /// Mount points of the cgroup2 hierarchy and of a v1 hierarchy with the pids controller.
    private static func mounts() -> (v2: String?, v1Pids: String?) {
        var v2: String? = nil
        var v1Pids: String? = nil
        for line in (readFile("/proc/self/mountinfo") ?? "").split(separator: "\n") {
            // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let dash = fields.firstIndex(of: "-"), dash + 3 < fields.count, fields.count > 4 else { continue }
            let mountPoint = String(fields[4])
            if fields[dash + 1] == "cgroup2" && v2 == nil { v2 = mountPoint }
            if fields[dash + 1] == "cgroup" && fields[dash + 3].split(separator: ",").contains("pids") && v1Pids == nil {
                v1Pids = mountPoint
            }
        }
        return (v2, v1Pids)
    }

    /// The supervisor's cgroup per hierarchy: "0::" for v2, controller names for v1.
    private static func memberships() -> [String: String] {
        var result: [String: String] = [:]
        for line in (readFile("/proc/self/cgroup") ?? "").split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            if parts[1].isEmpty { result["0::"] = String(parts[2]) }
            for controller in parts[1].split(separator: ",") { result[String(controller)] = String(parts[2]) }
        }
        return result
    }

    static func readFile(_ path: String) -> String? {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 65536) { buffer in
            let n = agentgate_read_small_file(AT_FDCWD, path, buffer.baseAddress!, buffer.count)
            return n >= 0 ? String(cBuffer: buffer.baseAddress!, count: n) : nil
        }
    }

    static func write(_ text: String, to path: String) -> Bool {
        let fd = agentgate_openat(AT_FDCWD, path, O_WRONLY, 0)
        guard fd >= 0 else { return false }
        defer { agentgate_close(fd) }
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == bytes.count
    }
}

/// Ends what is left of the session when its first process has exited. Three sources, so that
/// none can survive: the session's cgroup, a walk of /proc (through a directory fd held from the
/// start, so it works when the fd table is full), and the pidfds the supervisor holds for every
/// process it has seen.
final class SessionReaper: Sendable {
    private let procFD: Int32
    /// An fd kept open only to be closed when the reaper needs one: /proc/PID/stat must be
    /// readable even when the agent has filled the supervisor's fd table.
    private let spareFD: Atomic<Int32>
    let cgroup: SessionCgroup?
    private let root: pid_t

    init(root: pid_t, cgroup: SessionCgroup?) {
        self.root = root
        self.cgroup = cgroup
        procFD = agentgate_openat(AT_FDCWD, "/proc", O_RDONLY | O_DIRECTORY, 0)
        spareFD = Atomic(agentgate_openat(AT_FDCWD, "/dev/null", O_RDONLY, 0))
    }

    deinit {
        agentgate_close(procFD)
        agentgate_close(spareFD.exchange(-1, ordering: .relaxed))
    }

    /// Signals every remaining descendant of the supervisor. Returns false when none of the
    /// sources could be read (the caller says so: a leftover may survive).
    @discardableResult
    func signalAll(_ signal: Int32, processes: ProcessTable) -> Bool {
        var reached = false
        if signal == SIGKILL, let cgroup {
            cgroup.killAll()
            reached = true
        }
        // pidfds held for every process seen: exact, whatever happened to /proc or the fd table.
        processes.signalAll(signal)
        if walkProc(signal) { reached = true }
        if let cgroup, signal != SIGKILL {
            for pid in cgroup.members() { kill(pid, signal) }
            reached = true
        }
        return reached
    }

    private func walkProc(_ signal: Int32) -> Bool {
        guard procFD >= 0 else { return false }
        var pids = [pid_t](repeating: 0, count: 1 << 16)
        var count = 0
        let rc = pids.withUnsafeMutableBufferPointer { agentgate_proc_pids(procFD, $0.baseAddress, $0.count, &count) }
        guard rc == 0 || rc == -ENOBUFS else { return false }
        agentgate_close(spareFD.exchange(-1, ordering: .relaxed)) // reserved for this moment
        var parents: [pid_t: pid_t] = [:]
        for pid in pids.prefix(count) where pid != root {
            let parent = ProcStat.field(1, of: pid)
            if parent > 0 { parents[pid] = parent }
        }
        for (pid, _) in parents where Self.descends(pid, from: root, parents: parents) {
            kill(pid, signal)
        }
        return true
    }

    private static func descends(_ pid: pid_t, from root: pid_t, parents: [pid_t: pid_t]) -> Bool {
        var current = pid
        for _ in 0..<4096 {
            guard let parent = parents[current] else { return false }
            if parent == root { return true }
            current = parent
        }
        return false
    }
}
