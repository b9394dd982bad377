enum DestructiveCommand {
    /// `operandsFromInput`: xargs supplies more operands, so `rm -rf` alone deletes something.
    static func describe(_ core: [String], program: String, operandsFromInput: Bool = false) -> String? {
        let words = core[...]
        switch program {
        case "rm":
            return recursiveRemove(words, operandsFromInput: operandsFromInput)
        case "find":
            let removes = CommandWords.findCommands(core).contains { command in
                ["rm", "shred", "unlink", "rmdir"].contains(CommandWords.name(CommandWords.innermostCommand(command).first ?? ""))
            }
            guard core.contains("-delete") || removes else { return nil }
            var paths: [String] = []
            for word in core.dropFirst() {
                if ["-H", "-L", "-P"].contains(word) || word.hasPrefix("-O") || word.hasPrefix("-D") { continue }
                if word.hasPrefix("-") || word == "(" || word == "!" { break }
                paths.append(word)
            }
            return "agent wants to delete files found under \(IntentText.list(paths.isEmpty ? ["."] : paths))"
        case "shred":
            let files = CommandWords.allOperands(words, valued: ["-n", "--iterations", "-s", "--size", "--random-source"])
            return files.isEmpty ? nil : "agent wants to shred \(IntentText.list(files))"
        case "dd":
            let harmless: Set<String> = ["/dev/null", "/dev/zero", "/dev/stdout", "/dev/stderr", "/dev/tty"]
            guard let output = core.first(where: { $0.hasPrefix("of=/dev/") }).map({ String($0.dropFirst(3)) }),
                  !harmless.contains(output), !output.hasPrefix("/dev/fd/") else { return nil }
            return "agent wants to overwrite \(IntentText.display(output)) with dd"
        case "mkfs", "mke2fs", "mkswap", "wipefs":
            return formatDescription(words, program: program)
        case "git":
            guard let git = GitCommand.invocation(core) else { return nil }
            switch git.subcommand {
            case "clean":
                guard CommandWords.hasOption(git.arguments, long: ["--force"], letters: ["f"]),
                      !CommandWords.hasOption(git.arguments, long: ["--dry-run"], letters: ["n"]) else { return nil }
                return "agent wants to delete untracked files: \(IntentText.command(core))"
            case "reset":
                guard git.arguments.contains("--hard") else { return nil }
                return "agent wants to discard uncommitted changes: \(IntentText.command(core))"
            default:
                return nil
            }
        default:
            if program.hasPrefix("mkfs.") { return formatDescription(words, program: program) }
            return nil
        }
    }

    /// `rm` with -r/-R/--recursive (with or without -f), in any spelling.
    private static func recursiveRemove(_ words: ArraySlice<String>, operandsFromInput: Bool) -> String? {
        var recursive = false
        var operands: [String] = []
        var optionsEnded = false
        for word in words.dropFirst() {
            if !optionsEnded, word == "--" {
                optionsEnded = true
            } else if !optionsEnded, word.hasPrefix("--") {
                if word == "--recursive" { recursive = true }
            } else if !optionsEnded, word.hasPrefix("-"), word.utf8.count > 1 {
                if word.contains("r") || word.contains("R") { recursive = true }
            } else {
                operands.append(word)
            }
        }
        guard recursive else { return nil }
        if operandsFromInput {
            let named = operands.isEmpty ? "" : IntentText.list(operands) + " and "
            return "agent wants to recursively delete \(named)paths read by xargs"
        }
        guard !operands.isEmpty else { return nil }
        return "agent wants to recursively delete \(IntentText.list(operands))"
    }

    private static func formatDescription(_ words: ArraySlice<String>, program: String) -> String? {
        guard let device = words.dropFirst().last(where: { !$0.hasPrefix("-") }) else { return nil }
        if program == "wipefs" { return "agent wants to wipe filesystem signatures on \(IntentText.display(device))" }
        return "agent wants to format \(IntentText.display(device)) (\(program))"
    }
}
