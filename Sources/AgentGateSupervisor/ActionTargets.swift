import AgentGatePolicy
import AgentGateStore
import Foundation
import Glibc

/// The names an action is decided under, found as the supervisor finds them: a program on
/// PATH, absolute and resolved; a file resolved through its symlinks. `agentgate check` and
/// `agentgate hook` both name actions here, so they decide what a session would.
public enum ActionTargets {
    /// An exec of `argv0` from `directory`: the program's absolute path as named and as
    /// resolved (both are decided, the stricter wins), or `/usr/bin/NAME` when PATH has no
    /// such program (`found` false).
    public static func program(_ argv0: String, directory: String, path: String?, view: PathView = PathView())
        -> (target: String, programs: [String], found: Bool, notes: [String]) {
        guard let named = ProgramLookup.resolve(argv0, path: path, from: directory, view: view) else {
            let assumed = ExecDetails.assumedProgram(argv0)
            return (assumed, [assumed], false, ["\(argv0) is not on PATH here; decided as \(assumed)"])
        }
        // Named as the supervisor names it: absolute and lexically clean.
        let absolute = URL(fileURLWithPath: named.hasPrefix("/") ? named : directory + "/" + named).standardized.path
        let target = view.resolved(absolute)
        guard absolute != target else { return (target, [absolute], true, []) }
        return (target, [absolute, target], true, ["\(absolute) resolves to \(target); both are decided, the stricter wins"])
    }

    /// A write of `absolute`: what doesn't exist yet is created in the real directory, so it is
    /// named by the resolved parent and the new name; a dangling symlink also names the file
    /// creating it would create.
    public static func write(_ absolute: String, view: PathView = PathView()) -> (target: String, targets: [String], notes: [String]) {
        let target = view.resolvedExisting(absolute)
        var targets = [target]
        var notes: [String] = []
        if target != absolute {
            notes.append(view.exists(absolute) ? "\(absolute) resolves to \(target)"
                         : "\(absolute) does not exist yet; decided where it would be created, \(target)")
        }
        if let destination = view.danglingSymlinkDestination(target) {
            let created = view.resolvedExisting(destination)
            targets.append(created)
            notes.append("\(target) is a symlink to \(destination), which does not exist: creating the file "
                         + "creates \(created); both are decided, the stricter wins")
        }
        return (target, targets, notes)
    }

    /// A read of `absolute`: a read of a missing file fails in the kernel; the supervisor names
    /// it as written.
    public static func read(_ absolute: String, view: PathView = PathView()) -> (target: String, notes: [String]) {
        let target = view.resolved(absolute)
        return (target, target != absolute ? ["\(absolute) resolves to \(target)"] : [])
    }

    /// `path` made absolute against `directory`, lexically clean.
    public static func absolute(_ path: String, in directory: String) -> String {
        URL(fileURLWithPath: path.hasPrefix("/") ? path : directory + "/" + path).standardized.path
    }

    /// The destination of `path` when it is a symlink to nothing (a create through it makes that).
    public static func danglingSymlinkDestination(_ path: String) -> String? {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFLNK, access(path, F_OK) != 0 else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &buffer, Int(PATH_MAX))
        guard count > 0 else { return nil }
        let destination = String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if destination.hasPrefix("/") { return destination }
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? ""
        return (directory.isEmpty ? "" : directory) + "/" + destination
    }
}

/// Finds a program the way execvp would: names with a slash are used as given.
public enum ProgramLookup {
    /// A relative PATH entry is taken from `base` (the caller's working directory), or from
    /// this process's when none is given.
    public static func resolve(_ name: String, path: String?, from base: String? = nil, view: PathView = PathView()) -> String? {
        if name.contains("/") { return name }
        let searchPath = path ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in searchPath.split(separator: ":", omittingEmptySubsequences: false) {
            var dir = directory.isEmpty ? "." : String(directory)
            if let base, !dir.hasPrefix("/") { dir = base + "/" + dir }
            let candidate = dir + "/" + name
            if view.isExecutableFile(candidate) { return candidate }
        }
        return nil
    }
}

/// Where paths are resolved: as this process sees them (`agentgate hook`, `agentgate check`), or
/// as another process does (the supervisor mapping a hook's call for the hook's process). In
/// the second, /proc/self and /proc/thread-self (and so /dev/fd, /dev/stdin…) are that
/// process's, however they are reached (a symlink to /proc/self/cwd, `/proc//self`), by a walk
/// of its own, one component at a time; a walk into this process's own /proc entry is noted
/// (`reachedOwnProcess`) and goes no further, so the hook's call can be blocked.
public final class PathView {
    /// The process the paths are resolved for; nil: this one, by the C library.
    public let process: pid_t?
    public private(set) var reachedOwnProcess = false
    /// Set when the walks of one call ran past `stepBudget` lookups (or `byteBudget` bytes of
    /// paths looked up): a deep tree or long link chains, on the supervisor's one hook thread.
    public private(set) var exhausted = false
    private var steps = 0
    private var bytes = 0
    static let stepBudget = 20_000
    static let byteBudget = 4 << 20

    public init(asProcess process: pid_t? = nil) {
        self.process = process
    }

