import Foundation
import Yams

/// `dns:` in a policy: how DNS queries are limited, beyond the net_egress rules that decide
/// each name (`Policy.evaluateDNSQuery`).
public struct DNSLimits: Sendable, Equatable {
    /// `unique_subdomains_per_parent`: at most this many different names under one parent
    /// domain per `window`; a query for one more is refused. nil (the default): no limit, the
    /// monitor only flags.
    public var uniqueSubdomainsPerParent: Int?
    /// `window` (default 60 s): the span the unique names are counted over.
    public var window: LimitWindow

    public static let defaultWindow = LimitWindow(seconds: 60)!
    /// The largest `unique_subdomains_per_parent`: what the monitor remembers per parent is
    /// bounded by it.
    public static let maximumUniqueSubdomains = 1000

    public init(uniqueSubdomainsPerParent: Int? = nil, window: LimitWindow = DNSLimits.defaultWindow) {
        self.uniqueSubdomainsPerParent = uniqueSubdomainsPerParent
        self.window = window
    }
}

/// What one query looked like to a `DNSQueryMonitor`.
public struct DNSQueryObservation: Sendable, Equatable {
    /// Human-readable reasons the query looks like data leaving through DNS (long or random
    /// labels, many names under one parent); empty when it looks ordinary.
    public var anomalies: [String]
    /// Whether the query is over the policy's `dns.unique_subdomains_per_parent`: the
    /// supervisor refuses it.
    public var exceedsLimit: Bool
    /// The registrable domain the query was counted under (approximate, see `DNSQueryMonitor`).
    public var parent: String
    /// Different names under `parent` within the window, this one included when it was admitted.
    public var uniqueSubdomains: Int
}

/// Watches one session's DNS queries for exfiltration: data encoded in labels (long ones, or
/// random-looking ones) and many distinct names under one domain the agent's requests keep
/// reaching. Pure and bounded: at most `maximumParents` parents are tracked (the least recently
/// queried of those with few names is forgotten) and, per parent, a bounded number of names (the oldest forgotten);
/// names are remembered as keyed hashes, not text. Not thread-safe: one owner observes.
public struct DNSQueryMonitor: Sendable {
    /// A label longer than this is flagged (real host names rarely have one; encoded data does).
    public static let maximumLabelLength = 40
    /// Labels at least this long are tested for randomness.
    public static let entropyMinimumLength = 20
    /// Shannon entropy (bits per character) at or above which such a label is flagged.
    public static let entropyThreshold = 3.8
    /// More unique names than this under one parent within the window are flagged.
    public static let flaggedUniqueSubdomains = 30
    public static let maximumParents = 256

    public let limits: DNSLimits
    private let capacityPerParent: Int
    private var parents: [String: ParentNames] = [:]

    /// The names seen under one parent: (hash, last seen) in order of last sighting.
    private struct ParentNames: Sendable {
        var names: [(hash: Int, seconds: UInt64)] = []
        var lastSeen: UInt64 = 0
    }

    public init(limits: DNSLimits) {
        self.limits = limits
        capacityPerParent = max(limits.uniqueSubdomainsPerParent ?? 0, 2 * Self.flaggedUniqueSubdomains) + 1
    }

    /// Notes one query (any case, a trailing dot ignored) at `nowSeconds` (any monotonic clock)
    /// and says what looks wrong with it. A query over the limit is not remembered, so the
    /// names that were answered stay within it.
    public mutating func observe(_ name: String, nowSeconds: UInt64) -> DNSQueryObservation {
        let normalized = (name.hasSuffix(".") ? String(name.dropLast()) : name).lowercased()
        let labels = normalized.split(separator: ".", omittingEmptySubsequences: false)
        var anomalies: [String] = []
        for label in labels {
            let length = label.utf8.count
            if length > Self.maximumLabelLength { anomalies.append("label of \(length) bytes") }
            if length >= Self.entropyMinimumLength {
                let entropy = Self.entropy(label.utf8)
                if entropy >= Self.entropyThreshold {
                    anomalies.append("high-entropy label '\(label.prefix(8))…' (\(Self.oneDecimal(entropy)) bits/char)")
                }
            }
        }
        let parent = Self.registrableDomain(of: normalized)
        guard normalized.utf8.count > parent.utf8.count else {
            // The parent itself is not one of its subdomains.
            return DNSQueryObservation(anomalies: anomalies, exceedsLimit: false, parent: parent,
                                       uniqueSubdomains: parents[parent]?.names.count ?? 0)
        }
        var entry = parents[parent] ?? ParentNames()
        let window = UInt64(limits.window.seconds)
        entry.names.removeAll { $0.seconds + window <= nowSeconds }
        entry.lastSeen = nowSeconds
        var hasher = Hasher()
        hasher.combine(normalized)
        let hash = hasher.finalize()
        var exceedsLimit = false
        if let known = entry.names.firstIndex(where: { $0.hash == hash }) {
            entry.names.remove(at: known)
            entry.names.append((hash, nowSeconds))
        } else if let limit = limits.uniqueSubdomainsPerParent, entry.names.count >= limit {
            exceedsLimit = true
            anomalies.append("over the limit of \(limit) unique subdomains of \(parent) in \(limits.window)")
        } else {
            if entry.names.count >= capacityPerParent { entry.names.removeFirst() }
            entry.names.append((hash, nowSeconds))
            if entry.names.count > Self.flaggedUniqueSubdomains {
                anomalies.append("\(entry.names.count) unique subdomains of \(parent) in \(limits.window.seconds) s")
            }
        }
        let unique = entry.names.count
        parents[parent] = entry
        // The least recently queried parent goes, but one with many names only when every
        // parent has many: querying other parents must not reset a count near its limit.
        if parents.count > Self.maximumParents,
           let oldest = parents.min(by: { a, b in
               let (busyA, busyB) = (a.value.names.count > Self.flaggedUniqueSubdomains, b.value.names.count > Self.flaggedUniqueSubdomains)
               return busyA != busyB ? !busyA : a.value.lastSeen < b.value.lastSeen
           })?.key {
            parents.removeValue(forKey: oldest)
        }
        return DNSQueryObservation(anomalies: anomalies, exceedsLimit: exceedsLimit, parent: parent, uniqueSubdomains: unique)
    }

