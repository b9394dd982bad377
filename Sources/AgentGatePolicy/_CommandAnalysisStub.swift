// TEMPORARY stub until the shell parser lands (branch issue4-shell).
public struct CommandAnalysis: Sendable, Equatable {
    public var commands: [[String]]
    public var pipelines: [[[String]]]
    public var shellParseFailed: Bool
    public var shellErrors: [String]
    public static func analyze(argv: [String]) -> CommandAnalysis {
        CommandAnalysis(commands: [argv], pipelines: [], shellParseFailed: false, shellErrors: [])
    }
    public static func line(_ words: [String]) -> String { words.joined(separator: " ") }
    public static func line(pipeline: [[String]]) -> String { pipeline.map { line($0) }.joined(separator: " | ") }
}
public enum IntentCategory: String, Sendable { case run, read, write, connect }
public struct Intent: Sendable, Equatable {
    public var category: IntentCategory
    public var text: String
    public static func describe(_ kind: ActionKind, target: String, argv: [String]?, analysis: CommandAnalysis?, home: String?) -> Intent {
        Intent(category: .run, text: "agent wants to \(kind.name) \(target)")
    }
}
public struct ShellSimpleCommand: Sendable, Equatable {
    public var assignments: [String]
    public var words: [String]
}
public struct ShellScript: Sendable, Equatable {
    public var commands: [ShellSimpleCommand]
    public var pipelines: [[Int]]
    public var error: String?
    public static func parse(_ source: String) -> ShellScript {
        ShellScript(commands: [ShellSimpleCommand(assignments: [], words: source.split(separator: " ").map(String.init))], pipelines: [[0]], error: nil)
    }
}
