import AgentGateStore
import Foundation

/// The HTML evidence report: one self-contained file a person can read in any browser.
/// Inline CSS, no scripts, no external assets (no `src=`/`href=` to anything but in-page
/// anchors). Every recorded string is agent-controlled (paths, argv, hostnames), so each goes
/// through `HTML.escape`, which escapes `& < > " '`, shows a line break as ⏎ and a real one, a
/// tab as ⇥, and other control characters as \u{…}.
public enum HTML {
    /// Element content.
    public static func escape(_ text: String) -> String { escape(text, lineBreaks: true) }

    /// Attribute values and `<title>`: line breaks stay on the line, as ⏎.
    public static func attribute(_ text: String) -> String { escape(text, lineBreaks: false) }

    private static func escape(_ text: String, lineBreaks: Bool) -> String {
        DisplayText.escaped(text, lineBreak: lineBreaks ? "<span class=\"muted\">⏎</span><br>" : "⏎", replacement: entity)
    }

    /// The characters markup gives a meaning to, as character references.
    private static func entity(_ scalar: Unicode.Scalar) -> String? {
        switch scalar {
        case "&": "&amp;"
        case "<": "&lt;"
        case ">": "&gt;"
        case "\"": "&quot;"
        case "'": "&#39;"
        default: nil
        }
    }
}