    /// How many parents are tracked now (for tests of the bound).
    public var trackedParents: Int { parents.count }

    /// Second-level labels under which names are registered (`example.co.uk`), and hosting
    /// domains whose subdomains belong to different people (`someone.github.io`). Small on
    /// purpose: a miss only groups more names under one parent.
    static let sharedSuffixes: Set<String> = [
        "co.uk", "org.uk", "ac.uk", "gov.uk", "me.uk", "com.au", "net.au", "org.au", "edu.au", "co.nz", "co.jp",
        "ne.jp", "or.jp", "co.kr", "com.br", "com.cn", "com.tw", "com.hk", "co.in", "co.za", "com.mx", "com.ar",
        "com.tr", "com.sg", "co.il", "github.io", "gitlab.io", "herokuapp.com", "appspot.com", "vercel.app",
        "netlify.app", "pages.dev", "workers.dev", "blogspot.com", "cloudfront.net", "azurewebsites.net",
        "ngrok.io", "ngrok-free.app", "fly.dev", "onrender.com", "firebaseapp.com", "web.app",
    ]

    /// The registrable domain of a lowercased name, approximately: its last two labels, or its
    /// last three when the last two are one of `sharedSuffixes`.
    public static func registrableDomain(of name: String) -> String {
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count > 2 else { return name }
        let lastTwo = labels.suffix(2).joined(separator: ".")
        return sharedSuffixes.contains(lastTwo) ? labels.suffix(3).joined(separator: ".") : lastTwo
    }

    /// Shannon entropy of the bytes, in bits per byte (ASCII case already folded).
    static func entropy<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Double {
        var counts = [Int](repeating: 0, count: 256)
        for byte in bytes { counts[Int(byte)] += 1 }
        let total = Double(bytes.count)
        var bits = 0.0
        for count in counts where count > 0 {
            let p = Double(count) / total
            bits -= p * log2(p)
        }
        return bits
    }

    private static func oneDecimal(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }
}

extension PolicyParser {
    static let dnsKeys = "unique_subdomains_per_parent, window"

    /// `dns: {unique_subdomains_per_parent: N, window: 60s}` (top-level file only).
    func readDNSLimits(_ value: Node, keyNode: Node, depth: Int) throws(PolicyLoadError) -> DNSLimits? {
        guard depth == 0 else {
            throw error(at: keyNode, "\"dns\" may only be set in the top-level policy, not in an included file")
        }
        if isNull(value) { return nil }
        guard case .mapping(let mapping) = value else {
            throw error(at: value, "expected \"dns\" to be a mapping with keys \(Self.dnsKeys); found \(describe(value))")
        }
        var limits = DNSLimits()
        for (keyNode, item) in mapping {
            switch try key(keyNode) {
            case "unique_subdomains_per_parent":
                let text = try string(item, key: "dns.unique_subdomains_per_parent", expected: "a whole number")
                guard let number = Int(text), number > 0, number <= DNSLimits.maximumUniqueSubdomains else {
                    throw error(at: item, "expected \"dns.unique_subdomains_per_parent\" to be a whole number from 1 to "
                                    + "\(DNSLimits.maximumUniqueSubdomains); found \"\(text)\"")
                }
                limits.uniqueSubdomainsPerParent = number
            case "window":
                limits.window = try limitWindow(item, key: "dns.window")
            case let other:
                throw error(at: keyNode, "unknown key \"\(other)\" in dns; expected one of \(Self.dnsKeys)")
            }
        }
        return limits
    }
}
