import AgentGatePolicy
import AgentGateStore
import Glibc
import Synchronization

/// Where and how to export OTLP: `--otlp URL`, or the standard OTEL_EXPORTER_OTLP_* variables.
public struct OTLPConfiguration: Sendable, Equatable {
    public var logs: HTTPEndpoint
    public var metrics: HTTPEndpoint
    public var headers: [String: String] = [:]
    public var serviceName = "agentgate"

    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// The configuration from `option` (`--otlp`, a base URL like http://collector:4318) or else
    /// the environment: OTEL_EXPORTER_OTLP_ENDPOINT (a base URL: /v1/logs and /v1/metrics are
    /// appended), OTEL_EXPORTER_OTLP_LOGS_ENDPOINT / _METRICS_ENDPOINT (used as given),
    /// OTEL_EXPORTER_OTLP_HEADERS (`k=v,k2=v2`, values URL-encoded) and OTEL_SERVICE_NAME.
    /// nil when none is set.
    public static func resolve(option: String?, environment: [String: String]) throws(Invalid) -> OTLPConfiguration? {
        func endpoint(_ text: String, _ what: String) throws(Invalid) -> HTTPEndpoint {
            do throws(HTTPEndpoint.ParseError) {
                return try HTTPEndpoint.parse(text, defaultPort: 4318)
            } catch {
                throw Invalid(description: "\(what) \(error.description)")
            }
        }
        func appending(_ base: HTTPEndpoint, _ signal: String) -> HTTPEndpoint {
            var result = base
            result.path = (base.path.hasSuffix("/") ? String(base.path.dropLast()) : base.path) + signal
            return result
        }
        let base = option.flatMap { $0.isEmpty ? nil : $0 } ?? environment["OTEL_EXPORTER_OTLP_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 }
        let logsOverride = option == nil ? environment["OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 } : nil
        let metricsOverride = option == nil ? environment["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 } : nil
        guard base != nil || logsOverride != nil else { return nil }
        let what = option != nil ? "--otlp" : "OTEL_EXPORTER_OTLP_ENDPOINT"
        let baseEndpoint = try base.map { (text: String) throws(Invalid) -> HTTPEndpoint in try endpoint(text, what) }
        let logs = try logsOverride.map { (text: String) throws(Invalid) -> HTTPEndpoint in try endpoint(text, "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT") }
            ?? appending(baseEndpoint!, "/v1/logs")
        var metrics: HTTPEndpoint
        if let metricsOverride {
            metrics = try endpoint(metricsOverride, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
        } else if let baseEndpoint {
            metrics = appending(baseEndpoint, "/v1/metrics")
        } else {
            // Only a logs endpoint: metrics go beside it.
            metrics = logs
            metrics.path = logs.path.hasSuffix("/v1/logs") ? String(logs.path.dropLast("/v1/logs".count)) + "/v1/metrics" : "/v1/metrics"
        }
        var configuration = OTLPConfiguration(logs: logs, metrics: metrics)
        if let text = environment["OTEL_EXPORTER_OTLP_HEADERS"], !text.isEmpty {
            for pair in text.split(separator: ",") {
                guard let equals = pair.firstIndex(of: "=") else {
                    throw Invalid(description: "OTEL_EXPORTER_OTLP_HEADERS: \"\(pair)\" is not KEY=VALUE")
                }
                let name = pair[..<equals].trimmingSpaces, value = Self.percentDecoded(pair[pair.index(after: equals)...].trimmingSpaces)
                guard !name.isEmpty, HTTPPost.isHeaderSafe(name), HTTPPost.isHeaderSafe(value), !name.contains(":") else {
                    throw Invalid(description: "OTEL_EXPORTER_OTLP_HEADERS: \"\(name)\" is not a usable header")
                }
                configuration.headers[name] = value
            }
        }
        if let name = environment["OTEL_SERVICE_NAME"], !name.isEmpty { configuration.serviceName = name }
        return configuration
    }

    static func percentDecoded(_ text: String) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
               let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

private extension Substring {
    var trimmingSpaces: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}

/// Decisions as OTLP log records, and the supervisor's metrics (those `agentgate serve` shows
/// at /metrics) as OTLP metrics, over OTLP/HTTP with the JSON encoding (POST /v1/logs,
/// /v1/metrics). Hand-written rather than swift-otel: that would add ~7 minutes of build (and
/// async-http-client) to every CI run for two small JSON documents.
final class OTLPSink: EventSink {
    let configuration: OTLPConfiguration
    let session: SinkSession
    let retry: RetryPolicy
    let startNanos: UInt64
    /// The supervisor's counters, read on this sink's thread at each metrics export (never on a
    /// decision's); nil until the supervisor has made them.
    let metricsSource = Mutex<(@Sendable () -> SupervisorMetrics)?>(nil)
    /// Whether the metrics export already warned (once).
    private let metricsWarned = Atomic<Bool>(false)
    /// Dropped events, read at each export (`agentgate.otlp.dropped`).
    let droppedCount = Mutex<(@Sendable () -> Int)?>(nil)

    init(configuration: OTLPConfiguration, session: SinkSession, retry: RetryPolicy = RetryPolicy()) {
        self.configuration = configuration
        self.session = session
        self.retry = retry
        startNanos = UInt64(AuditClock.nowMicros()) * 1000
    }

    var name: String { "otlp \(configuration.logs)" }

    func wants(_ event: SinkEvent) -> Bool { true }

    func deliver(_ batch: [SinkEvent]) -> Int {
        var failures = 0
        // At most 512 records per request.
        var start = 0
        while start < batch.count {
            let slice = batch[start..<min(start + 512, batch.count)]
            let body = Array(logsDocument(slice).utf8)
            let outcome = retry.run { post(configuration.logs, body) }
            if !outcome.succeeded { failures += slice.count }
            start += slice.count
        }
        return failures
    }

    /// Every ~10 s of idleness and at the end: the metrics, cumulative since the session began.
    private let lastMetrics = Mutex<UInt64>(0)
    func idle() {
        let now = UInt64(AuditClock.nowMicros()) * 1000
        let due = lastMetrics.withLock { last -> Bool in
            guard now >= last + 10_000_000_000 else { return false }
            last = now
            return true
        }
        if due { exportMetrics() }
    }

    /// The last export, after the session's end: `agentgate.sessions.active` is 0 from then on.
    func close() { exportMetrics(sessionEnded: true) }

    private func exportMetrics(sessionEnded: Bool = false) {
        let metrics = metricsSource.withLock { $0 }?()
        let body = Array(metricsDocument(timeNanos: UInt64(AuditClock.nowMicros()) * 1000, metrics: metrics,
                                         sessionActive: !sessionEnded).utf8)
        let outcome = retry.run { post(configuration.metrics, body) }
        if !outcome.succeeded && !metricsWarned.exchange(true, ordering: .relaxed) {
            writeStandardError("agentgate: warning: otlp \(configuration.metrics): metrics could not be exported (\(outcome))\n")
        }
    }

    private func post(_ endpoint: HTTPEndpoint, _ body: [UInt8]) -> HTTPPost.Outcome {
        HTTPPost(endpoint: endpoint, headers: configuration.headers.sorted { $0.key < $1.key }).send(body)
    }

    // MARK: JSON documents (OTLP's JSON encoding: 64-bit integers as strings, enums as numbers)

    func resourceJSON() -> String {
        var json = "{\"attributes\":["
        json += Self.attribute("service.name", string: configuration.serviceName) + ","
        json += Self.attribute("host.name", string: session.hostName) + ","
        json += Self.attribute("user.id", string: "\(session.userID)") + ","
        json += Self.attribute("agentgate.session", string: session.sessionID) + ","
        json += Self.attribute("agentgate.agent", string: session.agent)
        json += "]}"
        return json
    }

    func logsDocument(_ batch: ArraySlice<SinkEvent>) -> String {
        var json = "{\"resourceLogs\":[{\"resource\":" + resourceJSON()
        json += ",\"scopeLogs\":[{\"scope\":{\"name\":\"agentgate\",\"version\":"
        AuditJSON.appendQuoted(AgentGateVersion.string, to: &json)
        json += "},\"logRecords\":["
        for (index, event) in batch.enumerated() {
            if index > 0 { json += "," }
            json += logRecord(event)
        }
        json += "]}]}]}"
        return json
    }

    func logRecord(_ event: SinkEvent) -> String {
        var attributes: [String] = []
        let severity: (number: Int, text: String)
        let body: String
        switch event.kind {
        case .decision(let d):
            let rule = d.ruleID ?? d.ruleIndex.map { "#\($0 + 1)" }
            severity = d.decision == .deny ? (13, "WARN") : (9, "INFO")
            body = "\(d.decision) \(d.action) \(d.target)" + (rule.map { " (rule \($0))" } ?? "") + ": \(d.reason)"
            attributes = [
                Self.attribute("process.pid", int: Int64(d.pid)),
                Self.attribute("process.parent_pid", int: Int64(d.ppid)),
                Self.attribute("process.executable.path", string: d.executable),
                Self.attribute("agentgate.action", string: "\(d.action)"),
                Self.attribute("agentgate.decision", string: "\(d.decision)"),
                Self.attribute("agentgate.target", string: d.target),
                Self.attribute("agentgate.syscall", string: d.syscall),
                Self.attribute("agentgate.reason", string: d.reason),
                Self.attribute("agentgate.enforced", bool: d.enforced),
                Self.attribute("agentgate.latency_us", int: d.latencyMicros),
            ]
            if let rule { attributes.append(Self.attribute("agentgate.rule", string: rule)) }
        case .kill(let by):
            severity = (13, "WARN")
            body = "session \(session.sessionID) killed by \(by)"
            attributes = [Self.attribute("agentgate.event", string: "kill"), Self.attribute("agentgate.by", string: by)]
        case .reload(let accepted, let sha, let message):
            severity = accepted ? (9, "INFO") : (17, "ERROR")
            body = message
            attributes = [Self.attribute("agentgate.event", string: "reload"),
                          Self.attribute("agentgate.reload", string: accepted ? "accepted" : "rejected")]
            if let sha { attributes.append(Self.attribute("agentgate.policy_sha256", string: sha)) }
        }
        let nanos = UInt64(max(event.timeMicros, 0)) * 1000
        var json = "{\"timeUnixNano\":\"\(nanos)\",\"observedTimeUnixNano\":\"\(nanos)\",\"severityNumber\":\(severity.number),"
        json += "\"severityText\":\"\(severity.text)\",\"body\":{\"stringValue\":"
        AuditJSON.appendQuoted(body, to: &json)
        json += "},\"attributes\":[" + attributes.joined(separator: ",") + "]}"
        return json
    }

    /// The six metrics of `agentgate serve`'s /metrics, named as OpenTelemetry names them, from
    /// `metrics` (nil before the supervisor counts anything: then only `agentgate.otlp.dropped`).
    func metricsDocument(timeNanos: UInt64, metrics: SupervisorMetrics?, sessionActive: Bool = true) -> String {
        let times = "\"startTimeUnixNano\":\"\(startNanos)\",\"timeUnixNano\":\"\(timeNanos)\""
        func point(_ value: UInt64, _ attributes: [String] = []) -> String {
            "{\"attributes\":[" + attributes.joined(separator: ",") + "]," + times + ",\"asInt\":\"\(value)\"}"
        }
        func header(_ name: String, _ description: String, _ unit: String) -> String {
            "{\"name\":\"\(name)\",\"description\":\"\(description)\",\"unit\":\"\(unit)\","
        }
        func sum(_ name: String, _ description: String, _ unit: String, _ points: [String]) -> String {
            header(name, description, unit) + "\"sum\":{\"dataPoints\":[" + points.joined(separator: ",")
                + "],\"aggregationTemporality\":2,\"isMonotonic\":true}}"
        }
        func gauge(_ name: String, _ description: String, _ unit: String, _ value: UInt64) -> String {
            header(name, description, unit) + "\"gauge\":{\"dataPoints\":[" + point(value) + "]}}"
        }
        var documents: [String] = []
        if let metrics {
            var decided: [String] = []
            for (action, byDecision) in metrics.decisions.sorted(by: { $0.key < $1.key }) {
                for (decision, count) in byDecision.sorted(by: { $0.key < $1.key }) {
                    decided.append(point(count, [Self.attribute("agentgate.action", string: action),
                                                 Self.attribute("agentgate.decision", string: decision)]))
                }
            }
            documents.append(sum("agentgate.decisions", "Decisions made, by action and decision", "{decision}", decided))
            // OTLP's histogram: bucketCounts has one more entry than explicitBounds (the last is +Inf).
            let total = metrics.latencyCounts.reduce(0, +)
            let latency = "{\"attributes\":[]," + times + ",\"count\":\"\(total)\",\"sum\":\(Self.number(metrics.latencySumSeconds)),"
                + "\"bucketCounts\":[" + metrics.latencyCounts.map { "\"\($0)\"" }.joined(separator: ",") + "],"
                + "\"explicitBounds\":[" + metrics.latencyBounds.map(Self.number).joined(separator: ",") + "]}"
            documents.append(header("agentgate.decision.latency", "Time from a trapped call to its answer (an ask's includes the person's)", "s")
                             + "\"histogram\":{\"dataPoints\":[" + latency + "],\"aggregationTemporality\":2}}")
            documents.append(gauge("agentgate.sessions.active", "Sessions this supervisor runs (0 once it has ended)", "{session}",
                                   sessionActive ? 1 : 0))
            documents.append(gauge("agentgate.asks.pending", "Asks waiting on a person", "{ask}", UInt64(max(0, metrics.asksPending))))
            documents.append(gauge("agentgate.audit.queue.depth", "Events handed to the audit writer and not yet written", "{event}",
                                   UInt64(max(0, metrics.auditQueueDepth))))
            documents.append(sum("agentgate.audit.write_errors", "Audit writes that failed (events kept in the fallback file or lost)",
                                 "{error}", [point(metrics.auditWriteErrors)]))
        }
        let dropped = UInt64(max(0, droppedCount.withLock { $0 }?() ?? 0))
        documents.append(sum("agentgate.otlp.dropped", "Events this exporter dropped because its queue was full", "{event}", [point(dropped)]))
        return "{\"resourceMetrics\":[{\"resource\":" + resourceJSON()
            + ",\"scopeMetrics\":[{\"scope\":{\"name\":\"agentgate\",\"version\":" + Self.quoted(AgentGateVersion.string) + "},\"metrics\":["
            + documents.joined(separator: ",") + "]}]}]}"
    }

    /// A finite double as JSON (Swift's description: `1e-05`, `0.25`); 0 for what JSON can't say.
    static func number(_ value: Double) -> String {
        value.isFinite ? "\(value)" : "0"
    }

    static func quoted(_ text: String) -> String {
        var json = ""
        AuditJSON.appendQuoted(text, to: &json)
        return json
    }

    static func attribute(_ key: String, string value: String) -> String {
        var json = "{\"key\":\"\(key)\",\"value\":{\"stringValue\":"
        AuditJSON.appendQuoted(value, to: &json)
        return json + "}}"
    }

    static func attribute(_ key: String, int value: Int64) -> String {
        "{\"key\":\"\(key)\",\"value\":{\"intValue\":\"\(value)\"}}"
    }

    static func attribute(_ key: String, bool value: Bool) -> String {
        "{\"key\":\"\(key)\",\"value\":{\"boolValue\":\(value)}}"
    }
}