    /// realpath(3) for the process; nil when a component is missing or can't be read.
    public func realPath(_ path: String) -> String? {
        guard let process else { return FilePaths.realPathOrNil(path) }
        guard path.hasPrefix("/"), !exhausted else { return nil }
        var pending = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        // A trailing slash names a directory: "." after the last component checks it is one.
        if path.hasSuffix("/") { pending.append(".") }
        pending.reverse()
        var resolved: [String] = []
        var links = 0
        while let component = pending.popLast() {
            if component == "." { continue }
            if component == ".." {
                if !resolved.isEmpty { resolved.removeLast() }
                continue
            }
            var name = component
            if resolved == ["proc"] {
                // procfs answers /proc/self for whoever looks: here, for the process.
                if name == "self" {
                    name = "\(process)"
                } else if name == "thread-self" {
                    pending.append(contentsOf: ["\(process)", "task"])
                    name = "\(process)"
                } else if let pid = pid_t(name), pid > 0, Self.isOwnTask(pid) {
                    reachedOwnProcess = true
                    return nil
                }
            }
            let candidate = "/" + (resolved + [name]).joined(separator: "/")
            steps += 1
            bytes += candidate.utf8.count
            guard steps <= Self.stepBudget, bytes <= Self.byteBudget else {
                exhausted = true
                return nil
            }
            var info = stat()
            guard lstat(candidate, &info) == 0 else { return nil }
            guard info.st_mode & S_IFMT == S_IFLNK else {
                // As the kernel: what more components follow must be a directory (ENOTDIR).
                if !pending.isEmpty && info.st_mode & S_IFMT != S_IFDIR { return nil }
                resolved.append(name)
                continue
            }
            links += 1
            guard links <= 40, let target = Self.readLink(candidate), !target.isEmpty else { return nil }
            if target.hasPrefix("/") { resolved = [] }
            var parts = target.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
            if target.hasSuffix("/") { parts.append(".") }
            pending.append(contentsOf: parts.reversed())
        }
        return "/" + resolved.joined(separator: "/")
    }

    /// `path` with every symlink resolved, or unchanged when it doesn't exist (FilePaths.resolved).
    public func resolved(_ path: String) -> String {
        realPath(path) ?? path
    }

    /// FilePaths.resolvedExisting for the process: the deepest existing ancestor resolved, the
    /// missing components appended.
    public func resolvedExisting(_ path: String) -> String {
        guard process != nil else { return FilePaths.resolvedExisting(path) }
        // As FilePaths: what exists is named by its realpath, or as written when it has none
        // (a procfs link to a pipe).
        if exists(path) || !path.hasPrefix("/") { return resolved(path) }
        var missing: [Substring] = []
        var current = Substring(path)
        while let slash = current.lastIndex(of: "/") {
            let name = current[current.index(after: slash)...]
            if !name.isEmpty { missing.insert(name, at: 0) }
            current = current[..<slash]
            let parent = current.isEmpty ? "/" : String(current)
            let real = realPath(parent)
            if real != nil || exists(parent) {
                let base = real ?? parent
                guard !missing.isEmpty else { return base }
                return (base == "/" ? "" : base) + "/" + missing.joined(separator: "/")
            }
            if current.isEmpty { break }
        }
        return path
    }

    /// access(F_OK) for the process: a path that resolves, or a procfs link to something
    /// without a path (a pipe, a socket, a deleted directory), which the kernel follows.
    public func exists(_ path: String) -> Bool {
        guard process != nil else { return access(path, F_OK) == 0 }
        if realPath(path) != nil { return true }
        guard !exhausted, !reachedOwnProcess, let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return false }
        let name = path[path.index(after: slash)...]
        guard !name.isEmpty, name != ".", name != "..", let parent = realPath(String(path[..<slash])), parent.hasPrefix("/proc/") else {
            return false
        }
        var info = stat()
        let link = parent + "/" + name
        return lstat(link, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK && stat(link, &info) == 0
    }

    /// A regular file the process may execute (as execvp looks for one).
    public func isExecutableFile(_ path: String) -> Bool {
        guard let real = process == nil ? path : realPath(path) else { return false }
        var info = stat()
        return stat(real, &info) == 0 && info.st_mode & S_IFMT == S_IFREG && access(real, X_OK) == 0
    }

    /// ActionTargets.danglingSymlinkDestination for the process.
    public func danglingSymlinkDestination(_ path: String) -> String? {
        guard process != nil else { return ActionTargets.danglingSymlinkDestination(path) }
        // `path` is resolved up to its last component: only that one may be the symlink.
        var info = stat()
        guard path.hasPrefix("/"), !path.hasPrefix("/proc/"), lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFLNK,
              realPath(path) == nil, let destination = Self.readLink(path) else { return nil }
        if destination.hasPrefix("/") { return destination }
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? ""
        return (directory.isEmpty ? "" : directory) + "/" + destination
    }

    /// Whether `pid` names a thread of this process.
    private static func isOwnTask(_ pid: pid_t) -> Bool {
        pid == getpid() || ProcStatus(tid: pid).tgid == getpid()
    }

    private static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &buffer, Int(PATH_MAX))
        guard count > 0 else { return nil }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
