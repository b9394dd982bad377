enum NetworkCommand {
    static func describe(_ core: [String], program: String) -> String? {
        let words = core[...]
        switch program {
        case "nc", "ncat", "netcat", "socat", "telnet", "ftp", "tftp":
            return "agent wants to open a raw network connection: \(IntentText.command(core))"
        case "nmap", "masscan":
            return "agent wants to scan the network: \(IntentText.command(core))"
        case "ssh":
            let operands = CommandWords.allOperands(words, valued: [
                "-B", "-b", "-c", "-D", "-E", "-e", "-F", "-I", "-i", "-J", "-L", "-l", "-m", "-O", "-o", "-p", "-Q",
                "-R", "-S", "-W", "-w",
            ])
            guard let host = operands.first else { return "agent wants to use ssh: \(IntentText.command(core))" }
            let remoteCommand = operands.dropFirst()
            if remoteCommand.isEmpty { return "agent wants to ssh to \(IntentText.display(host))" }
            return "agent wants to ssh to \(IntentText.display(host)) and run: \(IntentText.command(Array(remoteCommand)))"
        case "sftp":
            let operands = CommandWords.allOperands(words, valued: ["-B", "-b", "-c", "-D", "-F", "-i", "-J", "-l", "-o", "-P", "-R", "-S", "-X"])
            guard let host = operands.first else { return "agent wants to use sftp: \(IntentText.command(core))" }
            return "agent wants to open an sftp session to \(IntentText.display(host))"
        case "scp", "rsync":
            let operands = CommandWords.allOperands(words, valued: [
                "-c", "-F", "-i", "-J", "-l", "-o", "-P", "-S", "-X", "-e", "--rsh", "-f", "--filter", "-T",
                "--temp-dir", "-B", "--block-size",
            ])
            guard operands.contains(where: isRemote) else { return nil }
            return "agent wants to copy files over the network: \(IntentText.command(core))"
        default:
            return nil
        }
    }

    /// `[user@]host:path`, `host::module`, `scp://…`, `rsync://…`.
    private static func isRemote(_ operand: String) -> Bool {
        if operand.contains("://") { return true }
        guard let colon = operand.firstIndex(of: ":"), colon != operand.startIndex else { return false }
        return !operand[..<colon].contains("/")
    }
}
