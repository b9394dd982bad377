import AgentGateStore
import Foundation
import Testing

@testable import AgentGateReports

@Suite("Evidence pack")
struct EvidenceTests {
    /// A store holding one finished session with an allowed read and a denied one.
    static func pack(target: String = "/home/dev/.ssh/id_rsa", in directory: TemporaryDirectory) throws -> EvidencePack {
        let store = try AuditStore(path: directory.path + "/audit.db")
        defer { store.close() }
        let session = Fixture.session(end: nil, exit: nil)
        try store.createSession(session)
        var denial = Fixture.sshDenial
        denial.target = target
        try store.insert(events: [Fixture.event(pid: 101), denial], sessionID: session.id)
        try store.finishSession(id: session.id, endTimeMicros: Fixture.start + 36_000_000, exitStatus: 0)
        var pack = try EvidencePack.load(id: session.id, store: store)
        pack.generatedAt = Fixture.start + 60_000_000
        return pack
    }

    @Test("the JSON pack holds the session, its verification, counts and one event per line")
    func json() throws {
        let directory = try TemporaryDirectory()
        let text = try Self.pack(in: directory).json()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(object["format"] as? String == "agentgate-evidence")
        #expect(object["version"] as? Int == 1)
        #expect(object["generated_at"] as? String == "2023-11-14T22:14:20.000Z")
        let session = try #require(object["session"] as? [String: Any])
        #expect(session["events"] as? Int == 2)
        #expect(session["denied"] as? Int == 1)
        let verification = try #require(object["verification"] as? [String: Any])
        #expect(verification["valid"] as? Bool == true)
        #expect(verification["events_verified"] as? Int == 2)
        #expect(verification["session_has_end_record"] as? Bool == true)
        let events = try #require(object["events"] as? [[String: Any]])
        #expect(events.map { $0["decision"] as? String } == ["allow", "deny"])
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.filter { $0.hasPrefix("    {\"action\"") }.count == 2)
        #expect(text.hasSuffix("\n  ]\n}\n"))
    }

    @Test("a session without events closes the array on its line")
    func emptyPack() throws {
        let directory = try TemporaryDirectory()
        var pack = try Self.pack(in: directory)
        pack.events = []
        #expect(pack.json().hasSuffix(",\n  \"events\" : []\n}\n"))
    }

    @Test("HTML escapes markup, keeps line breaks visible, and leaves attributes on one line")
    func htmlEscaping() {
        #expect(HTML.escape("<a href=\"x\">&'") == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;")
        #expect(HTML.escape("a\r\nb\tc") == "a<span class=\"muted\">⏎</span><br>b⇥c")
        #expect(HTML.attribute("a\nb") == "a⏎b")
        #expect(HTML.escape("\u{1b}[0m\u{202e}") == "\\u{1b}[0m\\u{202e}")
        #expect(HTML.escape("plain") == "plain")
    }

    @Test("the HTML pack is self-contained and shows a hostile target only as text")
    func htmlPack() throws {
        let directory = try TemporaryDirectory()
        let page = try Self.pack(target: "/tmp/<script>alert(1)</script>", in: directory).html()
        #expect(page.hasPrefix("<!DOCTYPE html>\n"))
        #expect(page.hasSuffix("</body>\n</html>\n"))
        #expect(!page.contains("<script"))
        #expect(page.contains("/tmp/&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(!page.contains("src="))
        #expect(page.contains("<span class=\"badge ok\">hash chains verified</span>"))
        #expect(page.contains("<tr class=\"deny\"><td class=\"mark\">✗</td>"))
    }

    @Test("signatures: the RFC 4231 HMAC-SHA256 vector, round trip, tampering and a wrong key")
    func signature() {
        let key = Array("Jefe".utf8)
        let data = Array("what do ya want for nothing?".utf8)
        let signature = EvidenceSignature.sign(data, key: key)
        #expect(signature == "hmac-sha256:5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        let mac = EvidenceSignature.parse(signature + "\n")
        #expect(mac?.count == 32)
        #expect(EvidenceSignature.isValid(mac!, for: data, key: key))
        #expect(!EvidenceSignature.isValid(mac!, for: data + [0x0a], key: key))
        #expect(!EvidenceSignature.isValid(mac!, for: data, key: Array("Jeff".utf8)))
    }

    @Test("anything but hmac-sha256 and 64 hex digits is not a signature")
    func notSignatures() {
        #expect(EvidenceSignature.parse("") == nil)
        #expect(EvidenceSignature.parse("hmac-sha256:abcd") == nil)
        #expect(EvidenceSignature.parse("sha256:" + String(repeating: "0", count: 64)) == nil)
        #expect(EvidenceSignature.parse("hmac-sha256:" + String(repeating: "g", count: 64)) == nil)
        #expect(EvidenceSignature.parse("hmac-sha256:" + String(repeating: "0", count: 64)) != nil)
    }
}
