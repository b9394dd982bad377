import AgentGatePolicy
import AgentGateSupervisor
import Foundation

// The MCP gateway's protocol layer: newline-delimited JSON-RPC 2.0, the MCP stdio transport.
//
// Not the MCP Swift SDK (modelcontextprotocol/swift-sdk): its Client and Server each own a
// session (they answer initialize, keep their own request ids, decode every message into
// typed values), while a gateway must pass both sides' messages through as they are, protocol
// versions and extensions it doesn't know included. All it needs is one line per message and
// a look at tools/call requests, which this file does.

/// One tools/call request the gateway decides.
struct MCPToolCallRequest {
    /// The request's id as parsed (a string or a number); nil for a notification.
    var id: Any?
    var tool: String
    /// The arguments object, parsed.
    var arguments: [String: Any]

    /// Each named argument as text: a string as it is, any other value as its JSON text.
    var argumentTexts: [String: String] {
        var texts: [String: String] = [:]
        for (name, value) in arguments { texts[name] = MCPFraming.text(value) }
        return texts
    }
}

/// How the gateway answers one tools/call.
struct MCPCallAnswer {
    var allowed: Bool
    /// Why, for the refusal the client sees: the rule and its reason.
    var message: String
}

/// What one line from the client becomes: bytes for the server, bytes for the client, or both.
struct MCPLineOutcome: Equatable {
    var toServer: [UInt8]?
    var toClient: [UInt8]?
}

enum MCPFraming {
    /// The longest line (one message) the gateway reads: longer ones are refused.
    static let maximumLineLength = 16 << 20

    // JSON-RPC error codes.
    static let parseError = -32700
    static let invalidRequest = -32600
    static let invalidParams = -32602

    /// Decides every tools/call in one line from the client, with `decide`; everything else
    /// passes through unchanged. Fail closed:
    /// - a tools/call is forwarded re-encoded from what was parsed, so the server runs exactly
    ///   the call that was decided (no duplicate key or escape read differently by its parser);
    /// - any other message whose text could spell tools/call another way (`tools/call` in it,
    ///   or a `\u` or `\/` escape) is forwarded re-encoded too, for the same reason;
    /// - a line that isn't JSON is forwarded only when it can't be a tools/call, else refused;
    /// - a tools/call whose params can't be read is refused.
    static func handle(line: [UInt8], decide: (MCPToolCallRequest) -> MCPCallAnswer) -> MCPLineOutcome {
        guard line.contains(where: { !isWhitespace($0) }) else { return MCPLineOutcome(toServer: line) }
        guard let parsed = try? JSONSerialization.jsonObject(with: Data(line), options: []) else {
            if mightSpellToolsCall(line) {
                return MCPLineOutcome(toClient: encode(error(id: nil, code: parseError,
                    message: "agentgate: refused a line that is not valid JSON and might be a tools/call (fail closed)")))
            }
            return MCPLineOutcome(toServer: line)
        }
        let suspicious = mightSpellToolsCall(line)
        if let message = parsed as? [String: Any] {
            switch handle(message: message, decide: decide) {
            case .pass:
                return MCPLineOutcome(toServer: suspicious ? encode(message) : line)
            case .forward(let encoded):
                return MCPLineOutcome(toServer: encode(encoded))
            case .answer(let response):
                return MCPLineOutcome(toClient: response.map(encode))
            }
        }
        if let batch = parsed as? [Any], !batch.isEmpty {
            var forwarded: [Any] = []
            var responses: [Any] = []
            var changed = suspicious
            for element in batch {
                guard let message = element as? [String: Any] else { forwarded.append(element); continue }
                switch handle(message: message, decide: decide) {
                case .pass: forwarded.append(message)
                case .forward(let encoded): forwarded.append(encoded); changed = true
                case .answer(let response): changed = true; if let response { responses.append(response) }
                }
            }
            guard changed else { return MCPLineOutcome(toServer: line) }
            return MCPLineOutcome(toServer: forwarded.isEmpty ? nil : encode(forwarded),
                                  toClient: responses.isEmpty ? nil : encode(responses))
        }
        return MCPLineOutcome(toServer: suspicious ? encode(parsed) : line)
    }

    private enum MessageOutcome {
        /// Not a tools/call: as it is.
        case pass
        /// An allowed tools/call, to be sent as parsed.
        case forward([String: Any])
        /// A refused tools/call: the response for the client (none for a notification).
        case answer([String: Any]?)
    }

