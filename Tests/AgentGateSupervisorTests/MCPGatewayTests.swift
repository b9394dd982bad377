import AgentGateStore
import Foundation
import Glibc
import Testing

/// `agentgate mcp` between the `mcp` package's stdio client and a FastMCP server (both from
/// PyPI, in a venv under ~/.cache/agentgate-mcp-test), run as real processes.
@Suite(.serialized) struct MCPGatewayTests {
    static var agentgate: String { PolicyCommandTests.agentgate }

    static let serverSource = """
        import os
        from mcp.server.fastmcp import FastMCP
        server = FastMCP("files")
        def log(line):
            with open(os.environ["CALL_LOG"], "a") as f:
                f.write(line + "\\n")
        @server.tool()
        def read_file(path: str) -> str:
            log("read_file " + path)
            with open(path) as f:
                return f.read()
        @server.tool()
        def echo(text: str) -> str:
            log("echo " + text)
            return text
        server.run()
        """

    /// Runs the server command, calls each tool in order, prints one JSON result per call.
    static let clientSource = """
        import sys, json, asyncio, os
        from mcp import ClientSession, StdioServerParameters
        from mcp.client.stdio import stdio_client
        async def main():
            command = json.loads(sys.argv[1])
            calls = json.loads(sys.argv[2])
            params = StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ))
            async with stdio_client(params) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    results = []
                    for name, arguments in calls:
                        try:
                            result = await session.call_tool(name, arguments)
                            text = "".join(c.text for c in result.content if hasattr(c, "text"))
                            results.append({"isError": bool(result.isError), "text": text})
                        except Exception as error:
                            results.append({"isError": True, "text": "exception: " + str(error)})
                    print(json.dumps(results))
        asyncio.run(main())
        """

    /// The venv's python with `mcp` (1.x: FastMCP) installed, or the reason it can't be had.
    static let python: Result<String, HarnessError> = {
        let home = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
        let directory = home + "/.cache/agentgate-mcp-test"
        let python = directory + "/venv/bin/python"
        func works() -> Bool { shell("'\(python)' -c 'from mcp.server.fastmcp import FastMCP; from mcp.client.stdio import stdio_client'") == 0 }
        if works() { return .success(python) }
        let status = shell("mkdir -p '\(directory)' && cd '\(directory)' && rm -rf venv && timeout 120 python3 -m venv venv"
                           + " && timeout 300 venv/bin/pip install -q 'mcp<2' >pip.log 2>&1")
        guard status == 0, works() else {
            return .failure(HarnessError(message: "cannot install the mcp package from PyPI into \(directory)/venv (exit \(status); see pip.log there)"))
        }
        return .success(python)
    }()

