import Testing
@testable import AgentGatePolicy

private func host(_ pattern: String) throws -> HostPattern { try HostPattern(pattern) }

@Suite("Host patterns")
struct HostPatternTests {
    @Test("a bare host matches the whole target or the host part of host:port")
    func bareHost() throws {
        let p = try host("registry.npmjs.org")
        #expect(p.matches(target: "registry.npmjs.org"))
        #expect(p.matches(target: "registry.npmjs.org:443"))
        #expect(p.matches(target: "Registry.NPMJS.org:443"))
        #expect(!p.matches(target: "registry.npmjs.org.evil.com"))
        #expect(!p.matches(target: "registry.npmjs.org.evil.com:443"))
        #expect(!p.matches(target: "xregistry.npmjs.org:443"))
    }

    @Test("no substring, prefix or suffix splices")
    func hostBoundaries() throws {
        let p = try host("github.com")
        #expect(p.matches(target: "github.com:443"))
        #expect(!p.matches(target: "github.com.evil.com"))
        #expect(!p.matches(target: "github.com.evil.com:443"))
        #expect(!p.matches(target: "evilgithub.com"))
        #expect(!p.matches(target: "evilgithub.com:443"))
        #expect(!p.matches(target: "api.github.com:443"))
        #expect(!p.matches(target: "unix:github.com"))
    }

    @Test("a leading dot matches subdomains only")
    func subdomains() throws {
        let p = try host(".github.com")
        #expect(p.matches(target: "api.github.com"))
        #expect(p.matches(target: "api.github.com:443"))
        #expect(p.matches(target: "a.b.github.com:443"))
        #expect(p.matches(target: "API.GitHub.com:443"))
        #expect(!p.matches(target: "github.com"))
        #expect(!p.matches(target: "github.com:443"))
        #expect(!p.matches(target: "evilgithub.com:443"))
        #expect(!p.matches(target: "github.com.evil.com:443"))
        let withPort = try host(".github.com:443")
        #expect(withPort.matches(target: "api.github.com:443"))
        #expect(!withPort.matches(target: "api.github.com:22"))
    }

    @Test("IPv4 literals")
    func ipv4() throws {
        #expect(try host("127.0.0.1").matches(target: "127.0.0.1:8080"))
        #expect(try host("169.254.169.254").matches(target: "169.254.169.254:80"))
        #expect(!(try host("169.254.169.254")).matches(target: "169.254.169.25:80"))
        #expect(!(try host("169.254.169.254")).matches(target: "169.254.169.2540:80"))
        #expect(!(try host("10.0.0.1")).matches(target: "110.0.0.1:80"))
    }

    @Test("IPv6 literals with and without brackets, compared canonically")
    func ipv6() throws {
        for token in ["::1", "[::1]", "0:0:0:0:0:0:0:1", "[0::1]"] {
            let p = try host(token)
            #expect(p.matches(target: "[::1]:80"), "\(token)")
            #expect(p.matches(target: "::1"), "\(token)")
            #expect(!p.matches(target: "[::2]:80"), "\(token)")
        }
        for token in ["fd00:ec2::254", "[fd00:ec2::254]", "FD00:0EC2:0:0:0:0:0:254"] {
            let p = try host(token)
            #expect(p.matches(target: "[fd00:ec2::254]:80"), "\(token)")
            #expect(p.matches(target: "[FD00:EC2::254]:443"), "\(token)")
            #expect(!p.matches(target: "[fd00:ec2::255]:80"), "\(token)")
        }
        let p = try host("2001:db8::1")
        #expect(p.matches(target: "[2001:db8::1]:443"))
        #expect(!p.matches(target: "[2001:db8::10]:443"))
        let withPort = try host("[2001:db8::1]:443")
        #expect(withPort.matches(target: "[2001:db8::1]:443"))
        #expect(!withPort.matches(target: "[2001:db8::1]:80"))
    }

    @Test("IPv4-mapped IPv6 targets are also checked as IPv4")
    func ipv4Mapped() throws {
        let p = try host("169.254.169.254")
        #expect(p.matches(target: "[::ffff:169.254.169.254]:80"))
        #expect(p.matches(target: "[::FFFF:169.254.169.254]:80"))
        #expect(try host("169.254.169.254:80").matches(target: "[::ffff:169.254.169.254]:80"))
        #expect(!(try host("169.254.169.254:80")).matches(target: "[::ffff:169.254.169.254]:81"))
        #expect(try host("169.254.*").matches(target: "[::ffff:169.254.1.1]:80"))
        #expect(try host("127.0.0.1:*").matches(target: "[::ffff:127.0.0.1]:9"))
    }

