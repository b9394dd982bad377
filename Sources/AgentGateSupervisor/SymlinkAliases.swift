import AgentGatePolicy
import AgentGateStore
import Glibc

/// Where symlinks take places a policy's file rules name (`Policy.SymlinkProbe`): ~/.ssh a link
/// to ~/dotfiles/ssh, ~/.bashrc to ~/dotfiles/bashrc. Rules match the path the kernel resolves,
/// so a target under a resolved place is decided under the place's written name too, and the
/// stricter decision wins (found by review on 2026-12-07: `cat ~/.ssh/id_rsa` was allowed
/// through a stow-managed ~/.ssh). Resolved once per policy version, when it is put in force.
public struct SymlinkAliases: Sendable {
    public struct Alias: Sendable, Equatable {
        /// Where the link leads (the kernel's name for everything under it).
        let resolved: String
        /// The name the policy's rule gives it.
        let written: String
    }

    public let aliases: [Alias]

    /// Bounds on the work at load: a directory's entries looked at for a one-level wildcard, the
    /// entries a walk below each `**` place looks at (breadth first, so that one big place
    /// can't hide the links of the next, and shallow links come first) and how deep, and the
    /// aliases kept.
    static let entryLimit = 4096
    static let walkLimit = 512
    static let walkDepth = 6
    static let aliasLimit = 256
    /// Links resolved in all, kept or not: each may cost realpath's 40 hops of long names (a
    /// crafted HOME of many such links held start-up for half a minute, found by review).
    static let resolveLimit = 2048

    /// Places a link may lead to without spreading a rule there: the system's own files and
    /// pseudo-file systems (a venv's `python3 -> /usr/bin/python3` under ~/.config/gcloud, a
    /// `~/.bash_history -> /dev/null`, a link into /proc, found by review on 2026-12-07, would
    /// otherwise deny them everywhere).
    static let systemPlaces = ["/dev", "/proc", "/sys", "/run", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
                               "/libx32", "/etc", "/boot", "/opt", "/snap", "/var/lib"]

    init(aliases: [Alias]) {
        self.aliases = aliases
    }

