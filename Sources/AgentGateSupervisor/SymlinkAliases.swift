import AgentGatePolicy
import AgentGateStore
import Glibc

/// Where symlinks take places a policy's file rules name (`Policy.SymlinkProbe`): ~/.ssh a link
/// to ~/dotfiles/ssh, ~/.bashrc to ~/dotfiles/bashrc. Rules match the path the kernel resolves,
/// so a target under a resolved place is decided under the place's written name too, and the
/// stricter decision wins (found by review on 2026-12-07: `cat ~/.ssh/id_rsa` was allowed
/// through a stow-managed ~/.ssh). Resolved once per policy version, when it is put in force.
struct SymlinkAliases: Sendable {
    struct Alias: Sendable, Equatable {
        /// Where the link leads (the kernel's name for everything under it).
        let resolved: String
        /// The name the policy's rule gives it.
        let written: String
    }

    let aliases: [Alias]

    /// Bounds on the work at load: a directory's entries looked at, and aliases kept.
    static let entryLimit = 4096
    static let aliasLimit = 256

    init(aliases: [Alias]) {
        self.aliases = aliases
    }

    init(policy: Policy) {
        var found: [Alias] = []
        func note(_ written: String) {
            guard found.count < Self.aliasLimit else { return }
            let resolved = FilePaths.resolvedExisting(written)
            guard resolved != written, resolved.hasPrefix("/"),
                  !found.contains(where: { $0.resolved == resolved && $0.written == written }) else { return }
            found.append(Alias(resolved: resolved, written: written))
        }
        for probe in policy.symlinkProbes {
            note(probe.path)
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

    var isEmpty: Bool { aliases.isEmpty }

    /// `verdict` on `target`, or a stricter one `evaluate` gives a name of the target that an
    /// alias's written place has (a deny over an ask over an allow).
    func stricter(_ verdict: Verdict, target: String, evaluate: (String) -> Verdict) -> Verdict {
        var result = verdict
        for alias in aliases where result.decision != .deny && PathLexical.isWithin(target, root: alias.resolved) {
            let written = alias.written + target.dropFirst(alias.resolved.count)
            let other = evaluate(written)
            if other.decision.strictness > result.decision.strictness { result = other }
        }
        return result
    }
}
