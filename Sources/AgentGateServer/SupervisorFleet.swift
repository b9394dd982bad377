import AgentGateSupervisor
import Foundation

/// The running supervisors of this user, reached over their control sockets (found as
/// `agentgate sessions`, `approvals` and `pause` find them). Every call blocks: run it offloaded.
struct SupervisorFleet: Sendable {
    let environment: [String: String]

    /// How long one supervisor may take to answer a read (status, approvals).
    static let readTimeoutMilliseconds = 1000

    struct Status: Sendable {
        var session: String
        var paused: Bool
        var metrics: SupervisorMetrics?
    }

    func directory() -> ControlDirectory? {
        try? ControlDirectory.resolve(environment: environment, create: false)
    }

    /// The supervisors that answered `status`, and how many sockets did not answer (stale
    /// sockets of supervisors that died are not counted).
    func statuses() -> (answered: [Status], unreachable: Int) {
        guard let directory = directory() else { return ([], 0) }
        var answered: [Status] = []
        var unreachable = 0
        for id in directory.sessions() {
            guard let socket = directory.socketPath(session: id) else { continue }
            do {
                let response = try ControlClient.send(ControlRequest(op: ControlOperation.status.rawValue), to: socket,
                                                      timeoutMilliseconds: Self.readTimeoutMilliseconds)
                if response.ok { answered.append(Status(session: id, paused: response.paused ?? false, metrics: response.metrics)) }
                else { unreachable += 1 }
            } catch {
                if case .notRunning = error.kind { continue }
                unreachable += 1
            }
        }
        return (answered, unreachable)
    }

    /// The running session `idOrPrefix` names.
    func resolve(_ idOrPrefix: String) throws(APIError) -> (id: String, socket: String) {
        guard let directory = directory() else { throw APIError(.notFound, "no running session \(idOrPrefix) (no control directory)") }
        switch directory.match(session: idOrPrefix) {
        case .found(let id):
            guard let socket = directory.socketPath(session: id) else { throw APIError(.notFound, "no running session \(idOrPrefix)") }
            return (id, socket)
        case .ambiguous(let ids):
            throw APIError(.ambiguous, "\(idOrPrefix) matches several running sessions: \(ids.joined(separator: ", "))")
        case .none:
            throw APIError(.notFound, "no running session \(idOrPrefix)")
        }
    }

    /// Sends `request` to session `id`'s supervisor; its refusal or silence is an error.
    func send(_ request: ControlRequest, session id: String, socket: String, timeoutMilliseconds: Int = 5000) throws(APIError) -> ControlResponse {
        let response: ControlResponse
        do {
            response = try ControlClient.send(request, to: socket, timeoutMilliseconds: timeoutMilliseconds)
        } catch {
            if case .notRunning = error.kind { throw APIError(.notFound, "no running session \(id) (\(error.description))") }
            throw APIError(.supervisor, "session \(id): \(error.description)")
        }
        guard response.ok else { throw APIError(.supervisor, "session \(id) refused: \(response.error ?? "no reason given")") }
        return response
    }

    /// Pending asks of every running session (or of `session`), oldest first; each ask's session
    /// is the socket's it was listed on.
    func asks(session: String?) throws(APIError) -> [AskListing] {
        var targets: [(id: String, socket: String)] = []
        if let session {
            targets = [try resolve(session)]
        } else if let directory = directory() {
            targets = directory.sessions().compactMap { id in directory.socketPath(session: id).map { (id, $0) } }
        }
        var asks: [AskListing] = []
        for target in targets {
            guard let response = try? ControlClient.send(ControlRequest(op: ControlOperation.approvals.rawValue), to: target.socket,
                                                         timeoutMilliseconds: Self.readTimeoutMilliseconds), response.ok else { continue }
            // The asks are this socket's session's, whatever the answer says (as `agentgate approvals`).
            asks += (response.asks ?? []).map { ask in
                var ask = ask
                ask.session = target.id
                return ask
            }
        }
        return asks.sorted { $0.ageSeconds > $1.ageSeconds }
    }

    /// Answers ask `id` in the one session that has it (or in `session`).
    func answer(_ id: String, approve: Bool, session: String?, always: Bool, breadth: String?) throws(APIError) -> ControlResponse {
        let holders = try asks(session: session).filter { $0.id == id }.map(\.session)
        guard let holder = holders.first else {
            throw APIError(.notFound, "no pending ask \(id) in \(session.map { "session \($0)" } ?? "any running session")")
        }
        guard holders.count == 1 else {
            throw APIError(.ambiguous, "ask \(id) is pending in sessions \(holders.joined(separator: ", ")); say which with \"session\"")
        }
        let target = try resolve(holder)
        let request = ControlRequest(op: (approve ? ControlOperation.approve : .deny).rawValue, id: id,
                                     always: always ? true : nil, breadth: always ? breadth : nil)
        return try send(request, session: target.id, socket: target.socket, timeoutMilliseconds: 15_000)
    }
}
