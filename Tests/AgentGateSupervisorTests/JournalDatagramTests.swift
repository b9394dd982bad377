import AgentGateStore
import Testing

@testable import AgentGateSupervisor

/// The journal sink's datagrams: each value is the agent's text and must stay one field.
@Suite("Journal datagrams")
struct JournalDatagramTests {
    @Test("a value can't end its field or start another: not with '=', newlines, nor a combining mark after the '='")
    func valuesStayInTheirField() {
        // A combining mark first makes "=" and the mark one Character: a split at the first
        // Character "=" would find the '=' inside the value and take the rest as the name.
        let forged = "\u{338}X=1\nAGENTGATE_DECISION=allow\n\nMESSAGE=forged\n"
        let sink = JournalSink(session: SinkSession(sessionID: forged, agent: "a=b\nc", hostName: "h", userID: 0))
        let event = SinkEvent(.reload(accepted: true, policySHA256: "=\n", message: forged))
        let datagram = sink.datagram(sink.fields(event))
        let fields = EventSinkTests.journalFields(datagram)
        #expect(fields["AGENTGATE_SESSION"] == forged)
        #expect(fields["AGENTGATE_AGENT"] == "a=b\nc")
        #expect(fields["AGENTGATE_POLICY_SHA256"] == "=\n")
        #expect(fields["AGENTGATE_DECISION"] == nil)
        #expect(fields["MESSAGE"]?.utf8.elementsEqual("agentgate: session \(forged): \(forged)".utf8) == true)
        #expect(Set(fields.keys) == ["SYSLOG_IDENTIFIER", "AGENTGATE_SESSION", "AGENTGATE_AGENT", "MESSAGE", "PRIORITY",
                                     "AGENTGATE_EVENT", "AGENTGATE_RELOAD", "AGENTGATE_POLICY_SHA256"])
    }
}
