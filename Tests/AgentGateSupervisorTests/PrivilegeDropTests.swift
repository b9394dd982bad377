import Foundation
import Glibc
import Testing

/// Calls the supervisor performs for an agent that has dropped root's privileges. Each shows
/// first, bare, what the kernel itself allows.
@Suite("Calls made for an agent after it drops privileges", .serialized) struct PrivilegeDropTests {
    @Test func afterDroppingPrivilegesOpensAreNotMadeWithTheSupervisorsCredentials() throws {
        try TestUser.requireRoot("the agent drops root's privileges")
        let h = try Harness()
        let policy = try h.policy("default: allow\nrules: []\n")
        let script = """
            import os
            def attempt(label):
                try:
                    open('/etc/shadow').read(1); print(label, 'read')
                except PermissionError:
                    print(label, 'denied')
            attempt('root')
            os.setgroups([]); os.setresgid(65534, 65534, 65534); os.setresuid(65534, 65534, 65534)
            attempt('nobody')
            """
        let bare = h.bare(["python3", "-c", script])
        #expect(bare.stdout == "root read\nnobody denied\n", "\(bare)")
        let supervised = h.supervised(["python3", "-c", script], policy: policy)
        #expect(supervised.stdout == "root read\nnobody denied\n", "\(supervised)")
    }

    /// After the agent drops privileges, calls the supervisor performs for it are made with the
    /// agent's new identity, exactly as the kernel would make them: allowed where the agent may,
    /// owned by the agent, and seen by peers as the agent.
    @Test func afterDroppingPrivilegesCallsAreMadeAsTheAgent() throws {
        try TestUser.requireRoot("the agent drops root's privileges")
        let h = try Harness()
        let policy = try h.policy("default: allow\nrules: []\n")
        try h.mkdir("shared")
        chmod(h.path("shared"), 0o777)
        try h.write("root-only", "secret\n", mode: 0o600)
        let server = """
            import socket, struct, os, sys
            s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o777); s.listen(1)
            print("listening", flush=True)
            c, _ = s.accept()
            pid, uid, gid = struct.unpack("3i", c.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
            print("peer uid", uid, "gid", gid, flush=True)
            """
        try h.write("server.py", server)
        let socketPath = h.path("shared/peer.sock")
        let script = """
            import os, socket, stat
            os.setgroups([]); os.setresgid(65534, 65534, 65534); os.setresuid(65534, 65534, 65534)
            with open("\(h.path("shared/made"))", "w") as f: f.write("x")
            st = os.stat("\(h.path("shared/made"))"); print("made by", st.st_uid, st.st_gid)
            os.mkdir("\(h.path("shared/dir"))"); print("dir by", os.stat("\(h.path("shared/dir"))").st_uid)
            try:
                open("\(h.path("root-only"))").read(); print("root-only read")
            except PermissionError:
                print("root-only denied")
            s = socket.socket(socket.AF_UNIX); s.connect("\(socketPath)"); print("connected")
            """
        for (label, run) in [("bare", { h.bare(["/usr/bin/python3", "-c", script]) }),
                             ("supervised", { h.supervised(["/usr/bin/python3", "-c", script], policy: policy) })] {
            unlink(h.path("shared/made")); rmdir(h.path("shared/dir")); unlink(socketPath)
            let listener = try h.start(["/usr/bin/python3", h.path("server.py"), socketPath])
            try waitUntil("the server listens") { FileManager.default.fileExists(atPath: socketPath) }
            let r = run()
            let peer = listener.wait(timeout: 10)
            #expect(r.stdout == "made by 65534 65534\ndir by 65534\nroot-only denied\nconnected\n", "\(label): \(r)")
            #expect(peer.stdout.contains("peer uid 65534 gid 65534"), "\(label): \(peer)")
        }
    }

    /// A privileged port needs CAP_NET_BIND_SERVICE of the binding thread: the supervisor binds
    /// the agent's socket for it, and must not lend the agent its own.
    @Test("after dropping root, or just CAP_NET_BIND_SERVICE, a privileged port can't be bound through the supervisor")
    func privilegedPortsAfterDroppingPrivileges() throws {
        try TestUser.requireRoot("the agent drops root's privileges")
        let h = try Harness()
        let policy = try h.policy("default: allow\nrules: []\n")
        let start = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_unprivileged_port_start", encoding: .utf8))
            .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 1024
        guard start > 90 else { try Test.cancel("ip_unprivileged_port_start is \(start): no port is privileged here") }
        let script = """
            import os, socket, ctypes, sys
            def attempt(label, family, kind, port):
                s = socket.socket(family, kind)
                try:
                    s.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", port)); print(label, "bound")
                except PermissionError:
                    print(label, "denied")
                finally:
                    s.close()
            if sys.argv[1] == "capability":
                # capset: keep every effective capability but CAP_NET_BIND_SERVICE (10).
                libc = ctypes.CDLL(None, use_errno=True)
                header = (ctypes.c_uint32 * 2)(0x20080522, 0)
                data = (ctypes.c_uint32 * 6)()
                assert libc.capget(header, data) == 0
                data[0] &= ~(1 << 10)
                assert libc.capset(header, data) == 0, ctypes.get_errno()
            else:
                os.setgroups([]); os.setresgid(65534, 65534, 65534); os.setresuid(65534, 65534, 65534)
            attempt("tcp", socket.AF_INET, socket.SOCK_STREAM, 87)
            attempt("udp", socket.AF_INET, socket.SOCK_DGRAM, 88)
            attempt("tcp6", socket.AF_INET6, socket.SOCK_STREAM, 89)
            attempt("high", socket.AF_INET, socket.SOCK_STREAM, 0)
            """
        for how in ["capability", "setuid"] {
            let bare = h.bare(["/usr/bin/python3", "-c", script, how])
            #expect(bare.stdout == "tcp denied\nudp denied\ntcp6 denied\nhigh bound\n", "\(how) bare: \(bare)")
            let supervised = h.supervised(["/usr/bin/python3", "-c", script, how], policy: policy)
            #expect(supervised.stdout == "tcp denied\nudp denied\ntcp6 denied\nhigh bound\n", "\(how) supervised: \(supervised)")
        }
    }
}
