import AgentGateReports
import ArgumentParser
import Testing

@testable import AgentGateCLI

@Suite("Command parsing")
struct CommandParsingTests {
    @Test("the root command reaches every query command")
    func subcommands() throws {
        #expect(try AgentGateCommand.parseAsRoot(["show", "4f2a", "--all"]) is ShowCommand)
        #expect(try AgentGateCommand.parseAsRoot(["sessions", "--json"]) is SessionsCommand)
        #expect(try AgentGateCommand.parseAsRoot(["audit", "--decision", "deny"]) is AuditListCommand)
        #expect(try AgentGateCommand.parseAsRoot(["audit", "verify"]) is AuditVerifyCommand)
        #expect(try AgentGateCommand.parseAsRoot(["export", "4f2a", "--format", "html"]) is ExportCommand)
        #expect(try AgentGateCommand.parseAsRoot(["clean", "--older-than", "30d"]) is CleanCommand)
    }

    @Test("an unreadable time is a usage error that says what it accepts")
    func timeArgument() throws {
        #expect(try AuditTime.argument("2023-11-14T22:13:20Z") == Fixture.start)
        do {
            _ = try AuditTime.argument("yesterday")
            Issue.record("\"yesterday\" was read as a time")
        } catch let error as ValidationError {
            #expect(error.message == AuditTimeError(text: "yesterday").description)
        }
        #expect(throws: (any Error).self) { try AgentGateCommand.parseAsRoot(["sessions", "--since", "yesterday"]) }
    }

    @Test("export: signing needs an output file; verifying needs a key and no session")
    func exportValidation() {
        #expect(throws: (any Error).self) { try AgentGateCommand.parseAsRoot(["export", "4f2a", "--sign-key", "k"]) }
        #expect(throws: (any Error).self) { try AgentGateCommand.parseAsRoot(["export", "--verify", "pack.json"]) }
        #expect(throws: (any Error).self) { try AgentGateCommand.parseAsRoot(["export", "4f2a", "--verify", "p", "--sign-key", "k"]) }
        #expect(throws: (any Error).self) { try AgentGateCommand.parseAsRoot(["export"]) }
    }
}
