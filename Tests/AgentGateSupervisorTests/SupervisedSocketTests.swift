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
        let listener = try h.start(["python3", "-c", server, socket])
        defer { listener.process.terminate() }
        let client = "import socket,sys\ntry:\n socket.socket(socket.AF_UNIX).connect(sys.argv[1]); print('connected')\nexcept OSError as e: print('refused', e.errno)"
        #expect(waitUntil(timeout: 30) { h.bare(["python3", "-c", client, socket]).stdout.contains("connected") })
        let supervised = h.supervised(["python3", "-c", client, socket], policy: policy)
        #expect(supervised.stdout.contains("refused 13"), "\(supervised)")
        let denied = h.query("select count(*) from events where decision = 'deny' and target like '%\(socket)'").first?.first
        #expect(denied == "1", "\(supervised)")
    }

    /// A unix connect is checked on the socket it is made on: another thread that swaps the fd
    /// number between an IP socket and a unix socket must not get the unix socket connected to
    /// a raw path the supervisor didn't resolve (a symlink in an allowed directory leading to a
    /// protected socket; found by a review on 2026-12-07 against the first version of the
    /// family check).
    @Test func aUnixConnectCantBeSwappedOntoAnotherSocketMidCall() throws {
        let h = try Harness()
        try h.mkdir("secret")
        try h.mkdir("pub")
        let policy = try h.policy("""
            default: allow
            rules:
              - match: {action: fs_write, target_glob: "\(h.dir)/secret/**"}
                decision: deny
            """)
        symlink("../secret/s.sock", h.path("pub/tsock"))
        try h.write("race.c", #"""
            #define _GNU_SOURCE
            #include <stdio.h>
            #include <unistd.h>
            #include <errno.h>
            #include <string.h>
            #include <pthread.h>
            #include <sys/socket.h>
            #include <sys/un.h>
            #include <netinet/in.h>
            #include <stddef.h>
            #include <time.h>
            static int inet_s, unix_s; static volatile int stop;
            static void *flipper(void *x) { (void)x; while (!stop) { dup2(inet_s, 50); dup2(unix_s, 50); } return 0; }
            int main(int argc, char **argv) {
                (void)argc;
                struct sockaddr_un a; memset(&a, 0, sizeof a); a.sun_family = AF_UNIX; strcpy(a.sun_path, argv[1]);
                socklen_t al = offsetof(struct sockaddr_un, sun_path) + strlen(argv[1]) + 1;
                inet_s = socket(AF_INET, SOCK_STREAM, 0);
                time_t end = time(0) + 4;
                int tries = 0;
                for (; time(0) < end; tries++) {
                    unix_s = socket(AF_UNIX, SOCK_STREAM, 0);
                    dup2(unix_s, 50); stop = 0; pthread_t t; pthread_create(&t, 0, flipper, 0);
                    int r = connect(50, (struct sockaddr *)&a, al);
                    stop = 1; pthread_join(t, 0);
                    struct sockaddr_un p; socklen_t pl = sizeof p;
                    if (r == 0 && getpeername(unix_s, (struct sockaddr *)&p, &pl) == 0) { printf("CONNECTED after %d tries\n", tries + 1); return 0; }
                    close(unix_s);
                }
                printf("held %d tries\n", tries);
                return 1;
            }
            """#)
        let built = h.bare(["cc", "-O2", "-pthread", "-o", h.path("race"), h.path("race.c")])
        #expect(built.status == 0, "\(built)")
        let server = "import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(64); time.sleep(20)"
        let listener = try h.start(["python3", "-c", server, "secret/s.sock"])
        defer { listener.process.terminate() }
        try waitUntil("the listener binds") { h.exists("secret/s.sock") }
        let bare = h.bare([h.path("race"), "pub/tsock"])
        #expect(bare.stdout.hasPrefix("CONNECTED"), "bare, the symlink must reach the socket: \(bare)")
        let supervised = h.supervised([h.path("race"), "pub/tsock"], policy: policy, timeout: 60)
        #expect(supervised.stdout.hasPrefix("held"), "\(supervised)")
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
