import AgentGateStore
import Foundation
import Glibc
import Testing

/// A scratch directory, a seeded database, and the real `agentgate serve` running on a free
/// loopback port, talked to over real HTTP.
final class ServerHarness {
    let dir: String
    let db: String
    let environment: [String: String]
    private(set) var server: Process?
    private(set) var port = 0
    var serverOutput: String { (try? String(contentsOfFile: dir + "/serve.out", encoding: .utf8)) ?? "" }
    var serverErrors: String { (try? String(contentsOfFile: dir + "/serve.err", encoding: .utf8)) ?? "" }

    init(_ name: String = #function) throws {
        // Short: control sockets live below it, and a socket address holds 107 bytes.
        dir = "/tmp/ag-serve-" + String(name.filter { $0.isLetter }.prefix(12)) + "-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir + "/run", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        db = dir + "/audit.db"
        var environment = ProcessInfo.processInfo.environment
        environment["XDG_RUNTIME_DIR"] = dir + "/run"
        environment["XDG_CONFIG_HOME"] = dir + "/config"
        environment["XDG_DATA_HOME"] = dir + "/data"
        environment.removeValue(forKey: "AGENTGATE_RUNTIME_DIR")
        environment.removeValue(forKey: "AGENTGATE_DB")
        self.environment = environment
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// A binary built next to this test bundle.
    static func binary(_ name: String) -> String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        var url = URL(fileURLWithPath: exe).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = url.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            url = url.deletingLastPathComponent()
        }
        return FileManager.default.currentDirectoryPath + "/.build/debug/" + name
    }

    var tokenPath: String { dir + "/config/agentgate/server.token" }
    var token: String { ((try? String(contentsOfFile: tokenPath, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines) }

    /// Starts `agentgate serve` and waits for its "listening on" line.
    func start(listen: String = "127.0.0.1:0", extra: [String] = []) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary("agentgate"))
        process.arguments = ["serve", "--listen", listen, "--db", db] + extra
        process.environment = environment
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        FileManager.default.createFile(atPath: dir + "/serve.out", contents: nil)
        FileManager.default.createFile(atPath: dir + "/serve.err", contents: nil)
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle(forWritingAtPath: dir + "/serve.out")
        process.standardError = FileHandle(forWritingAtPath: dir + "/serve.err")
        try process.run()
        server = process
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, process.isRunning {
            if let range = serverOutput.range(of: #"listening on http://[^ ]+:(\d+)"#, options: .regularExpression),
               let port = Int(serverOutput[range].split(separator: ":").last ?? "") {
                self.port = port
                return
            }
            usleep(20_000)
        }
        throw HarnessFailure("agentgate serve did not start: \(serverOutput) \(serverErrors)")
    }

    func stop() {
        guard let server, server.isRunning else { return }
        kill(server.processIdentifier, SIGKILL)
        server.waitUntilExit()
    }

    /// A finished session with events, and a second one.
    func seed() throws {
        let store = try AuditStore(path: db)
        defer { store.close() }
        let start: Int64 = 1_700_000_000_000_000
        for (id, agent) in [("4f2a9c1e-first", "claude-code"), ("7b3d2e10-second", "codex")] {
            try store.createSession(SessionRecord(
                id: id, agent: agent, command: ["claude", "--print", "fix it"], cwd: "/work/project",
                policyPath: "/etc/agentgate/policy.yaml", policySHA256: String(repeating: "ab", count: 32),
                startTimeMicros: start + (agent == "codex" ? 60_000_000 : 0), endTimeMicros: nil, exitStatus: nil))
        }
        func event(_ offset: Int64, _ action: String, _ target: String, _ decision: String) -> DecisionEvent {
            DecisionEvent(timeMicros: start + offset, pid: 100, ppid: 1, executable: "/usr/bin/cat", syscall: "openat",
                          action: RecordedAction(text: action), target: target, decision: RecordedDecision(text: decision),
                          reason: decision == "deny" ? "SSH private keys" : "no rule matched, default allow", latencyMicros: 12)
        }
        try store.insert(events: [
            event(1000, "fs_read", "/work/project/README", "allow"),
            event(2000, "fs_read", "/home/dev/.ssh/id_rsa", "deny"),
            event(3000, "exec", "/usr/bin/git", "allow"),
        ], sessionID: "4f2a9c1e-first")
        try store.insert(events: [event(61_000_000, "net_egress", "example.com:443", "deny")], sessionID: "7b3d2e10-second")
        try store.finishSession(id: "4f2a9c1e-first", endTimeMicros: start + 10_000_000, exitStatus: 0)
    }

    func http(_ method: String, _ path: String, token: String? = nil, body: String? = nil, headers: [String] = []) throws -> HTTPReply {
        try HTTPReply.fetch(port: port, method: method, path: path, token: token, body: body, headers: headers)
    }

    func json(_ method: String, _ path: String, token: String? = nil, body: String? = nil) throws -> (status: Int, object: [String: Any]) {
        let reply = try http(method, path, token: token, body: body)
        let object = (try? JSONSerialization.jsonObject(with: Data(reply.body))) as? [String: Any]
        guard let object else { throw HarnessFailure("\(method) \(path): \(reply.status) not a JSON object: \(reply.text)") }
        return (reply.status, object)
    }

    /// Polls `condition` every 20 ms for up to `timeout` seconds.
    func waitUntil(timeout: Double = 20, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return true }
            usleep(20_000)
        }
        return try condition()
    }
}

