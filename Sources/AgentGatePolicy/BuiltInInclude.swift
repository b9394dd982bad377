/// A policy built into the binary that an `include:` names as `agentgate:NAME`: the built-in
/// policy itself, the switches that tighten it (included before it: first match wins), and the
/// egress profile. Built in so that a policy file can build on them wherever agentgate runs.
public struct BuiltInInclude: Sendable {
    /// What `include:` names it by, e.g. `agentgate:default`.
    public let name: String
    /// The `source` its rules are reported from, e.g. `<built-in default.yaml>`.
    public let source: String
    /// Its file under policies/ in the repository (same text).
    public let fileName: String
    /// The YAML.
    public var yaml: String { String(decoding: bytes(), as: UTF8.self) }

    private let bytes: @Sendable () -> [UInt8]

    static let prefix = "agentgate:"

    /// Every built-in include, in the order documented.
    public static let all: [BuiltInInclude] = [
        BuiltInInclude(name: Policy.builtInIncludeName, source: Policy.builtInDefaultSource, fileName: "default.yaml") {
            PackageResources.default_yaml
        },
        BuiltInInclude(name: "agentgate:deny-private-networks", fileName: "deny-private-networks.yaml") {
            PackageResources.deny_private_networks_yaml
        },
        BuiltInInclude(name: "agentgate:deny-loopback", fileName: "deny-loopback.yaml") {
            PackageResources.deny_loopback_yaml
        },
        BuiltInInclude(name: "agentgate:egress-coding-agents", fileName: "egress-coding-agents.yaml") {
            PackageResources.egress_coding_agents_yaml
        },
    ]

    private init(name: String, source: String? = nil, fileName: String, bytes: @escaping @Sendable () -> [UInt8]) {
        self.name = name
        self.source = source ?? "<built-in \(fileName)>"
        self.fileName = fileName
        self.bytes = bytes
    }

    /// The built-in include `include:` names `name`, if any.
    public static func named(_ name: String) -> BuiltInInclude? { all.first { $0.name == name } }

    /// The built-in include whose rules come from `source`, if any.
    public static func withSource(_ source: String) -> BuiltInInclude? { all.first { $0.source == source } }
}
