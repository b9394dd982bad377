import Testing
import AgentGatePolicy

/// `Policy.evaluateConnection` (a connect attributed to the name the agent resolved) and
/// `Policy.evaluateDNSQuery`.
@Suite("Egress by hostname")
struct EgressAttributionTests {
    func policy(_ yaml: String) throws -> Policy {
        try Policy.parse(yaml: yaml, source: "policy.yaml", variables: testVariables)
    }

    /// The built-in policy behind a file that includes `includes` before it.
    func composed(_ includes: [String]) throws -> Policy {
        let list = (includes + [Policy.builtInIncludeName]).joined(separator: ", ")
        return try policy("version: 2\ninclude: [\(list)]\n")
    }

    let sample = """
        version: 2
        default: deny
        rules:
          - id: metadata
            match: {action: net_egress, target_glob: 169.254.169.254}
            decision: deny
          - id: registry
            match: {action: net_egress, target_glob: registry.example}
            decision: allow
          - id: github
            match: {action: net_egress, target_glob: ".github.com:443"}
            decision: allow
          - id: corp
            match: {action: net_egress, target_glob: ".corp.example", cidr: [10.0.0.0/8]}
            decision: allow
          - id: private
            match: {action: net_egress, cidr: [10.0.0.0/8, "fd00::/8"]}
            decision: deny
          - id: build-box
            match: {action: net_egress, target_glob: 203.0.113.7}
            decision: allow
          - id: telemetry
            match: {action: net_egress, target_glob: "*.telemetry.example"}
            decision: log
        """

    @Test("without a name, a connect is decided as evaluateEgress decides it")
    func unresolved() throws {
        let p = try policy(sample)
        for target in ["169.254.169.254:80", "203.0.113.7:443", "10.1.2.3:443", "93.184.216.34:443",
                       "[fd00::1]:443", "[::ffff:10.0.0.1]:80", "unix:/tmp/x.sock"] {
            #expect(p.evaluateConnection(addressTarget: target, resolvedName: nil) == p.evaluateEgress(target: target), "\(target)")
        }
        // Host-name rules never match an IP literal.
        #expect(p.evaluateConnection(addressTarget: "93.184.216.34:443", resolvedName: nil).ruleIndex == nil)
    }

    @Test("a name allowed by name connects; one no rule names falls to the default")
    func byName() throws {
        let p = try policy(sample)
        let allowed = p.evaluateConnection(addressTarget: "104.16.0.35:443", resolvedName: "registry.example")
        #expect(allowed.decision == .allow)
        #expect(allowed.ruleIndex == 1)
        #expect(p.evaluateConnection(addressTarget: "104.16.0.35:443", resolvedName: "REGISTRY.example.").decision == .allow)
        #expect(p.evaluateConnection(addressTarget: "140.82.112.3:443", resolvedName: "api.github.com").decision == .allow)
        // The port is the connect's: .github.com:443 doesn't allow port 22.
        #expect(p.evaluateConnection(addressTarget: "140.82.112.3:22", resolvedName: "api.github.com").decision == .deny)
        let unknown = p.evaluateConnection(addressTarget: "104.16.0.35:443", resolvedName: "evil.example")
        #expect(unknown.decision == .deny)
        #expect(unknown.ruleIndex == nil)
        #expect(unknown.reason == .defaultDecision)
        // Not by substring.
        #expect(p.evaluateConnection(addressTarget: "1.2.3.4:443", resolvedName: "registry.example.evil.example").decision == .deny)
    }

    @Test("a name allowed by name can't reach an address a rule denies (DNS rebinding)")
    func rebinding() throws {
        let p = try policy(sample)
        let metadata = p.evaluateConnection(addressTarget: "169.254.169.254:80", resolvedName: "registry.example")
        #expect(metadata.decision == .deny)
        #expect(metadata.ruleIndex == 0)
        let privateAddress = p.evaluateConnection(addressTarget: "10.9.9.9:443", resolvedName: "registry.example")
        #expect(privateAddress.decision == .deny)
        #expect(privateAddress.ruleIndex == 4)
        let v6 = p.evaluateConnection(addressTarget: "[fd00::5]:443", resolvedName: "registry.example")
        #expect(v6.decision == .deny)
        // An IPv4-mapped address meets the IPv4 rules.
        #expect(p.evaluateConnection(addressTarget: "[::ffff:169.254.169.254]:80", resolvedName: "registry.example").decision == .deny)
    }