struct HarnessFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One HTTP/1.1 exchange over a plain TCP socket (Connection: close; the reply is read to EOF).
struct HTTPReply {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }

    static func connect(port: Int, receiveBuffer: Int32? = nil) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessFailure("socket: \(errno)") }
        if var size = receiveBuffer { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size)) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { close(fd); throw HarnessFailure("connect to port \(port): \(errno)") }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static func request(_ method: String, _ path: String, token: String?, body: String?, headers: [String]) -> [UInt8] {
        let namesHost = headers.contains { $0.lowercased().hasPrefix("host:") }
        var text = "\(method) \(path) HTTP/1.1\r\n" + (namesHost ? "" : "Host: 127.0.0.1\r\n") + "Connection: close\r\n"
        if let token { text += "Authorization: Bearer \(token)\r\n" }
        for header in headers { text += header + "\r\n" }
        if let body { text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        else if method == "POST" { text += "Content-Length: 0\r\n" }
        return Array((text + "\r\n" + (body ?? "")).utf8)
    }

    static func fetch(port: Int, method: String, path: String, token: String?, body: String?, headers: [String]) throws -> HTTPReply {
        let fd = try connect(port: port)
        defer { close(fd) }
        let bytes = request(method, path, token: token, body: body, headers: headers)
        guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else {
            throw HarnessFailure("cannot send the request")
        }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            data += chunk[..<n]
        }
        return try parse(data)
    }

    static func parse(_ data: [UInt8]) throws -> HTTPReply {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = (0..<max(0, data.count - 3)).first(where: { Array(data[$0..<$0 + 4]) == separator }) else {
            throw HarnessFailure("no HTTP header in \(String(decoding: data, as: UTF8.self))")
        }
        let lines = String(decoding: data[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let status = Int(lines[0].split(separator: " ").dropFirst().first ?? "") ?? 0
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(data[(end + 4)...])
        if headers["transfer-encoding"]?.lowercased() == "chunked" { body = dechunk(body) }
        return HTTPReply(status: status, headers: headers, body: body)
    }

    static func dechunk(_ data: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        var index = 0
        while index < data.count {
            guard let lineEnd = (index..<max(index, data.count - 1)).first(where: { data[$0] == 13 && data[$0 + 1] == 10 }),
                  let size = Int(String(decoding: data[index..<lineEnd], as: UTF8.self).split(separator: ";")[0], radix: 16), size > 0,
                  lineEnd + 2 + size <= data.count else { break }
            output += data[(lineEnd + 2)..<(lineEnd + 2 + size)]
            index = lineEnd + 2 + size + 2
        }
        return output
    }
}

/// A server-sent events client over a plain socket.
final class EventStreamClient {
    struct Event { var id: Int64; var data: String }
    let fd: Int32
    private(set) var buffer: [UInt8] = []
    var raw: String { String(decoding: buffer, as: UTF8.self) }
    private(set) var headers = ""

    init(port: Int, path: String, headers: [String] = [], receiveBuffer: Int32? = nil) throws {
        fd = try HTTPReply.connect(port: port, receiveBuffer: receiveBuffer)
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let request = HTTPReply.request("GET", path, token: nil, body: nil, headers: headers + ["Accept: text/event-stream"])
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    func close() { Glibc.close(fd) }

    /// Reads until the server closes the connection (or `timeout` seconds pass).
    func drain(timeout: Double) -> (bytes: Int, closed: Bool) {
        let deadline = Date().addingTimeInterval(timeout)
        var total = 0
        var chunk = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { total += n; continue }
            if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) { return (total, true) }
        }
        return (total, false)
    }

    /// The events received so far, once there are `count` (or after `timeout` seconds).
    func waitForEvents(count: Int, timeout: Double = 20) -> [Event] {
        let deadline = Date().addingTimeInterval(timeout)
        var events: [Event] = []
        while Date() < deadline {
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { buffer += chunk[..<n] }
            if n == 0 { break }
            events = parse()
            if events.count >= count { break }
        }
        return events
    }

    private func parse() -> [Event] {
        // Without CRs: "\r\n" (HTTP and chunk framing) is one Character, which "\n" never splits.
        let text = String(decoding: buffer.filter { $0 != 13 }, as: UTF8.self)
        if let end = text.range(of: "\n\n") { headers = String(text[..<end.lowerBound]).lowercased() }
        var events: [Event] = []
        for block in text.components(separatedBy: "\n\n") {
            var id: Int64?
            var data = ""
            // Line by line in bytes: "\r\n" (chunk framing) is one Character, never split on "\n".
            for line in block.components(separatedBy: "\n") {
                if line.hasPrefix("id: ") { id = Int64(line.dropFirst(4).trimmingCharacters(in: .whitespaces)) }
                if line.hasPrefix("data: ") { data = String(line.dropFirst(6)) }
            }
            if let id { events.append(Event(id: id, data: data)) }
        }
        return events
    }
}
