/// What kind of thing an action does, for people reviewing it.
public enum IntentCategory: String, Sendable, CaseIterable {
    case packageInstall = "package_install", remoteScript = "remote_script", destructiveDelete = "destructive_delete",
         gitPush = "git_push", gitForcePush = "git_force_push", privilegeChange = "privilege_change",
         networkTool = "network_tool", credentialRead = "credential_read", run, read, write, connect,
         /// A call of an MCP tool (`mcp` actions, from agent hooks).
         mcp
}

/// A one-line, human-readable statement of what the agent is trying to do.
public struct Intent: Sendable, Equatable {
    public var category: IntentCategory
    /// e.g. "agent wants to install npm package: left-pad". Control and bidirectional-override
    /// characters are replaced (the text comes from the agent and is shown in terminals), and
    /// quoted commands are truncated to about 200 characters with "…".
    public var text: String

    public init(category: IntentCategory, text: String) {
        self.category = category
        self.text = text
    }

    /// kind is the existing `ActionKind` enum (.exec, .fsRead, .fsWrite, .netEgress) in Action.swift.
    /// target: absolute program path for exec, absolute path for fs_*, "host:port"/"[v6]:port"/"unix:/path" for net_egress.
    /// argv: the exec's argv (nil for other kinds). home: the user's home directory (to recognise credential paths and to abbreviate them as ~/...).
    public static func describe(_ kind: ActionKind, target: String, argv: [String]?, home: String?) -> Intent {
        let analysis = kind == .exec ? argv.map { CommandAnalysis.analyze(argv: $0) } : nil
        return describe(kind, target: target, argv: argv, analysis: analysis, home: home)
    }

    /// Same, reusing an analysis already computed for the exec.
    public static func describe(
        _ kind: ActionKind, target: String, argv: [String]?, analysis: CommandAnalysis?, home: String?
    ) -> Intent {
        let home = HomeDirectory(home)
        switch kind {
        case .exec:
            return ExecIntent.describe(target: target, argv: argv, analysis: analysis, home: home)
        case .fsRead:
            let path = target.hasPrefix("/") ? PathLexical.clean(target) : target
            if CredentialPaths.contains(path, home: home) {
                return Intent(.credentialRead, "agent wants to read credentials: \(home.abbreviate(path))")
            }
            return Intent(.read, "agent wants to read \(home.abbreviate(path))")
        case .fsWrite:
            let path = target.hasPrefix("/") ? PathLexical.clean(target) : target
            return Intent(.write, "agent wants to write \(home.abbreviate(path))")
        case .netEgress:
            if target.hasPrefix("unix:") {
                return Intent(.connect, "agent wants to connect to unix socket \(target.dropFirst("unix:".count))")
            }
            return Intent(.connect, "agent wants to connect to \(target)")
        case .mcp:
            return Intent(.mcp, target.hasPrefix("mcp__") ? "agent wants to call MCP tool \(target)"
                                                           : "agent wants to use its tool \(target)")
        }
    }

    /// Builds an intent with its text made safe to display.
    init(_ category: IntentCategory, _ text: String) {
        self.init(category: category, text: IntentText.display(text, limit: IntentText.textLimit))
    }
}
