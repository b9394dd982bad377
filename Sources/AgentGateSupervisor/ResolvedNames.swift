import CSupport
import Glibc
import Synchronization

/// An IP address as 128 bits, IPv4 as IPv4-mapped IPv6: the key the names the agent resolved
/// are found by.
struct IPKey: Hashable, Sendable {
    let high: UInt64
    let low: UInt64

    init(bytes: [UInt8]) {
        var high: UInt64 = 0, low: UInt64 = 0
        for i in 0..<8 { high = high << 8 | UInt64(bytes[i]) }
        for i in 8..<16 { low = low << 8 | UInt64(bytes[i]) }
        self.high = high
        self.low = low
    }

    /// The address of an AF_INET or AF_INET6 socket address, or nil.
    init?(socketAddress bytes: [UInt8]) {
        guard bytes.count >= 2 else { return nil }
        let family = Int32(UInt16(bytes[0]) | UInt16(bytes[1]) << 8)
        if family == AF_INET && bytes.count >= 8 {
            self.init(bytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] + bytes[4..<8])
        } else if family == AF_INET6 && bytes.count >= 24 {
            self.init(bytes: Array(bytes[8..<24]))
        } else {
            return nil
        }
    }

    /// The port of an AF_INET or AF_INET6 socket address.
    static func port(socketAddress bytes: [UInt8]) -> UInt16? {
        guard bytes.count >= 4 else { return nil }
        let family = Int32(UInt16(bytes[0]) | UInt16(bytes[1]) << 8)
        guard family == AF_INET || family == AF_INET6 else { return nil }
        return UInt16(bytes[2]) << 8 | UInt16(bytes[3])
    }
}

/// Where a name for an address came from.
enum NameSource: Sendable, Equatable {
    /// An answer the session's DNS forwarder relayed to the agent.
    case dns
    /// /etc/hosts, which resolvers read without asking DNS.
    case hosts
}

/// The name an address was resolved from.
struct Attribution: Sendable, Equatable {
    let name: String
    let source: NameSource
}

/// The map from IP address to the names the agent resolved it from, filled by the DNS
/// forwarder from the answers it relays (with their TTLs) and from /etc/hosts. A connect is
/// decided by the name the agent got its address from; an address nobody resolved has no name.
///
/// Entries outlive their TTL by a margin (`minimumLifetime`): programs cache answers longer than
/// the TTL says (a CDN's TTL is often seconds), and an address that was a name's answer stays
/// that name's. Memory is bounded (`capacity`).
final class ResolvedNames: Sendable {
    private struct Entry {
        var name: String
        var expiresAt: UInt64
        var tgid: pid_t
    }

    private let entries = Mutex<[IPKey: [Entry]]>([:])
    /// Whether anything was ever resolved: connects skip the lock until then.
    private let isEmpty = Atomic<Bool>(true)
    private let hosts = Mutex<(entries: [IPKey: String], checkedAt: UInt64, modified: timespec?)>(([:], 0, nil))
    private let hostsPath: String

    static let minimumLifetime: UInt64 = 600
    static let maximumLifetime: UInt64 = 86_400
    static let capacity = 65_536
    static let namesPerAddress = 4

    init(hostsPath: String = "/etc/hosts") {
        self.hostsPath = hostsPath
        reloadHostsIfChanged(now: Self.nowSeconds())
    }

    static func nowSeconds() -> UInt64 { agentgate_monotonic_ns() / 1_000_000_000 }

    /// Records that `name`'s answer, given to process `tgid`, held `address` for `ttl` seconds.
    func record(_ address: IPKey, name: String, ttl: UInt32, tgid: pid_t) {
        let now = Self.nowSeconds()
        let lifetime = min(max(UInt64(ttl), Self.minimumLifetime), Self.maximumLifetime)
        let entry = Entry(name: name, expiresAt: now + lifetime, tgid: tgid)
        entries.withLock { entries in
            var list = entries[address] ?? []
            list.removeAll { $0.name == name && $0.tgid == tgid }
            list.insert(entry, at: 0)
            if list.count > Self.namesPerAddress { list.removeLast(list.count - Self.namesPerAddress) }
            entries[address] = list
            if entries.count > Self.capacity { Self.evict(&entries, now: now) }
        }
        isEmpty.store(false, ordering: .releasing)
    }

    /// Drops expired entries, then the half that expires soonest.
    private static func evict(_ entries: inout [IPKey: [Entry]], now: UInt64) {
        entries = entries.compactMapValues { list in
            let live = list.filter { $0.expiresAt > now }
            return live.isEmpty ? nil : live
        }
        guard entries.count > capacity * 3 / 4 else { return }
        let expiries = entries.values.map { $0[0].expiresAt }.sorted()
        let cut = expiries[expiries.count / 2]
        entries = entries.filter { $0.value[0].expiresAt > cut }
    }

    /// The name `address` was resolved from: by process `tgid` if it resolved it, else the
    /// latest in the session, else /etc/hosts.
    func attribution(of address: IPKey, tgid: pid_t, includingHosts: Bool = true) -> Attribution? {
        let now = Self.nowSeconds()
        if !isEmpty.load(ordering: .acquiring) {
            let found: String? = entries.withLock { entries in
                guard let list = entries[address] else { return nil }
                let live = list.lazy.filter { $0.expiresAt > now }
                return (live.first { $0.tgid == tgid } ?? live.first)?.name
            }
            if let found { return Attribution(name: found, source: .dns) }
        }
        guard includingHosts else { return nil }
        reloadHostsIfChanged(now: now)
        return hosts.withLock { $0.entries[address] }.map { Attribution(name: $0, source: .hosts) }
    }

    /// Reads /etc/hosts again when it changed (looked at no more than every 5 s).
    private func reloadHostsIfChanged(now: UInt64) {
        let due = hosts.withLock { state -> Bool in
            guard state.checkedAt == 0 || now >= state.checkedAt + 5 else { return false }
            state.checkedAt = max(now, 1)
            return true
        }
        guard due else { return }
        var info = stat()
        guard stat(hostsPath, &info) == 0 else {
            hosts.withLock { $0.entries = [:]; $0.modified = nil }
            return
        }
        let unchanged = hosts.withLock { state in
            state.modified.map { $0.tv_sec == info.st_mtim.tv_sec && $0.tv_nsec == info.st_mtim.tv_nsec } ?? false
        }
        guard !unchanged, let text = SessionCgroup.readFile(hostsPath) else { return }
        let parsed = Self.parseHosts(text)
        hosts.withLock { $0.entries = parsed; $0.modified = info.st_mtim }
    }

    /// /etc/hosts: `ADDRESS NAME [ALIAS…]`, `#` comments. An address keeps its first name.
    static func parseHosts(_ text: String) -> [IPKey: String] {
        var result: [IPKey: String] = [:]
        for line in text.split(whereSeparator: { $0 == "\n" }) {
            let content = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = content.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard fields.count >= 2, let key = parseAddress(String(fields[0])) else { continue }
            if result[key] == nil { result[key] = fields[1].lowercased() }
        }
        return result
    }

    /// inet_pton of an IPv4 or IPv6 address, as an `IPKey`.
    static func parseAddress(_ text: String) -> IPKey? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            let value = UInt32(bigEndian: v4.s_addr)
            return IPKey(bytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
                                 UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)])
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        return withUnsafeBytes(of: &v6) { IPKey(bytes: Array($0)) }
    }
}
