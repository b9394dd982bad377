import Testing
import AgentGatePolicy

@Suite("DNS exfiltration monitor and dns: limits")
struct DNSQueryMonitorTests {
    @Test("ordinary names raise nothing")
    func ordinary() {
        var monitor = DNSQueryMonitor(limits: DNSLimits())
        for name in ["registry.npmjs.org", "files.pythonhosted.org.", "api.github.com", "www.example.co.uk",
                     "production-eu-west-1.example.com", "34.216.184.93.in-addr.arpa"] {
            let observation = monitor.observe(name, nowSeconds: 100)
            #expect(observation.anomalies.isEmpty, "\(name): \(observation.anomalies)")
            #expect(!observation.exceedsLimit)
        }
    }

    @Test("long and high-entropy labels are flagged")
    func labels() {
        var monitor = DNSQueryMonitor(limits: DNSLimits())
        let long = String(repeating: "ab", count: 26) + ".attacker.example"
        #expect(monitor.observe(long, nowSeconds: 1).anomalies.contains("label of 52 bytes"))
        let random = monitor.observe("a8f3kq9zx2m7wv4tj6yb1npc.attacker.example", nowSeconds: 1)
        #expect(random.anomalies.count == 1)
        #expect(random.anomalies.first?.hasPrefix("high-entropy label 'a8f3kq9z…' (") == true, "\(random.anomalies)")
        #expect(random.anomalies.first?.hasSuffix(" bits/char)") == true)
        // Short random labels are too short to judge.
        #expect(monitor.observe("x8f3q.attacker.example", nowSeconds: 1).anomalies.isEmpty)
    }

    @Test("many unique subdomains of one parent are flagged; repeats and other parents are not counted")
    func uniqueSubdomains() {
        var monitor = DNSQueryMonitor(limits: DNSLimits())
        for i in 0..<30 {
            #expect(monitor.observe("c\(i).attacker.example", nowSeconds: 10).anomalies.isEmpty)
        }
        #expect(monitor.observe("c0.attacker.example", nowSeconds: 11).anomalies.isEmpty, "a repeat is not new")
        #expect(monitor.observe("attacker.example", nowSeconds: 11).anomalies.isEmpty, "the parent is no subdomain")
        #expect(monitor.observe("c1.other.example", nowSeconds: 11).anomalies.isEmpty)
        let flagged = monitor.observe("c30.attacker.example", nowSeconds: 12)
        #expect(flagged.anomalies == ["31 unique subdomains of attacker.example in 60 s"])
        #expect(!flagged.exceedsLimit, "no limit: only flagged")
        #expect(flagged.uniqueSubdomains == 31)
        // After the window, the count starts again.
        #expect(monitor.observe("c31.attacker.example", nowSeconds: 80).uniqueSubdomains == 1)
    }

