enum PrivilegeCommand {
    static func describe(_ privilege: CommandWords.Privilege, command: [String]) -> String {
        if !privilege.command.isEmpty {
            return "agent wants to run as \(IntentText.display(privilege.user)): \(IntentText.command(privilege.command))"
        }
        if let script = privilege.commandString {
            return "agent wants to run as \(IntentText.display(privilege.user)): \(IntentText.display(script))"
        }
        if privilege.opensShell {
            if privilege.tool == "su" || privilege.tool == "runuser" {
                return "agent wants to switch user to \(IntentText.display(privilege.user))"
            }
            return "agent wants to open a shell as \(IntentText.display(privilege.user))"
        }
        return "agent wants to use \(privilege.tool): \(IntentText.command(command))"
    }

    /// chmod setting setuid/setgid, chown to root, setcap, newgrp.
    static func describeChange(_ core: [String], program: String) -> String? {
        let words = core[...]
        switch program {
        case "chmod":
            // Symbolic modes may start with "-" ("-x"), but a setuid mode never does.
            let operands = core.dropFirst().filter { !$0.hasPrefix("-") }
            guard let mode = operands.first, isSetIDMode(mode), operands.count > 1 else { return nil }
            return "agent wants to set the setuid/setgid bit on \(IntentText.list(Array(operands.dropFirst()))) (chmod \(IntentText.display(mode)))"
        case "chown":
            guard !core.contains(where: { $0.hasPrefix("--reference") }) else { return nil }
            let operands = CommandWords.allOperands(words, valued: ["--from"])
            guard let owner = operands.first, operands.count > 1 else { return nil }
            let user = owner.prefix { $0 != ":" && $0 != "." }
            guard user == "root" || user == "0" else { return nil }
            return "agent wants to give root ownership of \(IntentText.list(Array(operands.dropFirst())))"
        case "setcap":
            return "agent wants to set file capabilities: \(IntentText.command(core))"
        case "newgrp":
            let group = CommandWords.allOperands(words).first
            return "agent wants to switch group to \(IntentText.display(group ?? "the default group"))"
        default:
            return nil
        }
    }

    /// Octal modes with the 4000/2000 bits ("4755", "02755") and symbolic ones granting "s" ("u+s", "g=rxs").
    static func isSetIDMode(_ mode: String) -> Bool {
        if !mode.isEmpty, mode.allSatisfy({ ("0"..."7").contains($0) }) {
            return (Int(mode, radix: 8) ?? 0) & 0o6000 != 0
        }
        for clause in mode.split(separator: ",") {
            var operation: Character = " "
            for character in clause {
                if "+-=".contains(character) {
                    operation = character
                } else if character == "s", operation == "+" || operation == "=" {
                    return true
                }
            }
        }
        return false
    }
}
