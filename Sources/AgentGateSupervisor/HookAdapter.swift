import AgentGatePolicy
import AgentGateStore
import Foundation
import Glibc

/// The agents whose PreToolUse hooks `agentgate hook` answers.
public enum HookAgent: String, CaseIterable, Sendable {
    case claudeCode = "claude-code"
    case codex
}

/// Input a hook can't decide on: answered with exit 2 (the agent blocks the call).
public struct HookInputError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One PreToolUse event as the agent sends it on stdin. Claude Code and Codex send the same
/// fields (Codex adds turn_id and model): session_id, transcript_path, cwd, hook_event_name,
/// tool_name, tool_input; only session_id, cwd, tool_name and tool_input are needed.
public struct HookInput {
    public let agent: HookAgent
    public let sessionID: String
    public let cwd: String
    public let toolName: String
    public let toolInput: [String: Any]

    /// The most bytes read from stdin: a Write carries the whole file.
    public static let maximumLength = 32 << 20

    /// The deepest tool_input taken: objects and arrays within objects and arrays.
    public static let maximumDepth = 64

    /// How deep `value` nests, counted no further than `limit` + 1 (so never deeper than that
    /// on the stack, whatever the input).
    static func nestingDepth(of value: Any, limit: Int) -> Int {
        guard limit >= 0 else { return 1 }
        let children: [Any]
        if let object = value as? [String: Any] {
            children = Array(object.values)
        } else if let array = value as? [Any] {
            children = array
        } else {
            return 0
        }
        var deepest = 0
        for child in children {
            deepest = max(deepest, nestingDepth(of: child, limit: limit - 1))
            if deepest > limit { break }
        }
        return deepest + 1
    }

    static func parse(_ bytes: [UInt8], agent: HookAgent) throws(HookInputError) -> HookInput {
        switch try HookEvent.parse(bytes, agent: agent) {
        case .toolUse(let input): return input
        case .sessionEnd: throw HookInputError("hook_event_name is SessionEnd; expected PreToolUse")
        }
    }

    fileprivate static func parse(object: [String: Any], agent: HookAgent) throws(HookInputError) -> HookInput {
        func text(_ key: String) throws(HookInputError) -> String {
            guard let value = object[key] else { throw HookInputError("the input has no \(key)") }
            guard let string = value as? String, !string.isEmpty, !string.contains("\0") else {
                throw HookInputError("\(key) must be a non-empty string")
            }
            return string
        }
        let sessionID = try HookEvent.sessionID(object)
        let cwd = try text("cwd")
        guard cwd.hasPrefix("/") else { throw HookInputError("cwd must be an absolute path") }
        let tool = try text("tool_name")
        guard tool.utf8.count <= 256 else { throw HookInputError("tool_name is over 256 bytes") }
        guard let input = object["tool_input"] as? [String: Any] else {
            throw HookInputError("tool_input must be a JSON object")
        }
        // What maps and records the input walks it recursively (an MCP argument is written back
        // as JSON): a bound keeps that within any thread's stack (found by review: 300 levels
        // overflowed the supervisor's hook thread). Real tool inputs are a few levels deep.
        guard nestingDepth(of: input, limit: maximumDepth) <= maximumDepth else {
            throw HookInputError("tool_input is nested more than \(maximumDepth) levels deep")
        }
        return HookInput(agent: agent, sessionID: sessionID, cwd: URL(fileURLWithPath: cwd).standardized.path, toolName: tool, toolInput: input)
    }
}

/// What a hook is run for: a tool call to decide, or (Claude Code's SessionEnd, when `hook
/// install` added it) the end of the agent's session, which closes the session the hook's
/// decisions were recorded in.
public enum HookEvent {
    case toolUse(HookInput)
    case sessionEnd(agent: HookAgent, sessionID: String)

    public static func parse(_ bytes: [UInt8], agent: HookAgent) throws(HookInputError) -> HookEvent {
        guard !bytes.isEmpty else { throw HookInputError("no input: expected the PreToolUse event as JSON on stdin") }
        guard bytes.count <= HookInput.maximumLength else { throw HookInputError("the input is over \(HookInput.maximumLength >> 20) MiB") }
        guard let parsed = try? JSONSerialization.jsonObject(with: Data(bytes)), let object = parsed as? [String: Any] else {
            throw HookInputError("the input is not a JSON object")
        }
        if let event = object["hook_event_name"] {
            if let name = event as? String, name == "SessionEnd" {
                return .sessionEnd(agent: agent, sessionID: try sessionID(object))
            }
            guard let name = event as? String, name == "PreToolUse" else {
                throw HookInputError("hook_event_name is \(event), but agentgate hook answers PreToolUse events only (and SessionEnd)")
            }
        }
        return .toolUse(try HookInput.parse(object: object, agent: agent))
    }

