import AgentGateStore
import Foundation
import Glibc
import Testing

/// The HTTP API over loopback, against the real `agentgate serve` and a seeded database.
@Suite(.serialized) struct APITests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    @Test func readsAreOpenOnLoopbackAndShowTheDatabase() throws {
        let s = try ServerHarness()
        try s.seed()
        try s.start()

        let health = try s.json("GET", "/api/v1/health")
        #expect(health.status == 200 && health.object["status"] as? String == "ok")
        #expect(health.object["database_present"] as? Bool == true && health.object["sessions_running"] as? Int == 0)

        let sessions = try s.json("GET", "/api/v1/sessions")
        let listed = try #require(sessions.object["sessions"] as? [[String: Any]])
        #expect(listed.map { $0["id"] as? String } == ["7b3d2e10-second", "4f2a9c1e-first"]) // newest first
        #expect(listed[1]["events"] as? Int == 3 && listed[1]["denied"] as? Int == 1 && listed[1]["running"] as? Bool == false)
        #expect(listed[1]["exit_status"] as? Int == 0)
        let codex = try #require(try s.json("GET", "/api/v1/sessions?agent=codex").object["sessions"] as? [[String: Any]])
        #expect(codex.map { $0["id"] as? String } == ["7b3d2e10-second"])

        let one = try s.json("GET", "/api/v1/sessions/4f2a")
        #expect(one.status == 200)
        #expect((one.object["session"] as? [String: Any])?["id"] as? String == "4f2a9c1e-first")
        #expect((one.object["denied"] as? [[String: Any]])?.first?["target"] as? String == "/home/dev/.ssh/id_rsa")
        #expect(one.object["denied_total"] as? Int == 1)

        // A cursor pages through a session's events; filters are `agentgate audit`'s.
        let first = try s.json("GET", "/api/v1/sessions/4f2a9c1e-first/events?limit=2")
        let firstEvents = try #require(first.object["events"] as? [[String: Any]])
        #expect(firstEvents.map { $0["target"] as? String } == ["/work/project/README", "/home/dev/.ssh/id_rsa"])
        let cursor = try #require(first.object["next_cursor"] as? Int)
        let second = try s.json("GET", "/api/v1/sessions/4f2a9c1e-first/events?limit=2&after=\(cursor)")
        #expect((second.object["events"] as? [[String: Any]])?.map { $0["target"] as? String } == ["/usr/bin/git"])
        #expect(second.object["next_cursor"] is NSNull)
        let denied = try s.json("GET", "/api/v1/sessions/4f2a9c1e-first/events?decision=deny")
        #expect((denied.object["events"] as? [[String: Any]])?.count == 1)

        // Wrong input is a 400 with a JSON error, a missing session a 404.
        for path in ["/api/v1/sessions?limit=0", "/api/v1/sessions?running=maybe", "/api/v1/sessions?since=yesterdayish",
                     "/api/v1/sessions/4f2a/events?decision=maybe", "/api/v1/sessions/4f2a/events?after=-1"] {
            let reply = try s.json("GET", path)
            #expect(reply.status == 400 && reply.object["code"] as? String == "bad_request", "\(path)")
        }
        let missing = try s.json("GET", "/api/v1/sessions/ffff")
        #expect(missing.status == 404 && missing.object["code"] as? String == "not_found")

        // The OpenAPI document served is the repository's, and the dashboard is one HTML page.
        let served = try s.http("GET", "/api/v1/openapi.json")
        let file = try Data(contentsOf: URL(fileURLWithPath: Self.repositoryRoot + "/docs/openapi.json"))
        #expect(served.status == 200 && served.body == Array(file))
        let page = try s.http("GET", "/")
        #expect(page.status == 200 && page.headers["content-type"] == "text/html; charset=utf-8")
        #expect(page.text.contains("<html"))

