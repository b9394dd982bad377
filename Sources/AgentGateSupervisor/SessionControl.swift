import AgentGatePolicy
import AgentGateStore
import CSupport
import Glibc

/// What the control socket does to the session: pause, resume, kill, status.
extension Supervisor {
    /// The session's control socket, listening, or nil without a control directory.
    func openControlSocket() throws(SupervisorError) -> ControlServer? {
        guard let directory = options.controlDirectory else { return nil }
        guard let path = directory.socketPath(session: options.sessionName) else {
            throw SupervisorError(.listener, "the session id \"\(options.sessionName)\" can't name a control socket in \(directory.path) "
                                  + "(no slash or leading dot, and short enough for a socket address); choose another --session")
        }
        return try ControlServer.listen(at: path)
    }

    func startControl(_ control: ControlServer, core: SupervisorCore, receivers: Receivers, reaper: SessionReaper,
                      reloader: PolicyReloader?) -> Bool {
        control.start(log: log) { [self] request, peer in
            controlResponse(request, peer: peer, core: core, receivers: receivers, reaper: reaper, reloader: reloader)
        }
    }

    /// What the session has counted, for `status` (`agentgate serve`'s /metrics) and the OTLP export.
    static func metrics(counts: DecisionCounts, writer: AuditWriter?, asks: AskBroker?) -> SupervisorMetrics {
        counts.metrics(auditQueueDepth: writer?.queuedCount ?? 0, auditWriteErrors: writer?.writeErrors ?? 0,
                       asksPending: asks?.pending().count ?? 0)
    }

    private func controlResponse(_ request: ControlRequest, peer: ControlPeer, core: SupervisorCore, receivers: Receivers,
                                 reaper: SessionReaper, reloader: PolicyReloader?) -> ControlResponse {
        let session = options.sessionName
        guard let operation = ControlOperation(rawValue: request.op) else {
            let known = ControlOperation.allCases.map(\.rawValue).joined(separator: ", ")
            return ControlResponse(ok: false, error: "unknown op \"\(request.op)\" (this supervisor knows \(known))", session: session)
        }
        let user = peer.userDescription
        switch operation {
        case .status:
            let metrics = Self.metrics(counts: core.recorder.counts, writer: writer, asks: core.asks)
            return ControlResponse(ok: true, session: session, paused: receivers.isPaused, metrics: metrics)
        case .reload:
            if peer.confined {
                log.warning("control socket: refused a reload for pid \(peer.pid), which is a supervised agent or acts for one")
                return ControlResponse(ok: false, error: Self.confinedRefusal, session: session)
            }
            guard let reloader else {
                return ControlResponse(ok: false, error: "the built-in policy is in force; there is no policy file to reload", session: session)
            }
            let outcome = reloader.reload(announceUnchanged: true)
            return ControlResponse(ok: outcome.loaded, error: outcome.loaded ? nil : outcome.message, session: session,
                                   paused: receivers.isPaused, message: outcome.message)
        case .pause:
            if !receivers.isPaused {
                receivers.pause()
                core.recorder.recordControl("agentgate pause", decision: .log, peer: peer,
                                            reason: "paused by \(user) with agentgate pause: new trapped calls wait")
                log.info("session paused by \(user)")
            }
        case .resume:
            if peer.confined {
                log.warning("control socket: refused to resume for pid \(peer.pid), which is a supervised agent or acts for one")
                return ControlResponse(ok: false, error: Self.confinedRefusal, session: session)
            }
            if receivers.isPaused {
                receivers.resume()
                core.recorder.recordControl("agentgate resume", decision: .log, peer: peer,
                                            reason: "resumed by \(user) with agentgate resume")
                log.info("session resumed by \(user)")
            }
        case .kill:
            let first = killer.withLock { killer in
                defer { if killer == nil { killer = user } }
                return killer == nil
            }
            if first {
                core.recorder.recordControl("agentgate kill", decision: .deny, peer: peer,
                                            reason: "killed by \(user) with agentgate kill")
                core.recorder.sinks?.publish(SinkEvent(.kill(by: user)))
            }
            // The whole tree: the cgroup's cgroup.kill, else every descendant; the waiting loop
            // keeps at it until none is left.
            reaper.signalAll(SIGKILL, processes: core.processes)
        case .approvals:
            let now = agentgate_monotonic_ns()
            let asks = core.asks.pending().map { ask in
                var listing = AskListing(id: ask.id, session: session, ageSeconds: ask.ageSeconds(now: now),
                           secondsLeft: Int((ask.deadline > now ? ask.deadline - now : 0) / 1_000_000_000),
                           action: ask.action.kind.name, target: Self.listed(ask.shownTarget), intent: Self.listed(ask.intent),
                           pid: ask.pid,
                           executable: ask.executable, agent: ask.agent, rule: ask.rule)
                // The rule is shown before it is saved, here as at the terminal.
                if let proposal = core.asks.proposal(for: ask.id, .always(.usual)) {
                    listing.always = proposal.refusal.map { "nothing can be saved: \($0)" }
                        ?? "allow \(proposal.summary) (into \(proposal.file))" + (proposal.note.map { "; \($0)" } ?? "")
                }
                return listing
            }
            return ControlResponse(ok: true, session: session, paused: receivers.isPaused, asks: asks)
        case .approve, .deny:
            return answerAsk(request, allow: operation == .approve, peer: peer, core: core)
        }
        return ControlResponse(ok: true, session: session, paused: receivers.isPaused)
    }