    public init(policy: Policy) {
        let uid = getuid()
        // The user's home may itself lie in a system place (/var/lib/jenkins): links into it count.
        let home = (getenv("HOME").map { String(cString: $0) }).flatMap { $0.hasPrefix("/") ? FilePaths.resolved($0) : nil }
        let workingDirectory = FilePaths.realPathOrNil(".") ?? "/"
        var resolves = Self.resolveLimit
        var found: [Alias] = []
        /// Whether a link may lead a rule to `resolved`: a file or directory of this user's (the
        /// deepest part of it that exists), outside the system's places. Another user's link, or
        /// one into shared files, spreads nothing.
        func mayAlias(_ resolved: String) -> Bool {
            guard resolved.hasPrefix("/"), resolved != "/" else { return false }
            // A link over the whole project or home (`~/.work -> ~/code`, `~/.home -> ~`) would
            // deny every write there in the name of a dotfile rule.
            if PathLexical.isWithin(workingDirectory, root: resolved) || (home.map { PathLexical.isWithin($0, root: resolved) } ?? false) {
                return false
            }
            if !(home.map { $0 != "/" && PathLexical.isWithin(resolved, root: $0) } ?? false),
               Self.systemPlaces.contains(where: { PathLexical.isWithin(resolved, root: $0) }) {
                return false
            }
            var existing = resolved
            var info = stat()
            while stat(existing, &info) != 0 {
                guard let slash = existing.lastIndex(of: "/"), slash != existing.startIndex else { return false }
                existing = String(existing[..<slash])
            }
            let type = info.st_mode & S_IFMT
            return info.st_uid == uid && (type == S_IFREG || type == S_IFDIR)
        }
        func add(_ alias: Alias) {
            guard found.count < Self.aliasLimit, alias.resolved != alias.written, mayAlias(alias.resolved),
                  !found.contains(alias) else { return }
            found.append(alias)
        }
        /// Whether every link on the way to `written` is the user's or root's: a place in /tmp
        /// (`/tmp/.X11-unix`) that another user made a link to the user's project must not
        /// spread a rule there.
        func linksTrusted(_ written: String) -> Bool {
            var prefix = ""
            for component in written.split(separator: "/") {
                prefix += "/" + component
                var info = stat()
                guard lstat(prefix, &info) == 0 else { return true }
                if info.st_mode & S_IFMT == S_IFLNK && info.st_uid != uid && info.st_uid != 0 { return false }
            }
            return true
        }
        func note(_ written: String) {
            guard resolves > 0 else { return }
            resolves -= 1
            let resolved = FilePaths.resolvedExisting(written)
            guard resolved != written, linksTrusted(written) else { return }
            add(Alias(resolved: resolved, written: written))
        }
        /// realpath(3) of raw bytes (an entry's name need not be UTF-8), decoded for the policy.
        func resolve(_ bytes: [UInt8]) -> String? {
            guard resolves > 0 else { return nil }
            resolves -= 1
            guard let real = (bytes + [0]).withUnsafeBufferPointer({ realpath(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), nil) })
            else { return nil }
            defer { free(real) }
            return String(cString: real)
        }
        /// The links below a `**` place (~/.ssh/id_rsa -> ../dotfiles/ssh/id_rsa is a file of
        /// ~/.ssh), breadth first within the place's budget. Directories are opened by their
        /// raw names; only links the user owns count.
        func walk(place written: String, real: String) {
            var budget = Self.walkLimit
            var queue: [(written: String, real: [UInt8], depth: Int)] = [(written, Array(real.utf8), 0)]
            var next = 0
            while next < queue.count, budget > 0, found.count < Self.aliasLimit {
                let (writtenDirectory, realDirectory, depth) = queue[next]
                next += 1
                guard let directory = (realDirectory + [0]).withUnsafeBufferPointer({
                    opendir(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self))
                }) else { continue }
                defer { closedir(directory) }
                while budget > 0, let entry = readdir(directory) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
                    guard name != [0x2e], name != [0x2e, 0x2e] else { continue }
                    budget -= 1
                    let writtenEntry = writtenDirectory + "/" + String(decoding: name, as: UTF8.self)
                    let realEntry = (realDirectory == [0x2f] ? [] : realDirectory) + [0x2f] + name
                    var info = stat()
                    guard (realEntry + [0]).withUnsafeBufferPointer({
                        lstat(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), &info)
                    }) == 0 else { continue }
                    switch info.st_mode & S_IFMT {
                    case S_IFDIR:
                        if depth + 1 < Self.walkDepth { queue.append((writtenEntry, realEntry, depth + 1)) }
                    case S_IFLNK where info.st_uid == uid:
                        guard let resolved = resolve(realEntry), mayAlias(resolved) else { continue }
                        add(Alias(resolved: resolved, written: writtenEntry))
                        var target = stat()
                        if stat(resolved, &target) == 0, target.st_mode & S_IFMT == S_IFDIR, depth + 1 < Self.walkDepth {
                            queue.append((writtenEntry, Array(resolved.utf8), depth + 1))
                        }
                    default:
                        continue
                    }
                }
            }
        }
        for probe in policy.symlinkProbes {
            note(probe.path)
            if probe.descends, probe.path != "/" {
                walk(place: probe.path, real: FilePaths.resolvedExisting(probe.path))
                continue
            }
            guard let entries = probe.entries, probe.path != "/", let glob = try? Glob(entries),
                  let directory = opendir(probe.path) else { continue }
            defer { closedir(directory) }
            var looked = 0
            while let entry = readdir(directory), looked < Self.entryLimit {
                looked += 1
                // Only links: a plain entry resolves to its own name.
                guard entry.pointee.d_type == UInt8(DT_LNK) || entry.pointee.d_type == UInt8(DT_UNKNOWN) else { continue }
                let raw = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
                let name = String(decoding: raw, as: UTF8.self)
                guard name != ".", name != "..", glob.matches(name) else { continue }
                let link = Array(probe.path.utf8) + [0x2f] + raw
                var info = stat()
                guard (link + [0]).withUnsafeBufferPointer({
                    lstat(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), &info)
                }) == 0, info.st_mode & S_IFMT == S_IFLNK, info.st_uid == uid, let resolved = resolve(link) else { continue }
                add(Alias(resolved: resolved, written: probe.path + "/" + name))
            }
        }
        aliases = found
    }

    public var isEmpty: Bool { aliases.isEmpty }

    /// Whether a place a link leads to lies within `directory`: moving the directory would
    /// carry it to a name no alias covers (`mv ~/dotfiles/ssh ssh2` under a stow-made
    /// ~/.ssh/id_rsa link, found by review on 2026-12-07).
    public func holdsPlace(within directory: String) -> Bool {
        aliases.contains { PathLexical.isWithin($0.resolved, root: directory) }
    }

    /// The names the policy's rules give `target` through the aliases (none when no alias's
    /// resolved place holds it).
    public func names(of target: String) -> [String] {
        aliases.filter { PathLexical.isWithin(target, root: $0.resolved) }.map { alias in
            alias.written + (alias.resolved == "/" ? target[...] : target.dropFirst(alias.resolved.count))
        }
    }

    /// `verdict` on `target`, or a stricter one `evaluate` gives a name of the target that an
    /// alias's written place has (a deny over an ask over an allow).
    public func stricter(_ verdict: Verdict, target: String, evaluate: (String) -> Verdict) -> Verdict {
        var result = verdict
        // A link to / leaves the target's own leading slash to add (`names(of:)`).
        for written in names(of: target) where result.decision != .deny {
            let other = evaluate(written)
            if other.decision.strictness > result.decision.strictness { result = other }
        }
        return result
    }
}
