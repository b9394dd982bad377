import Foundation
import Glibc
import Testing

/// The adversarial suite: escape attempts against the real supervisor. Every attempt runs twice,
/// bare (where the forbidden effect must happen, so the test can fail) and supervised (where it
/// must not). The nested suites run one test at a time: the races and the timing of the
/// supervisor-death test need the two cores to themselves.
@Suite(.serialized) struct AdversarialTests {}

/// The compiled attack programs, built once per test process.
struct AdversarialBinaries: Sendable {
    /// The multi-mode attack helper (see AdversarialHelperSource).
    let helper: String
    /// A program that, whenever it runs, appends to $ADV_MARKER (else ./forbid-ran).
    let forbidden: String
    /// A harmless program that prints ALLOWED-PROGRAM-RAN.
    let allowed: String
    /// A static, libc-free forbidden program that writes to fd 3 without any trapped syscall.
    let forbiddenStatic: String

    private static let built: Result<AdversarialBinaries, HarnessError> = {
        do {
            let h = try Harness("AdversarialBinaries")
            return .success(AdversarialBinaries(
                helper: try h.compile("adv", AdversarialSources.helper),
                forbidden: try h.compile("forbidden", AdversarialSources.forbidden),
                allowed: try h.compile("allowed", AdversarialSources.allowed),
                forbiddenStatic: try h.compile("forbidden-static", AdversarialSources.forbiddenStatic,
                                               flags: ["-O2", "-static", "-nostdlib", "-fno-stack-protector"])))
        } catch let error as HarnessError {
            return .failure(error)
        } catch {
            return .failure(HarnessError(message: "\(error)"))
        }
    }()

    static func get() throws -> AdversarialBinaries { try built.get() }
}

extension Harness.Result: CustomStringConvertible {
    /// Everything the run printed, for leak checks.
    var text: String { stdout + "\n" + stderr }
    var description: String { "status=\(status)\n--- stdout ---\n\(stdout)--- stderr ---\n\(stderr)" }
}

extension Harness {
    /// The argv that runs `command` under the supervisor.
    func supervisedArgv(_ command: [String], policy: String, extra: [String] = []) -> [String] {
        [Self.supervisor, "--policy", policy, "--db", db] + extra + ["--"] + command
    }

    /// Copies `source` into the scratch directory as `name` (mode 0755) and returns its path.
    @discardableResult
    func copy(_ source: String, to name: String) throws -> String {
        if FileManager.default.fileExists(atPath: path(name)) { try FileManager.default.removeItem(atPath: path(name)) }
        try FileManager.default.copyItem(atPath: source, toPath: path(name))
        chmod(path(name), 0o755)
        return path(name)
    }

    func mkdir(_ name: String) throws {
        try FileManager.default.createDirectory(atPath: path(name), withIntermediateDirectories: true)
    }

    func read(_ name: String) -> String? { try? String(contentsOfFile: path(name), encoding: .utf8) }

    /// The current environment with `extra` added, for `run(_:environment:)`.
    static func environment(adding extra: [String: String]) -> [String: String] {
        ProcessInfo.processInfo.environment.merging(extra) { _, new in new }
    }

    /// Starts `command` and returns at once, for tests that must act on the running process.
    func start(_ command: [String], environment: [String: String]? = nil) throws -> RunningProcess {
        try RunningProcess(command, directory: dir, environment: environment)
    }
}

/// A started process whose output is drained in the background.
final class RunningProcess: @unchecked Sendable {
    let process = Process()
    private let group = DispatchGroup()
    private let lock = NSLock()
    private var outData = Data(), errData = Data()

    init(_ command: [String], directory: String, environment: [String: String]?) throws {
        process.executableURL = URL(fileURLWithPath: command[0].contains("/") ? command[0] : "/usr/bin/env")
        process.arguments = command[0].contains("/") ? Array(command.dropFirst()) : command
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        if let environment { process.environment = environment }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        DispatchQueue.global().async(group: group) { [self] in
            let data = out.fileHandleForReading.readDataToEndOfFile()
            lock.withLock { outData = data }
        }
        DispatchQueue.global().async(group: group) { [self] in
            let data = err.fileHandleForReading.readDataToEndOfFile()
            lock.withLock { errData = data }
        }
    }

    var pid: pid_t { process.processIdentifier }

    /// Whether the process itself was killed by a signal (after `wait`). A supervisor reports
    /// its agent's death by signal N as exit status 128+N; this tells the two apart.
    var diedOfSignal: Bool { !process.isRunning && process.terminationReason == .uncaughtSignal }

    /// Waits for the process and for every holder of its output pipes.
    func wait(timeout: Double = 60) -> Harness.Result {
        if group.wait(timeout: .now() + timeout) == .timedOut {
            kill(pid, SIGKILL)
            _ = group.wait(timeout: .now() + 10)
        }
        process.waitUntilExit()
        let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        return lock.withLock {
            Harness.Result(status: status, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
        }
    }
}

/// A bound socket that counts what reaches it: UDP or unix datagrams, or unix stream connections.
final class SocketSink: @unchecked Sendable {
    enum Kind { case udp, unixDatagram, unixStream }
    let port: UInt16
    let path: String
    private let fd: Int32
    private let kind: Kind
    private let lock = NSLock()
    private var _events = 0
    private var _drains = 0
    private var _received = Data()

