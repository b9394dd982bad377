import Foundation
import Glibc
import Testing

/// Socket addresses as the kernel reads them: an AF_UNSPEC sendto, unix sockets inside
/// protected directories, and a bound socket's own name. Each denial is first shown to
/// succeed bare.
@Suite("Socket addresses and unix socket paths under the supervisor", .serialized) struct SupervisedSocketTests {
    @Test func anAFUnspecUDPSendIsDecidedAsTheIPv4AddressItReaches() throws {
        let h = try Harness()
        let receiver = """
            import socket, sys
            r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); r.bind(("127.0.0.1", 0)); r.settimeout(1)
            port = r.getsockname()[1]
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            import ctypes, struct
            libc = ctypes.CDLL(None, use_errno=True)
            addr = struct.pack("<HH4s8x", 0, socket.htons(port), socket.inet_aton("127.0.0.1"))  # sin_family = AF_UNSPEC
            n = libc.sendto(s.fileno(), b"LEAK", 4, 0, addr, len(addr))
            try:
                print("received", r.recv(10).decode())
            except socket.timeout:
                print("nothing", n, ctypes.get_errno())
            """
        let policy = try h.policy("""
            default: allow
            rules:
              - match: {action: net_egress, target_glob: "127.0.0.1:*"}
                decision: deny
            """)
        #expect(h.bare(["python3", "-c", receiver]).stdout.contains("received LEAK"))
        let supervised = h.supervised(["python3", "-c", receiver], policy: policy)
        #expect(supervised.stdout.contains("nothing"), "\(supervised)")
    }

    @Test func unixSocketsInsideProtectedDirectoriesCantBeUsedOrPlanted() throws {
        let h = try Harness()
        try FileManager.default.createDirectory(atPath: h.path("keys"), withIntermediateDirectories: true)
        let policy = try h.policy("""
            default: allow
            rules:
              - match: {target_glob: "\(h.dir)/keys/**"}
                decision: deny
            """)
        // A stand-in agent socket inside the protected directory; it stays up for the test's length.
        let server = "import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); time.sleep(8)"
        let serverProcess = Process()
        serverProcess.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        // Relative names: the test directory's absolute path is longer than sun_path allows.
        serverProcess.arguments = ["python3", "-c", server, "keys/agent.sock"]
        serverProcess.currentDirectoryURL = URL(fileURLWithPath: h.dir)
        try serverProcess.run()
        defer { serverProcess.terminate() }
        let client = "import socket,sys\ntry:\n socket.socket(socket.AF_UNIX).connect(sys.argv[1]); print('connected')\nexcept OSError as e: print('refused', e.errno)"
        // Bare, the client connects once the server listens (polled under a deadline).
        #expect(waitUntil(timeout: 30) { h.bare(["python3", "-c", client, "keys/agent.sock"]).stdout.contains("connected") })
        let supervised = h.supervised(["python3", "-c", client, "keys/agent.sock"], policy: policy)
        #expect(supervised.stdout.contains("refused 13"), "\(supervised)")
        let plant = "import socket,sys\ntry:\n socket.socket(socket.AF_UNIX).bind(sys.argv[1]); print('planted')\nexcept OSError as e: print('refused', e.errno)"
        #expect(h.bare(["python3", "-c", plant, "keys/bare.sock"]).stdout.contains("planted"))
        let planted = h.supervised(["python3", "-c", plant, "keys/planted.sock"], policy: policy)
        #expect(planted.stdout.contains("refused 13") && !h.exists("keys/planted.sock"), "\(planted)")
    }

    /// The user's tmux server or ssh-agent, started outside the session, listens in /tmp, which
    /// the built-in policy lets the agent write: connecting to it must still be refused.
    @Test("built-in policy: the user's own tmux and ssh-agent sockets in /tmp are refused", arguments: ["tmux-", "ssh-"])
    func outsideServiceSocketsInTmp(prefix: String) throws {
        let h = try Harness()
        let policy = try h.policy("include: [agentgate:default]\n")
        let directory = "/tmp/\(prefix)agentgate-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let socket = directory + (prefix == "ssh-" ? "/agent.1234" : "/default")
        let server = "import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); time.sleep(8)"
        let serverProcess = Process()
        serverProcess.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        serverProcess.arguments = ["python3", "-c", server, socket]
        try serverProcess.run()
        defer { serverProcess.terminate() }
        let client = "import socket,sys\ntry:\n socket.socket(socket.AF_UNIX).connect(sys.argv[1]); print('connected')\nexcept OSError as e: print('refused', e.errno)"
        #expect(waitUntil(timeout: 30) { h.bare(["python3", "-c", client, socket]).stdout.contains("connected") })
        let supervised = h.supervised(["python3", "-c", client, socket], policy: policy)
        #expect(supervised.stdout.contains("refused 13"), "\(supervised)")
        let denied = h.query("select count(*) from events where decision = 'deny' and target like '%\(socket)'").first?.first
        #expect(denied == "1", "\(supervised)")
    }

    @Test func aBoundUnixSocketKeepsTheNameTheAgentGaveIt() throws {
        // multiprocessing.Manager binds under a temp dir and connects to getsockname()'s answer.
        let h = try Harness()
        let policy = try h.policy("default: allow\nrules: []\n")
        let script = "import multiprocessing as m\nif __name__ == '__main__':\n    with m.Manager() as mg:\n        d = mg.dict(); d['k'] = 'v'; print(dict(d))"
        let supervised = h.supervised(["python3", "-c", script], policy: policy)
        #expect(supervised.status == 0 && supervised.stdout == "{'k': 'v'}\n", "\(supervised)")
    }
}
