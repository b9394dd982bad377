import AgentGatePolicy
import AgentGateStore

/// What the terminal prompt draws (`TerminalPrompt`): the box about a paused action, and the
/// rule an Always or Never answer would save. Everything that came from the agent (target,
/// intent, executable) is redacted, has its control characters escaped, and is cut to the
/// terminal's width, so it can't move the cursor, recolour or rewrite the prompt.
enum AskPromptScreen {
    /// The box's width when the terminal is at least that wide.
    static let boxWidth = 43

    /// Why Always or Never can't be chosen here (no rule can be previewed for the ask).
    static let cannotSave = "This answer can't be saved as a rule here; [a]llow once / [d]eny instead."

    static let choosingKeys = "[a]llow once / [d]eny / [A]lways allow / [N]ever ?"

    /// The box for `ask`, as the person first sees it.
    static func choosing(_ ask: PendingAsk, moreWaiting: Int, secondsLeft: Int, notice: String?, width: Int) -> [String] {
        let program = ask.executable.split(separator: "/").last.map(String.init) ?? ask.executable
        let agent = shown(ask.agent)
        let target = ask.action.kind == .exec ? Redactor.redact(commandText: ask.shownTarget) : Redactor.redact(text: ask.shownTarget)
        var lines = [
            top("AgentGate · action paused", width: width),
            "│ agent  : " + agent.padding(toLength: max(16, agent.count), withPad: " ", startingAt: 0) + " pid \(ask.pid) (\(shown(program)))",
            "│ action : " + ask.action.kind.name,
            "│ target : " + DenialExplanation.printable(target),
            "│ intent : " + shown(ask.intent),
            "│ rule   : " + shown(ask.rule),
            bottom(width: width),
        ]
        if let notice { lines.append(shown(notice)) }
        lines.append(status(moreWaiting: moreWaiting, secondsLeft: secondsLeft))
        lines.append(choosingKeys)
        return lines.map { fitted($0, width: width) }
    }

    /// The rule an Always (`allow`) or Never answer would save, before it is saved.
    static func confirming(_ ask: PendingAsk, allow: Bool, breadth: AskBreadth, proposal: RuleProposal,
                           secondsLeft: Int, width: Int) -> [String] {
        var lines = [
            top("AgentGate · " + (allow ? "always allow" : "never allow"), width: width),
            "│ action : " + ask.action.kind.name + " " + DenialExplanation.printable(Redactor.redact(commandText: ask.shownTarget)),
            "│ covers : " + shown(proposal.summary),
            "│ file   : " + shown(proposal.file),
            bottom(width: width),
        ]
        if let refusal = proposal.refusal {
            lines.append("No rule can be saved: " + shown(refusal))
            lines.append(status(moreWaiting: 0, secondsLeft: secondsLeft))
            lines.append(allow ? "[y] allow this once instead / [n] back ?" : "[y] deny this once instead / [n] back ?")
            return lines.map { fitted($0, width: width) }
        }
        lines.append("The rule to save:")
        lines += proposal.yaml.map { "  " + shown($0) }
        if let note = proposal.note { lines.append("Narrowed: " + shown(note)) }
        lines.append(status(moreWaiting: 0, secondsLeft: secondsLeft))
        var keys = "[y] save " + (allow ? "and allow" : "and deny")
        if offersDirectory(ask) { keys += breadth == .directory ? " / [w] this file only" : " / [w] whole directory" }
        lines.append(keys + " / [n] back ?")
        return lines.map { fitted($0, width: width) }
    }

    /// Whether a rule for the ask may cover its directory instead of the file.
    static func offersDirectory(_ ask: PendingAsk) -> Bool { ask.action.kind == .fsRead || ask.action.kind == .fsWrite }

    /// `2 more waiting · denied in 87 s unless answered`.
    static func status(moreWaiting: Int, secondsLeft: Int) -> String {
        let more = moreWaiting > 0 ? "\(moreWaiting) more waiting · " : ""
        return more + "denied in \(secondsLeft) s unless answered"
    }

    /// Agent text, safe to draw: secrets redacted, control characters escaped.
    static func shown(_ text: String) -> String { DenialExplanation.printable(Redactor.redact(text: text)) }

    /// `┌─ TITLE ───…`, `boxWidth` wide or the terminal's width.
    static func top(_ title: String, width: Int) -> String {
        let head = "┌─ " + title + " "
        return head + String(repeating: "─", count: max(0, min(boxWidth, width) - head.count))
    }

    static func bottom(width: Int) -> String { "└" + String(repeating: "─", count: max(0, min(boxWidth, width) - 1)) }

    /// `line` cut to `width` columns, ending in `…` when cut.
    static func fitted(_ line: String, width: Int) -> String {
        guard line.count > width, width > 1 else { return line }
        return String(line.prefix(width - 1)) + "…"
    }
}
