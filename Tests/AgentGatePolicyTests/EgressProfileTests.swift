import Foundation
import Testing
import AgentGatePolicy

/// The built-in includes (`agentgate:NAME`), the SSRF defaults and the coding-agents egress profile.
@Suite("Built-in includes and the egress profile")
struct EgressProfileTests {
    static let repository = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func policy(_ yaml: String) throws -> Policy {
        try Policy.parse(yaml: yaml, source: "policy.yaml", variables: testVariables)
    }

    func including(_ names: String...) throws -> Policy {
        try policy("version: 2\ninclude: [\(names.joined(separator: ", "))]\n")
    }

    @Test("every built-in include is its file under policies/, and loads on its own")
    func embeddedFiles() throws {
        #expect(Policy.builtInIncludes.map(\.name) == ["agentgate:default", "agentgate:deny-private-networks",
                                                        "agentgate:deny-loopback", "agentgate:egress-coding-agents"])
        for builtIn in Policy.builtInIncludes {
            let onDisk = try String(contentsOf: Self.repository.appendingPathComponent("policies/" + builtIn.fileName),
                                    encoding: .utf8)
            #expect(builtIn.yaml == onDisk, "\(builtIn.name)")
            let loaded = try Policy.parse(yaml: builtIn.yaml, source: builtIn.source, variables: testVariables)
            #expect(!loaded.rules.isEmpty)
            #expect(loaded.rules.allSatisfy { $0.id != nil && $0.reason != nil }, "\(builtIn.name): every rule has id and reason")
        }
        #expect(BuiltInInclude.named("agentgate:default")?.source == Policy.builtInDefaultSource)
    }

    @Test("an unknown agentgate: name is an error listing the known ones")
    func unknownName() {
        expectLoadError("include: [agentgate:strict]\n", line: 1, column: 11,
                        "unknown built-in policy \"agentgate:strict\"; expected one of agentgate:default, "
                            + "agentgate:deny-private-networks, agentgate:deny-loopback, agentgate:egress-coding-agents")
    }

    @Test("built-in includes are reported by their built-in source, not as files")
    func sources() throws {
        let p = try including("agentgate:deny-loopback", "agentgate:default")
        #expect(p.files == ["policy.yaml"])
        #expect(p.rules[0].file == "<built-in deny-loopback.yaml>")
        #expect(p.rules[1].file == Policy.builtInDefaultSource)
    }

    @Test("lint: built-in includes composed as documented are clean; a file's rule shadowing them is reported")
    func lint() throws {
        #expect(PolicyLint.check(try including("agentgate:egress-coding-agents", "agentgate:default")).isEmpty)
        #expect(PolicyLint.check(try including("agentgate:deny-private-networks", "agentgate:deny-loopback",
                                               "agentgate:egress-coding-agents", "agentgate:default")).isEmpty)
        let mine = try policy("""
            version: 2
            include: [agentgate:default]
            rules:
              - id: anything
                match: {action: net_egress}
                decision: allow
            """)
        let findings = PolicyLint.check(mine).map(\.message)
        #expect(findings.contains { $0.hasPrefix("rule cloud-metadata: unreachable: rule anything") }, "\(findings)")
    }

    @Test("the built-in policy denies link-local by address, keeps the metadata rules, allows the rest")
    func linkLocal() throws {
        let p = try Policy.builtInDefault(variables: testVariables)
        for target in ["169.254.1.1:80", "[fe80::1]:80", "[::ffff:169.254.10.10]:80", "169.254.169.254:80",
                       "metadata.google.internal:80"] {
            #expect(p.evaluateEgress(target: target).decision == .deny, "\(target)")
        }
        #expect(p.rules[p.evaluateEgress(target: "169.254.169.254:80").ruleIndex!].id == "cloud-metadata")
        #expect(p.rules[p.evaluateEgress(target: "169.254.1.1:80").ruleIndex!].id == "link-local")
        #expect(p.evaluateEgress(target: "93.184.216.34:443").decision == .allow)
        #expect(p.evaluateEgress(target: "10.0.0.1:443").decision == .allow)
        // A name that resolves to link-local is judged by the address.
        #expect(p.evaluateConnection(addressTarget: "169.254.7.7:80", resolvedName: "registry.example").decision == .deny)
        #expect(p.evaluateDNSQuery(name: "metadata.google.internal").decision == .deny)
        #expect(p.evaluateDNSQuery(name: "registry.example").decision == .allow)
    }

    @Test("the switches deny private networks and loopback when included first")
    func switches() throws {
        let p = try including("agentgate:deny-private-networks", "agentgate:deny-loopback", "agentgate:default")
        for target in ["10.1.2.3:443", "172.16.0.1:80", "172.31.255.255:80", "192.168.1.1:80", "100.64.0.1:80",
                       "[fd00::1]:443", "[fc00::1]:443", "127.0.0.1:5432", "127.1.2.3:80", "[::1]:8080",
                       "[::ffff:10.0.0.1]:80"] {
            #expect(p.evaluateEgress(target: target).decision == .deny, "\(target)")
        }
        #expect(p.evaluateEgress(target: "172.32.0.1:80").decision == .allow)
        #expect(p.evaluateEgress(target: "93.184.216.34:443").decision == .allow)
        #expect(p.evaluateConnection(addressTarget: "10.0.0.8:443", resolvedName: "pypi.org").decision == .deny)
        #expect(p.evaluateConnection(addressTarget: "127.0.0.1:443", resolvedName: "pypi.org").decision == .deny)
        // The switches don't touch names or unix sockets.
        #expect(p.evaluateDNSQuery(name: "pypi.org").decision == .allow)
        #expect(p.evaluateEgress(target: "unix:@dbus-x").decision == .allow)
    }

    @Test("the profile allows registries, code hosts and model APIs by name and denies the rest", arguments: [
        ("pypi.org", 443), ("files.pythonhosted.org", 443), ("registry.npmjs.org", 443), ("crates.io", 443),
        ("static.crates.io", 443), ("index.crates.io", 443), ("proxy.golang.org", 443), ("sum.golang.org", 443),
        ("rubygems.org", 443), ("repo.maven.apache.org", 443), ("deb.debian.org", 80), ("archive.ubuntu.com", 80),
        ("de.archive.ubuntu.com", 443), ("dl-cdn.alpinelinux.org", 443), ("github.com", 443), ("github.com", 22),
        ("api.github.com", 443), ("codeload.github.com", 443), ("objects.githubusercontent.com", 443),
        ("gitlab.com", 22), ("bitbucket.org", 443), ("api.anthropic.com", 443), ("api.openai.com", 443),
        ("generativelanguage.googleapis.com", 443),
    ])
    func profileAllows(_ host: String, _ port: Int) throws {
        let p = try including("agentgate:egress-coding-agents", "agentgate:default")
        #expect(p.evaluateConnection(addressTarget: "104.16.0.35:\(port)", resolvedName: host).decision == .allow)
        #expect(p.evaluateDNSQuery(name: host).decision == .allow)
    }

    @Test("under the profile, everything else is denied, also by address")
    func profileDenies() throws {
        let p = try including("agentgate:egress-coding-agents", "agentgate:default")
        let unknown = p.evaluateConnection(addressTarget: "104.16.0.35:443", resolvedName: "paste.evil.example")
        #expect(unknown.decision == .deny)
        #expect(p.rules[unknown.ruleIndex!].reason == "egress is default-deny under the coding-agents profile; add a host rule")
        #expect(p.evaluateDNSQuery(name: "paste.evil.example").decision == .deny)
        #expect(p.evaluateDNSQuery(name: "github.com.evil.example").decision == .deny)
        #expect(p.evaluateConnection(addressTarget: "104.16.0.35:8080", resolvedName: "pypi.org").decision == .deny)
        // An unresolved IP is denied: no name, no host rule.
        #expect(p.evaluateEgress(target: "104.16.0.35:443").decision == .deny)
        // A registry name pointed at metadata or link-local is denied by the address.
        let rebound = p.evaluateConnection(addressTarget: "169.254.169.254:443", resolvedName: "pypi.org")
        #expect(rebound.decision == .deny)
        #expect(p.rules[rebound.ruleIndex!].id == "cloud-metadata")
        #expect(p.evaluateConnection(addressTarget: "[fe80::1]:443", resolvedName: "github.com").decision == .deny)
        // Reverse lookups still resolve.
        #expect(p.evaluateDNSQuery(name: "35.0.16.104.in-addr.arpa").decision == .allow)
    }

    @Test("under the profile, unix sockets and loopback keep working; socket paths still meet fs_write")
    func profileLocal() throws {
        let p = try including("agentgate:egress-coding-agents", "agentgate:default")
        #expect(p.evaluateEgress(target: "127.0.0.1:3000").decision == .allow)
        #expect(p.evaluateEgress(target: "[::1]:5173").decision == .allow)
        #expect(p.evaluateConnection(addressTarget: "127.0.0.1:3000", resolvedName: "localhost").decision == .allow)
        #expect(p.evaluateEgress(target: "unix:@dbus-abc").decision == .allow)
        #expect(p.evaluateEgress(target: "unix:/tmp/lsp.sock").decision == .allow)
        // Outside programs' sockets stay refused: an abstract session bus or X server, tmux.
        #expect(p.evaluateEgress(target: "unix:@/tmp/dbus-abc").decision == .deny)
        #expect(p.evaluateEgress(target: "unix:@/tmp/.X11-unix/X0").decision == .deny)
        #expect(p.evaluateEgress(target: "unix:/tmp/tmux-1000/default").decision == .deny)
        let docker = p.evaluateEgress(target: "unix:/var/run/docker.sock")
        #expect(docker.decision == .deny)
        #expect(p.rules[docker.ruleIndex!].id == "other-writes")
        // deny-loopback before the profile wins over its loopback allow.
        let strict = try including("agentgate:deny-loopback", "agentgate:egress-coding-agents", "agentgate:default")
        #expect(strict.evaluateEgress(target: "127.0.0.1:3000").decision == .deny)
    }
}
