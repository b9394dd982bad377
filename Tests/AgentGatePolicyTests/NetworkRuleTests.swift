import Foundation
import Testing
import AgentGatePolicy

@Suite("Network rules: addresses, CIDRs and ports")
struct NetworkRuleTests {
    @Test("CIDRs, IPv4 and IPv6")
    func cidrs() throws {
        let p = try policy("""
            default: allow
            rules:
              - match: {action: net_egress, cidr: [10.0.0.0/8, "fd00::/8", 192.168.1.7]}
                decision: deny
            """)
        #expect(p.evaluate(.netEgress, target: "10.1.2.3:443").decision == .deny)
        #expect(p.evaluate(.netEgress, target: "11.1.2.3:443").decision == .allow)
        #expect(p.evaluate(.netEgress, target: "[fd12::1]:80").decision == .deny)
        #expect(p.evaluate(.netEgress, target: "[fe80::1]:80").decision == .allow)
        #expect(p.evaluate(.netEgress, target: "192.168.1.7:22").decision == .deny)
        #expect(p.evaluate(.netEgress, target: "192.168.1.8:22").decision == .allow)
        // IPv4-mapped IPv6 addresses meet IPv4 rules.
        #expect(p.evaluate(.netEgress, target: "[::ffff:10.9.9.9]:443").decision == .deny)
        #expect(p.evaluate(.netEgress, target: "[::ffff:a09:909]:443").decision == .deny)
        // Names and unix sockets are in no network.
        #expect(p.evaluate(.netEgress, target: "example.com:443").decision == .allow)
        #expect(p.evaluate(.netEgress, target: "unix:/run/x.sock").decision == .allow)
    }

    @Test("ports and port ranges, alone and with hosts")
    func ports() throws {
        let p = try policy("""
            default: deny
            rules:
              - match: {action: net_egress, target_glob: "*.github.com", ports: 443}
                decision: allow
              - match: {action: net_egress, cidr: 127.0.0.0/8, ports: ["8000-8999", 3000]}
                decision: allow
              - match: {action: net_egress, target_glob: "unix:/run/user/*/bus"}
                decision: allow
            """)
        #expect(p.evaluate(.netEgress, target: "api.github.com:443").decision == .allow)
        #expect(p.evaluate(.netEgress, target: "api.github.com:22").decision == .deny)
        #expect(p.evaluate(.netEgress, target: "127.0.0.1:8080").decision == .allow)
        #expect(p.evaluate(.netEgress, target: "127.0.0.1:3000").decision == .allow)
        #expect(p.evaluate(.netEgress, target: "127.0.0.1:9000").decision == .deny)
        #expect(p.evaluate(.netEgress, target: "[::ffff:127.0.0.1]:8000").decision == .allow)
        #expect(p.evaluate(.netEgress, target: "unix:/run/user/1000/bus").decision == .allow)
        #expect(p.evaluate(.netEgress, target: "unix:/run/docker.sock").decision == .deny)
    }

    @Test("malformed networks and ports are load errors")
    func malformed() {
        expectLoadError("""
            rules:
              - match: {action: net_egress, cidr: 10.0.0.1/8}
                decision: deny
            """, line: 2, column: 39, "host bits are set")
        expectLoadError("""
            rules:
              - match: {action: net_egress, cidr: 10.0.0.0/33}
                decision: deny
            """, line: 2, column: 39, "at most 32")
        expectLoadError("""
            rules:
              - match: {action: net_egress, cidr: example.com}
                decision: deny
            """, line: 2, column: 39, "expected an IP address or network")
        expectLoadError("""
            rules:
              - match: {action: net_egress, ports: "9-1"}
                decision: deny
            """, line: 2, column: 40, "invalid port \"9-1\"")
        expectLoadError("""
            rules:
              - match: {action: fs_read, ports: 80}
                decision: deny
            """, line: 2, column: 37, "only apply to net_egress")
    }
}