    init(_ kind: Kind, path: String = "") throws {
        self.kind = kind
        self.path = path
        let sock: Int32
        var boundPort: UInt16 = 0
        switch kind {
        case .udp:
            sock = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(sock, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else { throw HarnessError(message: "udp bind failed") }
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(sock, $0, &length) }
            }
            boundPort = UInt16(bigEndian: address.sin_port)
        case .unixDatagram, .unixStream:
            sock = socket(AF_UNIX, Int32((kind == .unixStream ? SOCK_STREAM : SOCK_DGRAM).rawValue), 0)
            if !path.hasPrefix("@") { unlink(path) }
            var (address, length) = Self.unixAddress(path)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(sock, $0, length) }
            }
            guard bound == 0 else { throw HarnessError(message: "unix bind failed: \(path)") }
            if kind == .unixStream { guard listen(sock, 16) == 0 else { throw HarnessError(message: "listen failed") } }
        }
        fd = sock
        port = boundPort
        let thread = Foundation.Thread { [self] in loop() }
        thread.start()
    }

    /// "@name" is an abstract address: a NUL, then the name, its length given by addrlen.
    private static func unixAddress(_ path: String) -> (sockaddr_un, socklen_t) {
        let abstract = path.hasPrefix("@")
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.utf8.prefix(raw.count - 1).enumerated() { raw[i] = abstract && i == 0 ? 0 : byte }
        }
        return (address, abstract ? socklen_t(2 + path.utf8.count) : socklen_t(MemoryLayout<sockaddr_un>.size))
    }

    private func loop() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            if kind == .unixStream {
                let client = accept(fd, nil, nil)
                if client < 0 || isClosed { if client >= 0 { Glibc.close(client) }; return }
                lock.withLock { _events += 1 }
                let n = read(client, &buffer, buffer.count)
                if n > 0 && DrainMarker.matches(buffer[0..<n]) {
                    lock.withLock { _events -= 1; _drains += 1 }
                } else if n > 0 {
                    lock.withLock { _received.append(contentsOf: buffer[0..<n]) }
                }
                Glibc.close(client)
            } else {
                let n = recv(fd, &buffer, buffer.count, 0)
                // After shutdown recv returns 0 at once; stop before the fd number is reused.
                if n <= 0 || isClosed { return }
                if DrainMarker.matches(buffer[0..<n]) {
                    lock.withLock { _drains += 1 }
                } else {
                    lock.withLock { _events += 1; _received.append(contentsOf: buffer[0..<n]) }
                }
            }
        }
    }

    /// Sends the drain marker and polls until the sink has seen it: everything sent before has
    /// then been counted. UDP may drop the marker while the queue is full, so it is sent again
    /// on each poll until one arrives.
    @discardableResult
    func drain(timeout: Double = 30) -> Bool {
        let target = lock.withLock { _drains } + 1
        let marker = DrainMarker.bytes
        let sent: Bool
        switch kind {
        case .udp:
            let client = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            defer { Glibc.close(client) }
            var address = DrainMarker.loopback(port: port)
            return waitUntil(timeout: timeout) {
                if lock.withLock({ _drains }) >= target { return true }
                _ = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(client, marker, marker.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
                return false
            }
        case .unixDatagram, .unixStream:
            let client = socket(AF_UNIX, Int32((kind == .unixStream ? SOCK_STREAM : SOCK_DGRAM).rawValue), 0)
            defer { Glibc.close(client) }
            var (address, length) = Self.unixAddress(path)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, length) }
            }
            sent = connected == 0 && Glibc.write(client, marker, marker.count) == marker.count
        }
        return sent && waitUntil(timeout: timeout) { lock.withLock { _drains } >= target }
    }

    /// Datagrams received, or connections accepted.
    var events: Int { lock.withLock { _events } }
    var received: String { lock.withLock { String(decoding: _received, as: UTF8.self) } }

    private var isClosed: Bool { lock.withLock { _closed } }
    private var _closed = false

    func close() {
        lock.withLock { _closed = true }
        shutdown(fd, Int32(SHUT_RDWR))
        Glibc.close(fd)
    }
}

/// Shared checks.
enum Adversarial {
    static let sigsys: Int32 = 128 + SIGSYS

    /// A unique marker for a secret file's content.
    static func secretMarker() -> String { "TOPSECRET-" + String(UInt64.random(in: 0...UInt64.max), radix: 36) }

    /// A description of the trees at `paths` (types, modes, owners, times, contents, xattrs).
    static func snapshot(_ h: Harness, _ paths: [String]) throws -> String {
        let bin = try AdversarialBinaries.get()
        return h.bare([bin.helper, "snapshot"] + paths).stdout
    }

    /// The audit database must still be the supervisor's: owner, mode and content intact
    /// (attacks through the supervisor's own fds can chmod, chown or truncate it).
    static func expectAuditIntact(_ h: Harness, _ context: String, sourceLocation: SourceLocation = #_sourceLocation) {
        var info = stat()
        let statted = stat(h.db, &info) == 0
        #expect(statted && info.st_uid == getuid() && info.st_mode & 0o777 == 0o600,
                "\(context): the audit database's owner or mode changed (uid \(info.st_uid), mode \(String(info.st_mode & 0o7777, radix: 8)))",
                sourceLocation: sourceLocation)
        let sessions = h.query("select count(*) from sessions").first?.first
        #expect(sessions == "1", "\(context): the audit database lost its session row or is corrupt (sessions: \(sessions ?? "unreadable"))",
                sourceLocation: sourceLocation)
    }

    /// io_uring can't be shown to work bare when the kernel disables it (kernel.io_uring_disabled=2).
    static func cancelIfIoUringDisabled() throws {
        let setting = (try? String(contentsOfFile: "/proc/sys/kernel/io_uring_disabled", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        if setting == "2" { try Test.cancel("Bare half impossible here: io_uring is disabled (kernel.io_uring_disabled=2)") }
    }

    /// Deny events the audit recorded for `syscall`.
    static func deniedEvents(_ h: Harness, syscall: String) -> Int {
        Int(h.query("select count(*) from events where syscall='\(syscall)' and decision='deny'").first?.first ?? "0") ?? 0
    }
}
