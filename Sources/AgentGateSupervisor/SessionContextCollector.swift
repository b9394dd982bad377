import AgentGateStore
import CSupport
import Glibc

/// Collects the session-start context the audit records: the OS (`/etc/os-release`,
/// `uname`), the user (`getuid`/`getgid`/`getgroups`/`getpwuid_r`), the supervisor's
/// effective capabilities (`CapEff` in `/proc/self/status`, named by libcap) and cgroup
/// (`/proc/self/cgroup`), the environment and the network interfaces (`getifaddrs`, MACs
/// from `/sys/class/net/*/address`).
///
/// Only local reads, no subprocesses: about a millisecond (the README's budget is 50 ms). The
/// environment is handed over as is; the store redacts it before writing.
public enum SessionContextCollector {
    public static func collect(program: String?, environment: [String]) -> SessionContext {
        let start = agentgate_monotonic_ns()
        var context = SessionContext(
            os: operatingSystem(), user: user(), capabilities: capabilities(), cgroup: cgroup(),
            program: program, environment: dictionary(environment), interfaces: interfaces(),
            supervisorPID: getpid(), collectionMicros: 0)
        context.inheritedDescriptors = inheritedDescriptors()
        context.collectionMicros = Int64((agentgate_monotonic_ns() &- start) / 1000)
        return context
    }

    // MARK: - Inherited files

