import Foundation
import Testing
import AgentGatePolicy

/// Loads YAML and expects it to fail at a position with a message fragment.
func expectLoadError(_ yaml: String, line: Int, column: Int, _ fragment: String,
                     variables: PolicyVariables = testVariables,
                     sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try Policy.parse(yaml: yaml, source: "policy.yaml", variables: variables)
        Issue.record("expected a load error containing \"\(fragment)\"", sourceLocation: sourceLocation)
    } catch {
        #expect(error.message.contains(fragment), "\(error)", sourceLocation: sourceLocation)
        #expect(error.line == line && error.column == column, "\(error)", sourceLocation: sourceLocation)
    }
}

/// Evaluates an exec of `argv` (the program assumed from argv[0] unless given).
func exec(_ policy: Policy, _ argv: [String], program: String? = nil, context: ProcessContext? = nil) -> Verdict {
    policy.evaluate(.exec, target: program ?? ExecDetails.assumedProgram(argv[0]),
                    exec: ExecDetails(argv: argv), context: context)
}

/// The fastest of `runs` timings of `body`: a timing bound judged on the best run holds on a
/// busy machine, while still catching a blow-up.
func bestTime(of runs: Int, _ body: () -> Void) -> Duration {
    (0..<runs).map { _ in ContinuousClock().measure(body) }.min() ?? .zero
}

/// A scratch directory removed when the test ends.
final class TemporaryDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "agentgate-policy-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    @discardableResult
    func write(_ name: String, _ text: String) -> String {
        let file = path + "/" + name
        try? FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent,
                                                 withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: file, contents: Data(text.utf8))
        return file
    }
}