    @Test("cidr constraints of a name rule test the real address")
    func cidrOfNameRule() throws {
        let p = try policy(sample)
        let inside = p.evaluateConnection(addressTarget: "10.2.3.4:443", resolvedName: "git.corp.example")
        #expect(inside.decision == .deny, "the address verdict (private) is stricter than the name's allow")
        #expect(inside.ruleIndex == 4)
        let corp = try policy("""
            default: deny
            rules:
              - match: {action: net_egress, target_glob: ".corp.example", cidr: [10.0.0.0/8]}
                decision: allow
            """)
        #expect(corp.evaluateConnection(addressTarget: "10.2.3.4:443", resolvedName: "git.corp.example").decision == .allow)
        #expect(corp.evaluateConnection(addressTarget: "8.8.8.8:443", resolvedName: "git.corp.example").decision == .deny)
        #expect(corp.evaluateConnection(addressTarget: "10.2.3.4:443", resolvedName: "other.example").decision == .deny)
    }

    @Test("an explicit IP allow works for a name no rule mentions")
    func ipAllow() throws {
        let p = try policy(sample)
        let verdict = p.evaluateConnection(addressTarget: "203.0.113.7:443", resolvedName: "build.internal")
        #expect(verdict.decision == .allow)
        #expect(verdict.ruleIndex == 5)
    }

    @Test("the stricter of two rule verdicts wins; the name's on a tie; first match within each")
    func strictness() throws {
        let p = try policy("""
            default: deny
            rules:
              - id: telemetry
                match: {action: net_egress, target_glob: "*.telemetry.example"}
                decision: log
              - id: registry
                match: {action: net_egress, target_glob: registry.example}
                decision: allow
              - id: cdn
                match: {action: net_egress, cidr: [198.51.100.0/24]}
                decision: allow
              - id: watched
                match: {action: net_egress, cidr: [192.0.2.0/24]}
                decision: log
            """)
        // log (by name) vs allow (by address): log is stricter.
        let logged = p.evaluateConnection(addressTarget: "198.51.100.1:443", resolvedName: "x.telemetry.example")
        #expect(logged.decision == .log)
        #expect(logged.ruleIndex == 0)
        // allow (by name) vs log (by address).
        let watched = p.evaluateConnection(addressTarget: "192.0.2.9:443", resolvedName: "registry.example")
        #expect(watched.decision == .log)
        #expect(watched.ruleIndex == 3)
        // allow and allow: the name's.
        #expect(p.evaluateConnection(addressTarget: "198.51.100.1:443", resolvedName: "registry.example").ruleIndex == 1)
        #expect(p.evaluateConnection(addressTarget: "198.51.100.1:443", resolvedName: "other.example").ruleIndex == 2)
        // Within the name verdict, an address rule placed first decides (first match wins).
        let sampled = try policy(sample)
        #expect(sampled.evaluateConnection(addressTarget: "203.0.113.7:443", resolvedName: "x.telemetry.example").ruleIndex == 5)
    }

    @Test("localhost and address globs name addresses")
    func addressPatterns() throws {
        let p = try policy("""
            default: allow
            rules:
              - id: loopback
                match: {action: net_egress, target_glob: localhost}
                decision: deny
              - id: lan
                match: {action: net_egress, target_glob: "192.168.*"}
                decision: deny
              - id: v6
                match: {action: net_egress, target_glob: "[fe80::1]:*"}
                decision: deny
            """)
        #expect(p.evaluateConnection(addressTarget: "127.0.0.1:8080", resolvedName: "dev.example").ruleIndex == 0)
        #expect(p.evaluateConnection(addressTarget: "192.168.1.4:80", resolvedName: "printer.example").ruleIndex == 1)
        #expect(p.evaluateConnection(addressTarget: "[fe80::1]:80", resolvedName: "router.example").ruleIndex == 2)
        #expect(p.evaluateConnection(addressTarget: "93.184.216.34:80", resolvedName: "localhost.evil.example").decision == .allow)
    }

