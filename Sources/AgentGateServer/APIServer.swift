import AgentGateCLI
import AgentGatePolicy
import AgentGateSupervisor
import Foundation
import Hummingbird
import Logging
import NIOCore

/// The request context: Hummingbird's, and the connection (so a stalled event stream can be closed).
struct APIRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// What `agentgate serve` serves, and to whom.
public struct ServerSettings: Sendable {
    public var listen: ListenAddress
    public var databasePath: String
    public var token: ServerToken
    /// `--policy` for /api/v1/check (nil: found as `agentgate check` finds it).
    public var policy: String?
    /// Where control sockets are found, and `check`'s PATH and HOME.
    public var environment: [String: String]

    public init(listen: ListenAddress, databasePath: String, token: ServerToken, policy: String?, environment: [String: String]) {
        self.listen = listen
        self.databasePath = databasePath
        self.token = token
        self.policy = policy
        self.environment = environment
    }

    /// Off loopback, anyone who can reach the port could read what agents did.
    public var tokenRequiredForReads: Bool { !listen.isLoopback }
}

/// `agentgate serve`: the JSON API, the dashboard and /metrics (docs/openapi.json).
public enum APIServer {
    /// The dashboard page and this API's OpenAPI document, embedded in the binary.
    static let dashboardPage: [UInt8] = PackageResources.dashboard_html
    static let openAPIDocument: [UInt8] = PackageResources.openapi_json

