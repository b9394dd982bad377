import Foundation
import Testing
import AgentGatePolicy

/// The policies in policies/ load, lint clean (apart from `ask` rules, which have no approver
/// yet), and pass their case files in policies/tests/.
@Suite("Shipped policies")
struct ShippedPolicyTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let policies = repository.appendingPathComponent("policies").path
    static let variables = PolicyVariables(workingDirectory: "/home/dev/project", home: "/home/dev",
                                           temporaryDirectory: "/tmp", agent: "claude")

    static var caseFiles: [String] {
        let directory = policies + "/tests"
        return ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".yaml") }.sorted().map { directory + "/" + $0 }
    }

    static var policyFiles: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: policies)) ?? [])
            .filter { $0.hasSuffix(".yaml") }.sorted().map { policies + "/" + $0 }
    }

    @Test("every shipped policy loads and lints clean", arguments: policyFiles)
    func lint(_ path: String) throws {
        var diagnostics: [PolicyDiagnostic] = []
        let policy = try Policy.load(path: path, variables: Self.variables, lenient: true, diagnostics: &diagnostics)
        diagnostics += PolicyLint.check(policy).filter { !$0.message.contains("no approver can exist") }
        #expect(diagnostics.isEmpty, "\(diagnostics.map(\.description).joined(separator: "\n"))")
    }

    @Test("case files pass", arguments: caseFiles)
    func cases(_ path: String) throws {
        let file = try PolicyCaseFile.load(path: path, defaults: Self.variables)
        let policyPath = try #require(file.policyPath)
        let policy = try Policy.load(path: policyPath, variables: file.variables)
        #expect(!file.cases.isEmpty)
        for result in file.run(against: policy) {
            #expect(result.failure == nil, "\(path):\(result.testCase.line) \(result.testCase.name): \(result.failure ?? ""); \(result.explanation)")
        }
    }

    @Test("there are case files for every profile")
    func coverage() {
        #expect(Self.caseFiles.count >= 6)
        #expect(Self.policyFiles.count >= 9)
    }
}