    @Test("a name that isn't a host name is ignored: the connect is decided as unresolved")
    func badNames() throws {
        let p = try policy(sample)
        for name in ["", ".", "..", "registry.example:443", "10.1", "a.b.123", "registry example", "1.2.3.4", "::1", "a..b",
                     String(repeating: "a", count: 254), "réseau.example"] {
            #expect(p.evaluateConnection(addressTarget: "104.16.0.35:443", resolvedName: name)
                    == p.evaluateEgress(target: "104.16.0.35:443"), "\(name)")
        }
        #expect(Policy.attributedTarget(name: "Registry.Example.", addressTarget: "1.2.3.4:443") == "Registry.Example:443")
        #expect(Policy.hostName("Registry.Example.") == "registry.example")
        #expect(Policy.hostName("10.1") == nil)
        #expect(Policy.hostName("host-1.example") == "host-1.example")
        #expect(Policy.attributedTarget(name: "a.example", addressTarget: "[2001:db8::1]:8443") == "a.example:8443")
        #expect(Policy.attributedTarget(name: "a.example", addressTarget: "[2001:db8::1]") == "a.example")
        #expect(Policy.attributedTarget(name: "a:b", addressTarget: "1.2.3.4:443") == nil)
        // A unix socket has no name to attribute.
        #expect(p.evaluateConnection(addressTarget: "unix:/tmp/x.sock", resolvedName: "registry.example")
                == p.evaluateEgress(target: "unix:/tmp/x.sock"))
    }

    @Test("audit mode, ask, errno and when: behave as for evaluateEgress")
    func verdictFields() throws {
        let audit = try policy("""
            mode: audit
            default: deny
            rules:
              - match: {action: net_egress, target_glob: registry.example}
                decision: allow
            """)
        let unknown = audit.evaluateConnection(addressTarget: "1.2.3.4:443", resolvedName: "evil.example")
        #expect(unknown.decision == .deny)
        #expect(!unknown.enforced)
        #expect(unknown.letsCallProceed)
        #expect(!audit.evaluateConnection(addressTarget: "1.2.3.4:443", resolvedName: "registry.example").enforced)
        let p = try policy("""
            default: ask
            rules:
              - match: {action: net_egress, target_glob: blocked.example}
                decision: deny
                errno: ECONNREFUSED
              - match: {action: net_egress, target_glob: root-only.example}
                when: {uid: 0}
                decision: allow
            """)
        let refused = p.evaluateConnection(addressTarget: "1.2.3.4:443", resolvedName: "blocked.example")
        #expect(refused.decision == .deny)
        #expect(refused.errno != 0)
        let asked = p.evaluateConnection(addressTarget: "1.2.3.4:443", resolvedName: "nobody.example")
        #expect(asked.decision == .ask)
        #expect(asked.reason == .noApprover)
        // Unknown context: an allow rule with when: doesn't apply.
        #expect(p.evaluateConnection(addressTarget: "1.2.3.4:443", resolvedName: "root-only.example").decision == .ask)
    }

    @Test("limits count an attributed connect by its name or its address")
    func limits() throws {
        let p = try policy("""
            default: allow
            limits:
              - {id: registry, action: net_egress, match: {target_glob: registry.example}, count: 5, per: 1m}
              - {id: lan, action: net_egress, match: {cidr: [10.0.0.0/8]}, count: 5, per: 1m}
            """)
        let verdict = p.evaluateConnection(addressTarget: "10.0.0.1:443", resolvedName: "registry.example")
        #expect(p.limit(0, countsConnection: "10.0.0.1:443", resolvedName: "registry.example", verdict: verdict))
        #expect(p.limit(1, countsConnection: "10.0.0.1:443", resolvedName: "registry.example", verdict: verdict))
        #expect(!p.limit(0, countsConnection: "10.0.0.1:443", resolvedName: nil, verdict: verdict))
        #expect(!p.limit(0, countsConnection: "93.184.216.34:443", resolvedName: "other.example", verdict: verdict))
    }

    @Test("odd input never crashes and decides something")
    func oddInput() throws {
        let p = try policy(sample)
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("ab.-_:[]%/@ 0129\u{0}é*".unicodeScalars)
        for _ in 0..<2000 {
            let length = Int.random(in: 0...300, using: &generator)
            let text = String(String.UnicodeScalarView((0..<length).map { _ in alphabet.randomElement(using: &generator)! }))
            _ = p.evaluateDNSQuery(name: text)
            _ = p.evaluateConnection(addressTarget: "1.2.3.4:443", resolvedName: text)
            _ = p.evaluateConnection(addressTarget: text, resolvedName: "registry.example")
            _ = p.evaluateConnection(addressTarget: text, resolvedName: text)
        }
        for address in ["", ":", "[", "[]:", "[::1", "1.2.3.4:", ":443", "unix:", "unix:@"] {
            _ = p.evaluateConnection(addressTarget: address, resolvedName: "registry.example")
        }
    }

    @Test("without address rules, an attributed connect is decided as its NAME:PORT")
    func nameOnlyPolicies() throws {
        let p = try policy("""
            version: 2
            default: deny
            rules:
              - match: {action: net_egress, target_glob: "{registry.example,.github.com:443,*.cdn.example}"}
                decision: allow
              - match: {action: net_egress, target_glob: "*.evil.example"}
                decision: deny
            """)
        for name in ["registry.example", "api.github.com", "x.cdn.example", "a.evil.example", "other.example"] {
            for port in ["443", "80"] {
                #expect(p.evaluateConnection(addressTarget: "198.51.100.4:" + port, resolvedName: name)
                        == p.evaluateEgress(target: name + ":" + port), "\(name):\(port)")
            }
        }
    }

    // MARK: DNS queries

    @Test("a DNS query is decided as a connect to the name on any port")
    func dnsQueries() throws {
        let p = try policy(sample)
        #expect(p.evaluateDNSQuery(name: "registry.example").decision == .allow)
        #expect(p.evaluateDNSQuery(name: "Registry.Example.").decision == .allow)
        // .github.com:443 matches its hosts on any port.
        #expect(p.evaluateDNSQuery(name: "api.github.com").decision == .allow)
        #expect(p.evaluateDNSQuery(name: "github.com").decision == .deny, ".github.com is subdomains only")
        #expect(p.evaluateDNSQuery(name: "x.telemetry.example").decision == .log)
        let unknown = p.evaluateDNSQuery(name: "evil.example")
        #expect(unknown.decision == .deny)
        #expect(unknown.ruleIndex == nil)
        // cidr and IP-literal rules don't match names; the corp rule needs an address.
        #expect(p.evaluateDNSQuery(name: "git.corp.example").ruleIndex == nil)
    }

    @Test("port-limited rules decide a query only when they allow; unix and address rules never")
    func dnsPortsAndKinds() throws {
        let p = try policy("""
            default: allow
            rules:
              - id: smtp
                match: {action: net_egress, target_glob: mail.example, ports: [25]}
                decision: deny
              - id: sock
                match: {action: net_egress, target_glob: "unix:/run/*"}
                decision: deny
              - id: lo
                match: {action: net_egress, target_glob: localhost}
                decision: deny
              - id: web
                match: {action: net_egress, target_glob: "shop.example:443"}
                decision: allow
              - id: resolvers
                match: {action: net_egress, ports: [53]}
                decision: allow
              - id: rest
                match: {action: net_egress}
                decision: deny
            """)
        // The SMTP deny doesn't cover other ports, so it doesn't decide the query: the catch-all does.
        // A catch-all limited to port 53 is about resolvers: it doesn't decide names either.
        #expect(p.evaluateDNSQuery(name: "mail.example").ruleIndex == 5)
        #expect(p.evaluateDNSQuery(name: "localhost").ruleIndex == 5)
        #expect(p.evaluateDNSQuery(name: "shop.example").ruleIndex == 3)
        #expect(p.evaluateDNSQuery(name: "run").ruleIndex == 5)
        // A name with bytes no host name has is decided by catch-alls alone.
        #expect(p.evaluateDNSQuery(name: "shop.example:443").ruleIndex == 5)
    }

    @Test("well-formed reverse lookups are allowed unless a rule names them; others are ordinary names")
    func reverseLookups() throws {
        let p = try policy("""
            default: deny
            rules:
              - id: everything-else
                match: {action: net_egress}
                decision: deny
            """)
        let reverse = p.evaluateDNSQuery(name: "34.216.184.93.in-addr.arpa.")
        #expect(reverse.decision == .allow)
        #expect(reverse.ruleIndex == nil)
        let nibbles = (0..<32).map { _ in "a" }.joined(separator: ".")
        #expect(p.evaluateDNSQuery(name: nibbles + ".ip6.arpa").decision == .allow)
        for name in ["secret-data.1.168.192.in-addr.arpa", "1.2.3.in-addr.arpa", "256.1.2.3.in-addr.arpa",
                     "01.1.2.3.in-addr.arpa", "1.2.3.4.5.in-addr.arpa", "in-addr.arpa", "ab.ip6.arpa",
                     (0..<32).map { _ in "g" }.joined(separator: ".") + ".ip6.arpa"] {
            #expect(p.evaluateDNSQuery(name: name).decision == .deny, "\(name)")
        }
        let named = try policy("""
            default: allow
            rules:
              - match: {action: net_egress, target_glob: ".in-addr.arpa"}
                decision: deny
            """)
        #expect(named.evaluateDNSQuery(name: "34.216.184.93.in-addr.arpa").decision == .deny)
    }

    @Test("a DNS query's verdict carries the mode")
    func dnsAudit() throws {
        let p = try policy("mode: audit\ndefault: deny\n")
        let verdict = p.evaluateDNSQuery(name: "a.example")
        #expect(verdict.decision == .deny)
        #expect(!verdict.enforced)
    }
}
