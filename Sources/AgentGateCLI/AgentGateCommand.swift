import AgentGatePolicy
import ArgumentParser

/// `agentgate`, the root command: checks policies and queries the audit database.
public struct AgentGateCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "agentgate",
        abstract: "AgentGate: check policies and query what supervised agents did.",
        version: AgentGateVersion.string,
        subcommands: [
            CheckCommand.self, PolicyCommand.self, InitCommand.self,
            AuditCommand.self, SessionsCommand.self, ShowCommand.self, ExportCommand.self, CleanCommand.self,
            SyscallsCommand.self,
            KillCommand.self, PauseCommand.self, ResumeCommand.self,
            ApprovalsCommand.self, ApproveCommand.self, DenyCommand.self,
            PathsCommand.self, HookCommand.self, MCPCommand.self,
        ])
    public init() {}
}
