import Foundation

/// Where, as whom and with which rights a session ran, collected once at session start.
/// Stored as one JSON object in `sessions.context` (keys as in `CodingKeys`, sorted), so new
/// fields can be added without a schema change; absent fields decode as nil or empty.
///
/// The environment is stored redacted (`Redactor.redact(environment:)`): the store applies
/// it again before writing, whoever built the value.
public struct SessionContext: Sendable, Equatable, Codable {
    /// The operating system (`/etc/os-release`, `uname`).
    public struct OperatingSystem: Sendable, Equatable, Codable {
        /// PRETTY_NAME, e.g. "Debian GNU/Linux 12 (bookworm)".
        public var distribution: String
        /// ID and VERSION_ID, e.g. "debian", "12".
        public var distributionID: String?
        public var distributionVersion: String?
        /// uname: sysname, release, version, machine, nodename.
        public var kernelName: String
        public var kernelRelease: String
        public var kernelVersion: String
        public var machine: String
        public var hostname: String

        public init(
            distribution: String, distributionID: String? = nil, distributionVersion: String? = nil,
            kernelName: String, kernelRelease: String, kernelVersion: String, machine: String, hostname: String
        ) {
            self.distribution = distribution
            self.distributionID = distributionID
            self.distributionVersion = distributionVersion
            self.kernelName = kernelName
            self.kernelRelease = kernelRelease
            self.kernelVersion = kernelVersion
            self.machine = machine
            self.hostname = hostname
        }
    }

    /// The user the supervisor (and so the agent) runs as.
    public struct User: Sendable, Equatable, Codable {
        public var uid: UInt32
        public var gid: UInt32
        public var euid: UInt32
        public var egid: UInt32
        /// Supplementary groups (`getgroups`).
        public var groups: [UInt32]
        /// The passwd name of `uid`, when there is one.
        public var name: String?

        public init(uid: UInt32, gid: UInt32, euid: UInt32, egid: UInt32, groups: [UInt32], name: String?) {
            self.uid = uid
            self.gid = gid
            self.euid = euid
            self.egid = egid
            self.groups = groups
            self.name = name
        }
    }

    /// One network interface (`getifaddrs`).
    public struct NetworkInterface: Sendable, Equatable, Codable {
        public var name: String
        /// e.g. ["up", "running", "loopback"].
        public var flags: [String]
        /// e.g. ["inet 10.0.0.2/24", "inet6 fe80::1/64"].
        public var addresses: [String]
        /// The link-layer address, e.g. "52:54:00:12:34:56".
        public var mac: String?

        public init(name: String, flags: [String], addresses: [String], mac: String? = nil) {
            self.name = name
            self.flags = flags
            self.addresses = addresses
            self.mac = mac
        }
    }

    public var os: OperatingSystem
    public var user: User
    /// The supervisor's effective capabilities, by name.
    public var capabilities: [String]
    /// The supervisor's cgroup (v2 path).
    public var cgroup: String
    /// The resolved program the command runs (argv[0] after PATH lookup).
    public var program: String?
    /// The environment passed to the agent, secrets removed (see `Redactor`).
    public var environment: [String: String]
    public var interfaces: [NetworkInterface]
    /// The open files the agent inherits (the supervisor's fds without close-on-exec when it
    /// starts): `N r|w|rw TARGET`, e.g. `7 r /home/u/.ssh/id_rsa`. Whoever started the session
    /// granted them, and reads and writes on them are never decided; nil in older records.
    public var inheritedDescriptors: [String]?
    public var supervisorPID: Int32
    /// How long collecting this took, in microseconds.
    public var collectionMicros: Int64

    public init(
        os: OperatingSystem, user: User, capabilities: [String], cgroup: String, program: String? = nil,
        environment: [String: String], interfaces: [NetworkInterface], supervisorPID: Int32,
        collectionMicros: Int64
    ) {
        self.os = os
        self.user = user
        self.capabilities = capabilities
        self.cgroup = cgroup
        self.program = program
        self.environment = environment
        self.interfaces = interfaces
        self.supervisorPID = supervisorPID
        self.collectionMicros = collectionMicros
    }

    /// The stored form: JSON with sorted keys.
    public func jsonText() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(self) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Decodes the stored form; nil when it isn't a context object.
    public static func fromJSON(_ text: String) -> SessionContext? {
        try? JSONDecoder().decode(SessionContext.self, from: Data(text.utf8))
    }
}
