import Foundation
import Hummingbird

/// An API error: the HTTP status, a stable code and a message for people, sent as
/// `{"error": "…", "code": "…"}`.
struct APIError: Error, Sendable {
    enum Code: String, Sendable {
        case badRequest = "bad_request", unauthorized, notFound = "not_found", ambiguous, supervisor, database, policy
        case tooManyStreams = "too_many_streams", methodNotAllowed = "method_not_allowed", internalError = "internal"
        case forbiddenHost = "forbidden_host"

        var status: HTTPResponse.Status {
            switch self {
            case .badRequest: .badRequest
            case .unauthorized: .unauthorized
            case .notFound: .notFound
            case .methodNotAllowed: .methodNotAllowed
            case .forbiddenHost: .forbidden
            case .ambiguous: .conflict
            case .supervisor: .badGateway
            case .database, .tooManyStreams: .serviceUnavailable
            case .policy, .internalError: .internalServerError
            }
        }
    }

    let code: Code
    let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    var response: Response {
        var response = APIResponse.json(["error": message, "code": code.rawValue], status: code.status)
        if code == .unauthorized { response.headers[.wwwAuthenticate] = #"Bearer realm="agentgate""# }
        return response
    }
}

enum APIResponse {
    /// `object` as compact JSON with sorted keys.
    static func json(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data(#"{"code":"internal","error":"cannot encode the answer"}"#.utf8)
        return bytes(Array(data), contentType: "application/json", status: data.isEmpty ? .internalServerError : status)
    }

    static func bytes(_ bytes: [UInt8], contentType: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// Query parameters, read strictly: a value that doesn't parse is a 400, never ignored.
struct QueryParameters {
    let request: Request

    func string(_ name: String, maxLength: Int = 1024) throws(APIError) -> String? {
        guard let value = request.uri.queryParameters.get(name) else { return nil }
        guard value.utf8.count <= maxLength else { throw APIError(.badRequest, "\(name) is longer than \(maxLength) bytes") }
        return value
    }

    func integer(_ name: String, range: ClosedRange<Int64>) throws(APIError) -> Int64? {
        guard let text = try string(name, maxLength: 32) else { return nil }
        guard let value = Int64(text), range.contains(value) else {
            throw APIError(.badRequest, "\(name) must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    func boolean(_ name: String) throws(APIError) -> Bool? {
        guard let text = try string(name, maxLength: 8) else { return nil }
        switch text {
        case "true", "1": return true
        case "false", "0": return false
        default: throw APIError(.badRequest, "\(name) must be true or false")
        }
    }

    func oneOf(_ name: String, _ allowed: [String]) throws(APIError) -> String? {
        guard let text = try string(name, maxLength: 64) else { return nil }
        guard allowed.contains(text) else { throw APIError(.badRequest, "\(name) must be one of \(allowed.joined(separator: ", "))") }
        return text
    }
}

/// Runs blocking work (SQLite, control sockets) off the server's event loops.
func offloaded<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
        }
    }
}
