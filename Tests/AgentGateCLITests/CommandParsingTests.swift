import AgentGateReports
import AgentGateSupervisor
import ArgumentParser
import Foundation
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

@Suite("check's process context")
struct CheckContextTests {
    @Test("without --caps, the capabilities are this process's, read from /proc/PID/status")
    func ownCapabilities() throws {
        let status = ProcStatus(tid: getpid())
        #expect(status.readOK)
        let text = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let capEff = text.split(separator: "\n").first { $0.hasPrefix("CapEff:") }
            .flatMap { UInt64($0.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16) }
        #expect(status.capEff == capEff)
        let context = try ContextOptions.parse([]).context()
        #expect(context.effectiveCapabilities == status.capEff)
        #expect(context.permittedCapabilities == status.capPrm)
    }

    @Test("--caps replaces both sets; none is the empty set")
    func namedCapabilities() throws {
        let none = try ContextOptions.parse(["--caps", "none"]).context()
        #expect(none.effectiveCapabilities == 0 && none.permittedCapabilities == 0)
        let raw = try ContextOptions.parse(["--caps", "CAP_NET_RAW"]).context()
        #expect(raw.effectiveCapabilities == 1 << 13)
        #expect(throws: (any Error).self) { try ContextOptions.parse(["--caps", "CAP_NOPE"]).context() }
    }
}
