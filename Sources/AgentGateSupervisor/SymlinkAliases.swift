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

    /// Bounds on the work at load: a directory's entries looked at, the entries a walk below a
    /// `**` place looks at in all (and how deep), and aliases kept.
    static let entryLimit = 4096
    static let walkLimit = 2048
    static let walkDepth = 6
    static let aliasLimit = 256

    init(aliases: [Alias]) {
        self.aliases = aliases
    }

    public init(policy: Policy) {
        var found: [Alias] = []
        func add(_ alias: Alias) {
            guard found.count < Self.aliasLimit, alias.resolved != alias.written, alias.resolved.hasPrefix("/"),
                  !found.contains(alias) else { return }
            found.append(alias)
        }
        func note(_ written: String) {
            add(Alias(resolved: FilePaths.resolvedExisting(written), written: written))
        }
        let probes = policy.symlinkProbes
        // Below a `**` place (~/.ssh), every link: ~/.ssh/id_rsa -> ../dotfiles/ssh/id_rsa is
        // a file of ~/.ssh. Bounded in entries and depth; the places come in rule order.
        var budget = Self.walkLimit
        func walk(written: String, real: String, depth: Int) {
            guard depth < Self.walkDepth, budget > 0, found.count < Self.aliasLimit, let directory = opendir(real) else { return }
            defer { closedir(directory) }
            while budget > 0, let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard name != ".", name != ".." else { continue }
                budget -= 1
                let type = entry.pointee.d_type
                let writtenEntry = written + "/" + name
                let realEntry = (real == "/" ? "" : real) + "/" + name
                if type == UInt8(DT_DIR) {
                    walk(written: writtenEntry, real: realEntry, depth: depth + 1)
                } else if type == UInt8(DT_LNK) || type == UInt8(DT_UNKNOWN) {
                    let resolved = FilePaths.resolvedExisting(realEntry)
                    if resolved != realEntry {
                        add(Alias(resolved: resolved, written: writtenEntry))
                    }
                    var info = stat()
                    if stat(resolved, &info) == 0, info.st_mode & S_IFMT == S_IFDIR {
                        walk(written: writtenEntry, real: resolved, depth: depth + 1)
                    }
                }
            }
        }
        for probe in probes {
            note(probe.path)
            if probe.descends, probe.path != "/" {
                walk(written: probe.path, real: FilePaths.resolvedExisting(probe.path), depth: 0)
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
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard name != ".", name != "..", glob.matches(name) else { continue }
                note((probe.path == "/" ? "" : probe.path) + "/" + name)
            }
        }
        aliases = found
    }

    public var isEmpty: Bool { aliases.isEmpty }

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
