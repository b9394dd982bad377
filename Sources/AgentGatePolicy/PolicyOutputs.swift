import Yams

/// Where a policy sends its decisions besides the audit database: `audit: {journal: true}` and
/// `webhooks:` (top-level file only; an included file can't redirect a session's events).
public struct PolicyOutputs: Sendable, Equatable {
    /// `audit: {journal: true}`: every decision also goes to systemd's journal.
    public var journal = false
    /// `webhooks:`, in file order.
    public var webhooks: [Webhook] = []

    public init(journal: Bool = false, webhooks: [Webhook] = []) {
        self.journal = journal
        self.webhooks = webhooks
    }
}

/// One `webhooks:` entry: where to POST which events, and where its HMAC secret is read from
/// (never the policy itself: a policy is shown, diffed and committed).
public struct Webhook: Sendable, Equatable {
    public var endpoint: HTTPEndpoint
    public var events: Set<WebhookEvent>
    public var secret: WebhookSecret

    public init(endpoint: HTTPEndpoint, events: Set<WebhookEvent>, secret: WebhookSecret) {
        self.endpoint = endpoint
        self.events = events
        self.secret = secret
    }
}

public enum WebhookEvent: String, Sendable, CaseIterable, Comparable {
    case deny, ask, kill, reload

    public static func < (a: Self, b: Self) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

public enum WebhookSecret: Sendable, Equatable {
    /// `secret_file: PATH`: the file's content, trailing newline removed.
    case file(String)
    /// `secret_env: NAME`: the supervisor's environment variable.
    case environment(String)
}

/// `http://host[:port][/path]`. Only plain HTTP: AgentGate has no TLS stack; a collector or
/// relay on loopback forwards over TLS.
public struct HTTPEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: UInt16
    /// Starts with `/`.
    public var path: String

    public init(host: String, port: UInt16, path: String) {
        self.host = host
        self.port = port
        self.path = path
    }

    public var description: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "http://\(shownHost):\(port)\(path)"
    }

    /// Why `text` isn't a usable endpoint.
    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Parses `http://host[:port][/path]` (port 80 by default). https is refused with the reason.
    public static func parse(_ text: String, defaultPort: UInt16 = 80) throws(ParseError) -> HTTPEndpoint {
        let lower = text.lowercased()
        if lower.hasPrefix("https://") {
            throw ParseError(description: "\(text): https is not supported (AgentGate has no TLS stack); "
                             + "send to a collector or relay on loopback over http:// and let it forward over TLS")
        }
        guard lower.hasPrefix("http://") else {
            throw ParseError(description: "\(text): expected an http:// URL, like http://127.0.0.1:4318")
        }
        let rest = text.dropFirst("http://".count)
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var path = String(rest[authorityEnd...])
        if let hash = path.firstIndex(of: "#") { path = String(path[..<hash]) }
        if path.isEmpty || path.hasPrefix("?") { path = "/" + path }
        guard !authority.contains("@") else {
            throw ParseError(description: "\(text): credentials in the URL are not supported; use headers")
        }
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw ParseError(description: "\(text): unterminated [IPv6 address]")
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw ParseError(description: "\(text): expected :PORT after ]") }
                portText = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty, host.allSatisfy({ !$0.isWhitespace && $0 != "/" }) else {
            throw ParseError(description: "\(text): expected a host name or address after http://")
        }
        var port = defaultPort
        if let portText {
            guard let number = UInt16(portText), number > 0 else {
                throw ParseError(description: "\(text): \"\(portText)\" is not a port (1-65535)")
            }
            port = number
        }
        guard path.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "\u{7f}" && $0.asciiValue! >= 0x20 }) else {
            throw ParseError(description: "\(text): the path must be ASCII without spaces or control characters")
        }
        return HTTPEndpoint(host: String(host), port: port, path: path)
    }
}

extension PolicyParser {
    static let webhookKeys = "url, events, secret_file, secret_env"

    /// `webhooks: [{url, events, secret_file | secret_env}]` (top-level file only).
    func readWebhooks(_ value: Node, keyNode: Node, depth: Int) throws(PolicyLoadError) -> [Webhook] {
        guard depth == 0 else {
            throw error(at: keyNode, "\"webhooks\" may only be set in the top-level policy, not in an included file")
        }
        if isNull(value) { return [] }
        guard case .sequence(let sequence) = value else {
            throw error(at: value, "expected \"webhooks\" to be a list of {\(Self.webhookKeys)}; found \(describe(value))")
        }
        var webhooks: [Webhook] = []
        let eventNames = WebhookEvent.allCases.map(\.rawValue).joined(separator: ", ")
        for item in sequence {
            guard case .mapping(let mapping) = item else {
                throw error(at: item, "expected a webhook to be a mapping with keys \(Self.webhookKeys); found \(describe(item))")
            }
            var endpoint: HTTPEndpoint?
            var events: Set<WebhookEvent>?
            var secret: WebhookSecret?
            for (keyNode, field) in mapping {
                switch try key(keyNode) {
                case "url":
                    let text = try string(field, key: "webhooks.url", expected: "an http:// URL")
                    do throws(HTTPEndpoint.ParseError) {
                        endpoint = try HTTPEndpoint.parse(text)
                    } catch {
                        throw self.error(at: field, "webhook url \(error.description)")
                    }
                case "events":
                    var set = Set<WebhookEvent>()
                    for name in try stringList(field, key: "webhooks.events", expected: "a list of \(eventNames)") {
                        guard let event = WebhookEvent(rawValue: name.text) else {
                            throw error(at: name.node, "unknown webhook event \"\(name.text)\"; expected one of \(eventNames)")
                        }
                        set.insert(event)
                    }
                    guard !set.isEmpty else { throw error(at: field, "a webhook needs at least one event (\(eventNames))") }
                    events = set
                case "secret_file", "secret_env":
                    let name = try key(keyNode)
                    guard secret == nil else {
                        throw error(at: keyNode, "a webhook takes one of secret_file and secret_env, not both")
                    }
                    let text = try string(field, key: "webhooks.\(name)", expected: name == "secret_file" ? "a file path" : "a variable name")
                    guard !text.isEmpty else { throw error(at: field, "empty webhooks.\(name)") }
                    if name == "secret_file" {
                        secret = .file(Self.resolve(text, relativeTo: source))
                    } else {
                        guard text.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }) else {
                            throw error(at: field, "\"\(text)\" is not an environment variable name")
                        }
                        secret = .environment(text)
                    }
                case "secret":
                    throw error(at: keyNode, "a webhook's secret is never written in the policy; use secret_file or secret_env")
                case let other:
                    throw error(at: keyNode, "unknown key \"\(other)\" in webhook; expected one of \(Self.webhookKeys)")
                }
            }
            guard let endpoint else { throw error(at: item, "a webhook needs a url") }
            guard let secret else { throw error(at: item, "a webhook needs secret_file or secret_env (the HMAC key)") }
            webhooks.append(Webhook(endpoint: endpoint, events: events ?? Set(WebhookEvent.allCases), secret: secret))
        }
        return webhooks
    }
}

/// Which files of a policy.d directory are read, and in which order.
public enum PolicyDropIns {
    /// `*.yaml` names not starting with a dot (editors' and package managers' leftovers are
    /// skipped), in byte order of their names: `10-base.yaml` before `20-team.yaml`.
    public static func ordered(_ names: [String]) -> [String] {
        names.filter { $0.hasSuffix(".yaml") && !$0.hasPrefix(".") && $0.count > ".yaml".count }
            .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }
}