    /// Every fd of this process without FD_CLOEXEC, which the agent will inherit: its number,
    /// access mode and target (`readlink /proc/self/fd/N`), in order.
    static func inheritedDescriptors() -> [String] {
        guard let directory = opendir("/proc/self/fd") else { return [] }
        defer { closedir(directory) }
        let own = dirfd(directory)
        var found: [(Int32, String)] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let fd = Int32(name), fd != own else { continue }
            let descriptorFlags = fcntl(fd, F_GETFD)
            guard descriptorFlags >= 0, descriptorFlags & FD_CLOEXEC == 0 else { continue }
            let status = fcntl(fd, F_GETFL)
            let mode = status < 0 ? "?" : ["r", "w", "rw", "?"][Int(status & O_ACCMODE)]
            var buffer = [CChar](repeating: 0, count: 4097)
            let length = agentgate_readlinkat(AT_FDCWD, "/proc/self/fd/\(fd)", &buffer, buffer.count)
            let target = length >= 0 ? String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
            found.append((fd, "\(fd) \(mode) \(target)"))
        }
        return found.sorted { $0.0 < $1.0 }.map(\.1)
    }

    // MARK: - OS

    static func operatingSystem() -> SessionContext.OperatingSystem {
        let release = osRelease()
        var names = utsname()
        uname(&names)
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return SessionContext.OperatingSystem(
            distribution: release["PRETTY_NAME"] ?? release["NAME"] ?? "unknown",
            distributionID: release["ID"], distributionVersion: release["VERSION_ID"],
            kernelName: field(names.sysname), kernelRelease: field(names.release),
            kernelVersion: field(names.version), machine: field(names.machine), hostname: field(names.nodename))
    }

    /// `KEY=value` pairs of os-release(5), quotes removed.
    static func osRelease() -> [String: String] {
        guard let text = readFile("/etc/os-release") ?? readFile("/usr/lib/os-release") else { return [:] }
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard !line.hasPrefix("#"), let equals = line.firstIndex(of: "=") else { continue }
            var value = line[line.index(after: equals)...]
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = value.dropFirst().dropLast()
            }
            values[String(line[..<equals])] = value.replacingOccurrences(of: "\\\"", with: "\"")
        }
        return values
    }

    // MARK: - User

    static func user() -> SessionContext.User {
        var groups: [gid_t] = []
        let count = getgroups(0, nil)
        if count > 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            let filled = getgroups(count, &groups)
            groups = filled >= 0 ? Array(groups.prefix(Int(filled))) : []
        }
        return SessionContext.User(
            uid: getuid(), gid: getgid(), euid: geteuid(), egid: getegid(), groups: groups, name: userName(getuid()))
    }

    static func userName(_ uid: uid_t) -> String? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.pw_name else {
            return nil
        }
        return String(cString: name)
    }

    // MARK: - Capabilities and cgroup

    static func capabilities() -> [String] {
        Capabilities.names(ofMask: ProcStatus(tid: getpid()).capEff)
    }

    /// The cgroup v2 path ("0::/path"), or the v1 lines joined when there is no unified one.
    public static func cgroup(of pid: String = "self") -> String {
        // Read for every new process image: scanned as bytes, with no String split or search.
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 65536) { buffer in
            let count = agentgate_read_small_file(AT_FDCWD, "/proc/\(pid)/cgroup", buffer.baseAddress!, buffer.count)
            guard count > 0 else { return "" }
            return UnsafeRawPointer(buffer.baseAddress!).withMemoryRebound(to: UInt8.self, capacity: count) {
                cgroupPath(UnsafeBufferPointer(start: $0, count: count))
            }
        }
    }

    /// The path of the unified hierarchy's line (`0::PATH`), or every line joined with ";"
    /// where there is none (cgroup v1 only). Lossless, as every name (`init(pathBytes:)`): an
    /// agent with a delegated subtree names its own cgroups.
    static func cgroupPath(_ text: UnsafeBufferPointer<UInt8>) -> String {
        var lines: [Range<Int>] = []
        var start = 0
        for index in 0...text.count where index == text.count || text[index] == UInt8(ascii: "\n") {
            defer { start = index + 1 }
            guard index > start else { continue }
            if index - start >= 3, text[start] == UInt8(ascii: "0"), text[start + 1] == UInt8(ascii: ":"),
               text[start + 2] == UInt8(ascii: ":") {
                return String(pathBytes: UnsafeBufferPointer(rebasing: text[(start + 3)..<index]))
            }
            lines.append(start..<index)
        }
        return lines.map { String(pathBytes: UnsafeBufferPointer(rebasing: text[$0])) }.joined(separator: ";")
    }

    // MARK: - Environment

    static func dictionary(_ environment: [String]) -> [String: String] {
        var result: [String: String] = [:]
        for entry in environment {
            guard let equals = entry.firstIndex(of: "=") else { continue }
            result[String(entry[..<equals])] = String(entry[entry.index(after: equals)...])
        }
        return result
    }

    // MARK: - Network interfaces

    static func interfaces() -> [SessionContext.NetworkInterface] {
        var first: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&first) == 0 else { return [] }
        defer { freeifaddrs(first) }
        var order: [String] = []
        var byName: [String: SessionContext.NetworkInterface] = [:]
        var current = first
        while let entry = current {
            defer { current = entry.pointee.ifa_next }
            guard let cName = entry.pointee.ifa_name else { continue }
            let name = String(cString: cName)
            if byName[name] == nil {
                order.append(name)
                let flags = entry.pointee.ifa_flags
                var names: [String] = []
                if flags & UInt32(IFF_UP) != 0 { names.append("up") }
                if flags & UInt32(IFF_RUNNING) != 0 { names.append("running") }
                if flags & UInt32(IFF_LOOPBACK) != 0 { names.append("loopback") }
                if flags & UInt32(IFF_POINTOPOINT) != 0 { names.append("point-to-point") }
                let mac = readFile("/sys/class/net/\(name)/address")?.trimmingTrailingNewlines()
                byName[name] = SessionContext.NetworkInterface(
                    name: name, flags: names, addresses: [], mac: mac == "00:00:00:00:00:00" ? nil : mac)
            }
            if let address = entry.pointee.ifa_addr, let text = describe(address, netmask: entry.pointee.ifa_netmask) {
                byName[name]?.addresses.append(text)
            }
        }
        return order.compactMap { byName[$0] }
    }

    /// "inet 10.0.0.2/24" or "inet6 fe80::1/64"; nil for other families.
    static func describe(_ address: UnsafeMutablePointer<sockaddr>, netmask: UnsafeMutablePointer<sockaddr>?) -> String? {
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            return describe(address, netmask: netmask, as: sockaddr_in.self, family: AF_INET, name: "inet") { $0.sin_addr }
        case AF_INET6:
            return describe(address, netmask: netmask, as: sockaddr_in6.self, family: AF_INET6, name: "inet6") { $0.sin6_addr }
        default:
            return nil
        }
    }

    /// "NAME ADDRESS/PREFIX" for one address family: the address as inet_ntop writes it, the
    /// prefix as the netmask's set bits.
    private static func describe<Socket, Address>(_ address: UnsafeMutablePointer<sockaddr>, netmask: UnsafeMutablePointer<sockaddr>?,
                                                  as socket: Socket.Type, family: Int32, name: String,
                                                  _ field: (Socket) -> Address) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let raw = address.withMemoryRebound(to: Socket.self, capacity: 1) { field($0.pointee) }
        let written = withUnsafeBytes(of: raw) { inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
        guard written != nil else { return nil }
        let prefix = netmask.map { mask in
            mask.withMemoryRebound(to: Socket.self, capacity: 1) { pointer in
                withUnsafeBytes(of: field(pointer.pointee)) { bytes in bytes.reduce(0) { $0 + $1.nonzeroBitCount } }
            }
        }
        return "\(name) \(cString(buffer))" + (prefix.map { "/\($0)" } ?? "")
    }

    // MARK: - Files

    /// The NUL-terminated text in `buffer`.
    static func cString(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A small file's contents (up to 64 KiB), or nil.
    static func readFile(_ path: String) -> String? {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 65536) { buffer in
            let count = agentgate_read_small_file(AT_FDCWD, path, buffer.baseAddress!, buffer.count)
            guard count >= 0 else { return nil }
            return String(cBuffer: buffer.baseAddress!, count: count)
        }
    }
}

extension String {
    fileprivate func trimmingTrailingNewlines() -> String {
        var result = self
        while result.last == "\n" { result.removeLast() }
        return result
    }
}
