import Foundation
import Glibc
import Testing

/// Runs commands bare and under the real `agentgate-supervise` binary, in a scratch directory.
struct Harness {
    let dir: String
    let db: String

    init(_ name: String = #function) throws {
        let base = "/tmp/agentgate-test-" + name.filter { $0.isLetter || $0.isNumber } + "-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        dir = base
        db = base + "/audit.db"
    }

    /// The supervisor binary: $AGENTGATE_SUPERVISE, else next to this test bundle.
    static var supervisor: String {
        if let explicit = ProcessInfo.processInfo.environment["AGENTGATE_SUPERVISE"] { return explicit }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        var url = URL(fileURLWithPath: exe).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = url.appendingPathComponent("agentgate-supervise").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            url = url.deletingLastPathComponent()
        }
        return FileManager.default.currentDirectoryPath + "/.build/debug/agentgate-supervise"
    }

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    func path(_ name: String) -> String { dir + "/" + name }

    func write(_ name: String, _ contents: String, mode: Int = 0o644) throws {
        try contents.write(toFile: path(name), atomically: false, encoding: .utf8)
        chmod(path(name), mode_t(mode))
    }

    func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: path(name)) }

    /// Writes a policy file and returns its path.
    func policy(_ yaml: String) throws -> String {
        try write("policy.yaml", yaml)
        return path("policy.yaml")
    }

    /// `policies/policy.yaml`, in a directory the policy keeps the agent from writing to (a
    /// deny rule goes first): rules saved from an ask are written into such a file itself.
    /// `yaml` has a block `rules:` list indented by two spaces.
    func protectedPolicy(_ yaml: String) throws -> String {
        try FileManager.default.createDirectory(atPath: path("policies"), withIntermediateDirectories: true)
        let guarded = yaml.replacingOccurrences(of: "rules:\n", with: """
            rules:
              - match: {action: fs_write, target_glob: "\(path("policies"))/**"}
                decision: deny

            """)
        try write("policies/policy.yaml", guarded)
        return path("policies/policy.yaml")
    }

    /// Runs `command` without any supervisor.
    func bare(_ command: [String], timeout: Double = 60) -> Result {
        run(command, timeout: timeout)
    }

    /// Runs `command` under agentgate-supervise with `policy`.
    func supervised(_ command: [String], policy: String, extra: [String] = [], timeout: Double = 60) -> Result {
        run([Self.supervisor, "--policy", policy, "--db", db] + extra + ["--"] + command, timeout: timeout)
    }

    func run(_ command: [String], environment: [String: String]? = nil, timeout: Double = 60) -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0].contains("/") ? command[0] : "/usr/bin/env")
        process.arguments = command[0].contains("/") ? Array(command.dropFirst()) : command
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        if let environment { process.environment = environment }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { return Result(status: -1, stdout: "", stderr: "\(error)") }
        // Drain both pipes concurrently so a chatty child can't block on a full pipe.
        let group = DispatchGroup()
        nonisolated(unsafe) var outData = Data(), errData = Data()
        DispatchQueue.global().async(group: group) { outData = out.fileHandleForReading.readDataToEndOfFile() }
        DispatchQueue.global().async(group: group) { errData = err.fileHandleForReading.readDataToEndOfFile() }
        let deadline = DispatchTime.now() + timeout
        if group.wait(timeout: deadline) == .timedOut {
            kill(process.processIdentifier, SIGKILL)
            group.wait()
        }
        process.waitUntilExit()
        let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        return Result(status: status, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
    }

    /// Compiles a C test program into the scratch directory.
    func compile(_ name: String, _ source: String, flags: [String] = []) throws -> String {
        try write(name + ".c", source)
        let result = run(["cc", "-O1", "-o", path(name), path(name + ".c"), "-lpthread"] + flags)
        guard result.status == 0 else { throw HarnessError(message: "cc failed: \(result.stderr)") }
        return path(name)
    }

    /// Every stored decision as rows of one table, for queries: the events, and the read
    /// aggregates (schema v8) as one allowed `fs_read` each, `count` the reads it stands for.
    static let decisions = """
        (select action, decision, pid, ppid, executable, target, errno, latency_us, 1 as count from events
         union all
         select 'fs_read', 'allow', a.pid, a.ppid, x.text, t.text, e.errno, 0, e.count
         from (select *, max(case when executable <> 0 then ordinal end)
                         over (partition by set_id order by ordinal) as named from read_entries) e
         -- An entry with executable 0 continues the process of the nearest entry before it that names one.
         join read_entries a on a.set_id = e.set_id and a.ordinal = e.named
         join read_strings x on x.id = a.executable join read_strings t on t.id = e.target)
        """

    /// Rows from the audit database, via the sqlite3 C library's CLI-free path: a tiny Python.
    func query(_ sql: String) -> [[String]] {
        let script = "import sqlite3,sys,json\nc=sqlite3.connect(sys.argv[1])\nfor r in c.execute(sys.argv[2]): print(json.dumps([str(x) for x in r]))"
        let result = run(["python3", "-c", script, db, sql])
        return result.stdout.split(separator: "\n").compactMap {
            try? JSONDecoder().decode([String].self, from: Data($0.utf8))
        }
    }
}

