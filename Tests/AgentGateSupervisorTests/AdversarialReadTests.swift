import Foundation
import Glibc
import Testing

/// A scratch directory with a read-protected secret:
///   secret/key, outer/secret/key   the secret (denied for fs_read, and nothing else)
///   pub/ok                         an allowed file;  mnt/  an empty allowed directory
struct ReadFixture {
    let h: Harness
    let secret: String
    let policy: String
    let bin: AdversarialBinaries
    static let allowedContent = "allowed-content\n"

    init(_ name: String = #function) throws {
        h = try Harness(name)
        bin = try AdversarialBinaries.get()
        secret = Adversarial.secretMarker()
        for dir in ["secret", "pub", "mnt", "outer/secret"] { try h.mkdir(dir) }
        try h.write("secret/key", secret + "\n")
        try h.write("outer/secret/key", secret + "\n")
        try h.write("pub/ok", Self.allowedContent)
        policy = try h.policy("""
            default: allow
            rules:
              - match: {action: fs_read, target_glob: "\(h.dir)/secret/**"}
                decision: deny
              - match: {action: fs_read, target_glob: "\(h.dir)/outer/secret/**"}
                decision: deny
            """)
    }

    var secretPath: String { h.path("secret/key") }

    func bare(_ args: [String], wrap: [String] = []) -> Harness.Result {
        h.bare(wrap + [bin.helper] + args)
    }

    func supervised(_ args: [String], wrap: [String] = []) -> Harness.Result {
        h.run(wrap + h.supervisedArgv([bin.helper] + args, policy: policy))
    }
}

/// Runs one read attempt in two fresh fixtures: bare it must print the secret, supervised it
/// must not. Returns the supervised result for further checks.
@discardableResult
func readAttempt(_ name: String, wrap: [String] = [], setup: (ReadFixture) throws -> Void = { _ in },
                 _ args: (ReadFixture) -> [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> (ReadFixture, Harness.Result) {
    let bareFixture = try ReadFixture(name + "Bare")
    try setup(bareFixture)
    let bare = bareFixture.bare(args(bareFixture), wrap: wrap)
    #expect(bare.text.contains(bareFixture.secret),
            "\(name): bare, the attack must obtain the secret (else this test proves nothing)\n\(bare)", sourceLocation: sourceLocation)

    let f = try ReadFixture(name)
    try setup(f)
    let supervised = f.supervised(args(f), wrap: wrap)
    #expect(!supervised.text.contains(f.secret), "\(name): the secret leaked under the supervisor\n\(supervised)", sourceLocation: sourceLocation)
    #expect(!supervised.stdout.isEmpty || supervised.status == Adversarial.sigsys,
            "\(name): the helper didn't run under the supervisor, so the attack wasn't tried\n\(supervised)", sourceLocation: sourceLocation)
    return (f, supervised)
}

extension AdversarialTests {
    @Suite("Adversarial: reading a denied file") struct Read {
        @Test("symlink in an allowed directory pointing at the secret", arguments: [
            "absolute file link", "relative file link", "link to the secret directory", "chain of links",
        ])
        func symlinkToSecret(kind: String) throws {
            try readAttempt("symlink", setup: { f in
                switch kind {
                case "absolute file link": symlink(f.secretPath, f.h.path("pub/link"))
                case "relative file link": symlink("../secret/key", f.h.path("pub/link"))
                case "link to the secret directory": symlink(f.h.path("secret"), f.h.path("pub/dir")); symlink("dir/key", f.h.path("pub/link"))
                default:
                    symlink("l2", f.h.path("pub/link")); symlink("l3", f.h.path("pub/l2")); symlink("../secret/key", f.h.path("pub/l3"))
                }
            }) { _ in ["read", "pub/link"] }
        }

        @Test("dot-dot traversal from an allowed directory", arguments: [
            "pub/../secret/key", "pub/./../secret//key", "pub/../pub/../secret/../secret/key",
        ])
        func dotDotTraversal(path: String) throws {
            try readAttempt("dotdot") { _ in ["read", path] }
        }

        @Test("/proc/self and /proc/thread-self magic links", arguments: [
            "/proc/self/root", "/proc/self/cwd", "/proc/thread-self/root", "/proc/thread-self/cwd", "/proc/self/root/proc/self/cwd",
        ])
        func procSelfMagicLinks(prefix: String) throws {
            try readAttempt("procself") { f in
                ["read", prefix.hasSuffix("root") ? prefix + f.secretPath : prefix + "/secret/key"]
            }
        }