    static func sessionID(_ object: [String: Any]) throws(HookInputError) -> String {
        guard let value = object["session_id"] else { throw HookInputError("the input has no session_id") }
        guard let sessionID = value as? String, !sessionID.isEmpty, sessionID.utf8.count <= 128,
              sessionID.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
            throw HookInputError("session_id must be at most 128 letters, digits, '-', '_' or '.'")
        }
        return sessionID
    }
}

/// Maps a tool call to the actions it would take, resolved as the supervisor would name them
/// (`ActionTargets`): the part of `agentgate hook` that reads the filesystem.
public enum HookMapping {
    /// A value as the text an `arguments:` glob matches: strings as they are, others as JSON.
    public static func argumentText(_ value: Any) -> String {
        if let string = value as? String { return string }
        if value is NSNull { return "null" }
        guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
        else { return "\(value)" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Inner commands of one shell line decided each as an exec of its own, at most.
    static let maximumInnerCommands = 64

    /// `view`: where paths are resolved; for the hook's process when the mapping runs elsewhere
    /// (in the supervisor): /proc/self and /dev/fd in the input are that process's.
    public static func toolCall(_ input: HookInput, path: String?, view: PathView = PathView()) throws(HookInputError) -> ToolCall {
        let tool = input.toolName
        let fields = input.toolInput
        func string(_ key: String) throws(HookInputError) -> String {
            guard let value = fields[key] as? String, !value.isEmpty, !value.contains("\0") else {
                throw HookInputError("\(tool): tool_input.\(key) must be a non-empty string")
            }
            return value
        }
        func optionalString(_ key: String) throws(HookInputError) -> String? {
            guard fields[key] != nil, !(fields[key] is NSNull) else { return nil }
            return try string(key)
        }
        /// The first of `keys` given (`notebook_path`, else `file_path`).
        func firstString(_ keys: String...) throws(HookInputError) -> String {
            for key in keys.dropLast() { if let value = try optionalString(key) { return value } }
            return try string(keys[keys.count - 1])
        }
        func absolute(_ path: String) -> String { ActionTargets.absolute(path, in: input.cwd) }
        func write(_ path: String) -> ToolCall.Action {
            ToolCall.Action(kind: .fsWrite, targets: ActionTargets.write(absolute(path), view: view).targets)
        }
        func read(_ path: String) -> ToolCall.Action {
            ToolCall.Action(kind: .fsRead, targets: [ActionTargets.read(absolute(path), view: view).target])
        }
        switch tool {
        case "Bash", "shell", "local_shell", "exec_command":
            if let argv = fields["command"] as? [Any] {
                // Codex may give an argv.
                let words = argv.compactMap { $0 as? String }
                guard words.count == argv.count, !words.isEmpty, !words[0].isEmpty else {
                    throw HookInputError("\(tool): tool_input.command must be a string or a list of strings")
                }
                return ToolCall(tool: tool, actions: shell(argv: words, cwd: input.cwd, path: path, view: view))
            }
            return ToolCall(tool: tool, actions: shell(command: try string("command"), cwd: input.cwd, path: path, view: view))
        case "Write", "Edit", "MultiEdit":
            return ToolCall(tool: tool, actions: [write(try string("file_path"))])
        case "NotebookEdit":
            return ToolCall(tool: tool, actions: [write(try firstString("notebook_path", "file_path"))])
        case "Read":
            return ToolCall(tool: tool, actions: [read(try string("file_path"))])
        case "NotebookRead":
            return ToolCall(tool: tool, actions: [read(try firstString("notebook_path", "file_path"))])
        case "Glob", "Grep", "LS":
            // Without a path they search the working directory.
            return ToolCall(tool: tool, actions: [read(try optionalString("path") ?? input.cwd)])
        case "WebFetch":
            return ToolCall(tool: tool, actions: [ToolCall.Action(kind: .netEgress, targets: [try webTarget(try string("url"))])])
        case "apply_patch":
            let patch: String
            if let argv = fields["command"] as? [Any], let last = argv.last as? String {
                patch = last
            } else {
                patch = try firstString("input", "command")
            }
            let files = patchedFiles(patch)
            guard !files.isEmpty else { throw HookInputError("apply_patch: the patch names no file") }
            return ToolCall(tool: tool, actions: files.map(write))
        default:
            // MCP tools and every other tool: an `mcp` action named by the tool; an MCP tool's
            // input is its arguments, for rules with `arguments:`.
            let arguments = tool.hasPrefix("mcp__") ? ToolArguments(fields.mapValues(argumentText)) : nil
            return ToolCall(tool: tool, actions: [], arguments: arguments)
        }
    }

    /// A shell command line, as the agent's shell runs it (`bash -c COMMAND`): the shell's own
    /// exec, which `command:` rules see whole, and each command in it that names a program as an
    /// exec of its own (builtins and functions run no program and are left to the line).
    static func shell(command: String, cwd: String, path: String?, view: PathView = PathView()) -> [ToolCall.Action] {
        shell(argv: ["bash", "-c", command], cwd: cwd, path: path, view: view)
    }

    static func shell(argv: [String], cwd: String, path: String?, view: PathView = PathView()) -> [ToolCall.Action] {
        let program = ActionTargets.program(argv[0], directory: cwd, path: path, view: view)
        let whole = ExecDetails(argv: argv, programs: program.programs)
        var actions = [ToolCall.Action(kind: .exec, targets: program.programs.reversed(), argv: argv, programs: program.programs)]
        for command in whole.analysis.commands.dropFirst().prefix(maximumInnerCommands) where !command.isEmpty {
            let inner = ActionTargets.program(command[0], directory: cwd, path: path, view: view)
            guard inner.found else { continue }
            actions.append(ToolCall.Action(kind: .exec, targets: inner.programs.reversed(), argv: command, programs: inner.programs))
        }
        return actions
    }

    /// `host:port` (`[v6]:port`) of an http or https URL, the port by scheme when not given.
    static func webTarget(_ url: String) throws(HookInputError) -> String {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
              let host = components.host, !host.isEmpty else {
            throw HookInputError("WebFetch: \(url.prefix(200)) is not a URL with a host")
        }
        let port: Int
        switch (scheme, components.port) {
        case (_, let given?): port = given
        case ("https", nil): port = 443
        case ("http", nil): port = 80
        default: throw HookInputError("WebFetch: the scheme \(scheme) has no port to decide by")
        }
        guard (1...65535).contains(port) else { throw HookInputError("WebFetch: port \(port) is out of range") }
        let bare = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        return (bare.contains(":") ? "[\(bare)]" : bare.lowercased()) + ":\(port)"
    }

    /// The files an apply_patch patch adds, updates, deletes or moves to.
    static func patchedFiles(_ patch: String) -> [String] {
        let markers = ["*** Add File: ", "*** Update File: ", "*** Delete File: ", "*** Move to: "]
        var files: [String] = []
        for line in patch.split(separator: "\n", omittingEmptySubsequences: true) {
            for marker in markers where line.hasPrefix(marker) {
                let file = line.dropFirst(marker.count).trimmingCharacters(in: .whitespaces)
                if !file.isEmpty, !files.contains(file) { files.append(file) }
            }
        }
        return files
    }
}

/// The JSON a PreToolUse hook answers with on stdout (Claude Code's shape; Codex reads the same).
public enum HookOutput {
    /// What `agent` is told on stdout, or nil for nothing at all (exit 0, the call proceeds).
    ///
    /// Codex reads Claude Code's shape but only acts on `deny` (codex-rs/hooks output_parser.rs,
    /// checked 2026-12-06): `allow` without `updatedInput` and `ask` are "unsupported" there, the
    /// hook run is marked failed and the call goes ahead. So Codex is told nothing for an allow,
    /// and an ask is denied with why: it would otherwise run unasked.
    public static func answer(for agent: HookAgent, decision: Decision, reason: String) -> String? {
        guard agent == .codex else { return json(decision: decision, reason: reason) }
        switch decision {
        case .deny: return json(decision: .deny, reason: reason)
        case .ask: return json(decision: .deny, reason: reason + codexAskNote)
        case .allow, .log: return nil
        }
    }

    /// `AgentGate: deny fs_read /home/u/.ssh/id_rsa: rule ssh-keys: …`, at most 1000 characters.
    public static func reason(decision: String, action: String, target: String, argv: [String]?, why: String) -> String {
        let subject = action == "exec" ? (argv?.joined(separator: " ") ?? target) : target
        let text = "AgentGate: \(decision) \(action) \(subject): \(why)"
        return text.count > 1000 ? String(text.prefix(999)) + "…" : text
    }

    /// Appended to an ask's reason for Codex.
    static let codexAskNote = "; Codex hooks cannot ask a person (Codex would run the call unasked), so AgentGate denies it: run it yourself or allow it in the policy"

    /// `{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":…,"permissionDecisionReason":…}}`,
    /// written by hand: JSONSerialization's type metadata cost the hook a millisecond at start.
    static func json(decision: Decision, reason: String) -> String {
        var output = #"{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"#
        AuditJSON.appendQuoted(decision.name, to: &output)
        output += #","permissionDecisionReason":"#
        AuditJSON.appendQuoted(reason, to: &output)
        output += "}}"
        return output
    }
}
