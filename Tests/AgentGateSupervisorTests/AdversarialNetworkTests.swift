import Foundation
import Glibc
import Testing

/// Denied destinations, each with something listening that counts what reaches it:
/// a TCP listener, a UDP socket, a unix stream listener and a unix datagram socket; plus an
/// allowed TCP listener.
final class NetworkFixture {
    let h: Harness
    let bin: AdversarialBinaries
    let blocked: LoopbackListener
    let allowed: LoopbackListener
    let udp: SocketSink
    let udpAllowed: SocketSink
    let unixStream: SocketSink
    let unixDatagram: SocketSink
    let abstract: SocketSink
    let policy: String

    init(_ name: String = #function) throws {
        h = try Harness(name)
        bin = try AdversarialBinaries.get()
        try h.mkdir("pub")
        blocked = try LoopbackListener()
        allowed = try LoopbackListener()
        udp = try SocketSink(.udp)
        udpAllowed = try SocketSink(.udp)
        unixStream = try SocketSink(.unixStream, path: h.path("denied.sock"))
        unixDatagram = try SocketSink(.unixDatagram, path: h.path("denied.dgram"))
        abstract = try SocketSink(.unixStream, path: "@agentgate-adv-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        policy = try h.policy("""
            default: allow
            rules:
              - match: {action: net_egress, target_glob: "127.0.0.1:\(blocked.port)"}
                decision: deny
              - match: {action: net_egress, target_glob: "127.0.0.1:\(udp.port)"}
                decision: deny
              - match: {action: net_egress, target_glob: "unix:\(h.path("denied.sock"))"}
                decision: deny
              - match: {action: net_egress, target_glob: "unix:\(h.path("denied.dgram"))"}
                decision: deny
              - match: {action: net_egress, target_glob: "unix:\(abstract.path)"}
                decision: deny
            """)
    }

    deinit { blocked.close(); allowed.close(); udp.close(); udpAllowed.close(); unixStream.close(); unixDatagram.close(); abstract.close() }

    /// Polls until every listener and sink has seen everything sent to it so far.
    func drain() {
        blocked.drain(); allowed.drain(); udp.drain(); udpAllowed.drain(); unixStream.drain(); unixDatagram.drain(); abstract.drain()
    }

    /// Everything that reached a denied destination so far.
    var reached: Int { blocked.connections + udp.events + unixStream.events + unixDatagram.events + abstract.events }
    var summary: String {
        "tcp=\(blocked.connections) udp=\(udp.events) unix-stream=\(unixStream.events) unix-dgram=\(unixDatagram.events) abstract=\(abstract.events) received=\(blocked.received)\(udp.received)\(unixStream.received)\(unixDatagram.received)"
    }
}

/// One fixture; bare first (something must reach a denied destination), then supervised
/// (nothing more may).
@discardableResult
func networkAttempt(_ name: String, setup: (NetworkFixture) throws -> Void = { _ in },
                    _ args: (NetworkFixture) -> [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> (NetworkFixture, Harness.Result) {
    let f = try NetworkFixture(name)
    try setup(f)
    // A race may lose every round in one bare run on a busy machine: up to three runs, so that
    // the attack is shown to work before the supervised run is believed.
    var bare = f.h.bare([f.bin.helper] + args(f))
    f.drain()
    for _ in 0..<2 where f.reached == 0 {
        bare = f.h.bare([f.bin.helper] + args(f))
        f.drain()
    }
    let afterBare = f.reached
    #expect(afterBare > 0, "\(name): bare, the attack must reach the denied destination (else this test proves nothing)\n\(bare)\n\(f.summary)",
            sourceLocation: sourceLocation)
    let supervised = f.h.supervised([f.bin.helper] + args(f), policy: f.policy)
    f.drain()
    #expect(f.reached == afterBare, "\(name): the denied destination was reached under the supervisor\n\(supervised)\n\(f.summary)",
            sourceLocation: sourceLocation)
    return (f, supervised)
}

extension AdversarialTests {
    @Suite("Adversarial: reaching a denied destination") struct Network {
        @Test("connect to the denied loopback port by another spelling of its address", arguments: [
            "::ffff:127.0.0.1", "0.0.0.0", "::ffff:0.0.0.0",
        ])
        func alternateAddressSpelling(address: String) throws {
            try networkAttempt("spelling") { f in ["connect", address, String(f.blocked.port)] }
        }

        @Test("UDP datagram to a denied port", arguments: ["sendto", "sendmsg", "sendmmsg", "connect-send", "connected-sendto"])
        func udpToDeniedPort(call: String) throws {
            // connected-sendto: connect() to an allowed port first, then sendto() the denied one.
            try networkAttempt("udp") { f in ["udp", call, "127.0.0.1", String(f.udp.port), String(f.allowed.port)] }
        }

        @Test("UDP datagram to a denied port through an IPv4-mapped IPv6 address")
        func udpMappedAddress() throws {
            try networkAttempt("udpmapped") { f in ["udp", "sendto", "::ffff:127.0.0.1", String(f.udp.port)] }
        }

        @Test("TCP Fast Open: connect without connect() via MSG_FASTOPEN", arguments: ["sendto", "sendmsg"])
        func tcpFastOpen(call: String) throws {
            let setting = (try? String(contentsOfFile: "/proc/sys/net/ipv4/tcp_fastopen", encoding: .utf8))
                .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
            if setting & 1 == 0 {
                try Test.cancel("Bare half impossible here: TCP Fast Open is disabled for clients (net.ipv4.tcp_fastopen=\(setting))")
            }
            try networkAttempt("tfo") { f in ["tfo", "127.0.0.1", String(f.blocked.port), call] }
        }

        @Test("unix stream socket through a symlink to a denied socket", arguments: ["symlink in an allowed dir", "relative .. path"])
        func unixStreamViaSymlink(kind: String) throws {
            try networkAttempt("unixstream", setup: { f in
                symlink(f.h.path("denied.sock"), f.h.path("pub/innocent.sock"))
            }) { _ in ["unix", "stream", kind.hasPrefix("symlink") ? "pub/innocent.sock" : "pub/../denied.sock"] }
        }

        @Test("unix datagram sendto a denied socket path", arguments: ["direct", "through a symlink"])
        func unixDatagramSendto(kind: String) throws {
            try networkAttempt("unixdgram", setup: { f in
                symlink(f.h.path("denied.dgram"), f.h.path("pub/innocent.dgram"))
            }) { f in ["unix", "dgram", kind == "direct" ? f.h.path("denied.dgram") : f.h.path("pub/innocent.dgram")] }
        }

        @Test("connect to a denied abstract unix socket")
        func abstractUnixSocket() throws {
            try networkAttempt("abstract") { f in ["unix", "stream", f.abstract.path] }
        }

        @Test("io_uring IORING_OP_CONNECT")
        func ioUringConnect() throws {
            try Adversarial.cancelIfIoUringDisabled()
            let (f, r) = try networkAttempt("uringconnect") { f in ["uring-connect", String(f.blocked.port)] }
            #expect(r.stdout.contains("op=io_uring rc=-1 errno=38"), "spec: io_uring_setup → ENOSYS\n\(r)")
            _ = f
        }

        @Test("race: a thread flips a UDP sendto destination port between an allowed and the denied socket")
        func raceSendto() throws {
            let f = try NetworkFixture()
            var bare = f.h.bare([f.bin.helper, "race-sendto", String(f.udpAllowed.port), String(f.udp.port), "0.3"])
            f.drain()
            for _ in 0..<2 where f.udp.events == 0 {
                bare = f.h.bare([f.bin.helper, "race-sendto", String(f.udpAllowed.port), String(f.udp.port), "1"])
                f.drain()
            }
            let afterBare = f.udp.events
            #expect(afterBare > 0, "bare, some datagrams must reach the denied port\n\(bare)\n\(f.summary)")
            let allowedBefore = f.udpAllowed.events
            let supervised = f.h.supervised([f.bin.helper, "race-sendto", String(f.udpAllowed.port), String(f.udp.port), "3"], policy: f.policy)
            f.drain()
            #expect(f.udp.events == afterBare, "a datagram reached the denied port under the supervisor\n\(supervised)\n\(f.summary)")
            #expect(f.udpAllowed.events > allowedBefore, "no datagram reached the allowed port: the race didn't happen\n\(supervised)")
        }

        @Test("race: a thread flips the sockaddr's port between an allowed and the denied listener while connecting")
        func raceSockaddr() throws {
            let (f, r) = try networkAttempt("raceconnect") { f in ["race-connect", String(f.allowed.port), String(f.blocked.port), "3"] }
            #expect(!r.stdout.contains("allowed-connects=0 "), "no allowed connect succeeded: the race didn't happen\n\(r)")
            #expect(!r.stdout.contains("LEAKED-CONNECT"), "\(r)")
            _ = f
        }
    }
}