        @Test("re-open of an O_PATH fd through /proc/self/fd, /dev/fd, /proc/thread-self/fd", arguments: [
            "secret file via /proc/self/fd/N", "secret file via /dev/fd/N", "secret file via /proc/thread-self/fd/N",
            "secret dir via /dev/fd/N/key", "test dir via /proc/self/fd/N/secret/key",
        ])
        func reopenOPathFD(kind: String) throws {
            try readAttempt("opath") { f in
                switch kind {
                case "secret file via /proc/self/fd/N": return ["opath-reopen", f.secretPath, "proc"]
                case "secret file via /dev/fd/N": return ["opath-reopen", f.secretPath, "devfd"]
                case "secret file via /proc/thread-self/fd/N": return ["opath-reopen", f.secretPath, "thread"]
                case "secret dir via /dev/fd/N/key": return ["opath-reopen", f.h.path("secret"), "devfd", "key"]
                default: return ["opath-reopen", f.h.dir, "proc", "secret/key"]
                }
            }
        }

        @Test("openat relative to a directory fd of the secret directory", arguments: [
            "O_PATH dirfd", "O_RDONLY dirfd", "chdir then open(\".\")",
        ])
        func openatWithSecretDirFD(kind: String) throws {
            let how = kind.hasPrefix("O_PATH") ? "opath" : kind.hasPrefix("O_RDONLY") ? "rdonly" : "chdir-dot"
            try readAttempt("openatdirfd") { f in ["openat-dirfd", f.h.path("secret"), "key", how] }
        }

        @Test("chdir into the secret directory, then a relative open")
        func chdirThenRelativeOpen() throws {
            try readAttempt("chdir") { _ in ["chdir-read", "secret", "key"] }
        }

        struct ResolveCase: Sendable, CustomTestStringConvertible {
            let name: String, flags: Int, path: String
            var testDescription: String { name }
        }

        @Test("openat2 with RESOLVE_* flags", arguments: [
            ResolveCase(name: "no flags", flags: 0, path: "secret/key"),
            ResolveCase(name: "RESOLVE_NO_XDEV", flags: 0x01, path: "secret/key"),
            ResolveCase(name: "RESOLVE_NO_MAGICLINKS", flags: 0x02, path: "secret/key"),
            ResolveCase(name: "RESOLVE_NO_SYMLINKS", flags: 0x04, path: "secret/key"),
            ResolveCase(name: "RESOLVE_BENEATH", flags: 0x08, path: "secret/key"),
            ResolveCase(name: "RESOLVE_IN_ROOT (\"/\" is the dirfd)", flags: 0x10, path: "/secret/key"),
            ResolveCase(name: "RESOLVE_CACHED", flags: 0x20, path: "secret/key"),
            ResolveCase(name: "RESOLVE_IN_ROOT with .. clamped at the root", flags: 0x10, path: "/../../secret/key"),
        ])
        func openat2ResolveFlags(c: ResolveCase) throws {
            try readAttempt("openat2") { f in ["openat2", f.h.dir, c.path, String(c.flags)] }
        }

        @Test("hard link of the secret into an allowed directory", arguments: ["link", "linkat"])
        func hardLinkSecret(call: String) throws {
            try readAttempt("hardlink") { f in ["link-read", f.secretPath, f.h.path("pub/stolen"), call] }
        }

        @Test("rename the secret directory into an allowed place, then read it")
        func renameSecretDirectory() throws {
            try readAttempt("renamedir") { f in ["rename-read", f.h.path("secret"), f.h.path("pub/moved"), f.h.path("pub/moved/key")] }
        }

        @Test("rename an ancestor of the secret directory, then read through the new name")
        func renameAncestorOfSecret() throws {
            try readAttempt("renameancestor") { f in ["rename-read", f.h.path("outer"), f.h.path("outer2"), f.h.path("outer2/secret/key")] }
        }

        @Test("mount --bind the secret directory over an allowed one (in a private mount namespace)")
        func bindMountSecret() throws {
            try TestUser.requireRoot("mount in the initial user namespace takes CAP_SYS_ADMIN (the user-namespace form is tested below)")
            let (f, r) = try readAttempt("bindmount", wrap: ["unshare", "-m", "--propagation", "private"]) { f in
                ["bind-read", f.h.path("secret"), f.h.path("mnt"), "mnt/key"]
            }
            #expect(r.stdout.contains("op=mount rc=-1 errno=1"), "spec: mount → EPERM\n\(r)")
            #expect(Adversarial.deniedEvents(f.h, syscall: "mount") >= 1, "spec: the denied mount is logged")
        }

