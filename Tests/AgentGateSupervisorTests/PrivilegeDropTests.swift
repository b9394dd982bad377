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
}
