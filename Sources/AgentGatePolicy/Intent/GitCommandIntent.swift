enum GitCommand {
    /// `git [global options] SUBCOMMAND ARGS…`.
    static func invocation(_ core: [String]) -> (subcommand: String, arguments: ArraySlice<String>)? {
        guard let first = core.first, CommandWords.name(first) == "git" else { return nil }
        let valued: Set<String> = [
            "-C", "-c", "--git-dir", "--work-tree", "--namespace", "--config-env", "--super-prefix", "--exec-path",
        ]
        guard let (name, arguments) = CommandWords.subcommand(core[...], valued: valued) else { return nil }
        return (name, arguments)
    }

    static func push(_ core: [String]) -> (force: Bool, text: String)? {
        guard let git = invocation(core), git.subcommand == "push" else { return nil }
        var force = false
        var deletes = false
        let operands = CommandWords.walkArguments(git.arguments) { argument, next, _ in
            if argument.hasPrefix("--") {
                if argument == "--force" || argument.hasPrefix("--force-with-lease") || argument == "--mirror" { force = true }
                if argument == "--delete" { deletes = true }
                if ["--repo", "--receive-pack", "--exec", "--push-option"].contains(argument) { next += 1 }
            } else {
                if argument.contains("f") { force = true }
                if argument.contains("d") { deletes = true }
                if argument.hasSuffix("o") { next += 1 }
            }
        }
        let remote = operands.first
        let references = operands.dropFirst()
        if references.contains(where: { $0.hasPrefix("+") }) { force = true }
        if references.contains(where: { $0.hasPrefix(":") }) { deletes = true }
        guard let remote else {
            return (force, force ? "agent wants to force-push to the default remote" : "agent wants to push to the default remote")
        }
        let shownReferences = references.map { $0.drop { $0 == "+" || $0 == ":" } }.map(String.init)
        let destination = IntentText.display(([remote] + shownReferences).joined(separator: " "))
        if deletes, !force {
            let branches = shownReferences.isEmpty ? "branches" : IntentText.list(shownReferences)
            return (true, "agent wants to delete \(branches) on \(IntentText.display(remote))")
        }
        return (force, force ? "agent wants to force-push to \(destination)" : "agent wants to push to \(destination)")
    }
}
