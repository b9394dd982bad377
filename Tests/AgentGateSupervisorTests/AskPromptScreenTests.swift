@testable import AgentGateSupervisor
import AgentGatePolicy
import Testing

/// What the terminal prompt draws, on its own: the box as the issue shows it, agent text
/// escaped and cut to the terminal's width, and the rule preview.
@Suite("Ask prompt screen")
struct AskPromptScreenTests {
    static func ask(target: String = "npm install chalk", kind: ActionKind = .exec, agent: String = "claude-code") -> PendingAsk {
        PendingAsk(id: "abcde", createdAt: 0, createdAtMicros: 0, pid: 4242, executable: "/usr/bin/npm", agent: agent,
                   action: AskedAction(kind: kind, target: kind == .exec ? "/usr/bin/npm" : target,
                                       argv: kind == .exec ? target.split(separator: " ").map(String.init) : nil),
                   shownTarget: target, intent: "agent wants to install npm package: chalk",
                   rule: "3 (ask: every install)", ruleIndex: 2, deadline: 0)
    }

    @Test func theBoxIsAsTheIssueShowsIt() {
        #expect(AskPromptScreen.choosing(Self.ask(), moreWaiting: 0, secondsLeft: 87, notice: nil, width: 120) == [
            "┌─ AgentGate · action paused ──────────────",
            "│ agent  : claude-code      pid 4242 (npm)",
            "│ action : exec",
            "│ target : npm install chalk",
            "│ intent : agent wants to install npm package: chalk",
            "│ rule   : 3 (ask: every install)",
            "└──────────────────────────────────────────",
            "denied in 87 s unless answered",
            "[a]llow once / [d]eny / [A]lways allow / [N]ever ?",
        ])
    }

    @Test func theQueueAndANoticeAreShown() {
        let lines = AskPromptScreen.choosing(Self.ask(), moreWaiting: 2, secondsLeft: 5, notice: AskPromptScreen.cannotSave, width: 120)
        #expect(lines.suffix(3) == [AskPromptScreen.cannotSave, "2 more waiting · denied in 5 s unless answered", AskPromptScreen.choosingKeys])
    }

    @Test func agentTextIsEscapedAndCutToTheWidth() {
        let hostile = Self.ask(target: "touch \u{1b}[2J\u{1b}]0;title\u{07}x", agent: "a\u{1b}[31mred")
        let lines = AskPromptScreen.choosing(hostile, moreWaiting: 0, secondsLeft: 1, notice: nil, width: 200)
        #expect(!lines.joined().unicodeScalars.contains { $0.value < 0x20 })
        #expect(lines[3] == "│ target : touch \\u{1b}[2J\\u{1b}]0;title\\u{7}x")
        #expect(lines[1].hasPrefix("│ agent  : a\\u{1b}[31mred"))
        let narrow = AskPromptScreen.choosing(Self.ask(target: String(repeating: "x", count: 300)), moreWaiting: 0, secondsLeft: 1, notice: nil, width: 30)
        #expect(narrow.allSatisfy { $0.count <= 30 })
        #expect(narrow[3].hasSuffix("…") && narrow[0].count == 30)
    }

    @Test func secretsInTheTargetAreRedacted() {
        let lines = AskPromptScreen.choosing(Self.ask(target: "curl -H Authorization:\\ Bearer\\ sk-abcdefghijklmnopqrstuvwx https://x"),
                                             moreWaiting: 0, secondsLeft: 1, notice: nil, width: 200)
        #expect(!lines[3].contains("sk-abcdefghijklmnopqrstuvwx"), "\(lines[3])")
    }

    @Test func theRuleIsPreviewedBeforeItIsSaved() {
        let proposal = RuleProposal(yaml: ["- match: {action: exec, argv: [npm, install, \"**\"]}", "  decision: allow"],
                                    summary: "exec npm install *", note: "a deny rule covers npm install evil", file: "/home/me/.config/agentgate/policy.yaml")
        let lines = AskPromptScreen.confirming(Self.ask(), allow: true, breadth: .usual, proposal: proposal, secondsLeft: 9, width: 120)
        #expect(lines.contains("│ covers : exec npm install *"))
        #expect(lines.contains("│ file   : /home/me/.config/agentgate/policy.yaml"))
        #expect(lines.contains("  - match: {action: exec, argv: [npm, install, \"**\"]}"))
        #expect(lines.contains("Narrowed: a deny rule covers npm install evil"))
        #expect(lines.last == "[y] save and allow / [n] back ?")
        let path = Self.ask(target: "/home/me/proj/out.txt", kind: .fsWrite)
        let file = AskPromptScreen.confirming(path, allow: false, breadth: .usual, proposal: proposal, secondsLeft: 9, width: 120)
        #expect(file.last == "[y] save and deny / [w] whole directory / [n] back ?")
        let directory = AskPromptScreen.confirming(path, allow: false, breadth: .directory, proposal: proposal, secondsLeft: 9, width: 120)
        #expect(directory.last == "[y] save and deny / [w] this file only / [n] back ?")
        var refused = proposal
        refused.refusal = "a deny rule covers this very action"
        let once = AskPromptScreen.confirming(Self.ask(), allow: true, breadth: .usual, proposal: refused, secondsLeft: 9, width: 120)
        #expect(once.contains("No rule can be saved: a deny rule covers this very action"))
        #expect(once.last == "[y] allow this once instead / [n] back ?")
    }
}