    @Test("localhost matches the name and loopback literals")
    func localhost() throws {
        let p = try host("localhost")
        #expect(p.matches(target: "localhost:8080"))
        #expect(p.matches(target: "LOCALHOST"))
        #expect(p.matches(target: "127.0.0.1:8080"))
        #expect(p.matches(target: "127.1.2.3:1"))
        #expect(p.matches(target: "[::1]:80"))
        #expect(p.matches(target: "[::ffff:127.0.0.1]:80"))
        #expect(!p.matches(target: "localhost.evil.com:80"))
        #expect(!p.matches(target: "128.0.0.1:80"))
        #expect(!p.matches(target: "127.evil.com:80"))
        let withPort = try host("localhost:3000")
        #expect(withPort.matches(target: "127.0.0.1:3000"))
        #expect(!withPort.matches(target: "127.0.0.1:3001"))
    }

    @Test("host:port matches only that port")
    func ports() throws {
        let p = try host("example.com:443")
        #expect(p.matches(target: "example.com:443"))
        #expect(!p.matches(target: "example.com:4430"))
        #expect(!p.matches(target: "example.com:44"))
        #expect(!p.matches(target: "example.com"))
        #expect(try host("127.0.0.1:5432").matches(target: "127.0.0.1:5432"))
    }

    @Test("wildcard tokens glob the whole target and the host part")
    func wildcards() throws {
        let p = try host("*.example.com")
        #expect(p.matches(target: "a.example.com"))
        #expect(p.matches(target: "a.example.com:443"))
        #expect(p.matches(target: "A.Example.Com:443"))
        #expect(!p.matches(target: "example.com:443"))
        #expect(!p.matches(target: "a.example.com.evil:443"))
        let anyPort = try host("127.0.0.1:*")
        #expect(anyPort.matches(target: "127.0.0.1:9"))
        #expect(!anyPort.matches(target: "127.0.0.10:9"))
        #expect(try host("[[]::1]:*").matches(target: "[::1]:80"))
        #expect(try host("[::1]:*").matches(target: "[::1]:80"))
        #expect(!(try host("[::1]:*")).matches(target: "[::2]:80"))
        #expect(try host("[2001:db8::1]:44?").matches(target: "[2001:db8::1]:443"))
        // Without an IPv6 address inside, brackets are a character class.
        #expect(try host("10.0.0.[1-3]").matches(target: "10.0.0.2:80"))
        #expect(!(try host("10.0.0.[1-3]")).matches(target: "10.0.0.4:80"))
        #expect(try host("*:443").matches(target: "1.2.3.4:443"))
        #expect(!(try host("*:443")).matches(target: "1.2.3.4:80"))
        #expect(try host("10.*").matches(target: "10.1.2.3:80"))
        #expect(!(try host("*")).matches(target: "unix:/run/x.sock"))
    }

    @Test("unix: tokens are path globs over the socket path")
    func unixSockets() throws {
        let p = try host("unix:/run/user/*/bus")
        #expect(p.matches(target: "unix:/run/user/1000/bus"))
        #expect(!p.matches(target: "unix:/run/user/1000/x/bus"))
        #expect(!p.matches(target: "/run/user/1000/bus"))
        let tree = try host("unix:/tmp/**")
        #expect(tree.matches(target: "unix:/tmp/a/b.sock"))
        #expect(!tree.matches(target: "unix:/tmpx"))
        let abstract = try host("unix:@dbus-*")
        #expect(abstract.matches(target: "unix:@dbus-abc"))
        #expect(!abstract.matches(target: "unix:/dbus-abc"))
        #expect(!(try host("localhost")).matches(target: "unix:/tmp/localhost"))
    }

    @Test("malformed host tokens are rejected", arguments: [
        ("example.com:http", 12), ("example.com:70000", 12), ("[::1", 0), ("[::1]x", 5), ("1:2:3", 0),
        (".::1", 0), (":443", 0), ("unix:/a[", 7),
    ])
    func malformed(pattern: String, offset: Int) {
        #expect(throws: GlobError.self) { try HostPattern(pattern) }
        do {
            _ = try HostPattern(pattern)
        } catch {
            #expect(error.utf8Offset == offset, "\(error)")
        }
    }

    @Test("IPv6 formatting follows inet_ntop", arguments: [
        ("::1", "::1"), ("::", "::"), ("2001:DB8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"), ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
        ("1::", "1::"), ("fd00:ec2:0::254", "fd00:ec2::254"), ("0:0:0:0:0:ffff:a01:203", "::ffff:10.1.2.3"),
    ])
    func ipv6Format(input: String, expected: String) throws {
        let groups = try #require(IPAddress.parseIPv6(input))
        #expect(IPAddress.formatIPv6(groups) == expected)
    }

    @Test("invalid IPv6 text does not parse", arguments: ["1:2", ":::", "1::2::3", "12345::", "::g", "1:2:3:4:5:6:7:8:9"])
    func ipv6Invalid(input: String) {
        #expect(IPAddress.parseIPv6(input) == nil)
    }
}