        @Test("unshare a mount (and user) namespace, bind-mount the secret, relative open", arguments: ["ns", "user-ns"])
        func unshareThenBindMount(kind: String) throws {
            if kind == "ns" { try TestUser.requireRoot("a mount namespace without a user namespace takes CAP_SYS_ADMIN") }
            // Wrapped in a throwaway mount namespace too, so a half-implemented supervisor can't leave
            // mounts (or a recursively private "/") behind on the host. (An unprivileged user's
            // mounts live in its own user namespace's mount namespace, never on the host.)
            let wrap = TestUser.isRoot ? ["unshare", "-m", "--propagation", "private"] : []
            let (f, r) = try readAttempt("unsharemount", wrap: wrap) { f in
                ["unshare-bind-read", kind, f.h.path("secret"), f.h.path("mnt"), "mnt/key"]
            }
            #expect(r.stdout.contains("op=unshare rc=-1 errno=1"), "spec: unshare with namespace flags → EPERM\n\(r)")
            #expect(Adversarial.deniedEvents(f.h, syscall: "unshare") >= 1, "spec: the denied unshare is logged")
        }

        @Test("chroot into the test directory, then open /secret/key")
        func chrootThenOpen() throws {
            try TestUser.requireRoot("chroot takes CAP_SYS_CHROOT")
            let (f, r) = try readAttempt("chroot") { f in ["chroot-read", f.h.dir, "/secret/key"] }
            #expect(r.stdout.contains("op=chroot rc=-1 errno=1"), "spec: chroot → EPERM\n\(r)")
            #expect(Adversarial.deniedEvents(f.h, syscall: "chroot") >= 1, "spec: the denied chroot is logged")
        }

        @Test("name_to_handle_at + open_by_handle_at")
        func openByHandle() throws {
            try TestUser.requireRoot("open_by_handle_at takes CAP_DAC_READ_SEARCH")
            let (f, r) = try readAttempt("byhandle") { f in ["handle-read", f.secretPath, f.h.dir] }
            #expect(r.stdout.contains("op=open_by_handle_at rc=-1 errno=1"), "spec: open_by_handle_at → EPERM\n\(r)")
            #expect(Adversarial.deniedEvents(f.h, syscall: "open_by_handle_at") >= 1, "spec: logged")
        }

        @Test("io_uring IORING_OP_OPENAT (raw syscalls)")
        func ioUringOpenat() throws {
            try Adversarial.cancelIfIoUringDisabled()
            let (f, r) = try readAttempt("iouring") { f in ["uring-read", f.secretPath] }
            #expect(r.stdout.contains("op=io_uring rc=-1 errno=38"), "spec: io_uring_setup → ENOSYS\n\(r)")
            #expect(Adversarial.deniedEvents(f.h, syscall: "io_uring_setup") >= 1, "spec: logged")
        }

        @Test("i386 int 0x80 open() from a 64-bit process")
        func int80Open() throws {
            let probe = try ReadFixture("int80Probe")
            if probe.bare(["int80-read", probe.secretPath]).status == 128 + SIGSEGV {
                try Test.cancel("Bare half impossible here: int 0x80 faults (IA32 emulation is disabled in this kernel)")
            }
            let (_, r) = try readAttempt("int80") { f in ["int80-read", f.secretPath] }
            #expect(r.status == Adversarial.sigsys, "spec: a foreign-ABI syscall kills the process (SIGSYS)\n\(r)")
        }

        @Test("x32 ABI open() (syscall number | 0x40000000)")
        func x32Open() throws {
            let f = try ReadFixture("x32")
            let supervised = f.supervised(["x32-read", f.secretPath])
            #expect(!supervised.text.contains(f.secret), "the secret leaked under the supervisor\n\(supervised)")
            #expect(supervised.status == Adversarial.sigsys, "spec: an x32 syscall kills the process (SIGSYS)\n\(supervised)")
            let bareFixture = try ReadFixture("x32Bare")
            let bare = bareFixture.bare(["x32-read", bareFixture.secretPath])
            if bare.stdout.contains("X32-UNSUPPORTED") {
                try Test.cancel("""
                    Bare half impossible here: this kernel has no x32 ABI (CONFIG_X86_X32_ABI unset; the bare x32 \
                    open returned ENOSYS), so the attack can't be shown to work without the supervisor. The \
                    supervised half ran: the process was killed (status \(supervised.status)) and nothing leaked.
                    """)
            }
            #expect(bare.text.contains(bareFixture.secret), "bare, the x32 open must obtain the secret\n\(bare)")
        }

        @Test("race: a thread flips the path buffer between an allowed file and the secret while two threads open it")
        func racePathBuffer() throws {
            let (_, r) = try readAttempt("racepath") { _ in ["race-open", "pub/ok", "secret/key", "3"] }
            #expect(!r.stdout.contains("allowed-reads=0 "), "the race never read the allowed file: it didn't race\n\(r)")
        }

        @Test("race: a symlink is renamed back and forth between the allowed file and the secret while opening it")
        func raceSymlinkFlip() throws {
            let (_, r) = try readAttempt("racesymlink") { f in ["race-symlink", f.h.path("pub/flip"), f.h.path("pub/ok"), f.secretPath, "3"] }
            #expect(!r.stdout.contains("allowed-reads=0 "), "the race never read the allowed file: it didn't race\n\(r)")
        }
    }
}
