import AgentGatePolicy
import AgentGateStore
import Crypto
import Foundation

/// One `webhooks:` entry: each wanted event (deny, ask, kill, reload) POSTed as JSON, signed:
/// `X-AgentGate-Timestamp: <unix seconds>` and
/// `X-AgentGate-Signature: sha256=<hex HMAC-SHA256 over "<timestamp>.<body>">`, so a receiver
/// can refuse a forged or replayed delivery. Retried with backoff, bounded, on the sink's thread.
struct WebhookSink: EventSink {
    let webhook: Webhook
    let key: SymmetricKey
    let session: SinkSession
    let retry: RetryPolicy

    var name: String { "webhook \(webhook.endpoint)" }

    /// Why a webhook can't start: its secret can't be read.
    struct SecretUnavailable: Error, CustomStringConvertible {
        let description: String
    }

    /// The secret from the file or variable the policy names; an empty one is refused.
    static func secret(_ secret: WebhookSecret, environment: [String: String]) throws(SecretUnavailable) -> [UInt8] {
        var bytes: [UInt8]
        switch secret {
        case .environment(let name):
            guard let value = environment[name] else {
                throw SecretUnavailable(description: "webhook secret: $\(name) is not set")
            }
            bytes = Array(value.utf8)
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw SecretUnavailable(description: "webhook secret: cannot read \(path)")
            }
            bytes = Array(data)
            while let last = bytes.last, last == 10 || last == 13 { bytes.removeLast() }
        }
        guard !bytes.isEmpty else { throw SecretUnavailable(description: "webhook secret: it is empty") }
        return bytes
    }

    init(webhook: Webhook, secret: [UInt8], session: SinkSession, retry: RetryPolicy = RetryPolicy(attempts: 4, firstDelayMilliseconds: 500)) {
        self.webhook = webhook
        key = SymmetricKey(data: secret)
        self.session = session
        self.retry = retry
    }

    func wants(_ event: SinkEvent) -> Bool {
        guard let kind = Self.eventName(event) else { return false }
        return webhook.events.contains(kind)
    }

    /// A decision is a `deny` event when denied, an `ask` event when a person was asked
    /// (answered either way, or not at all); kills and reloads are their own.
    static func eventName(_ event: SinkEvent) -> WebhookEvent? {
        switch event.kind {
        case .decision(let decision):
            if decision.decision == .deny { return WebhookEvent.deny }
            if decision.decision == .ask || decision.answeredVia != nil { return WebhookEvent.ask }
            return nil
        case .kill: return WebhookEvent.kill
        case .reload: return WebhookEvent.reload
        }
    }

    func deliver(_ batch: [SinkEvent]) -> Int {
        var failures = 0
        for event in batch {
            let body = Array(body(event).utf8)
            let outcome = retry.run {
                // Signed at each attempt: the timestamp says when it was sent.
                let timestamp = "\(Int(Date().timeIntervalSince1970))"
                return HTTPPost(endpoint: webhook.endpoint).send(body, extraHeaders: [
                    ("X-AgentGate-Event", Self.eventName(event)?.rawValue ?? ""),
                    ("X-AgentGate-Timestamp", timestamp),
                    ("X-AgentGate-Signature", "sha256=" + signature(timestamp: timestamp, body: body)),
                ])
            }
            if !outcome.succeeded { failures += 1 }
        }
        return failures
    }

    /// Hex HMAC-SHA256 of `<timestamp>.<body>`.
    func signature(timestamp: String, body: [UInt8]) -> String {
        var signed = Array(timestamp.utf8)
        signed.append(UInt8(ascii: "."))
        signed += body
        let code = HMAC<SHA256>.authenticationCode(for: signed, using: key)
        return code.map { String(format: "%02x", $0) }.joined()
    }

    /// `{"event":"deny","session":…,"time":…,…}`.
    func body(_ event: SinkEvent) -> String {
        var fields: [(String, String?)] = [
            ("event", Self.eventName(event)?.rawValue),
            ("session", session.sessionID),
            ("agent", session.agent),
            ("host", session.hostName),
        ]
        var json = "{\"time_us\":\(event.timeMicros),\"uid\":\(session.userID)"
        switch event.kind {
        case .decision(let d):
            json += ",\"pid\":\(d.pid)"
            fields += [("action", "\(d.action)"), ("decision", "\(d.decision)"), ("target", d.target),
                       ("rule", d.ruleID ?? d.ruleIndex.map { "#\($0 + 1)" }), ("reason", d.reason),
                       ("executable", d.executable), ("syscall", d.syscall), ("answered_by", d.answeredBy)]
            json += ",\"enforced\":\(d.enforced)"
        case .kill(let by):
            fields.append(("killed_by", by))
        case .reload(let accepted, let sha, let message):
            json += ",\"accepted\":\(accepted)"
            fields += [("policy_sha256", sha), ("message", message)]
        }
        for (name, value) in fields {
            guard let value else { continue }
            json += ",\"\(name)\":"
            AuditJSON.appendQuoted(value, to: &json)
        }
        return json + "}"
    }
}
