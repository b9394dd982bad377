import AgentGatePolicy
import AgentGateStore
import CSupport
import Glibc
import Synchronization

/// The session's DNS forwarder: it answers every query the agent sends to port 53 of any
/// address (through the sockets `DNSSwap` put in the agent's place), over UDP and TCP.
///
/// Each query is an action: it is decided by the policy's net_egress host rules
/// (`Policy.evaluateDNSQuery`) and watched for exfiltration (`DNSQueryMonitor`). A refused query
/// is answered NXDOMAIN (by the policy) or REFUSED (over the per-parent limit) without leaving
/// the machine. An allowed one goes to the system's resolvers (/etc/resolv.conf), and the
/// addresses of its answer are remembered as the name's (`ResolvedNames`), so the connect that
/// follows is decided by the name. Every query is recorded, with its answer.
///
/// None of this is on the path of a trapped call: the forwarder's threads only share the
/// name map (one lock, held for a dictionary lookup) with connects.
final class DNSForwarder: Sendable {
    let capture: DNSCapture
    private let core: SupervisorCore
    /// The system's resolvers (as socket addresses), read again when resolv.conf changes.
    private let upstreamState: Mutex<(servers: [[UInt8]], modified: timespec?, checkedAt: UInt64)>
    private let resolvConf: String
    private let monitor: Mutex<(generation: UInt64, monitor: DNSQueryMonitor)>
    private let stopping = Atomic<Bool>(false)
    private let connections = Atomic<Int>(0)
    private let inFlight = Atomic<Int>(0)
    /// An eventfd that wakes the listening threads to stop.
    private let wake: Int32
    private let threads = Mutex<[Thread]>([])

    static let maximumConnections = 32
    static let maximumInFlight = 64
    /// glibc's own default per try: a slow resolver is waited for as long as bare.
    static let upstreamTimeoutMilliseconds: Int32 = 5000
    static let connectionIdleMilliseconds: Int32 = 10_000
    /// Different names under one parent that a policy's `ask` lets resolve per window.
    static let askedNamesPerParent = 20

    init(capture: DNSCapture, core: SupervisorCore, resolvConf: String = "/etc/resolv.conf") {
        self.capture = capture
        self.core = core
        self.resolvConf = resolvConf
        // No nameserver line means no resolver: not glibc's 127.0.0.1, which the agent itself
        // could be listening on.
        upstreamState = Mutex(([], nil, 0))
        monitor = Mutex((core.policies.currentGeneration, DNSQueryMonitor(limits: core.policies.version.policy.dnsLimits)))
        wake = agentgate_wake_fd()
    }

