import Foundation
import Glibc
import Testing

/// A scratch directory with a write-protected tree (reads are allowed everywhere):
///   prot/file (xattr user.keep=yes), prot/empty/, prot/sub/, outer/prot/file   protected
///   pub/evil                                                                   allowed
struct WriteFixture {
    let h: Harness
    let policy: String
    let bin: AdversarialBinaries

    init(_ name: String = #function) throws {
        h = try Harness(name)
        bin = try AdversarialBinaries.get()
        for dir in ["prot/empty", "prot/sub", "pub/real", "outer/prot"] { try h.mkdir(dir) }
        try h.write("pub/real/file", "allowed\n")
        try h.write("prot/file", "ORIGINAL-CONTENT\n")
        try h.write("outer/prot/file", "ORIGINAL-CONTENT\n")
        try h.write("pub/evil", "EVIL-REPLACEMENT\n")
        // Old, fixed times, so a time change is visible even within the same second.
        for file in ["prot/file", "outer/prot/file"] {
            var times = [timespec(tv_sec: 1_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000, tv_nsec: 0)]
            utimensat(AT_FDCWD, h.path(file), &times, 0)
        }
        _ = h.bare([bin.helper, "setkeep", h.path("prot/file")])
        policy = try h.policy("""
            default: allow
            rules:
              - match: {action: fs_write, target_glob: "\(h.dir)/prot/**"}
                decision: deny
              - match: {action: fs_write, target_glob: "\(h.dir)/outer/prot/**"}
                decision: deny
            """)
    }

    func snapshot() throws -> String { try Adversarial.snapshot(h, [h.path("prot"), h.path("outer")]) }
}

struct WriteCase: Sendable, CustomTestStringConvertible {
    let name: String
    /// Helper arguments; paths are relative to the scratch directory (the agent's cwd).
    let args: [String]
    /// Symlinks to create first: (link, target).
    var links: [(String, String)] = []
    /// Whether the spec fixes the errno (EACCES) the agent sees.
    var eacces = true
    var testDescription: String { name }
}

/// Bare, the operation must change the protected tree; supervised, the tree must be identical.
@discardableResult
func writeAttempt(_ c: WriteCase, sourceLocation: SourceLocation = #_sourceLocation) throws -> Harness.Result {
    let bareFixture = try WriteFixture("write" + c.name.filter { $0.isLetter } + "Bare")
    for (link, target) in c.links { symlink(target, bareFixture.h.path(link)) }
    let bareBefore = try bareFixture.snapshot()
    let bare = bareFixture.h.bare([bareFixture.bin.helper] + c.args)
    let bareAfter = try bareFixture.snapshot()
    #expect(bareBefore != bareAfter,
            "\(c.name): bare, the attack must change the protected tree (else this test proves nothing)\n\(bare)\n\(bareAfter)",
            sourceLocation: sourceLocation)

    let f = try WriteFixture("write" + c.name.filter { $0.isLetter })
    for (link, target) in c.links { symlink(target, f.h.path(link)) }
    let before = try f.snapshot()
    let supervised = f.h.supervised([f.bin.helper] + c.args, policy: f.policy)
    let after = try f.snapshot()
    #expect(before == after, "\(c.name): the protected tree changed under the supervisor\n\(supervised)\n--- before ---\n\(before)--- after ---\n\(after)",
            sourceLocation: sourceLocation)
    #expect(supervised.stdout.contains("op=") || supervised.stdout.contains("race:"),
            "\(c.name): the helper didn't run under the supervisor\n\(supervised)", sourceLocation: sourceLocation)
    Adversarial.expectAuditIntact(f.h, c.name, sourceLocation: sourceLocation)
    if c.eacces {
        let last = supervised.stdout.split(separator: "\n").last(where: { $0.hasPrefix("op=") }) ?? ""
        #expect(last.hasSuffix("rc=-1 errno=13"), "\(c.name): spec: the denied operation fails with EACCES\n\(supervised)",
                sourceLocation: sourceLocation)
    }
    return supervised
}