    @Test("the policy's limit refuses one more unique name per parent per window")
    func limit() throws {
        var monitor = DNSQueryMonitor(limits: DNSLimits(uniqueSubdomainsPerParent: 3, window: LimitWindow(seconds: 10)!))
        for i in 0..<3 { #expect(!monitor.observe("n\(i).exfil.example", nowSeconds: 0).exceedsLimit) }
        let over = monitor.observe("n3.exfil.example", nowSeconds: 1)
        #expect(over.exceedsLimit)
        #expect(over.anomalies.contains("over the limit of 3 unique subdomains of exfil.example in 10s"), "\(over.anomalies)")
        #expect(!monitor.observe("n1.exfil.example", nowSeconds: 2).exceedsLimit, "names already answered still resolve")
        #expect(!monitor.observe("n0.other.example", nowSeconds: 2).exceedsLimit)
        #expect(!monitor.observe("n3.exfil.example", nowSeconds: 12).exceedsLimit, "a new window")
    }

    @Test("parents are registrable domains, approximately")
    func parents() {
        #expect(DNSQueryMonitor.registrableDomain(of: "a.b.attacker.example") == "attacker.example")
        #expect(DNSQueryMonitor.registrableDomain(of: "x.shop.co.uk") == "shop.co.uk")
        #expect(DNSQueryMonitor.registrableDomain(of: "data.someone.github.io") == "someone.github.io")
        #expect(DNSQueryMonitor.registrableDomain(of: "example.com") == "example.com")
        #expect(DNSQueryMonitor.registrableDomain(of: "localhost") == "localhost")
        var monitor = DNSQueryMonitor(limits: DNSLimits())
        #expect(monitor.observe("X.Attacker.Example.", nowSeconds: 0).parent == "attacker.example")
    }

    @Test("memory is bounded: parents and names per parent are capped")
    func bounded() {
        var monitor = DNSQueryMonitor(limits: DNSLimits())
        for i in 0..<(DNSQueryMonitor.maximumParents + 50) {
            _ = monitor.observe("a.p\(i).example", nowSeconds: UInt64(i))
        }
        #expect(monitor.trackedParents == DNSQueryMonitor.maximumParents)
        var last = 0
        for i in 0..<500 { last = monitor.observe("s\(i).big.example", nowSeconds: 1000).uniqueSubdomains }
        #expect(last <= 2 * DNSQueryMonitor.flaggedUniqueSubdomains + 1)
        #expect(last > DNSQueryMonitor.flaggedUniqueSubdomains)
    }

    @Test("dns: is read from the top-level policy")
    func policyKey() throws {
        let p = try Policy.parse(yaml: """
            default: allow
            dns: {unique_subdomains_per_parent: 50, window: 2m}
            """, source: "policy.yaml", variables: testVariables)
        #expect(p.dnsLimits == DNSLimits(uniqueSubdomainsPerParent: 50, window: LimitWindow(seconds: 120)!))
        let plain = try Policy.parse(yaml: "default: allow\n", source: "policy.yaml", variables: testVariables)
        #expect(plain.dnsLimits.uniqueSubdomainsPerParent == nil)
        #expect(plain.dnsLimits.window.seconds == 60)
        let windowOnly = try Policy.parse(yaml: "default: allow\ndns:\n  window: 30s\n", source: "policy.yaml",
                                          variables: testVariables)
        #expect(windowOnly.dnsLimits == DNSLimits(uniqueSubdomainsPerParent: nil, window: LimitWindow(seconds: 30)!))
    }

    @Test("bad dns: values are positioned errors")
    func policyErrors() throws {
        expectLoadError("default: allow\ndns: {unique_subdomains_per_parent: 0}\n", line: 2, column: 37,
                        "expected \"dns.unique_subdomains_per_parent\" to be a whole number from 1 to 1000")
        expectLoadError("default: allow\ndns: {unique_subdomains_per_parent: lots}\n", line: 2, column: 37, "found \"lots\"")
        expectLoadError("default: allow\ndns: {window: forever}\n", line: 2, column: 15, "invalid \"dns.window\"")
        expectLoadError("default: allow\ndns: {limit: 3}\n", line: 2, column: 7,
                        "unknown key \"limit\" in dns; expected one of unique_subdomains_per_parent, window")
        expectLoadError("default: allow\ndns: [1]\n", line: 2, column: 6, "expected \"dns\" to be a mapping")
        let directory = try TemporaryDirectory()
        directory.write("inner.yaml", "dns: {unique_subdomains_per_parent: 5}\n")
        let outer = directory.write("outer.yaml", "default: allow\ninclude: [inner.yaml]\n")
        do {
            _ = try Policy.load(path: outer, variables: testVariables)
            Issue.record("an included file may not set dns")
        } catch {
            #expect(error.file.hasSuffix("inner.yaml"))
            #expect(error.line == 1 && error.column == 1)
            #expect(error.message.contains("\"dns\" may only be set in the top-level policy"))
        }
    }
}