    /// `nameserver` lines of resolv.conf, in order (glibc uses the first three).
    static func nameservers(_ text: String) -> [String] {
        var result: [String] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, fields[0] == "nameserver" else { continue }
            result.append(String(fields[1]))
        }
        return Array(result.prefix(3))
    }

    /// ADDRESS:53 as a sockaddr_in or sockaddr_in6; a link-local IPv6 address keeps its scope
    /// (fe80::1%eth0).
    static func socketAddress(_ text: String) -> [UInt8]? {
        var v4 = sockaddr_in()
        if inet_pton(AF_INET, text, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = UInt16(53).bigEndian
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        let parts = text.split(separator: "%", maxSplits: 1)
        var v6 = sockaddr_in6()
        guard let address = parts.first, inet_pton(AF_INET6, String(address), &v6.sin6_addr) == 1 else { return nil }
        v6.sin6_family = sa_family_t(AF_INET6)
        v6.sin6_port = UInt16(53).bigEndian
        if parts.count == 2 {
            let scope = UInt32(parts[1]) ?? if_nametoindex(String(parts[1]))
            guard scope != 0 else { return nil }
            v6.sin6_scope_id = scope
        }
        return withUnsafeBytes(of: &v6) { Array($0) }
    }

    /// The resolvers to forward to: resolv.conf as it is now (looked at no more than every 5 s).
    var upstreams: [[UInt8]] {
        let now = ResolvedNames.nowSeconds()
        let due = upstreamState.withLock { state -> Bool in
            guard state.checkedAt == 0 || now >= state.checkedAt + 5 else { return false }
            state.checkedAt = max(now, 1)
            return true
        }
        if due {
            var info = stat()
            let exists = stat(resolvConf, &info) == 0
            let changed = upstreamState.withLock { state in
                guard let modified = state.modified, exists else { return true }
                return modified.tv_sec != info.st_mtim.tv_sec || modified.tv_nsec != info.st_mtim.tv_nsec
            }
            if changed {
                let servers = (exists ? SessionCgroup.readFile(resolvConf) : nil).map { Self.nameservers($0).compactMap(Self.socketAddress) } ?? []
                upstreamState.withLock { $0.servers = servers; $0.modified = exists ? info.st_mtim : nil }
            }
        }
        return upstreamState.withLock { $0.servers }
    }

    /// Starts the listening threads. False when one could not start.
    func start() -> Bool {
        let datagram = Thread(stackSize: 256 << 10) { [self] in serveDatagrams() }
        let stream = Thread(stackSize: 256 << 10) { [self] in serveStreams() }
        threads.withLock { $0 = [datagram, stream] }
        return datagram.start(detached: false) && stream.start(detached: false)
    }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        var one: UInt64 = 1
        _ = Glibc.write(wake, &one, 8)
        for thread in threads.withLock({ $0 }) { thread.join() }
    }

    // MARK: UDP

    private func serveDatagrams() {
        var polled = [pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
        for fd in capture.listeners[0..<2] where fd >= 0 { polled.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while !stopping.load(ordering: .relaxed) {
            for i in polled.indices { polled[i].revents = 0 }
            guard poll(&polled, nfds_t(polled.count), -1) > 0 else { continue }
            if polled[0].revents != 0 { return }
            for entry in polled.dropFirst() where entry.revents & Int16(POLLIN) != 0 {
                var peer = [UInt8](repeating: 0, count: 128), local = [UInt8](repeating: 0, count: 128)
                var peerLength = UInt32(128), localLength = UInt32(128)
                let n = agentgate_dns_receive(entry.fd, &buffer, buffer.count, &peer, &peerLength, &local, &localLength)
                guard n > 0, n <= buffer.count else { continue }
                let query = Array(buffer[0..<Int(n)])
                let from = Array(peer.prefix(Int(peerLength))), to = Array(local.prefix(Int(localLength)))
                let listener = entry.fd
                guard inFlight.add(1, ordering: .relaxed).newValue <= Self.maximumInFlight else {
                    inFlight.subtract(1, ordering: .relaxed)
                    if let failure = DNSMessage.answer(to: query, responseCode: DNSMessage.serverFailure) {
                        Self.send(failure, on: listener, to: from, from: to)
                    }
                    continue
                }
                // The upstream exchange may take seconds: never on this thread.
                let worker = Thread(stackSize: 256 << 10) { [self] in
                    defer { inFlight.subtract(1, ordering: .relaxed) }
                    if let answer = answer(query, port: IPKey.port(socketAddress: from) ?? 0, stream: false) {
                        Self.send(answer, on: listener, to: from, from: to)
                    }
                }
                if !worker.start() { inFlight.subtract(1, ordering: .relaxed) }
            }
        }
    }

    private static func send(_ answer: [UInt8], on fd: Int32, to peer: [UInt8], from local: [UInt8]) {
        _ = answer.withUnsafeBytes { bytes in
            peer.withUnsafeBytes { peerBytes in
                local.withUnsafeBytes { localBytes in
                    agentgate_dns_send(fd, bytes.baseAddress, bytes.count, peerBytes.baseAddress, UInt32(peerBytes.count),
                                       localBytes.baseAddress, UInt32(localBytes.count))
                }
            }
        }
    }

    // MARK: TCP

    private func serveStreams() {
        var polled = [pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
        for fd in capture.listeners[2..<4] where fd >= 0 { polled.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
        while !stopping.load(ordering: .relaxed) {
            for i in polled.indices { polled[i].revents = 0 }
            guard poll(&polled, nfds_t(polled.count), -1) > 0 else { continue }
            if polled[0].revents != 0 { return }
            for entry in polled.dropFirst() where entry.revents & Int16(POLLIN) != 0 {
                let connection = agentgate_accept_cloexec(entry.fd)
                guard connection >= 0 else { continue }
                guard connections.add(1, ordering: .relaxed).newValue <= Self.maximumConnections else {
                    connections.subtract(1, ordering: .relaxed)
                    agentgate_close(connection)
                    continue
                }
                // Non-blocking, so a peer that stops reading or trickles can't hold a thread
                // past the deadlines in `read` and `write`.
                _ = fcntl(connection, F_SETFL, O_NONBLOCK)
                let worker = Thread(stackSize: 256 << 10) { [self] in
                    defer { connections.subtract(1, ordering: .relaxed); agentgate_close(connection) }
                    serve(connection: connection)
                }
                if !worker.start() { connections.subtract(1, ordering: .relaxed); agentgate_close(connection) }
            }
        }
    }

    /// Length-prefixed queries on one connection, answered in order, until it closes or idles.
    private func serve(connection: Int32) {
        let port = DNSCapture.peerPort(connection) ?? 0
        while !stopping.load(ordering: .relaxed) {
            guard let prefix = Self.read(connection, count: 2, timeout: Self.connectionIdleMilliseconds) else { return }
            let length = Int(prefix[0]) << 8 | Int(prefix[1])
            guard length >= 12, let query = Self.read(connection, count: length, timeout: Self.connectionIdleMilliseconds) else { return }
            guard let answer = answer(query, port: port, stream: true) else { return }
            let framed = [UInt8(answer.count >> 8), UInt8(answer.count & 0xff)] + answer
            guard Self.write(connection, framed) else { return }
        }
    }

    /// Reads exactly `count` bytes within `timeout` ms in all (a trickling peer gets no more).
    static func read(_ fd: Int32, count: Int, timeout: Int32) -> [UInt8]? {
        var result = [UInt8](repeating: 0, count: count)
        var filled = 0
        let deadline = agentgate_monotonic_ns() + UInt64(timeout) * 1_000_000
        while filled < count {
            let now = agentgate_monotonic_ns()
            guard now < deadline else { return nil }
            var polled = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&polled, 1, Int32((deadline - now) / 1_000_000) + 1) > 0 else { return nil }
            let n = result.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + filled, count - filled, 0) }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            guard n > 0 else { return nil }
            filled += n
        }
        return result
    }

    /// Writes all of `bytes` within the upstream timeout in all.
    static func write(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        let deadline = agentgate_monotonic_ns() + UInt64(upstreamTimeoutMilliseconds) * 1_000_000
        while sent < bytes.count {
            guard agentgate_monotonic_ns() < deadline else { return false }
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN {
                var polled = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                guard poll(&polled, 1, upstreamTimeoutMilliseconds) > 0 else { return false }
                continue
            }
            guard n > 0 else { return false }
            sent += n
        }
        return true
    }

    // MARK: Deciding and relaying

    /// The answer to one query (nil: drop it, as a resolver drops what isn't a query).
    func answer(_ query: [UInt8], port: UInt16, stream: Bool) -> [UInt8]? {
        let started = agentgate_monotonic_ns()
        guard let message = DNSMessage(parsing: query), message.isPlainQuery, let question = message.question else {
            // Not a standard query with one question (an update, a notify, a message carrying
            // records): refused, never forwarded.
            return DNSMessage.answer(to: query, responseCode: DNSMessage.refused)
        }
        let origin = capture.origin(port: port, stream: stream)
        let version = core.policies.version
        let policy = version.policy
        let context = origin.flatMap { core.contexts.context(tid: $0.tgid) }
        let verdict = policy.evaluateDNSQuery(name: question.name, context: context)
        let observation = monitor.withLock { state -> DNSQueryObservation in
            let generation = core.policies.currentGeneration
            if generation != state.generation {
                state = (generation, DNSQueryMonitor(limits: policy.dnsLimits))
            }
            return state.monitor.observe(question.name, nowSeconds: ResolvedNames.nowSeconds())
        }
        let target = "\(question.name.isEmpty ? "." : question.name) \(DNSMessage.typeName(question.type))"
        let enforced = verdict.enforced
        var event = Event(origin: origin, stream: stream, target: target, started: started, version: version)
        event.anomalies = observation.anomalies
        let isReverse = question.name.hasSuffix(".in-addr.arpa") || question.name.hasSuffix(".ip6.arpa")
        // `ask` lets an ordinary-looking name through, so the connect that follows is what a
        // person decides; a name that looks like data (flagged) or one past the asked-name limit
        // is refused: nobody is asked about a query, and a query alone can carry data out.
        if verdict.decision == .ask && (!observation.anomalies.isEmpty || observation.uniqueSubdomains > Self.askedNamesPerParent) {
            event.decision = .deny
            event.reason = "a name the policy asks about, and it looks like data (a query is never asked about)"
            event.enforced = enforced
            record(event)
            if enforced { return DNSMessage.answer(to: query, responseCode: DNSMessage.refused) }
        } else if isReverse && question.type != 12 && verdict.ruleIndex == nil && verdict.decision.allows {
            // Reverse names are for PTR lookups: any other type under them is a channel.
            event.decision = .deny
            event.reason = "reverse names are only looked up as PTR"
            record(event)
            return DNSMessage.answer(to: query, responseCode: DNSMessage.nameError)
        } else if isReverse && verdict.ruleIndex == nil && verdict.decision.allows && !policy.defaultDecision(for: .netEgress).allows,
                  let address = Self.reverseAddress(question.name), !Self.isLocalAddress(address),
                  capture.names.attribution(of: IPKey(bytes: address), tgid: origin?.tgid ?? 0) == nil {
            // Where names are denied unless a rule allows them, a reverse name is allowed only
            // for an address the session resolved (what getnameinfo asks about a peer) or a
            // local one: any other well-formed reverse name carries 32 to 128 bits of the agent's
            // choosing to whoever holds that reverse zone (found by review).
            event.decision = .deny
            event.reason = "a reverse lookup of an address this session never resolved (reverse names can carry data out)"
            event.enforced = enforced
            record(event)
            if enforced { return DNSMessage.answer(to: query, responseCode: DNSMessage.nameError) }
        } else if verdict.decision == .deny {
            event.verdict(verdict, policy: policy, enforced: enforced)
            record(event)
            if enforced { return DNSMessage.answer(to: query, responseCode: DNSMessage.nameError) }
        } else if observation.exceedsLimit {
            event.decision = .deny
            event.reason = "too many unique subdomains under one parent (dns.unique_subdomains_per_parent)"
            event.enforced = enforced
            record(event)
            if enforced { return DNSMessage.answer(to: query, responseCode: DNSMessage.refused) }
        }
        let answered = forward(query, message: message, stream: stream)
        guard let answered else {
            if verdict.decision != .deny && !observation.exceedsLimit {
                event.verdict(verdict, policy: policy, enforced: enforced)
                event.reason += "; no resolver answered"
                record(event)
            }
            // No answer, as the agent would have had none bare: its resolver retries on its own
            // schedule (a SERVFAIL would end the lookup, and next to an empty AAAA answer read
            // as "no address").
            return nil
        }
        let parsed = DNSMessage(parsing: answered)
        // Only an address query's own answer names addresses.
        if let parsed, [DNSMessage.typeA, DNSMessage.typeAAAA, 255].contains(question.type) {
            for address in parsed.answeringAddresses {
                capture.names.record(IPKey(bytes: address.bytes), name: question.name, ttl: address.ttl, tgid: origin?.tgid ?? 0)
            }
        }
        if verdict.decision != .deny && !observation.exceedsLimit {
            event.verdict(verdict, policy: policy, enforced: enforced)
            event.reason += "; " + Self.describe(parsed)
            record(event)
        }
        return answered
    }

    /// The address a well-formed reverse name names, as 16 bytes (IPv4 mapped into IPv6, as
    /// `IPKey` keeps it), or nil.
    static func reverseAddress(_ name: String) -> [UInt8]? {
        let lower = name.lowercased()
        if lower.hasSuffix(".in-addr.arpa") {
            let labels = lower.dropLast(13).split(separator: ".", omittingEmptySubsequences: false)
            guard labels.count == 4 else { return nil }
            var bytes: [UInt8] = []
            for label in labels.reversed() {
                guard let value = UInt8(label), String(value) == label else { return nil }
                bytes.append(value)
            }
            return [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] + bytes
        }
        if lower.hasSuffix(".ip6.arpa") {
            let nibbles = lower.dropLast(9).split(separator: ".", omittingEmptySubsequences: false)
            guard nibbles.count == 32 else { return nil }
            var values: [UInt8] = []
            for nibble in nibbles.reversed() {
                guard nibble.count == 1, let value = UInt8(nibble, radix: 16) else { return nil }
                values.append(value)
            }
            return stride(from: 0, to: 32, by: 2).map { values[$0] << 4 | values[$0 + 1] }
        }
        return nil
    }

    /// 127.0.0.1 and ::1 only: any other loopback or unspecified address (127.x.y.z, 0.x.y.z,
    /// ::ffff:127.x.y.z) carries up to 24 chosen bits, and a resolver that doesn't answer its
    /// reverse zone itself passes them on (found by review).
    static func isLocalAddress(_ bytes: [UInt8]) -> Bool {
        bytes == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1] || bytes == [UInt8](repeating: 0, count: 15) + [1]
    }

    /// "answered 104.16.0.35, 2606:4700::6810:23 (ttl 300)", "answered NXDOMAIN"…
    static func describe(_ answer: DNSMessage?) -> String {
        guard let answer else { return "answered with a message that could not be read" }
        switch answer.responseCode {
        case 0 where answer.addresses.isEmpty:
            return answer.aliases.isEmpty ? "answered with no address" : "answered alias \(answer.aliases.joined(separator: ", "))"
        case 0:
            let shown = answer.addresses.prefix(8).map { DNSMessage.addressText($0.bytes) }
            let more = answer.addresses.count > 8 ? " and \(answer.addresses.count - 8) more" : ""
            let ttl = answer.addresses.map(\.ttl).min() ?? 0
            return "answered \(shown.joined(separator: ", "))\(more) (ttl \(ttl))"
        case 3: return "answered NXDOMAIN"
        case 2: return "answered SERVFAIL"
        case 5: return "answered REFUSED"
        default: return "answered rcode \(answer.responseCode)"
        }
    }

    /// Sends `query` to the system's resolvers in turn (two rounds), over the same transport
    /// the agent used, under an id of the forwarder's own (the agent's id is known to the agent,
    /// who could race a forged answer); the first answer to the same question wins, given back
    /// under the agent's id.
    private func forward(_ query: [UInt8], message: DNSMessage, stream: Bool) -> [UInt8]? {
        let servers = upstreams
        for _ in 0..<2 {
            for server in servers {
                var sent = query
                let id = UInt16.random(in: 0...UInt16.max)
                sent[0] = UInt8(id >> 8); sent[1] = UInt8(id & 0xff)
                guard var answer = exchange(sent, server: server, stream: stream),
                      let parsed = DNSMessage(parsing: answer), parsed.id == id,
                      parsed.isResponse, parsed.question == message.question else { continue }
                answer[0] = query[0]; answer[1] = query[1]
                return answer
            }
        }
        return nil
    }

    private func exchange(_ query: [UInt8], server: [UInt8], stream: Bool) -> [UInt8]? {
        do {
            // A query that came over TCP tries TCP first; a resolver that doesn't take TCP
            // may still answer it over UDP.
            if stream, let answer = Self.exchangeStream(query, server: server) { return answer }
            return Self.exchangeDatagram(query, server: server)
        }
    }

    static func exchangeDatagram(_ query: [UInt8], server: [UInt8]) -> [UInt8]? {
        let family = Int32(UInt16(server[0]) | UInt16(server[1]) << 8)
        let fd = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { agentgate_close(fd) }
        guard server.withUnsafeBytes({ Glibc.connect(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count)) }) == 0,
              query.withUnsafeBytes({ Glibc.send(fd, $0.baseAddress, $0.count, 0) }) == query.count else { return nil }
        let deadline = agentgate_monotonic_ns() + UInt64(upstreamTimeoutMilliseconds) * 1_000_000
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let now = agentgate_monotonic_ns()
            guard now < deadline else { return nil }
            var polled = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&polled, 1, Int32((deadline - now) / 1_000_000) + 1) > 0 else { return nil }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n >= 12 else { if n < 0 && errno == EINTR { continue }; return nil }
            // Only the answer to this query (same id); anything else is waited past.
            if buffer[0] == query[0] && buffer[1] == query[1] && buffer[2] & 0x80 != 0 { return Array(buffer[0..<n]) }
        }
    }

    static func exchangeStream(_ query: [UInt8], server: [UInt8]) -> [UInt8]? {
        let family = Int32(UInt16(server[0]) | UInt16(server[1]) << 8)
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { agentgate_close(fd) }
        let rc = server.withUnsafeBytes { Glibc.connect(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count)) }
        if rc != 0 {
            guard errno == EINPROGRESS else { return nil }
            var polled = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard poll(&polled, 1, upstreamTimeoutMilliseconds) > 0 else { return nil }
            var error: Int32 = 0
            var length = socklen_t(4)
            guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0, error == 0 else { return nil }
        }
        guard write(fd, [UInt8(query.count >> 8), UInt8(query.count & 0xff)] + query),
              let prefix = read(fd, count: 2, timeout: upstreamTimeoutMilliseconds) else { return nil }
        let length = Int(prefix[0]) << 8 | Int(prefix[1])
        guard length >= 12, let answer = read(fd, count: length, timeout: upstreamTimeoutMilliseconds),
              answer[0] == query[0], answer[1] == query[1] else { return nil }
        return answer
    }

    // MARK: Recording

    /// A query's event, filled in as it is decided.
    struct Event {
        let origin: ProcessFacts?
        let stream: Bool
        let target: String
        let started: UInt64
        let version: PolicyVersion
        var decision: Decision = .allow
        var ruleIndex: Int? = nil
        var ruleID: String? = nil
        var reason = ""
        var enforced = true
        var anomalies: [String] = []

        init(origin: ProcessFacts?, stream: Bool, target: String, started: UInt64, version: PolicyVersion) {
            self.origin = origin
            self.stream = stream
            self.target = target
            self.started = started
            self.version = version
        }

        mutating func verdict(_ verdict: Verdict, policy: Policy, enforced: Bool) {
            decision = verdict.decision == .ask ? .allow : verdict.decision
            ruleIndex = verdict.ruleIndex
            reason = verdict.reason.text
            if let index = verdict.ruleIndex, policy.rules.indices.contains(index) {
                ruleID = policy.rules[index].displayID
                if let ruleReason = policy.rules[index].reason { reason = ruleReason }
            }
            self.enforced = enforced
        }
    }

    private func record(_ event: Event) {
        var reason = event.reason
        if !event.anomalies.isEmpty { reason += "; flagged: " + event.anomalies.joined(separator: "; ") }
        let recordedDecision = RecordedDecision(event.decision)
        var decisionEvent = DecisionEvent(
            timeMicros: AuditClock.nowMicros(), pid: event.origin?.tgid ?? 0, ppid: event.origin?.ppid ?? 0,
            executable: event.origin?.executable ?? "?", syscall: event.stream ? "dns/tcp" : "dns/udp", action: .dns,
            target: event.target, decision: recordedDecision, ruleIndex: event.ruleIndex, reason: reason,
            errno: nil, latencyMicros: Int64((agentgate_monotonic_ns() &- event.started) / 1000),
            ruleID: event.ruleID, intent: nil, notable: event.decision == .log || !event.anomalies.isEmpty,
            enforced: event.enforced)
        decisionEvent.policySHA256 = event.version.sha256
        core.recorder.counts.count(event.decision)
        core.recorder.echo?(decisionEvent)
        core.recorder.writer?.record(decisionEvent)
    }
}

extension DNSCapture {
    static func peerPort(_ socket: Int32) -> UInt16? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(socket, $0, &length) }
        }
        guard rc == 0 else { return nil }
        return withUnsafeBytes(of: &storage) { UInt16($0[2]) << 8 | UInt16($0[3]) }
    }
}
