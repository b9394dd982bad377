@testable import AgentGateCLI
@testable import AgentGateSupervisor
import AgentGatePolicy
import AgentGateStore
import Foundation
import Glibc
import Testing

/// How `agentgate hook` reads a PreToolUse event and maps each tool to actions.
struct HookMappingTests {
    static func input(_ tool: String, _ toolInput: [String: Any], cwd: String = "/tmp") throws -> HookInput {
        let object: [String: Any] = ["session_id": "s-1", "cwd": cwd, "hook_event_name": "PreToolUse", "tool_name": tool,
                                     "tool_input": toolInput, "transcript_path": "/tmp/t.jsonl"]
        return try HookInput.parse(Array(try JSONSerialization.data(withJSONObject: object)), agent: .claudeCode)
    }

    static func call(_ tool: String, _ toolInput: [String: Any], cwd: String = "/tmp") throws -> ToolCall {
        try HookMapping.toolCall(try input(tool, toolInput, cwd: cwd), path: "/usr/bin:/bin")
    }

    @Test func eachToolMapsToItsAction() throws {
        let shell = try Self.call("Bash", ["command": "git status && echo hi | sort > out; cd x"])
        #expect(shell.actions.first?.kind == .exec && shell.actions.first?.argv == ["bash", "-c", "git status && echo hi | sort > out; cd x"])
        // Each command naming a program is an exec of its own; builtins (cd, echo) run none.
        let inner = shell.actions.dropFirst().compactMap { $0.argv?.first }
        #expect(inner.contains("git") && inner.contains("sort") && !inner.contains("cd"), "\(inner)")
        #expect(shell.actions.allSatisfy { $0.targets.allSatisfy { $0.hasPrefix("/") } })
        // Relative paths are the agent's cwd's.
        #expect(try Self.call("Write", ["file_path": "src/a.swift", "content": "x"]).actions
                == [ToolCall.Action(kind: .fsWrite, targets: [FilePaths.resolvedExisting("/tmp/src/a.swift")])])
        #expect(try Self.call("Edit", ["file_path": "/tmp/../etc/passwd", "old_string": "a", "new_string": "b"]).actions.first?.targets
                == ["/etc/passwd"])
        #expect(try Self.call("MultiEdit", ["file_path": "/tmp/x", "edits": []]).actions.first?.kind == .fsWrite)
        #expect(try Self.call("NotebookEdit", ["notebook_path": "/tmp/n.ipynb", "new_source": ""]).actions.first?.kind == .fsWrite)
        #expect(try Self.call("Read", ["file_path": "/etc/hostname"]).actions.first?.kind == .fsRead)
        #expect(try Self.call("Grep", ["pattern": "x"], cwd: "/usr").actions.first?.targets == [FilePaths.resolved("/usr")])
        #expect(try Self.call("Glob", ["pattern": "*", "path": "/etc"]).actions.first?.targets == ["/etc"])
        #expect(try Self.call("WebFetch", ["url": "https://Example.com/x", "prompt": "p"]).actions.first?.targets == ["example.com:443"])
        #expect(try Self.call("WebFetch", ["url": "http://[::1]:8080/"]).actions.first?.targets == ["[::1]:8080"])
        #expect(try Self.call("WebFetch", ["url": "http://example.com/"]).actions.first?.targets == ["example.com:80"])
        #expect(try Self.call("mcp__github__create_issue", ["title": "x"]).actions.isEmpty)
        // An MCP tool's input is its arguments (`arguments:` rules); other tools have none.
        #expect(try Self.call("mcp__fs__read", ["path": "/etc/x", "limit": 3]).arguments == ToolArguments(["path": "/etc/x", "limit": "3"]))
        #expect(try Self.call("WebSearch", ["query": "x"]).arguments == nil)
        #expect(try Self.call("WebSearch", ["query": "x"]).actions.isEmpty)
        let patch = try Self.call("apply_patch", ["command": "*** Begin Patch\n*** Update File: a.txt\n@@\n-x\n+y\n*** Add File: /tmp/b.txt\n+z\n*** End Patch"])
        #expect(patch.actions.map(\.kind) == [.fsWrite, .fsWrite] && patch.actions.count == 2)
    }

    @Test func badInputIsRefusedWithAReason() throws {
        func refused(_ bytes: String, _ fragment: String) {
            do {
                let input = try HookInput.parse(Array(bytes.utf8), agent: .claudeCode)
                _ = try HookMapping.toolCall(input, path: nil)
                Issue.record("accepted \(bytes)")
            } catch {
                #expect(error.description.contains(fragment), "\(error)")
            }
        }
        refused("", "no input")
        refused("[1]", "not a JSON object")
        refused("{", "not a JSON object")
        refused(#"{"cwd":"/","tool_name":"Read","tool_input":{}}"#, "no session_id")
        refused(#"{"session_id":"s","cwd":"rel","tool_name":"Read","tool_input":{}}"#, "cwd must be an absolute path")
        refused(#"{"session_id":"s","cwd":"/","tool_name":"Read","tool_input":[]}"#, "tool_input must be a JSON object")
        refused(#"{"session_id":"s","cwd":"/","tool_name":"Read","tool_input":{"file_path":7}}"#, "file_path must be a non-empty string")
        refused(#"{"session_id":"s","cwd":"/","tool_name":5,"tool_input":{}}"#, "tool_name must be a non-empty string")
        refused(#"{"session_id":"../x","cwd":"/","tool_name":"Read","tool_input":{}}"#, "session_id must be")
        refused(#"{"session_id":"s","cwd":"/","hook_event_name":"PostToolUse","tool_name":"Read","tool_input":{}}"#, "PreToolUse events only")
        refused(#"{"session_id":"s","cwd":"/","tool_name":"WebFetch","tool_input":{"url":"ftp://x/"}}"#, "no port")
        refused(#"{"session_id":"s","cwd":"/","tool_name":"apply_patch","tool_input":{"command":"nothing"}}"#, "names no file")
        refused(String(repeating: " ", count: HookInput.maximumLength + 1), "over")
    }

    @Test func installKeepsWhatIsThereAndUninstallRemovesOnlyItsOwn() throws {
        var settings: [String: Any] = [
            "model": "opus",
            "hooks": ["PreToolUse": [["matcher": "Bash", "hooks": [["type": "command", "command": "./mine.sh"]]]],
                      "Stop": [["hooks": [["type": "command", "command": "notify"]]]]],
        ]
        #expect(ClaudeSettings.install(command: "/opt/ag/bin/agentgate hook claude-code", into: &settings))
        #expect(!ClaudeSettings.install(command: "/opt/ag/bin/agentgate hook claude-code", into: &settings))
        var groups = (settings["hooks"] as? [String: Any])?["PreToolUse"] as? [[String: Any]] ?? []
        #expect(groups.count == 2 && groups[1]["matcher"] as? String == "*")
        // SessionEnd too (no matcher): it closes the session the hook records into.
        let ends = (settings["hooks"] as? [String: Any])?["SessionEnd"] as? [[String: Any]] ?? []
        #expect(ends.count == 1 && ends[0]["matcher"] == nil
                && ((ends[0]["hooks"] as? [[String: Any]])?.first?["command"] as? String)?.hasSuffix(" hook claude-code") == true)
        // A moved binary is pointed at, not added twice.
        #expect(ClaudeSettings.install(command: "'/new place/agentgate' hook claude-code", into: &settings))
        groups = (settings["hooks"] as? [String: Any])?["PreToolUse"] as? [[String: Any]] ?? []
        #expect(groups.count == 2)
        #expect(ClaudeSettings.uninstall(from: &settings))
        #expect(!ClaudeSettings.uninstall(from: &settings))
        groups = (settings["hooks"] as? [String: Any])?["PreToolUse"] as? [[String: Any]] ?? []
        #expect(groups.count == 1 && groups[0]["matcher"] as? String == "Bash")
        #expect(settings["model"] as? String == "opus" && (settings["hooks"] as? [String: Any])?["Stop"] != nil)
        #expect((settings["hooks"] as? [String: Any])?["SessionEnd"] == nil)
        // Both forms already there (an old entry beside agentgate-hook's): one is left.
        var both: [String: Any] = ["hooks": ["PreToolUse": [["matcher": "*", "hooks": [
            ["type": "command", "command": "/x/agentgate hook claude-code"], ["type": "command", "command": "/x/agentgate-hook claude-code"],
            ["type": "command", "command": "./mine.sh"]]]]]]
        #expect(ClaudeSettings.install(command: "/x/agentgate-hook claude-code", into: &both))
        let handlers = (((both["hooks"] as? [String: Any])?["PreToolUse"] as? [[String: Any]])?.first?["hooks"] as? [[String: Any]]) ?? []
        #expect(handlers.compactMap { $0["command"] as? String } == ["/x/agentgate-hook claude-code", "./mine.sh"], "\(handlers)")
        #expect(ClaudeSettings.uninstall(from: &both))
        // In different groups (matchers), both stay, pointed at the command: the `*` one is
        // what decides Read, Write, MCP and WebFetch.
        var groups2: [String: Any] = ["hooks": ["PreToolUse": [
            ["matcher": "Bash", "hooks": [["type": "command", "command": "/x/agentgate hook claude-code"]]],
            ["matcher": "*", "hooks": [["type": "command", "command": "/x/agentgate-hook claude-code"]]]]]]
        _ = ClaudeSettings.install(command: "/x/agentgate-hook claude-code", into: &groups2)
        let kept = ((groups2["hooks"] as? [String: Any])?["PreToolUse"] as? [[String: Any]]) ?? []
        #expect(kept.map { ($0["hooks"] as? [[String: Any]])?.first?["command"] as? String } == ["/x/agentgate-hook claude-code", "/x/agentgate-hook claude-code"])
        #expect(ClaudeSettings.isOurs("/x/agentgate-hook claude-code") && ClaudeSettings.isOurs("'/a b/agentgate' hook claude-code")
                && !ClaudeSettings.isOurs("/x/agentgate-hook codex") && !ClaudeSettings.isOurs("/x/other-hook claude-code"))
        var only: [String: Any] = [:]
        _ = ClaudeSettings.install(command: "/x/agentgate hook claude-code", into: &only)
        _ = ClaudeSettings.uninstall(from: &only)
        #expect(only.isEmpty)
    }

    /// Codex's hooks.json has Claude Code's shape; it gets a PreToolUse entry only (Codex has no
    /// SessionEnd), and each agent's entries are its own.
    @Test func codexInstallWritesPreToolUseOnly() throws {
        var hooks: [String: Any] = ["hooks": ["Stop": [["hooks": [["type": "command", "command": "notify"]]]]]]
        #expect(ClaudeSettings.install(command: "/x/agentgate hook codex", agent: .codex, into: &hooks))
        #expect(!ClaudeSettings.install(command: "/x/agentgate hook codex", agent: .codex, into: &hooks))
        let table = hooks["hooks"] as? [String: Any] ?? [:]
        #expect(Set(table.keys) == ["Stop", "PreToolUse"], "\(table.keys)")
        let group = (table["PreToolUse"] as? [[String: Any]])?.first
        #expect(group?["matcher"] as? String == "*" && (group?["hooks"] as? [[String: Any]])?.first?["command"] as? String == "/x/agentgate hook codex")
        #expect(!ClaudeSettings.uninstall(agent: .claudeCode, from: &hooks))
        #expect(ClaudeSettings.uninstall(agent: .codex, from: &hooks))
        #expect(Set((hooks["hooks"] as? [String: Any] ?? [:]).keys) == ["Stop"])
    }
}
