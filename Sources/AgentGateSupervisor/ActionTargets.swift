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
    public static func program(_ argv0: String, directory: String, path: String?, asProcess pid: pid_t? = nil)
        -> (target: String, programs: [String], found: Bool, notes: [String]) {
        guard let named = ProgramLookup.resolve(argv0, path: path, from: directory) else {
            let assumed = ExecDetails.assumedProgram(argv0)
            return (assumed, [assumed], false, ["\(argv0) is not on PATH here; decided as \(assumed)"])
        }
        // Named as the supervisor names it: absolute and lexically clean.
        var absolute = URL(fileURLWithPath: named.hasPrefix("/") ? named : directory + "/" + named).standardized.path
        if let pid { absolute = asProcess(absolute, pid: pid) }
        let target = FilePaths.resolved(absolute)
        guard absolute != target else { return (target, [absolute], true, []) }
        return (target, [absolute, target], true, ["\(absolute) resolves to \(target); both are decided, the stricter wins"])
    }

    /// A write of `absolute`: what doesn't exist yet is created in the real directory, so it is
    /// named by the resolved parent and the new name; a dangling symlink also names the file
    /// creating it would create.
    public static func write(_ absolute: String) -> (target: String, targets: [String], notes: [String]) {
        let target = FilePaths.resolvedExisting(absolute)
        var targets = [target]
        var notes: [String] = []
        if target != absolute {
            notes.append(access(absolute, F_OK) == 0 ? "\(absolute) resolves to \(target)"
                         : "\(absolute) does not exist yet; decided where it would be created, \(target)")
        }
        if let destination = danglingSymlinkDestination(target) {
            let created = FilePaths.resolvedExisting(destination)
            targets.append(created)
            notes.append("\(target) is a symlink to \(destination), which does not exist: creating the file "
                         + "creates \(created); both are decided, the stricter wins")
        }
        return (target, targets, notes)
    }

    /// A read of `absolute`: a read of a missing file fails in the kernel; the supervisor names
    /// it as written.
    public static func read(_ absolute: String) -> (target: String, notes: [String]) {
        let target = FilePaths.resolved(absolute)
        return (target, target != absolute ? ["\(absolute) resolves to \(target)"] : [])
    }

    /// `path` made absolute against `directory`, lexically clean.
    public static func absolute(_ path: String, in directory: String) -> String {
        URL(fileURLWithPath: path.hasPrefix("/") ? path : directory + "/" + path).standardized.path
    }

    /// An absolute `path` as process `pid` names it: /proc/self, /proc/thread-self, /dev/fd and
    /// /dev/stdin, stdout, stderr are that process's. The supervisor maps a hook's paths for the
    /// hook's process; resolved in the supervisor they would name the supervisor.
    public static func asProcess(_ path: String, pid: pid_t) -> String {
        let prefixes = [("/proc/self", "/proc/\(pid)"), ("/proc/thread-self", "/proc/\(pid)/task/\(pid)"), ("/dev/fd", "/proc/\(pid)/fd"),
                        ("/dev/stdin", "/proc/\(pid)/fd/0"), ("/dev/stdout", "/proc/\(pid)/fd/1"), ("/dev/stderr", "/proc/\(pid)/fd/2")]
        for (prefix, replacement) in prefixes where path == prefix || path.hasPrefix(prefix + "/") {
            return replacement + path.dropFirst(prefix.count)
        }
        return path
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
    public static func resolve(_ name: String, path: String?, from base: String? = nil) -> String? {
        if name.contains("/") { return name }
        let searchPath = path ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in searchPath.split(separator: ":", omittingEmptySubsequences: false) {
            var dir = directory.isEmpty ? "." : String(directory)
            if let base, !dir.hasPrefix("/") { dir = base + "/" + dir }
            let candidate = dir + "/" + name
            var info = stat()
            if stat(candidate, &info) == 0, info.st_mode & S_IFMT == S_IFREG, access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        return nil
    }
}