    /// A listed ask's text, cut so that one huge command line can't make the listing too long
    /// for the protocol's lines (its full text is in the audit once decided).
    static func listed(_ text: String) -> String {
        text.utf8.count <= 2000 ? text : String(decoding: text.utf8.prefix(2000), as: UTF8.self) + "… (\(text.utf8.count) bytes)"
    }

    /// Why a confined peer may not answer asks or resume a session.
    static let confinedRefusal = "permission denied: the caller is a supervised agent, or another session's supervisor acting "
        + "for one, so it may not answer asks or resume a session; run agentgate from a terminal outside any agent's session"

    /// `approve` / `deny`: answers a pending ask for the peer (never for a process of the
    /// session itself, which can't reach the socket anyway).
    private func answerAsk(_ request: ControlRequest, allow: Bool, peer: ControlPeer, core: SupervisorCore) -> ControlResponse {
        let session = options.sessionName
        guard let id = request.id, !id.isEmpty else {
            return ControlResponse(ok: false, error: "\(allow ? "approve" : "deny") needs the id of a pending ask", session: session)
        }
        if peer.confined {
            log.warning("control socket: refused an answer to ask \(id) from pid \(peer.pid), which is a supervised agent or acts for one")
            return ControlResponse(ok: false, error: Self.confinedRefusal, session: session)
        }
        if core.membership(of: peer.pid) == .session {
            log.warning("control socket: refused an answer to ask \(id) from pid \(peer.pid), a process of the session itself")
            return ControlResponse(ok: false, error: "permission denied: a supervised process can't answer the session's asks",
                                   session: session)
        }
        var breadth = AskBreadth.usual
        if let name = request.breadth {
            guard let parsed = AskBreadth(rawValue: name) else {
                let known = AskBreadth.allCases.map(\.rawValue).joined(separator: ", ")
                return ControlResponse(ok: false, error: "unknown breadth \"\(name)\" (expected \(known))", session: session)
            }
            breadth = parsed
        }
        let saving = request.always == true
        let answer: AskAnswer = allow ? (saving ? .always(breadth) : .allowOnce) : (saving ? .never(breadth) : .deny)
        switch core.asks.answer(id, answer, by: .socket(user: peer.userDescription, pid: peer.pid)) {
        case .success(let outcome):
            log.info("ask \(id) \(DenialExplanation.printable(outcome.description))")
            return ControlResponse(ok: true, session: session, message: outcome.description)
        case .failure(let failure):
            return ControlResponse(ok: false, error: failure.message, session: session)
        }
    }
}

extension DecisionRecorder {
    /// Records what a control command did to the session, as a `syscall` action by the process
    /// that sent it (which is outside the session).
    func recordControl(_ command: String, decision: RecordedDecision, peer: ControlPeer, reason: String) {
        let event = DecisionEvent(
            timeMicros: AuditClock.nowMicros(), pid: peer.pid, ppid: 0, executable: "agentgate", syscall: command,
            action: .syscall, target: command, decision: decision, reason: reason, latencyMicros: 0,
            notable: decision == .log)
        echo?(event)
        writer?.record(event)
    }
}

extension Supervisor {
    /// Always and Never answers save their rule with `saver` and put the policy with it in
    /// force at once (recorded as a policy reload).
    func installRuleSaving(_ saver: PolicyFileAmender, core: SupervisorCore) {
        let log = self.log, writer = self.writer
        core.asks.setRuleHandling(save: { ask, answer, version in
            let decision = answer.savedDecision?.name ?? "allow"
            switch saver.save(ask.action, answer: answer, policy: version.policy, askRuleIndex: ask.ruleIndex) {
            case .success(let amendment):
                core.policies.replace(policy: amendment.loaded.policy, sha256: amendment.loaded.sha256)
                var note = "rule saved to \(amendment.path): \(decision) \(amendment.proposal.summary)"
                if let narrowed = amendment.proposal.note { note += " (\(narrowed))" }
                if let remark = amendment.remark { note += " (\(remark))" }
                let shown = DenialExplanation.printable(note), digest = amendment.loaded.sha256.prefix(12)
                log.notice("ask \(ask.id): \(shown); the policy with it is in force (sha256 \(digest))")
                writer?.record(PolicyReloader.event(target: amendment.path, reason: "ask \(ask.id): \(note)",
                                                    sha256: amendment.loaded.sha256))
                return note
            case .failure(let failure):
                log.warning("ask \(ask.id): the \(decision) rule was not saved: \(DenialExplanation.printable(failure.message))")
                return "rule not saved: \(failure.message)"
            }
        }, propose: { ask, answer, version in
            saver.preview(ask.action, answer: answer, policy: version.policy, askRuleIndex: ask.ruleIndex)
        })
    }
}