extension AdversarialTests {
    @Suite("Adversarial: writing to a protected tree") struct Write {
        @Test("open for write through links and paths that land in the protected tree", arguments: [
            WriteCase(name: "O_TRUNC through a symlink in an allowed dir", args: ["write-open", "pub/link", "trunc"], links: [("pub/link", "../prot/file")]),
            WriteCase(name: "O_APPEND through a symlink in an allowed dir", args: ["write-open", "pub/link", "append"], links: [("pub/link", "../prot/file")]),
            WriteCase(name: "dangling symlink + O_CREAT", args: ["write-open", "pub/dangle", "creat"], links: [("pub/dangle", "../prot/newfile")]),
            WriteCase(name: "O_CREAT through a symlink to the protected directory", args: ["write-open", "pub/pdir/new", "creat"], links: [("pub/pdir", "../prot")]),
            WriteCase(name: "O_CREAT|O_EXCL via .. from an allowed dir", args: ["write-open", "pub/../prot/newfile", "creat-excl"]),
            WriteCase(name: "creat()", args: ["fsop", "creat", "prot/new"]),
            WriteCase(name: "O_RDONLY|O_TRUNC (Linux truncates a read-only open)", args: ["write-open", "prot/file", "rdonly-trunc"]),
        ])
        func openForWrite(c: WriteCase) throws { try writeAttempt(c) }

        @Test("rename into, out of, over and around the protected tree", arguments: [
            WriteCase(name: "rename the protected file away", args: ["fsop", "rename", "prot/file", "pub/stolen"]),
            WriteCase(name: "rename an allowed file over the protected one", args: ["fsop", "rename", "pub/evil", "prot/file"]),
            WriteCase(name: "renameat over the protected file", args: ["fsop", "renameat", "pub/evil", "prot/file"]),
            WriteCase(name: "renameat2 RENAME_EXCHANGE with the protected file", args: ["fsop", "renameat2-exchange", "pub/evil", "prot/file"]),
            WriteCase(name: "renameat2 RENAME_NOREPLACE into the protected dir", args: ["fsop", "renameat2-noreplace", "pub/evil", "prot/new"]),
            WriteCase(name: "rename the protected directory itself", args: ["fsop", "rename", "prot", "pub/moved"]),
            WriteCase(name: "rename an ancestor of the protected dir, write through the new name, rename back",
                      args: ["fsop", "rename-ancestor-then-write", "outer", "outer2", "prot/file"], eacces: false),
        ])
        func renameAttacks(c: WriteCase) throws { try writeAttempt(c) }

        @Test("remove protected entries", arguments: [
            WriteCase(name: "unlink", args: ["fsop", "unlink", "prot/file"]),
            WriteCase(name: "unlinkat with a dirfd", args: ["fsop", "unlinkat", "prot", "file"]),
            WriteCase(name: "rmdir", args: ["fsop", "rmdir", "prot/empty"]),
            WriteCase(name: "unlinkat AT_REMOVEDIR", args: ["fsop", "unlinkat-dir", "prot/empty"]),
        ])
        func removeAttacks(c: WriteCase) throws { try writeAttempt(c) }

        @Test("create new names inside the protected directory", arguments: [
            WriteCase(name: "mkdir", args: ["fsop", "mkdir", "prot/newdir"]),
            WriteCase(name: "mkdirat", args: ["fsop", "mkdirat", "prot/newdir"]),
            WriteCase(name: "mknod (FIFO)", args: ["fsop", "mknod", "prot/fifo"]),
            WriteCase(name: "mknodat (regular file)", args: ["fsop", "mknodat", "prot/node"]),
            WriteCase(name: "symlink", args: ["fsop", "symlink", "prot/sym", "/etc/passwd"]),
            WriteCase(name: "symlinkat", args: ["fsop", "symlinkat", "prot/sym", "/etc/passwd"]),
            WriteCase(name: "link (new name in the protected dir)", args: ["fsop", "link", "prot/hardlink", "pub/evil"]),
            WriteCase(name: "linkat (new name in the protected dir)", args: ["fsop", "linkat", "prot/hardlink", "pub/evil"]),
            WriteCase(name: "O_TMPFILE in an allowed dir, linkat(fd, \"\", AT_EMPTY_PATH) into the protected dir",
                      args: ["fsop", "tmpfile-link", "pub", "prot/new", "empty-path"]),
            WriteCase(name: "O_TMPFILE in an allowed dir, linkat(/proc/self/fd/N, AT_SYMLINK_FOLLOW) into the protected dir",
                      args: ["fsop", "tmpfile-link", "pub", "prot/new", "proc-fd"]),
            WriteCase(name: "O_TMPFILE in the protected dir, then linkat", args: ["fsop", "tmpfile-link", "prot", "prot/new"], eacces: false),
        ])
        func createInProtectedDirectory(c: WriteCase) throws { try writeAttempt(c) }