    /// Serves until SIGINT or SIGTERM. `onListening` gets the bound port (for `--listen …:0`).
    public static func run(_ settings: ServerSettings, logger: Logger, onListening: @escaping @Sendable (Int) -> Void) async throws {
        let app = Application(
            router: router(settings),
            configuration: .init(address: .hostname(settings.listen.host, port: settings.listen.port), serverName: "agentgate"),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? settings.listen.port) },
            logger: logger)
        try await app.runService()
    }

    static func router(_ settings: ServerSettings) -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        router.add(middleware: TokenCheck(token: settings.token, everyRequest: settings.tokenRequiredForReads))
        let reads = AuditReads(path: settings.databasePath)
        let fleet = SupervisorFleet(environment: settings.environment)

        router.get("/") { _, _ in APIResponse.bytes(dashboardPage, contentType: "text/html; charset=utf-8") }
        router.get("/api/v1/openapi.json") { _, _ in APIResponse.bytes(openAPIDocument, contentType: "application/json") }
        router.get("/api/v1/health") { _, _ in
            let running = try await offloaded { fleet.statuses().answered.count }
            return APIResponse.json([
                "status": "ok", "version": AgentGateVersion.string, "database": settings.databasePath,
                "database_present": reads.exists, "sessions_running": running,
                "token_required_for_reads": settings.tokenRequiredForReads,
            ])
        }
        router.get("/metrics") { _, _ in
            let scrape = try await offloaded { fleet.statuses() }
            return APIResponse.bytes(Metrics.render(scrape.answered, unreachable: scrape.unreachable),
                                     contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        router.get("/api/v1/sessions") { request, _ in
            try await answering {
                let query = QueryParameters(request: request)
                let agent = try query.string("agent", maxLength: 256)
                let since = try AuditReads.since(try query.string("since", maxLength: 64))
                let running = try query.boolean("running")
                let limit = Int(try query.integer("limit", range: 1...10_000) ?? 500)
                let sessions = try await offloaded {
                    let statuses = Dictionary(fleet.statuses().answered.map { ($0.session, $0) }, uniquingKeysWith: { first, _ in first })
                    return JSONBox(try reads.sessions(agent: agent, since: since, running: running, limit: limit, statuses: statuses))
                }
                return APIResponse.json(["sessions": sessions.value])
            }
        }
        router.get("/api/v1/sessions/:id") { request, context in
            try await answering {
                let id = try sessionParameter(context)
                let session = try await offloaded {
                    let statuses = Dictionary(fleet.statuses().answered.map { ($0.session, $0) }, uniquingKeysWith: { first, _ in first })
                    return JSONBox(try reads.session(id, statuses: statuses))
                }
                return APIResponse.json(session.value)
            }
        }
        router.get("/api/v1/sessions/:id/events") { request, context in
            try await answering {
                let id = try sessionParameter(context)
                let query = QueryParameters(request: request)
                let filter = EventFilter(decision: try query.oneOf("decision", EventFilter.decisions),
                                         action: try query.oneOf("action", EventFilter.actions),
                                         since: try AuditReads.since(try query.string("since", maxLength: 64)),
                                         text: try query.string("grep"))
                let after = try query.integer("after", range: 0...Int64.max)
                let limit = Int(try query.integer("limit", range: 1...10_000) ?? 500)
                let page = try await offloaded { JSONBox(try reads.events(session: id, filter: filter, after: after, limit: limit)) }
                return APIResponse.json(page.value)
            }
        }
        router.get("/api/v1/events/stream") { request, context in
            try await answering {
                let query = QueryParameters(request: request)
                var filter = EventFilter(decision: try query.oneOf("decision", EventFilter.decisions),
                                         action: try query.oneOf("action", EventFilter.actions))
                filter.sessionID = try query.string("session", maxLength: 128)
                var after = try query.integer("after", range: 0...Int64.max)
                if after == nil, let lastEventID = request.headers.first(where: { $0.name.canonicalName == "last-event-id" })?.value {
                    guard let id = Int64(lastEventID.trimmingCharacters(in: .whitespaces)), id >= 0 else {
                        throw APIError(.badRequest, "Last-Event-ID must be an event id (a non-negative integer)")
                    }
                    after = id
                }
                return try EventStream.response(reads: reads, filter: filter, after: after, channel: context.channel)
            }
        }
        router.get("/api/v1/approvals") { request, _ in
            try await answering {
                let session = try QueryParameters(request: request).string("session", maxLength: 128)
                let asks = try await offloaded { try fleet.asks(session: session) }
                let encoder = JSONEncoder()
                let objects = asks.compactMap { ask in
                    (try? encoder.encode(ask)).flatMap { try? JSONSerialization.jsonObject(with: $0) }
                }
                return APIResponse.json(["approvals": objects])
            }
        }
        for approve in [true, false] {
            router.post("/api/v1/approvals/:id/\(approve ? "approve" : "deny")") { request, context in
                try await answering {
                    guard let id = context.parameters.get("id"), !id.isEmpty, id.utf8.count <= 128 else {
                        throw APIError(.badRequest, "missing the ask's id")
                    }
                    let answer = try await decodeBody(AskAnswerBody.self, request, context, optional: true,
                                                          keys: ["session", "always", "breadth"]) ?? AskAnswerBody()
                    if let breadth = answer.breadth, !["usual", "exact", "directory"].contains(breadth) {
                        throw APIError(.badRequest, "breadth must be usual, exact or directory")
                    }
                    let response = try await offloaded {
                        try fleet.answer(id, approve: approve, session: answer.session, always: answer.always ?? false, breadth: answer.breadth)
                    }
                    return APIResponse.json(["ok": true, "session": response.session ?? "", "message": response.message ?? (approve ? "approved" : "denied")])
                }
            }
        }
        for operation in [ControlOperation.kill, .pause, .resume, .reload] {
            router.post("/api/v1/sessions/:id/\(operation.rawValue)") { _, context in
                try await answering {
                    let id = try sessionParameter(context)
                    let response = try await offloaded {
                        let target = try fleet.resolve(id)
                        return try fleet.send(ControlRequest(op: operation.rawValue), session: target.id, socket: target.socket)
                    }
                    var object: [String: Any] = ["ok": true, "session": response.session ?? id]
                    if let message = response.message { object["message"] = message }
                    return APIResponse.json(object)
                }
            }
        }
        router.post("/api/v1/check") { request, context in
            try await answering {
                guard let body = try await decodeBody(CheckRequestBody.self, request, context, optional: false,
                                                         keys: ["action", "target", "argv", "cwd", "agent", "session"]) else {
                    throw APIError(.badRequest, "missing the JSON body: {\"action\": \"exec\", \"argv\": [\"git\", \"status\"]}")
                }
                let outcome = try await offloaded { JSONBox(try check(body, settings: settings)) }
                var object = outcome.value
                // The notes say what paths resolved to, as the server's user sees them: only for
                // a caller with the token (the verdict alone is what an agent asking first needs).
                if !settings.token.authorizes(request.headers[.authorization]), let notes = object["notes"] as? [String], !notes.isEmpty {
                    object["notes"] = ["notes (how the target resolved) are shown with the bearer token only"]
                }
                return APIResponse.json(object)
            }
        }
        return router
    }

    static func sessionParameter(_ context: APIRequestContext) throws(APIError) -> String {
        guard let id = context.parameters.get("id"), !id.isEmpty, id.utf8.count <= 128 else {
            throw APIError(.badRequest, "missing the session id")
        }
        return id
    }

    /// `body` answered, or its APIError as a JSON error response.
    static func answering(_ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch let error as APIError {
            return error.response
        }
    }

    /// The request's JSON body (at most 1 MiB); nil when empty and `optional`.
    static func decodeBody<T: Decodable>(_ type: T.Type, _ request: Request, _ context: APIRequestContext, optional: Bool,
                                         keys: Set<String>) async throws -> T? {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: 1 << 20)
        } catch {
            throw APIError(.badRequest, "the body is larger than 1 MiB")
        }
        if buffer.readableBytes == 0 && optional { return nil }
        // Decodable takes null for an absent optional; the API's fields are never null.
        if let object = try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any],
           let key = object.first(where: { keys.contains($0.key) && $0.value is NSNull })?.key {
            throw APIError(.badRequest, "\"\(key)\" is null: leave it out instead")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch {
            throw APIError(.badRequest, "the body is not the JSON object this endpoint takes: \(Self.describe(error))")
        }
    }

    static func describe(_ error: any Error) -> String {
        switch error as? DecodingError {
        case .keyNotFound(let key, _): "missing \"\(key.stringValue)\""
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            "wrong type at \"\(context.codingPath.map(\.stringValue).joined(separator: "."))\""
        case .dataCorrupted(let context): context.codingPath.isEmpty ? "not JSON" : "bad value at \"\(context.codingPath.map(\.stringValue).joined(separator: "."))\""
        default: "not JSON"
        }
    }

    /// `POST /api/v1/check`: `agentgate check`'s evaluation of one action.
    static func check(_ body: CheckRequestBody, settings: ServerSettings) throws(APIError) -> [String: Any] {
        // exec: argv, else the command line in target; every other action: target.
        var arguments = body.action == "exec" ? body.argv ?? [] : []
        if arguments.isEmpty, let target = body.target { arguments = [target] }
        guard (body.argv ?? []).count <= 4096, arguments.allSatisfy({ $0.utf8.count <= 65536 && !$0.utf8.contains(0) }) else {
            throw APIError(.badRequest, "argv is too long, or has a NUL byte")
        }
        if let cwd = body.cwd, !cwd.hasPrefix("/") || cwd.utf8.contains(0) || cwd.utf8.count > 4096 {
            throw APIError(.badRequest, "cwd must be an absolute path (at most 4096 bytes)")
        }
        if (body.target?.utf8.count ?? 0) > 4096 || body.target?.utf8.contains(0) == true || (body.agent?.utf8.count ?? 0) > 256
            || (body.session?.utf8.count ?? 0) > 128 || body.argv?.isEmpty == true
            || body.argv?.contains(where: { $0.utf8.contains(0) || $0.utf8.count > 65536 }) == true {
            throw APIError(.badRequest, "target (4096 bytes, no NUL), agent (256), session (128) or argv (at least one word) is out of bounds")
        }
        do throws(PolicyCheck.InputError) {
            _ = try PolicyCheck.actionKind(body.action, arguments: arguments)
        } catch {
            throw APIError(.badRequest, error.description)
        }
        let directory = body.cwd ?? AgentGatePaths.currentDirectory()
        let loaded: LoadedPolicy
        do {
            loaded = try PolicyCheck.loadPolicy(settings.policy, agent: body.agent, workingDirectory: directory)
        } catch {
            throw APIError(.policy, "policy error: \(error)")
        }
        do throws(PolicyCheck.InputError) {
            let outcome = try PolicyCheck.evaluate(action: body.action, arguments: arguments, loaded: loaded,
                                                   context: PolicyCheck.currentProcess(agent: body.agent ?? ""),
                                                   directory: directory, path: settings.environment["PATH"])
            return outcome.jsonObject
        } catch {
            throw APIError(.badRequest, error.description)
        }
    }
}