    private static func handle(message: [String: Any], decide: (MCPToolCallRequest) -> MCPCallAnswer) -> MessageOutcome {
        guard let method = message["method"] as? String, method == "tools/call" else { return .pass }
        let id = message["id"]
        let isRequest = id != nil && !(id is NSNull)
        func refuse(_ code: Int, _ text: String) -> MessageOutcome {
            .answer(isRequest ? error(id: id, code: code, message: text) : nil)
        }
        guard let params = message["params"] as? [String: Any] else {
            return refuse(invalidParams, "agentgate: refused a tools/call without a params object (fail closed)")
        }
        guard let tool = params["name"] as? String, !tool.isEmpty, !tool.contains("\0") else {
            return refuse(invalidParams, "agentgate: refused a tools/call without a tool name (fail closed)")
        }
        var arguments: [String: Any] = [:]
        if let given = params["arguments"], !(given is NSNull) {
            guard let object = given as? [String: Any] else {
                return refuse(invalidParams, "agentgate: refused a tools/call whose arguments are not an object (fail closed)")
            }
            arguments = object
        }
        let answer = decide(MCPToolCallRequest(id: isRequest ? id : nil, tool: tool, arguments: arguments))
        guard answer.allowed else {
            return .answer(isRequest ? refusal(id: id, message: answer.message) : nil)
        }
        return .forward(message)
    }

    /// A refused call's answer: a tool result with `isError: true` (README, "MCP gateway": the
    /// MCP spec reports errors the model can act on in the result, protocol errors as JSON-RPC
    /// errors; a policy refusal is the former).
    static func refusal(id: Any?, message: String) -> [String: Any] {
        ["jsonrpc": "2.0", "id": id ?? NSNull(),
         "result": ["content": [["type": "text", "text": message] as [String: Any]], "isError": true] as [String: Any]]
    }

    static func error(id: Any?, code: Int, message: String) -> [String: Any] {
        ["jsonrpc": "2.0", "id": id ?? NSNull(), "error": ["code": code, "message": message] as [String: Any]]
    }

    /// One message as a line, without the newline.
    static func encode(_ value: Any) -> [UInt8] {
        guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.withoutEscapingSlashes, .fragmentsAllowed]) else {
            return Array(#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"agentgate: cannot encode a message"}}"#.utf8)
        }
        return Array(data)
    }

    /// A value as the text an `arguments:` glob matches (`HookMapping.argumentText`).
    static func text(_ value: Any) -> String { HookMapping.argumentText(value) }

    /// Whether a line's text could name the method tools/call: literally, or through an escape.
    static func mightSpellToolsCall(_ line: [UInt8]) -> Bool {
        let needle = Array("tools/call".utf8)
        if line.count >= needle.count {
            for start in 0...(line.count - needle.count) where line[start] == needle[0] && Array(line[start..<start + needle.count]) == needle {
                return true
            }
        }
        for index in line.indices.dropLast() where line[index] == UInt8(ascii: "\\") {
            let next = line[index + 1]
            if next == UInt8(ascii: "u") || next == UInt8(ascii: "/") { return true }
        }
        return false
    }

    static func isWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }
}

/// Splits a byte stream into lines of at most `MCPFraming.maximumLineLength` bytes (without
/// the `\n`; a `\r` before it is kept, as the peer sent it). A longer line is reported once as
/// too long and the rest of it skipped.
struct MCPLineSplitter {
    enum Item: Equatable {
        case line([UInt8])
        case tooLong
    }

    private var buffer: [UInt8] = []
    private var skipping = false
    let maximum: Int

    init(maximum: Int = MCPFraming.maximumLineLength) { self.maximum = maximum }

    /// The whole lines `bytes` completes.
    mutating func append(_ bytes: some Collection<UInt8>) -> [Item] {
        var items: [Item] = []
        var rest = bytes[...]
        while let newline = rest.firstIndex(of: 0x0A) {
            let part = rest[..<newline]
            rest = rest[rest.index(after: newline)...]
            if skipping {
                skipping = false
                buffer.removeAll(keepingCapacity: true)
                continue
            }
            if buffer.count + part.count > maximum {
                items.append(.tooLong)
                buffer.removeAll(keepingCapacity: true)
                continue
            }
            buffer += part
            items.append(.line(buffer))
            buffer.removeAll(keepingCapacity: true)
        }
        if !skipping {
            if buffer.count + rest.count > maximum {
                items.append(.tooLong)
                skipping = true
                buffer.removeAll()
            } else {
                buffer += rest
            }
        }
        return items
    }

    /// What is left at end of input: a last line without a newline.
    mutating func finish() -> [Item] {
        defer { buffer.removeAll(); skipping = false }
        return skipping || buffer.isEmpty ? [] : [.line(buffer)]
    }
}