extension EvidencePack {
    /// The pack as one self-contained HTML page.
    public func html() -> String {
        let e = HTML.escape
        // Shown as `show` shows it: redacted like its events.
        let record = AuditFormat.redacted(self.record)
        var page = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="generator" content="agentgate export">
            <title>AgentGate evidence: session \(HTML.attribute(record.id))</title>
            <style>
            body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #1d1d1f; }
            h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.15em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
            code, .mono, td.mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
            table { border-collapse: collapse; width: 100%; } th, td { text-align: left; vertical-align: top; padding: 3px 8px; border-bottom: 1px solid #eee; }
            th { background: #f5f5f7; font-weight: 600; } td.num, th.num { text-align: right; }
            dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; } dl.kv dt { font-weight: 600; color: #555; } dl.kv dd { margin: 0; word-break: break-all; }
            .badge { display: inline-block; padding: 2px 10px; border-radius: 10px; font-weight: 600; }
            .ok { background: #e3f6e8; color: #116329; } .bad { background: #fde7e9; color: #a40e26; } .warn { background: #fff4d6; color: #7a5200; }
            tr.deny td, tr.ask td { background: #fff5f5; } tr.log td { background: #fffbea; }
            .mark { font-weight: 700; } .deny .mark, .ask .mark { color: #a40e26; } .allow .mark { color: #116329; } .log .mark { color: #7a5200; }
            ul.tree, ul.tree ul { list-style: none; padding-left: 1.2em; margin: 0; } ul.tree li { position: relative; }
            ul.tree li::before { content: "└ "; color: #aaa; position: absolute; left: -1.1em; }
            .muted { color: #777; } td.wrap { word-break: break-all; }
            </style>
            </head>
            <body>
            <h1>AgentGate evidence report</h1>
            <p class="muted">Session <code>\(e(record.id))</code> · generated \(e(AuditTime.iso8601(generatedAt))) from <code>\(e(databasePath))</code></p>

            """
        // Verification.
        let verdict: String
        if verification.unchainedSessions.contains(record.id) {
            verdict = "<span class=\"badge warn\">not chained (recorded before schema v2)</span>"
        } else if verification.isValid {
            verdict = "<span class=\"badge ok\">hash chains verified</span>"
        } else {
            verdict = "<span class=\"badge bad\">hash chain BROKEN</span>"
        }
        page += "<h2 id=\"verification\">Integrity</h2>\n<p>\(verdict)</p>\n<dl class=\"kv\">\n"
        func pair(_ name: String, _ value: String, mono: Bool = false) {
            page += "<dt>\(e(name))</dt><dd\(mono ? " class=\"mono\"" : "")>\(e(value))</dd>\n"
        }
        pair("Events verified", "\(verification.eventsVerified)")
        pair("Process records verified", "\(verification.processLinksVerified)")
        pair("Session chain", "\(verification.globalLinks) links")
        if let head = verification.headHash { pair("Session chain head", head, mono: true) }
        pair("End record", verification.openSessions.contains(record.id) ? "none (running, or the supervisor was killed)" : "present")
        page += "</dl>\n"
        if !verification.problems.isEmpty {
            page += "<p><strong>Broken links:</strong></p>\n<ol>\n"
            for problem in verification.problems { page += "<li class=\"mono\">\(e(problem.description))</li>\n" }
            page += "</ol>\n"
        }

        // Session.
        page += "<h2 id=\"session\">Session</h2>\n<dl class=\"kv\">\n"
        pair("Agent", record.agent)
        pair("Mode", record.mode == "audit" ? "audit (decided and recorded, not enforced)"
             : record.mode == "learn" ? "learn (decided and recorded, not enforced)" : record.mode)
        pair("Command", record.command.joined(separator: " "), mono: true)
        pair("Working directory", record.cwd, mono: true)
        pair("Policy", record.policyPath, mono: true)
        pair("Policy SHA-256", record.policySHA256, mono: true)
        pair("Started", AuditTime.iso8601(record.startTimeMicros))
        if let end = record.endTimeMicros {
            pair("Ended", AuditTime.iso8601(end))
            pair("Duration", AuditTime.duration(micros: end - record.startTimeMicros))
        } else {
            pair("Ended", "no end recorded")
        }
        pair("Exit status", record.exitStatus.map { "\($0)" + ($0 > 128 ? " (killed by signal \($0 - 128))" : "") } ?? "-")
        page += "</dl>\n"

        // Context.
        if let unit = record.unit {
            page += "<h2 id=\"unit\">systemd unit</h2>\n<dl class=\"kv\">\n"
            pair("Unit", unit.name, mono: true)
            pair("Cgroup", unit.cgroup, mono: true)
            pair("Invocation id", unit.invocationID.isEmpty ? "unknown" : unit.invocationID, mono: true)
            page += "</dl>\n"
        }
        if let context = record.context {
            page += "<h2 id=\"context\">Context</h2>\n<dl class=\"kv\">\n"
            let os = context.os
            pair("Host", os.hostname)
            pair("Operating system", os.distribution)
            pair("Kernel", "\(os.kernelName) \(os.kernelRelease) \(os.kernelVersion) \(os.machine)")
            let user = context.user
            pair("User", "\(user.name ?? "?") (uid \(user.uid), gid \(user.gid), euid \(user.euid), egid \(user.egid))")
            pair("Groups", user.groups.isEmpty ? "none" : user.groups.map(String.init).joined(separator: ", "))
            pair("Capabilities", context.capabilities.isEmpty ? "none" : context.capabilities.joined(separator: " "), mono: true)
            pair("Cgroup", context.cgroup, mono: true)
            if let program = context.program { pair("Program", program, mono: true) }
            pair("Supervisor pid", "\(context.supervisorPID)")
            pair("Context collected in", String(format: "%.2f ms", Double(context.collectionMicros) / 1000))
            page += "</dl>\n<h3>Network interfaces</h3>\n<table><tr><th>Name</th><th>Flags</th><th>Addresses</th><th>MAC</th></tr>\n"
            for interface in context.interfaces {
                page += "<tr><td class=\"mono\">\(e(interface.name))</td><td>\(e(interface.flags.joined(separator: " ")))</td>"
                page += "<td class=\"mono\">\(interface.addresses.map(e).joined(separator: "<br>"))</td><td class=\"mono\">\(e(interface.mac ?? ""))</td></tr>\n"
            }
            page += "</table>\n<h3>Environment (secrets removed)</h3>\n<table><tr><th>Variable</th><th>Value</th></tr>\n"
            for (name, value) in context.environment.sorted(by: { $0.key < $1.key }) {
                page += "<tr><td class=\"mono\">\(e(name))</td><td class=\"mono wrap\">\(e(value))</td></tr>\n"
            }
            page += "</table>\n"
        }

        // Counts.
        page += "<h2 id=\"counts\">Decisions</h2>\n<p>\(report.eventTotal) events, \(report.deniedTotal) denied.</p>\n"
        let decisions = RecordedName.decisionOrder
        page += "<table><tr><th>Action</th>" + decisions.map { "<th class=\"num\">\(e($0))</th>" }.joined() + "</tr>\n"
        for (action, values) in report.byAction {
            page += "<tr><td class=\"mono\">\(e(action))</td>"
                + decisions.map { "<td class=\"num\">\(values[$0] ?? 0)</td>" }.joined() + "</tr>\n"
        }
        page += "</table>\n"

        // Denied.
        page += "<h2 id=\"denied\">Denied (\(report.deniedTotal))</h2>\n"
        if report.denied.isEmpty {
            page += "<p class=\"muted\">Nothing was denied.</p>\n"
        } else {
            page += eventTable(report.denied)
        }

        // Process tree.
        page += "<h2 id=\"processes\">Process tree</h2>\n"
        if report.tree.fromEvents { page += "<p class=\"muted\">Rebuilt from the events' pids (no process records).</p>\n" }
        if report.tree.roots.isEmpty {
            page += "<p class=\"muted\">No processes recorded.</p>\n"
        } else {
            page += "<ul class=\"tree mono\">\n" + treeHTML(report.tree, report.tree.roots) + "</ul>\n"
        }

        // All events.
        page += "<h2 id=\"events\">All events (\(events.count))</h2>\n" + eventTable(events)
        page += "<p class=\"muted\">Times are UTC. Hashes are the SHA-256 chain links; <code>agentgate audit verify --session \(e(record.id))</code> recomputes them.</p>\n"
        page += "</body>\n</html>\n"
        return page
    }

    private func eventTable(_ events: [StoredEvent]) -> String {
        let e = HTML.escape
        var html = "<table><tr><th></th><th>Seq</th><th>Time (UTC)</th><th>PID</th><th>Action</th><th>Decision</th><th>What</th><th>Rule / reason</th><th>Hash</th></tr>\n"
        for stored in events {
            // Every column redacted the same way: what one hides, the next doesn't show.
            let event = AuditFormat.redacted(stored.event)
            var rule = AuditFormat.why(event)
            if let intent = event.intent { rule += " — " + intent }
            html += "<tr class=\"\(HTML.attribute(event.decisionName))\"><td class=\"mark\">\(e(event.decisionMark))</td>"
            html += "<td class=\"num\">\(stored.seq.map(String.init) ?? "")</td>"
            html += "<td class=\"mono\">\(e(AuditTime.iso8601(event.timeMicros)))</td><td class=\"num\">\(event.pid)</td>"
            html += "<td class=\"mono\">\(e(AuditFormat.shownAction(event)))</td><td>\(e(AuditFormat.decisionText(event)))</td>"
            html += "<td class=\"mono wrap\">\(e(AuditFormat.subject(event)))</td><td>\(e(rule))</td>"
            html += "<td class=\"mono\" title=\"\(HTML.attribute(stored.hash ?? ""))\">\(e(String((stored.hash ?? "").prefix(12))))</td></tr>\n"
        }
        return html + "</table>\n"
    }

    private func treeHTML(_ tree: ProcessTree, _ pids: [Int32]) -> String {
        let e = HTML.escape
        var html = ""
        for pid in pids {
            guard let node = tree.nodes[pid] else { continue }
            var text = "\(node.pid) " + tree.images(node).joined(separator: " → ")
            if let status = node.images.last?.exitStatus { text += "  [exit \(status)]" }
            html += "<li>\(e(text))"
            if !node.children.isEmpty { html += "\n<ul>\n" + treeHTML(tree, node.children) + "</ul>\n" }
            html += "</li>\n"
        }
        return html
    }
}