    static func shell(_ command: String) -> Int32 {
        var pid: pid_t = 0
        var argv: [UnsafeMutablePointer<CChar>?] = ["/bin/sh", "-c", command].map { (word: String) in strdup(word) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        guard posix_spawn(&pid, "/bin/sh", nil, nil, &argv, environ) == 0 else { return -1 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status
    }

    struct Setup {
        let h: Harness
        let python: String
        let home: String
        let environment: [String: String]

        /// The client against `server`; the results, one per call.
        func call(_ server: [String], _ calls: [(String, [String: Any])]) throws -> [[String: Any]] {
            let serverJSON = String(decoding: try JSONSerialization.data(withJSONObject: server), as: UTF8.self)
            let callsJSON = String(decoding: try JSONSerialization.data(withJSONObject: calls.map { [$0.0, $0.1] as [Any] }), as: UTF8.self)
            let result = h.run([python, h.path("client.py"), serverJSON, callsJSON], environment: environment, timeout: 120)
            let line = result.stdout.split(separator: "\n").last.map(String.init) ?? ""
            guard result.status == 0, let parsed = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [[String: Any]] else {
                throw HarnessError(message: "client failed (\(result.status)): \(result.stdout) \(result.stderr)")
            }
            return parsed
        }

        var calls: [String] {
            ((try? String(contentsOfFile: h.path("calls.log"), encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
    }

    static func setup() throws -> Setup {
        let python: String
        switch Self.python {
        case .success(let found): python = found
        case .failure(let reason): try Test.cancel("skipped: \(reason)")
        }
        let h = try Harness()
        let home = h.path("home")
        try FileManager.default.createDirectory(atPath: home + "/.ssh", withIntermediateDirectories: true)
        try "-----BEGIN FAKE KEY-----\n".write(toFile: home + "/.ssh/id_rsa", atomically: false, encoding: .utf8)
        try "hello\n".write(toFile: h.path("hello.txt"), atomically: false, encoding: .utf8)
        // A name the MCP layer doesn't know is the key.
        symlink(home + "/.ssh/id_rsa", h.path("notes.txt"))
        try h.write("server.py", serverSource)
        try h.write("client.py", clientSource)
        var environment = ProcessInfo.processInfo.environment
        environment["HOME"] = home
        environment["CALL_LOG"] = h.path("calls.log")
        environment["AGENTGATE_DB"] = h.db
        return Setup(h: h, python: python, home: home, environment: environment)
    }

    static let policyYAML = """
        version: 2
        default: {exec: allow, fs_read: allow, fs_write: allow, net_egress: allow, mcp: allow}
        rules:
          - id: no-keys-via-mcp
            match: {action: mcp, tool: read_file, arguments: {path: "$HOME/.ssh/**"}}
            decision: deny
            reason: SSH keys are not for MCP tools
          - id: ssh-keys
            match: {action: fs_read, target_glob: "$HOME/.ssh/**"}
            decision: deny
            reason: SSH keys
        """

    @Test func decidesToolCallsHoldsTheServerAndRecordsRedactedArguments() throws {
        let s = try Self.setup()
        let key = s.home + "/.ssh/id_rsa"
        // Without the gateway the same client reads the key, directly and through the link.
        let bare = try s.call([s.python, s.h.path("server.py")], [("read_file", ["path": key]), ("read_file", ["path": s.h.path("notes.txt")])])
        #expect(bare.allSatisfy { $0["isError"] as? Bool == false && ($0["text"] as? String)?.contains("FAKE KEY") == true }, "\(bare)")
        try? FileManager.default.removeItem(atPath: s.h.path("calls.log"))

        let policy = try s.h.policy(Self.policyYAML)
        let gateway = [Self.agentgate, "mcp", "--policy", policy, "--db", s.h.db, "--", s.python, s.h.path("server.py")]
        let results = try s.call(gateway, [
            ("echo", ["text": "token AKIAIOSFODNN7EXAMPLE"]),
            ("read_file", ["path": s.h.path("hello.txt")]),
            ("read_file", ["path": key]),
            ("read_file", ["path": s.home + "/x/../.ssh/id_rsa"]),
            ("read_file", ["path": s.h.path("notes.txt")]),
        ])
        try #require(results.count == 5, "\(results)")
        #expect(results[0]["isError"] as? Bool == false && results[0]["text"] as? String == "token AKIAIOSFODNN7EXAMPLE", "\(results[0])")
        #expect(results[1]["isError"] as? Bool == false && results[1]["text"] as? String == "hello\n", "\(results[1])")
        for denied in results[2...3] {
            let text = denied["text"] as? String ?? ""
            #expect(denied["isError"] as? Bool == true && text.contains("rule no-keys-via-mcp") && text.contains("SSH keys are not for MCP tools"),
                    "\(denied)")
        }
        // The MCP layer allowed the link; the kernel layer refused what the server then opened.
        let held = results[4]
        #expect(held["isError"] as? Bool == true && !(held["text"] as? String ?? "").contains("FAKE KEY"), "\(held)")
        // The server never saw the refused calls.
        #expect(s.calls == ["echo token AKIAIOSFODNN7EXAMPLE", "read_file " + s.h.path("hello.txt"), "read_file " + s.h.path("notes.txt")],
                "\(s.calls)")

        let store = try AuditStore(path: s.h.db, readOnly: true)
        defer { store.close() }
        let sessions = try store.sessions()
        let gatewaySession = try #require(sessions.first { $0.agent == "mcp:server" && !$0.id.hasSuffix("-server") })
        #expect(gatewaySession.exitStatus == 0)
        let events = try store.events(sessionID: gatewaySession.id).map(\.event)
        #expect(events.count == 5 && events.allSatisfy { $0.source == .mcp && $0.action == .mcp }, "\(events)")
        #expect(events.map(\.target) == ["echo", "read_file", "read_file", "read_file", "read_file"])
        #expect(events[0].argv == ["echo", "text=token AKIA[REDACTED]"], "\(events[0].argv ?? [])")
        #expect(events[2].decision == .deny && events[2].ruleID == "no-keys-via-mcp")
        // The server's own session: the kernel layer's denial of the key.
        let serverEvents = try store.events(sessionID: gatewaySession.id + "-server").map(\.event)
        #expect(serverEvents.contains { $0.action == .fsRead && $0.target == key && $0.decision == .deny && $0.ruleID == "ssh-keys" })
    }

    @Test func noSuperviseRunsTheServerBareAndAServerThatDiesEndsTheGateway() throws {
        let s = try Self.setup()
        let policy = try s.h.policy(Self.policyYAML)
        let results = try s.call([Self.agentgate, "mcp", "--no-supervise", "--policy", policy, "--db", s.h.db, "--", s.python, s.h.path("server.py")],
                                 [("read_file", ["path": s.home + "/.ssh/id_rsa"]), ("read_file", ["path": s.h.path("notes.txt")])])
        // Only the MCP layer: the call naming the key is refused, the link is not.
        #expect(results[0]["isError"] as? Bool == true && results[1]["isError"] as? Bool == false, "\(results)")
        // A server that exits: the gateway exits with its status.
        let dead = s.h.run(["/bin/sh", "-c", "echo '{}' | '\(Self.agentgate)' mcp --no-supervise --policy '\(policy)' --db '\(s.h.db)' -- /bin/sh -c 'exit 7'"],
                           environment: s.environment, timeout: 30)
        #expect(dead.status == 7, "\(dead)")
    }

    /// An `ask` for a tools/call waits for a person, as the server's own calls do: it is listed
    /// by `agentgate approvals` (in the server's session), and `approve`/`deny` settle it.
    @Test func anAskedToolCallWaitsForAPersonsAnswer() throws {
        let s = try Self.setup()
        let c = try ControlHarness("mcpAsk") // short: the runtime directory holds the sessions' sockets
        var environment = s.environment
        environment["XDG_RUNTIME_DIR"] = c.environment["XDG_RUNTIME_DIR"]
        let policy = try s.h.policy("""
            version: 2
            default: {exec: allow, fs_read: allow, fs_write: allow, net_egress: allow, mcp: allow}
            ask_timeout: 60s
            rules:
              - id: echo-asks
                match: {action: mcp, tool: echo, arguments: {text: "ask-*"}}
                decision: ask
                reason: echoing asks
            """)
        let gateway = [Self.agentgate, "mcp", "--policy", policy, "--db", s.h.db, "--", s.python, s.h.path("server.py")]
        let calls: [[Any]] = [["echo", ["text": "ask-approved"]], ["echo", ["text": "ask-denied"]], ["echo", ["text": "plain"]]]
        let client = try BackgroundRun([s.python, s.h.path("client.py"),
                                        String(decoding: try JSONSerialization.data(withJSONObject: gateway), as: UTF8.self),
                                        String(decoding: try JSONSerialization.data(withJSONObject: calls), as: UTF8.self)],
                                       directory: s.h.dir, name: "client", environment: environment)
        for (index, answer) in ["approve", "deny"].enumerated() {
            let ask = c.pendingAsks().first ?? [:]
            let id = try #require(ask["id"] as? String, "ask \(index): \(client.stderr)")
            // The person sees the tool and its (redacted) arguments.
            #expect(ask["action"] as? String == "mcp" && ask["target"] as? String == "echo text=ask-\(index == 0 ? "approved" : "denied")", "\(ask)")
            #expect((ask["session"] as? String)?.hasSuffix("-server") == true && (ask["rule"] as? String)?.contains("echo-asks") == true, "\(ask)")
            #expect(s.calls.count == index, "the call waits for the answer: \(s.calls)")
            let answered = c.control([answer, id])
            #expect(answered.status == 0, "\(answered)")
        }
        #expect(client.wait(timeout: 120) == 0, "\(client.stderr)")
        let line = client.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let parsed = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [[String: Any]]
        let results = try #require(parsed, "\(client.stdout)")
        try #require(results.count == 3, "\(results)")
        #expect(results[0]["isError"] as? Bool == false && results[0]["text"] as? String == "ask-approved", "\(results[0])")
        // The agent is told a person denied it, not who.
        #expect(results[1]["isError"] as? Bool == true && (results[1]["text"] as? String)?.contains("denied by a person") == true, "\(results[1])")
        #expect(results[2]["isError"] as? Bool == false, "\(results[2])")
        #expect(s.calls == ["echo ask-approved", "echo plain"], "\(s.calls)")

        let store = try AuditStore(path: s.h.db, readOnly: true)
        defer { store.close() }
        let gatewaySession = try #require(try store.sessions().first { $0.agent == "mcp:server" && !$0.id.hasSuffix("-server") })
        let events = try store.events(sessionID: gatewaySession.id).map(\.event)
        #expect(events.count == 3 && events[0].decision == .ask && events[1].decision == .ask, "\(events)")
        #expect(events[0].reason.contains("allowed once by") && events[1].reason.contains("denied by"), "\(events.map(\.reason))")
        #expect(events[0].answeredVia == "socket" && events[1].answeredVia == "socket" && events[0].answeredBy?.isEmpty == false,
                "\(events.map { ($0.answeredVia, $0.answeredBy) })")

        // Without a supervisor there is nobody to ask: the ask is denied, saying why.
        let bare = try s.call([Self.agentgate, "mcp", "--no-supervise", "--policy", policy, "--db", s.h.db, "--", s.python, s.h.path("server.py")],
                              [("echo", ["text": "ask-bare"])])
        #expect(bare.first?["isError"] as? Bool == true && (bare.first?["text"] as? String)?.contains("--no-supervise") == true, "\(bare)")
    }

    /// Inside a supervised session (the agent runs under agentgate-supervise and starts the
    /// gateway), the session's policy and database are closed to the gateway: the session's
    /// supervisor decides and records each tools/call over the hook socket and puts an ask to a
    /// person, and the server, already under the session's filter, is held by the same policy.
    @Test func insideASessionTheSessionDecidesRecordsAndAsks() throws {
        let s = try Self.setup()
        let c = try ControlHarness("mcpIn")
        var environment = s.environment
        environment["XDG_RUNTIME_DIR"] = c.environment["XDG_RUNTIME_DIR"]
        let policy = try s.h.policy(Self.policyYAML + """

              - id: echo-asks
                match: {action: mcp, tool: echo, arguments: {text: "ask-*"}}
                decision: ask
            ask_timeout: 60s
            """)
        let key = s.home + "/.ssh/id_rsa"
        let gateway = [Self.agentgate, "mcp", "--", s.python, s.h.path("server.py")]
        let calls: [[Any]] = [["echo", ["text": "plain"]], ["echo", ["text": "ask-approved"]], ["read_file", ["path": key]],
                              ["read_file", ["path": s.h.path("notes.txt")]]]
        let run = try BackgroundRun([Harness.supervisor, "--policy", policy, "--db", s.h.db, "--session", "mcpin", "--",
                                     s.python, s.h.path("client.py"),
                                     String(decoding: try JSONSerialization.data(withJSONObject: gateway), as: UTF8.self),
                                     String(decoding: try JSONSerialization.data(withJSONObject: calls), as: UTF8.self)],
                                    directory: s.h.dir, name: "mcpin", environment: environment)
        let ask = c.pendingAsks().first ?? [:]
        let id = try #require(ask["id"] as? String, "\(run.stderr)")
        #expect(ask["session"] as? String == "mcpin" && ask["action"] as? String == "mcp" && ask["target"] as? String == "echo text=ask-approved",
                "\(ask)")
        #expect(c.control(["approve", id]).status == 0)
        #expect(run.wait(timeout: 120) == 0, "\(run.stderr)")
        let line = run.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let parsed = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [[String: Any]]
        let results = try #require(parsed, "\(run.stdout) \(run.stderr)")
        try #require(results.count == 4, "\(results)")
        #expect(results[0]["isError"] as? Bool == false && results[1]["text"] as? String == "ask-approved", "\(results)")
        #expect(results[2]["isError"] as? Bool == true && (results[2]["text"] as? String)?.contains("SSH keys are not for MCP tools") == true,
                "\(results[2])")
        // The MCP layer let the link through; the session's filter refused what the server opened.
        #expect(results[3]["isError"] as? Bool == true && !(results[3]["text"] as? String ?? "").contains("FAKE KEY"), "\(results[3])")
        #expect(s.calls == ["echo plain", "echo ask-approved", "read_file " + s.h.path("notes.txt")], "\(s.calls)")

        // Both layers in the one session: the gateway's calls (source mcp) and the kernel's denial.
        let store = try AuditStore(path: s.h.db, readOnly: true)
        defer { store.close() }
        #expect(try store.sessions().map(\.id) == ["mcpin"], "no session of the gateway's own")
        let events = try store.events(sessionID: "mcpin").map(\.event)
        let mcp = events.filter { $0.action == .mcp }
        #expect(mcp.count == 4 && mcp.allSatisfy { $0.source == .mcp }, "\(mcp)")
        #expect(mcp.map(\.decision) == [.allow, .ask, .deny, .allow], "\(mcp.map(\.decision))")
        #expect(mcp[1].answeredVia == "socket" && mcp[1].reason.contains("allowed once by"), "\(mcp[1])")
        #expect(mcp[2].ruleID == "no-keys-via-mcp" && mcp[2].argv == ["read_file", "path=" + key], "\(mcp[2])")
        #expect(events.contains { $0.action == .fsRead && $0.target == key && $0.decision == .deny && $0.ruleID == "ssh-keys" })
    }
}