/// A JSON object crossing to the event loop (built and read whole, never shared).
struct JSONBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

struct AskAnswerBody: Decodable, Sendable {
    var session: String?
    var always: Bool?
    var breadth: String?
}

struct CheckRequestBody: Decodable, Sendable {
    var action: String
    var target: String?
    var argv: [String]?
    var cwd: String?
    var agent: String?
    var session: String?
}

/// Mutating requests need the bearer token; off loopback, every request does.
struct TokenCheck: RouterMiddleware {
    typealias Context = APIRequestContext
    let token: ServerToken
    let everyRequest: Bool

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await authorized(request, context: context, next: next)
        } catch let error as HTTPError where error.status == .notFound && Self.isRoute(request.uri.path) {
            // A path the API has, with a method it doesn't take.
            var response = APIError(.methodNotAllowed, "\(request.method) is not allowed on \(request.uri.path)").response
            response.headers[.allow] = Self.methods(request.uri.path)
            return response
        }
    }

    /// The API's paths, `*` standing for one segment.
    static let routes: [(pattern: [String], methods: String)] = [
        ([""], "GET, HEAD"), (["metrics"], "GET, HEAD"), (["api", "v1", "health"], "GET, HEAD"), (["api", "v1", "openapi.json"], "GET, HEAD"),
        (["api", "v1", "sessions"], "GET, HEAD"), (["api", "v1", "sessions", "*"], "GET, HEAD"),
        (["api", "v1", "sessions", "*", "events"], "GET, HEAD"), (["api", "v1", "events", "stream"], "GET, HEAD"),
        (["api", "v1", "approvals"], "GET, HEAD"), (["api", "v1", "approvals", "*", "approve"], "POST"),
        (["api", "v1", "approvals", "*", "deny"], "POST"), (["api", "v1", "check"], "POST"),
    ] + ["kill", "pause", "resume", "reload"].map { (["api", "v1", "sessions", "*", $0], "POST") }

    static func matching(_ path: String) -> [String] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        return routes.filter { route in
            route.pattern.count == segments.count && zip(route.pattern, segments).allSatisfy { $0 == "*" ? !$1.isEmpty : $0 == $1 }
        }.map(\.methods)
    }

    static func isRoute(_ path: String) -> Bool { !matching(path).isEmpty }
    static func methods(_ path: String) -> String { Set(matching(path).flatMap { $0.components(separatedBy: ", ") }).sorted().joined(separator: ", ") }

    /// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
    static func isLoopbackHost(_ header: String) -> Bool {
        var name = Substring(header.lowercased())
        if name.hasPrefix("[") {
            guard let close = name.firstIndex(of: "]") else { return false }
            let rest = name[name.index(after: close)...]
            guard rest.isEmpty || (rest.hasPrefix(":") && rest.dropFirst().allSatisfy(\.isNumber)) else { return false }
            return name[name.index(after: name.startIndex)..<close] == "::1"
        }
        if let colon = name.lastIndex(of: ":") {
            guard name[name.index(after: colon)...].allSatisfy(\.isNumber) else { return false }
            name = name[..<colon]
        }
        if name.hasSuffix(".") { name = name.dropLast() }
        if name == "localhost" { return true }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127"
            && parts.allSatisfy { !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isNumber) && Int($0)! <= 255 }
    }

    private func authorized(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let reading = request.method == .get || request.method == .head || (request.method == .post && request.uri.path == "/api/v1/check")
        // The dashboard page holds no data (its every request carries the token), and a browser
        // can't send a bearer header when it opens a page: off loopback it would not load at all.
        let page = reading && request.method != .post && request.uri.path == "/"
        // On loopback, where reads need no token, a page elsewhere could still make a browser
        // read the API by rebinding its own name to 127.0.0.1: only loopback names are served.
        if !everyRequest, let host = request.head.authority, !Self.isLoopbackHost(host) {
            return APIError(.forbiddenHost, "Host \"\(host)\" is not a loopback name: open the server as http://127.0.0.1:PORT or http://localhost:PORT").response
        }
        if (everyRequest && !page) || !reading {
            guard token.authorizes(request.headers[.authorization]) else {
                return APIError(.unauthorized, request.headers[.authorization] == nil
                    ? "this request needs Authorization: Bearer TOKEN (`agentgate token` prints it)"
                    : "wrong bearer token (`agentgate token` prints the right one)").response
            }
        }
        return try await next(request, context)
    }
}
