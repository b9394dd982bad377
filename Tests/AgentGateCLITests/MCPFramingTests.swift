@testable import AgentGateCLI
import Foundation
import Testing

/// The MCP gateway's line framing and what it does with each kind of line.
struct MCPFramingTests {
    /// Denies tool `secret`, records every call it saw.
    final class Decider: @unchecked Sendable {
        var seen: [String] = []
        func decide(_ request: MCPToolCallRequest) -> MCPCallAnswer {
            seen.append(request.tool + " " + request.argumentTexts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))
            return MCPCallAnswer(allowed: request.tool != "secret", message: "denied \(request.tool)")
        }
    }

    static func handle(_ line: String, _ decider: Decider) -> (server: String?, client: Any?) {
        let outcome = MCPFraming.handle(line: Array(line.utf8)) { decider.decide($0) }
        return (outcome.toServer.map { String(decoding: $0, as: UTF8.self) },
                outcome.toClient.flatMap { try? JSONSerialization.jsonObject(with: Data($0)) })
    }

    @Test func otherMessagesPassUnchangedAndToolCallsAreDecided() {
        let decider = Decider()
        let initialize = #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"x":  1.50}}"#
        #expect(Self.handle(initialize, decider).server == initialize)
        #expect(Self.handle(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, decider).server != nil)
        let allowed = Self.handle(#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi","n":3,"b":true}}}"#, decider)
        #expect(allowed.client == nil && allowed.server?.contains(#""name":"echo""#) == true)
        #expect(decider.seen == ["echo b=true,n=3,text=hi"])
        let denied = Self.handle(#"{"jsonrpc":"2.0","id":"a7","method":"tools/call","params":{"name":"secret"}}"#, decider)
        #expect(denied.server == nil)
        let response = denied.client as? [String: Any]
        let result = response?["result"] as? [String: Any]
        #expect(response?["id"] as? String == "a7" && result?["isError"] as? Bool == true)
        #expect(((result?["content"] as? [[String: Any]])?.first?["text"] as? String) == "denied secret")
        // A denied notification is dropped without an answer.
        let quiet = Self.handle(#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"secret"}}"#, decider)
        #expect(quiet.server == nil && quiet.client == nil)
    }

    @Test func failsClosed() {
        let decider = Decider()
        // Unreadable tools/call params are refused with a JSON-RPC error.
        for bad in [#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":[1]}"#,
                    #"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"arguments":{}}}"#,
                    #"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"x","arguments":"s"}}"#] {
            let outcome = Self.handle(bad, decider)
            #expect(outcome.server == nil && ((outcome.client as? [String: Any])?["error"] as? [String: Any])?["code"] as? Int == -32602, "\(bad)")
        }
        // Not JSON: passed on only when it can't be a tools/call.
        #expect(Self.handle("not json", decider).server == "not json")
        for bad in [#"{"method":"tools/call","params":{"name":"x","a":NaN}}"#, #"{"method":"tools\u002fcall" oops"#] {
            let outcome = Self.handle(bad, decider)
            #expect(outcome.server == nil && ((outcome.client as? [String: Any])?["error"] as? [String: Any])?["code"] as? Int == -32700)
        }
        // An escaped method name is decided, and what is forwarded is what was decided.
        let escaped = Self.handle(#"{"jsonrpc":"2.0","id":4,"method":"tools\/call","params":{"name":"secret"}}"#, decider)
        #expect(escaped.server == nil && escaped.client != nil)
        let other = Self.handle(#"{"jsonrpc":"2.0","id":5,"method":"ping","params":{"note":"tools\/call"}}"#, decider)
        #expect(other.server?.contains("tools/call") == true && other.client == nil)
        // Batches: the refused call is answered, the rest is passed on.
        let batch = Self.handle(#"[{"jsonrpc":"2.0","id":6,"method":"ping"},{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"secret"}}]"#, decider)
        #expect(batch.server?.contains("ping") == true && batch.server?.contains("secret") == false)
        #expect((batch.client as? [[String: Any]])?.first?["id"] as? Int == 7)
    }

    @Test func linesAreSplitAndOverlongOnesRefused() {
        var splitter = MCPLineSplitter(maximum: 8)
        #expect(splitter.append(Array("ab\ncd".utf8)) == [.line(Array("ab".utf8))])
        #expect(splitter.append(Array("e\n0123456789".utf8)) == [.line(Array("cde".utf8)), .tooLong])
        #expect(splitter.append(Array("more\nok\n".utf8)) == [.line(Array("ok".utf8))])
        #expect(splitter.append(Array("tail".utf8)) == [])
        #expect(splitter.finish() == [.line(Array("tail".utf8))])
    }
}