        let metrics = try s.http("GET", "/metrics")
        #expect(metrics.status == 200 && metrics.text.contains("agentgate_sessions_active 0"))
    }

    @Test func changesNeedTheTokenWhichIsMadeOnceWithMode0600() throws {
        let s = try ServerHarness()
        try s.start()
        var info = stat()
        #expect(stat(s.tokenPath, &info) == 0 && info.st_mode & 0o777 == 0o600)
        #expect(s.token.count == 64)

        let tokenless = try s.json("POST", "/api/v1/sessions/abc/kill")
        #expect(tokenless.status == 401 && tokenless.object["code"] as? String == "unauthorized")
        let wrong = try s.json("POST", "/api/v1/approvals/1/approve", token: String(repeating: "0", count: 64))
        #expect(wrong.status == 401)
        let authorized = try s.json("POST", "/api/v1/sessions/abc/pause", token: s.token)
        #expect(authorized.status == 404 && authorized.object["code"] as? String == "not_found")
        // Reads stay open on loopback, and check is a read.
        #expect(try s.http("GET", "/api/v1/approvals").status == 200)
        #expect(try s.http("POST", "/api/v1/check", body: #"{"action": "fs_read", "target": "/etc/hostname"}"#).status == 200)

        // `agentgate token` prints the same token.
        let printed = Process()
        printed.executableURL = URL(fileURLWithPath: ServerHarness.binary("agentgate"))
        printed.arguments = ["token"]
        printed.environment = s.environment
        let pipe = Pipe()
        printed.standardOutput = pipe
        try printed.run()
        printed.waitUntilExit()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(output.trimmingCharacters(in: .whitespacesAndNewlines) == s.token)

        // A token file others can read is refused at start, with the reason.
        s.stop()
        chmod(s.tokenPath, 0o640)
        #expect(throws: HarnessFailure.self) { try s.start() }
        #expect(s.serverErrors.contains("has mode 640") && s.serverErrors.contains("chmod 600"))
    }

    /// A page elsewhere that rebinds its own name to 127.0.0.1 must not read the open loopback API.
    @Test func onLoopbackOnlyLoopbackHostNamesAreServed() throws {
        let s = try ServerHarness()
        try s.seed()
        try s.start()
        for host in ["evil.example", "evil.example:9100", "127.0.0.1.evil.example", "[::2]:80", "localhost.evil:1"] {
            #expect(try s.http("GET", "/api/v1/sessions", headers: ["Host: \(host)"]).status == 403, "\(host)")
        }
        for host in ["127.0.0.1", "127.0.0.1:9100", "localhost:9100", "LOCALHOST", "[::1]:9100", "127.1.2.3"] {
            #expect(try s.http("GET", "/api/v1/sessions", headers: ["Host: \(host)"]).status == 200, "\(host)")
        }
    }

    @Test func offLoopbackEveryRequestNeedsTheToken() throws {
        let s = try ServerHarness()
        try s.seed()
        try s.start(listen: "0.0.0.0:0")
        #expect(s.serverErrors.contains("warning") && s.serverErrors.contains("off loopback"))
        for path in ["/api/v1/health", "/api/v1/sessions", "/metrics", "/api/v1/openapi.json"] {
            #expect(try s.http("GET", path).status == 401, "\(path)")
        }
        // The page itself loads without the token: it holds no data, and a browser can't send one.
        #expect(try s.http("GET", "/").status == 200)
        #expect(try s.http("POST", "/api/v1/check", body: #"{"action": "fs_read", "target": "/etc/hostname"}"#).status == 401)
        #expect(try s.http("GET", "/api/v1/sessions", token: s.token).status == 200)
        #expect(try s.json("GET", "/api/v1/health", token: s.token).object["token_required_for_reads"] as? Bool == true)
    }

    func canonical(_ object: [String: Any]) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
    }

    @Test func checkDecidesAsAgentgateCheckDoes() throws {
        let s = try ServerHarness()
        let policy = s.dir + "/policy.yaml"
        try """
            version: 2
            default: allow
            rules:
              - id: keys
                match: {action: fs_read, target_glob: "/etc/ssh/*_key"}
                decision: deny
                reason: host keys
              - id: installs
                match: {action: exec, command: "npm install *"}
                decision: ask
            """.write(toFile: policy, atomically: true, encoding: .utf8)
        try s.start(extra: ["--policy", policy])
        let cases: [(body: String, cli: [String])] = [
            (#"{"action": "fs_read", "target": "/etc/ssh/ssh_host_rsa_key"}"#, ["--action", "fs_read", "/etc/ssh/ssh_host_rsa_key"]),
            (#"{"action": "exec", "argv": ["npm", "install", "left-pad"], "cwd": "/tmp"}"#, ["--", "npm", "install", "left-pad"]),
            (#"{"action": "exec", "target": "npm install left-pad"}"#, ["npm install left-pad"]),
            (#"{"action": "net_egress", "target": "registry.npmjs.org:443"}"#, ["--action", "net_egress", "registry.npmjs.org:443"]),
        ]
        for (body, cli) in cases {
            let api = try s.json("POST", "/api/v1/check", token: s.token, body: body)
            #expect(api.status == 200, "\(body): \(api.object)")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: ServerHarness.binary("agentgate"))
            process.arguments = ["check", "--json", "--policy", policy] + cli
            process.environment = s.environment
            process.currentDirectoryURL = URL(fileURLWithPath: "/tmp")
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            process.waitUntilExit()
            let expected = try #require(try JSONSerialization.jsonObject(with: pipe.fileHandleForReading.readDataToEndOfFile()) as? [String: Any])
            #expect(canonical(api.object) == canonical(expected), "\(body)")
        }
        #expect(try s.json("POST", "/api/v1/check", body: #"{"action": "teleport", "target": "x"}"#).status == 400)
        #expect(try s.json("POST", "/api/v1/check", body: #"{"action": "exec"}"#).status == 400)
        #expect(try s.json("POST", "/api/v1/check", body: "not json").status == 400)
        #expect(try s.json("POST", "/api/v1/check", body: #"{"action": "fs_read", "target": "x", "cwd": "relative"}"#).status == 400)
    }

    @Test func theEventStreamResumesAfterLastEventIDAndShowsNewEvents() throws {
        let s = try ServerHarness()
        try s.seed()
        try s.start()
        let stream = try EventStreamClient(port: s.port, path: "/api/v1/events/stream", headers: ["Last-Event-ID: 2"])
        defer { stream.close() }
        #expect(stream.waitForEvents(count: 2).map(\.id) == [3, 4], "\(stream.raw)")
        let store = try AuditStore(path: s.db)
        try store.insert(events: [DecisionEvent(timeMicros: 1_700_000_100_000_000, pid: 7, ppid: 1, executable: "/usr/bin/curl",
                                                syscall: "connect", action: .netEgress, target: "example.org:443", decision: .deny,
                                                reason: "live", latencyMicros: 3)], sessionID: "7b3d2e10-second")
        store.close()
        let events = stream.waitForEvents(count: 3)
        #expect(events.last?.id == 5 && events.last?.data.contains("example.org:443") == true)
        #expect(stream.headers.contains("text/event-stream"))
    }

    @Test func aClientThatStopsReadingTheStreamIsDisconnected() throws {
        let s = try ServerHarness()
        try s.seed()
        // ~20 MB of events: far more than the socket buffers hold.
        let store = try AuditStore(path: s.db)
        let padding = String(repeating: "x", count: 900)
        for batch in 0..<20 {
            try store.insert(events: (0..<1000).map { index in
                DecisionEvent(timeMicros: 1_700_000_200_000_000 + Int64(batch * 1000 + index), pid: 7, ppid: 1, executable: "/usr/bin/cat",
                              syscall: "openat", action: .fsRead, target: "/tmp/\(padding)/\(batch)-\(index)", decision: .allow,
                              reason: "bulk", latencyMicros: 3)
            }, sessionID: "7b3d2e10-second")
        }
        store.close()
        try s.start()
        let stream = try EventStreamClient(port: s.port, path: "/api/v1/events/stream?after=0", receiveBuffer: 4096)
        defer { stream.close() }
        sleep(14) // not reading: the server's write stalls, and after 10 s it gives up on this client
        let received = stream.drain(timeout: 30)
        #expect(received.closed, "the server kept the connection of a client that stopped reading")
        #expect(received.bytes < 20_000 * 900, "\(received.bytes) bytes: everything was buffered for a client that didn't read")
        // The server itself goes on.
        #expect(try s.json("GET", "/api/v1/health").status == 200)
    }
}

