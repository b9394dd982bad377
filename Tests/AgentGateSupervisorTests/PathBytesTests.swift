import Foundation
import Testing

/// Linux names are bytes: a name that isn't valid UTF-8 is created, opened, renamed, linked and
/// run as exactly those bytes, and the audit names it without loss (\xHH).
@Suite struct PathBytesTests {
    static let script = #"""
        import os, subprocess
        def step(name, f):
            try: print(name, f())
            except OSError as e: print(name, "errno", e.errno)
        step("mkdir", lambda: os.mkdir(b"d\xff"))
        step("create", lambda: open(b"d\xff/f\xfe", "w").write("x"))
        step("read", lambda: open(b"d\xff/f\xfe").read())
        step("rename", lambda: os.rename(b"d\xff/f\xfe", b"d\xff/g\xfd"))
        step("symlink", lambda: os.symlink(b"g\xfd", b"d\xff/l\xfc"))
        step("readlink", lambda: os.readlink(b"d\xff/l\xfc"))
        step("link", lambda: os.link(b"d\xff/g\xfd", b"d\xff/h\xfb"))
        step("chmod", lambda: os.chmod(b"d\xff/h\xfb", 0o700))
        step("utime", lambda: os.utime(b"d\xff/h\xfb"))
        step("mknod fifo", lambda: os.mkfifo(b"d\xff/p\xfa"))
        step("write script", lambda: open(b"d\xff/s\xf9", "w").write("#!/bin/sh\necho ran\n"))
        step("chmod script", lambda: os.chmod(b"d\xff/s\xf9", 0o755))
        step("exec", lambda: subprocess.run([b"./d\xff/s\xf9"], capture_output=True).stdout)
        step("list", lambda: sorted(os.listdir(b"d\xff")))
        for name in [b"g\xfd", b"h\xfb", b"l\xfc", b"p\xfa", b"s\xf9"]:
            step("unlink", lambda: os.unlink(b"d\xff/" + name))
        step("rmdir", lambda: os.rmdir(b"d\xff"))
        step("left", lambda: os.listdir(b"."))
        """#

    @Test func namesThatArentUTF8AreUsedAsTheirBytes() throws {
        let h = try Harness()
        let policy = try h.policy("version: 2\ndefault: allow\n")
        try h.mkdir("bare")
        try h.mkdir("supervised")
        let bare = h.run(["sh", "-c", "cd bare && exec python3 -c \"$0\"", Self.script])
        #expect(bare.status == 0 && bare.stdout.contains("exec b'ran\\n'"), "\(bare)")
        let supervised = h.supervised(["sh", "-c", "cd supervised && exec python3 -c \"$0\"", Self.script], policy: policy)
        #expect(supervised.stdout == bare.stdout, "supervised:\n\(supervised)\nbare:\n\(bare.stdout)")
        // Named without loss, each byte that isn't UTF-8 as \xHH.
        let targets = Set(h.query("select target from events where action = 'fs_write'").compactMap(\.first))
        #expect(targets.contains(h.path("supervised/d\\xFF/f\\xFE")), "\(targets.sorted())")
        #expect(!targets.contains { $0.contains("\u{FFFD}") }, "\(targets.sorted())")
    }
}

/// /proc/self reached through a symlink (/dev/fd/N, a link of the agent's) names the agent, also
/// for fds the supervisor itself doesn't have (process substitution uses /dev/fd/63).
@Suite struct ProcSelfThroughSymlinkTests {
    @Test func processSubstitutionAndFDLinksWork() throws {
        let h = try Harness()
        let policy = try h.policy("version: 2\ndefault: allow\n")
        try h.write("data.txt", "0123456789abcdef\n")
        let script = """
            while read l; do echo "read: $l"; done < <(echo hi)
            diff <(echo a) <(echo a) && echo diff-same
            exec 97<\(h.path("data.txt")); head -c 10 /dev/fd/97; echo
            ln -s /proc/self/fd/97 \(h.path("link")) && head -c 10 \(h.path("link")); echo
            grep -c ^Pid: /dev/fd/../status
            """
        let bare = h.bare(["bash", "-c", script])
        #expect(bare.status == 0 && bare.stdout.hasPrefix("read: hi\ndiff-same\n"), "\(bare)")
        try? FileManager.default.removeItem(atPath: h.path("link"))
        let supervised = h.supervised(["bash", "-c", script], policy: policy, extra: ["-q"])
        #expect(supervised.stdout == bare.stdout && supervised.status == bare.status, "supervised:\n\(supervised)\nbare:\n\(bare)")
    }
}