/// Who the tests run as. `make test` runs the supervisor suites as root and again as an
/// unprivileged user (scripts/test-unprivileged.sh); a test whose attack or check needs root
/// says so and is skipped otherwise.
/// The repository's files (policies, docs, README): $AGENTGATE_TEST_REPOSITORY (a copy the
/// unprivileged pass can read when the checkout is somewhere it can't), else this checkout.
enum TestRepository {
    static let root: String = ProcessInfo.processInfo.environment["AGENTGATE_TEST_REPOSITORY"]
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
}

enum TestUser {
    static let isRoot = getuid() == 0

    /// Skips the rest of the test, saying why, when not root.
    static func requireRoot(_ why: String) throws {
        if !isRoot { try Test.cancel("needs root: \(why)") }
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// What a test sends to its own listener or sink to learn that everything sent before has been
/// seen: the kernel queues connections and datagrams in order, so once this arrives, nothing
/// earlier is still on its way. Polling for it replaces waiting a fixed time for an absence.
enum DrainMarker {
    static let bytes = Array("agentgate-test-drain\n".utf8)
    static func matches(_ received: ArraySlice<UInt8>) -> Bool { received.starts(with: bytes) }

    /// 127.0.0.1:`port`, for sending the marker.
    static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        return address
    }
}

/// A loopback TCP listener that records whether anyone connected and what they sent.
final class LoopbackListener: @unchecked Sendable {
    let port: UInt16
    private let fd: Int32
    private let lock = NSLock()
    private var _received = Data()
    private var _connections = 0
    private var _drains = 0
    private var thread: Foundation.Thread?

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else { throw HarnessError(message: "listen failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = UInt16(bigEndian: address.sin_port)
        let t = Foundation.Thread { [self] in acceptLoop() }
        thread = t
        t.start()
    }

    private func acceptLoop() {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 { return }
            lock.withLock { _connections += 1 }
            _ = "pong\n".withCString { Glibc.write(client, $0, 5) }
            var buffer = [UInt8](repeating: 0, count: 4096)
            var first = true
            while true {
                let n = read(client, &buffer, buffer.count)
                if n <= 0 { break }
                if first && DrainMarker.matches(buffer[0..<n]) {
                    lock.withLock { _connections -= 1; _drains += 1 }
                    break
                }
                first = false
                lock.withLock { _received.append(contentsOf: buffer[0..<n]) }
            }
            Glibc.close(client)
        }
    }

    var connections: Int { lock.withLock { _connections } }
    var received: String { lock.withLock { String(decoding: _received, as: UTF8.self) } }

    /// Connects and sends the drain marker, then polls until the listener has seen it: every
    /// connection made before has then been counted.
    @discardableResult
    func drain(timeout: Double = 30) -> Bool {
        let target = lock.withLock { _drains } + 1
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(client) }
        var address = DrainMarker.loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0, Glibc.write(client, DrainMarker.bytes, DrainMarker.bytes.count) == DrainMarker.bytes.count else { return false }
        return waitUntil(timeout: timeout) { lock.withLock { _drains } >= target }
    }

    func close() { shutdown(fd, Int32(SHUT_RDWR)); Glibc.close(fd) }
}
