@testable import AgentGateSupervisor
import Glibc
import Testing

/// The forwarder's wire format, the resolv.conf and /etc/hosts readers, and the name map: pure
/// parts, tested on bytes.
@Suite("DNS wire format and names") struct DNSMessageTests {
    static func name(_ text: String) -> [UInt8] {
        text.split(separator: ".").flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) } + [0]
    }

    static func query(_ text: String, type: UInt16 = 1, id: UInt16 = 0xbeef) -> [UInt8] {
        [UInt8(id >> 8), UInt8(id & 0xff), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0] + name(text) + [0, UInt8(type), 0, 1]
    }

    @Test("a query's question, lowercased")
    func parsesQuery() throws {
        let message = try #require(DNSMessage(parsing: Self.query("Registry.Example")))
        #expect(message.id == 0xbeef)
        #expect(!message.isResponse)
        #expect(message.question == .init(name: "registry.example", type: 1, questionClass: 1))
    }

    @Test("an answer's A and AAAA records, through a CNAME and compression pointers")
    func parsesAnswer() throws {
        var bytes = Self.query("www.example")
        bytes[2] = 0x81; bytes[3] = 0x80
        bytes[7] = 3 // three answers
        // CNAME www.example -> cdn.example (pointer to the question name for the owner)
        bytes += [0xc0, 0x0c, 0, 5, 0, 1, 0, 0, 0, 60]
        let alias = Self.name("cdn.example")
        bytes += [0, UInt8(alias.count)] + alias
        let aliasOffset = bytes.count - alias.count
        bytes += [0xc0, UInt8(aliasOffset), 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 104, 16, 0, 35]
        bytes += [0xc0, UInt8(aliasOffset), 0, 28, 0, 1, 0, 0, 0, 30, 0, 16] + [0x26, 0x06, 0x47, 0] + [UInt8](repeating: 0, count: 11) + [1]
        let message = try #require(DNSMessage(parsing: bytes))
        #expect(message.isResponse && message.responseCode == 0)
        #expect(message.aliases == ["cdn.example"])
        #expect(message.addresses.map { DNSMessage.addressText($0.bytes) } == ["104.16.0.35", "2606:4700::1"])
        #expect(message.addresses.map(\.ttl) == [300, 30])
    }

    @Test("malformed messages are nil, never a crash", arguments: [
        [UInt8](),                                              // empty
        [0, 1, 0, 0, 0, 1],                                     // short header
        [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5, 65],            // label past the end
        [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1], // pointer to itself
        [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 40],         // pointer forward
        [0, 1, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1],    // two questions
        [0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 200], // rdata past the end
    ])
    func malformed(_ bytes: [UInt8]) {
        #expect(DNSMessage(parsing: bytes) == nil)
    }

    @Test("over-long names are refused, odd bytes escaped")
    func names() throws {
        let long = (0..<5).map { _ in String(repeating: "a", count: 60) }.joined(separator: ".")
        #expect(DNSMessage(parsing: Self.query(long)) == nil)
        let odd: [UInt8] = [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 0x61, 0x2e, 0xff, 0, 0, 1, 0, 1]
        #expect(DNSMessage(parsing: odd)?.question?.name == "a\\046\\255")
    }

    @Test("answers made by the forwarder keep the id, question and RD bit")
    func refusals() throws {
        let query = Self.query("evil.example")
        let answer = try #require(DNSMessage.answer(to: query, responseCode: DNSMessage.nameError))
        let parsed = try #require(DNSMessage(parsing: answer))
        #expect(parsed.id == 0xbeef && parsed.isResponse && parsed.responseCode == 3)
        #expect(parsed.question?.name == "evil.example")
        #expect(answer[2] & 0x01 == 1)
        #expect(parsed.addresses.isEmpty)
    }

    @Test("resolv.conf: nameserver lines (a scope kept), the first three")
    func resolvConf() {
        let text = "# comment\nsearch example\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\noptions edns0\nnameserver 1.1.1.1\nnameserver 8.8.8.8\n"
        #expect(DNSForwarder.nameservers(text) == ["10.0.0.2", "fe80::1%eth0", "1.1.1.1"])
        #expect(DNSForwarder.socketAddress("10.0.0.2")?.count == MemoryLayout<sockaddr_in>.size)
        #expect(DNSForwarder.socketAddress("fe80::1")?.count == MemoryLayout<sockaddr_in6>.size)
        #expect(DNSForwarder.socketAddress("not an address") == nil)
    }

    @Test("/etc/hosts: first name per address, comments and junk skipped")
    func hosts() throws {
        let parsed = ResolvedNames.parseHosts("127.0.0.1 localhost\n# 10.0.0.9 hidden\n10.0.0.5 Build.Example alias # c\nbogus line\n::1 ip6-localhost\n10.0.0.5 second\n")
        #expect(parsed[try #require(ResolvedNames.parseAddress("10.0.0.5"))] == "build.example")
        #expect(parsed[try #require(ResolvedNames.parseAddress("::1"))] == "ip6-localhost")
        #expect(parsed.count == 3)
    }

    @Test("the name map: this process's name first, bounded names per address")
    func resolvedNames() throws {
        let names = ResolvedNames(hostsPath: "/nonexistent")
        let address = try #require(ResolvedNames.parseAddress("151.101.0.223"))
        #expect(names.attribution(of: address, tgid: 1) == nil)
        names.record(address, name: "pypi.org", ttl: 1, tgid: 10)
        names.record(address, name: "files.pythonhosted.org", ttl: 60, tgid: 20)
        #expect(names.attribution(of: address, tgid: 10)?.name == "pypi.org")
        #expect(names.attribution(of: address, tgid: 20)?.name == "files.pythonhosted.org")
        #expect(names.attribution(of: address, tgid: 30)?.name == "files.pythonhosted.org")
        for i in 0..<10 { names.record(address, name: "n\(i).example", ttl: 60, tgid: 40) }
        #expect(names.attribution(of: address, tgid: 10)?.name == "n9.example")
    }
}