        @Test("change a protected file's content or metadata by path", arguments: [
            WriteCase(name: "truncate", args: ["fsop", "truncate", "prot/file"]),
            WriteCase(name: "chmod", args: ["fsop", "chmod", "prot/file"]),
            WriteCase(name: "fchmodat", args: ["fsop", "fchmodat", "prot/file"]),
            WriteCase(name: "fchmodat2", args: ["fsop", "fchmodat2", "prot/file"]),
            WriteCase(name: "chown", args: ["fsop", "chown", "prot/file"]),
            WriteCase(name: "lchown", args: ["fsop", "lchown", "prot/file"]),
            WriteCase(name: "fchownat", args: ["fsop", "fchownat", "prot/file"]),
            WriteCase(name: "utime", args: ["fsop", "utime", "prot/file"]),
            WriteCase(name: "utimes", args: ["fsop", "utimes", "prot/file"]),
            WriteCase(name: "utimensat", args: ["fsop", "utimensat", "prot/file"]),
            WriteCase(name: "futimesat", args: ["fsop", "futimesat", "prot/file"]),
            WriteCase(name: "setxattr", args: ["fsop", "setxattr", "prot/file"]),
            WriteCase(name: "lsetxattr", args: ["fsop", "lsetxattr", "prot/file"]),
            WriteCase(name: "removexattr", args: ["fsop", "removexattr", "prot/file"]),
            WriteCase(name: "lremovexattr", args: ["fsop", "lremovexattr", "prot/file"]),
        ])
        func metadataByPath(c: WriteCase) throws {
            if c.name.contains("chown") { try TestUser.requireRoot("giving a file to another user takes CAP_CHOWN") }
            try writeAttempt(c)
        }

        @Test("upgrade a read-only fd of the protected file to a writable one by re-opening its magic link", arguments: [
            WriteCase(name: "/proc/self/fd/N", args: ["fsop", "reopen-write", "prot/file", "/proc/self/fd"]),
            WriteCase(name: "/dev/fd/N", args: ["fsop", "reopen-write", "prot/file", "/dev/fd"]),
            WriteCase(name: "/proc/thread-self/fd/N", args: ["fsop", "reopen-write", "prot/file", "/proc/thread-self/fd"]),
        ])
        func reopenReadOnlyFDForWrite(c: WriteCase) throws { try writeAttempt(c) }

        @Test("race: chmod the protected file while the path to it flips", arguments: [
            WriteCase(name: "directory symlink renamed between an allowed dir and the protected one", args: ["race-mutate", "symlink", "2"], eacces: false),
            WriteCase(name: "path buffer flipped between an allowed file and the protected one", args: ["race-mutate", "buffer", "2"], eacces: false),
            WriteCase(name: "dirfd dup2()ed between an allowed dir and the protected one (fchmodat)", args: ["race-mutate", "dirfd", "2"], eacces: false),
        ])
        func raceMutation(c: WriteCase) throws {
            let r = try writeAttempt(c)
            #expect(!r.stdout.contains("allowed-mutations=0\n"), "no allowed chmod succeeded: the race didn't happen\n\(r)")
        }

        @Test("path-based calls on /proc/self/fd/N of a read-only fd of the protected file", arguments: [
            WriteCase(name: "chmod", args: ["fsop", "procfd-chmod", "prot/file"]),
            WriteCase(name: "chown", args: ["fsop", "procfd-chown", "prot/file"]),
            WriteCase(name: "truncate", args: ["fsop", "procfd-truncate", "prot/file"]),
            WriteCase(name: "setxattr", args: ["fsop", "procfd-setxattr", "prot/file"]),
            WriteCase(name: "utimensat", args: ["fsop", "procfd-utimensat", "prot/file"]),
        ])
        func pathCallsOnProcSelfFD(c: WriteCase) throws {
            if c.name.contains("chown") { try TestUser.requireRoot("giving a file to another user takes CAP_CHOWN") }
            try writeAttempt(c)
        }

        // Beyond the syscalls listed in the spec: reads of the protected file are allowed, and
        // fchmod/fchown/fsetxattr/futimens work on an fd opened read-only.
        @Test("change metadata through a read-only fd of the protected file", arguments: [
            WriteCase(name: "fchmod", args: ["fsop", "fchmod-rdonly", "prot/file"], eacces: false),
            WriteCase(name: "fchown", args: ["fsop", "fchown-rdonly", "prot/file"], eacces: false),
            WriteCase(name: "fsetxattr", args: ["fsop", "fsetxattr-rdonly", "prot/file"], eacces: false),
            WriteCase(name: "futimens", args: ["fsop", "futimens-rdonly", "prot/file"], eacces: false),
        ])
        func metadataThroughReadOnlyFD(c: WriteCase) throws {
            if c.name.contains("chown") { try TestUser.requireRoot("giving a file to another user takes CAP_CHOWN") }
            try writeAttempt(c)
        }

        // Also beyond the spec's list: link needs fs_read on the source (allowed here) and
        // fs_write on the new name (allowed: pub/), after which the same inode is writable
        // under an allowed name.
        @Test("hard-link the protected file into an allowed dir, then write through the new name")
        func hardLinkOutThenWrite() throws {
            try writeAttempt(WriteCase(name: "link out then write", args: ["fsop", "link-then-write", "prot/file", "pub/alias"], eacces: false))
        }

        // ~/.config is writable, ~/.config/git/** is not: a ready-made tree renamed (or linked)
        // into place as ~/.config brings a git config no write to ~/.config/git was decided on.
        @Test("a ready-made tree renamed or symlinked to a name whose descendants are protected", arguments: [
            ["mv", "-T", "pub/newcfg", "cfg"], ["mv", "-T", "pub/newcfg", "cfg-empty"], ["ln", "-s", "pub/newcfg", "cfg"],
            ["python3", "-c", "import os; os.rename('pub/newcfg', 'cfg')"],
            // A hard link to a symlink (linkat without AT_SYMLINK_FOLLOW links the link itself).
            ["python3", "-c", "import os; os.link('pub/treelink', 'cfg', follow_symlinks=False)"],
            ["python3", "-c", "import os, ctypes; fd = os.open('pub/treelink', os.O_PATH | os.O_NOFOLLOW); "
                + "raise SystemExit(ctypes.CDLL(None).linkat(-100, f'/proc/self/fd/{fd}'.encode(), -100, b'cfg', 0x400) != 0)"], // AT_SYMLINK_FOLLOW
            ["python3", "-c", "import os, ctypes; fd = os.open('pub/treelink', os.O_PATH | os.O_NOFOLLOW); "
                + "raise SystemExit(ctypes.CDLL(None).linkat(fd, b'', -100, b'cfg', 0x1000) != 0)"], // AT_EMPTY_PATH
        ])
        func treeIntoProtectedDescendants(command: [String]) throws {
            let destination = command.count > 3 ? command[3] : "cfg"
            func fixture(_ name: String) throws -> (Harness, String) {
                let h = try Harness(name)
                try h.mkdir("pub/newcfg/git")
                try h.mkdir("cfg-empty")
                try h.write("pub/newcfg/git/config", "[core]\n\tpager = sh -c evil\n")
                symlink(h.path("pub/newcfg"), h.path("pub/treelink"))
                let policy = try h.policy("""
                    version: 2
                    default: allow
                    rules:
                      - match: {action: fs_write, target_glob: "\(h.dir)/{cfg,cfg-empty}/{git,systemd}/**"}
                        decision: deny
                    """)
                return (h, policy)
            }
            let label = String(command.joined().filter { $0.isLetter }.suffix(24))
            let (bare, _) = try fixture("treeIntoProtectedBare" + label)
            let bareResult = bare.bare(command)
            #expect(FileManager.default.fileExists(atPath: bare.path(destination + "/git/config")),
                    "bare, the tree must land (else this test proves nothing)\n\(bareResult)")

            let (h, policy) = try fixture("treeIntoProtected" + label)
            let result = h.supervised(command, policy: policy)
            #expect(result.status != 0, "\(result)")
            #expect(!FileManager.default.fileExists(atPath: h.path(destination + "/git/config")), "the tree landed\n\(result)")
            #expect(FileManager.default.fileExists(atPath: h.path("pub/newcfg/git/config")))
            let denied = h.query("select count(*) from events where decision = 'deny' and target like '%\(destination)'").first?.first
            #expect(denied == "1", "the refusal is recorded\n\(result)")
            Adversarial.expectAuditIntact(h, command.joined(separator: " "))
        }
    }
}
