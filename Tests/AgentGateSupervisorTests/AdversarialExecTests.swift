import Foundation
import Glibc
import Testing

/// A scratch directory with forbidden programs (`forbid`, `forbid-static`: exec of `forbid*` is
/// denied; when one runs it writes to `forbid-ran`) and an allowed one (`okprog`).
struct ExecFixture {
    let h: Harness
    let policy: String
    let bin: AdversarialBinaries
    static let loader = "/lib64/ld-linux-x86-64.so.2"

    init(_ name: String = #function) throws {
        h = try Harness(name)
        bin = try AdversarialBinaries.get()
        try h.mkdir("pub")
        try h.mkdir("sub")
        try h.copy(bin.forbidden, to: "forbid")
        try h.copy(bin.forbiddenStatic, to: "forbid-static")
        try h.copy(bin.allowed, to: "okprog")
        // For the dirfd race: good/prog is allowed, bad/prog (a copy of forbid) is denied.
        try h.mkdir("good")
        try h.mkdir("bad")
        try h.copy(bin.allowed, to: "good/prog")
        try h.copy(bin.forbidden, to: "bad/prog")
        policy = try h.policy("""
            default: allow
            rules:
              - match: {action: exec, target_glob: "\(h.dir)/forbid*"}
                decision: deny
              - match: {action: exec, target_glob: "\(h.dir)/bad/**"}
                decision: deny
              - match: {action: exec, argv: ["**", "*forbid-ran*"]}
                decision: deny
            """)
    }

    var forbid: String { h.path("forbid") }
    var marker: String { h.path("forbid-ran") }
    /// The marker has content (the static race pre-creates it empty, as the fd it inherits).
    var ran: Bool { !(h.read("forbid-ran") ?? "").isEmpty }
    /// The agent's environment: where the forbidden program leaves its marker.
    var environment: [String: String] { Harness.environment(adding: ["ADV_MARKER": marker]) }

    func bare(_ args: [String], wrap: [String] = []) -> Harness.Result {
        h.run(wrap + [bin.helper] + args, environment: environment)
    }

    func supervised(_ args: [String], wrap: [String] = []) -> Harness.Result {
        h.run(wrap + h.supervisedArgv([bin.helper] + args, policy: policy), environment: environment)
    }
}

/// Bare, the forbidden program must run (marker); supervised, it must not.
@discardableResult
func execAttempt(_ name: String, wrap: [String] = [], setup: (ExecFixture) throws -> Void = { _ in },
                 _ args: (ExecFixture) -> [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> (ExecFixture, Harness.Result) {
    let bareFixture = try ExecFixture(name + "Bare")
    try setup(bareFixture)
    let bare = bareFixture.bare(args(bareFixture), wrap: wrap)
    let ranBare = bareFixture.ran
    #expect(ranBare, "\(name): bare, the forbidden program must run (else this test proves nothing)\n\(bare)", sourceLocation: sourceLocation)

    let f = try ExecFixture(name)
    try setup(f)
    let supervised = f.supervised(args(f), wrap: wrap)
    let ran = f.ran
    #expect(!ran, "\(name): the forbidden program ran under the supervisor (marker written)\n\(supervised)", sourceLocation: sourceLocation)
    #expect(!supervised.stdout.contains("FORBIDDEN-PROGRAM-RAN"), "\(name): the forbidden program ran\n\(supervised)", sourceLocation: sourceLocation)
    return (f, supervised)
}

extension AdversarialTests {
    @Suite("Adversarial: running a denied program") struct Exec {
        @Test("exec through a symlink to the forbidden program", arguments: ["absolute", "relative", "chain"])
        func symlinkToForbidden(kind: String) throws {
            try execAttempt("execsymlink", setup: { f in
                switch kind {
                case "absolute": symlink(f.forbid, f.h.path("pub/tool"))
                case "relative": symlink("../forbid", f.h.path("pub/tool"))
                default: symlink("t2", f.h.path("pub/tool")); symlink("../forbid", f.h.path("pub/t2"))
                }
            }) { f in ["exec", f.h.path("pub/tool")] }
        }

        @Test("exec by a relative path", arguments: ["./forbid", "sub/../forbid"])
        func relativePath(path: String) throws {
            try execAttempt("execrelative") { _ in ["exec", path] }
        }

        @Test("chdir, then exec ../forbid")
        func chdirThenRelative() throws {
            try execAttempt("execchdir") { _ in ["chdir-exec", "sub", "../forbid"] }
        }

        @Test("a #! script whose interpreter is the forbidden program", arguments: [
            "direct", "interpreter through a symlink", "nested: script interpreter is a script", "with an interpreter argument",
        ])
        func shebangInterpreter(kind: String) throws {
            try execAttempt("shebang", setup: { f in
                switch kind {
                case "direct": try f.h.write("script", "#!\(f.forbid)\n", mode: 0o755)
                case "interpreter through a symlink":
                    symlink(f.forbid, f.h.path("pub/interp"))
                    try f.h.write("script", "#!\(f.h.path("pub/interp"))\n", mode: 0o755)
                case "nested: script interpreter is a script":
                    try f.h.write("inner", "#!\(f.forbid)\n", mode: 0o755)
                    try f.h.write("script", "#!\(f.h.path("inner"))\n", mode: 0o755)
                default: try f.h.write("script", "#!\(f.forbid) --some-flag\n", mode: 0o755)
                }
            }) { f in ["exec", f.h.path("script")] }
        }

        @Test("the dynamic loader runs the forbidden program", arguments: [
            "ld.so PROG", "ld.so by its real path", "ld.so --argv0 NAME PROG", "ld.so --library-path DIR PROG", "ld.so through a symlink",
        ])
        func loaderRunsForbidden(kind: String) throws {
            let realLoader = (try? FileManager.default.destinationOfSymbolicLink(atPath: ExecFixture.loader))
                .map { $0.hasPrefix("/") ? $0 : "/lib64/" + $0 } ?? ExecFixture.loader
            try execAttempt("ldso", setup: { f in
                if kind.contains("symlink") { symlink(ExecFixture.loader, f.h.path("pub/loader")) }
            }) { f in
                let ld = ExecFixture.loader
                switch kind {
                case "ld.so PROG": return ["exec", ld, f.forbid]
                case "ld.so by its real path": return ["exec", realLoader, f.forbid]
                case "ld.so --argv0 NAME PROG": return ["exec", ld, "--argv0", "innocent", f.forbid]
                case "ld.so --library-path DIR PROG": return ["exec", ld, "--library-path", "/usr/lib", f.forbid]
                default: return ["exec", f.h.path("pub/loader"), f.forbid]
                }
            }
        }

        @Test("execveat(fd, \"\", AT_EMPTY_PATH) on an fd of the forbidden program")
        func execveatEmptyPath() throws {
            try execAttempt("execveatfd") { f in ["execveat-fd", f.forbid] }
        }

        @Test("execveat with a dirfd and a relative name")
        func execveatDirFD() throws {
            try execAttempt("execveatdirfd") { f in ["execveat-dirfd", f.h.dir, "forbid"] }
        }

        @Test("exec /proc/self/fd/N after dup2 of an O_PATH fd of the forbidden program", arguments: [
            "fd 0 via /proc/self/fd", "fd 0 via /proc/thread-self/fd", "fd 0 via /dev/fd", "fd 9 via /proc/self/fd",
        ])
        func execProcSelfFD(kind: String) throws {
            let number = kind.hasPrefix("fd 9") ? "9" : "0"
            let via = kind.contains("thread-self") ? "thread" : kind.contains("/dev/fd") ? "devfd" : "proc"
            try execAttempt("execprocfd") { f in ["exec-procfd", f.forbid, number, via] }
        }

        @Test("in a new mount namespace, bind-mount the forbidden program over an allowed one, then exec it",
              arguments: ["unshare", "unshare-user", "clone", "clone3"])
        func bindMountOverAllowedInNewNamespace(how: String) throws {
            if how != "unshare-user" { try TestUser.requireRoot("a mount namespace without a user namespace takes CAP_SYS_ADMIN") }
            // The outer `unshare -m` keeps any mount a half-implemented supervisor lets through off
            // the host (an unprivileged user's mounts stay in its own user namespace anyway).
            let wrap = TestUser.isRoot ? ["unshare", "-m", "--propagation", "private"] : []
            let (f, r) = try execAttempt("nsexec", wrap: wrap) { f in
                ["ns-exec", how, f.forbid, f.h.path("okprog")]
            }
            switch how {
            case "clone3": #expect(r.stdout.contains("op=clone3 rc=-1 errno=38"), "spec: clone3 → ENOSYS\n\(r)")
            case "clone": #expect(r.stdout.contains("op=clone rc=-1 errno=1"), "spec: clone with CLONE_NEWNS → EPERM\n\(r)")
            default: #expect(r.stdout.contains("op=unshare rc=-1 errno=1"), "spec: unshare → EPERM\n\(r)")
            }
            _ = f
        }

        @Test("race: a thread flips the exec path buffer between an allowed and the forbidden program during execve")
        func raceExecPath() throws {
            let (_, r) = try execAttempt("raceexec") { f in ["race-exec", "buffer", f.h.path("okprog"), f.forbid, f.marker, "3"] }
            #expect(!r.stdout.contains("allowed-runs=0\n"), "the allowed program never ran: the race didn't happen\n\(r)")
        }

        /// The decision reads argv once, the kernel copies it again: a thread that flips argv[1]
        /// between NULL and "-c" gets `sh` decided and `sh -c FORBIDDEN` run, unless the new
        /// image's argv is checked to be the decided one, every byte of it.
        @Test("race: a thread flips argv[1] while a shell's exec is decided; the denied command line never runs")
        func raceExecArguments() throws {
            let (_, r) = try execAttempt("raceexecargv") { f in
                ["race-exec", "argv", "/bin/sh", "echo FORBIDDEN-PROGRAM-RAN > '\(f.marker)'", f.marker, "3"]
            }
            #expect(!r.stdout.contains("allowed-runs=0\n"), "the allowed exec never ran: the race didn't happen\n\(r)")
        }

        @Test("race: other ways to swap the program between the decision and the exec", arguments: [
            "buffer-thread", "symlink", "shebang", "dirfd",
        ])
        func raceExecVariants(mode: String) throws {
            try raceExec(mode: mode, forbidden: "forbid")
        }

        /// A static program that acts through an inherited fd (write is never trapped) before
        /// making any trapped syscall must never get to run: the exec is held at the new
        /// image's first instruction (PTRACE_EVENT_EXEC) and the swapped-in image killed there.
        @Test("race: flip the exec path to a static forbidden program that acts before any trapped syscall")
        func raceExecStaticProgram() throws {
            try raceExec(mode: "static", forbidden: "forbid-static")
        }

        func raceExec(mode: String, forbidden: String) throws {
            // buffer-thread: execve from a non-leader thread (the exec'ing thread takes over the
            // pid); symlink: a symlink renamed between the programs; shebang: the script renamed
            // between "#!allowed" and "#!forbidden"; dirfd: execveat(100, "prog") while fd 100 is
            // dup2()ed between good/ and bad/.
            let (_, r) = try execAttempt("raceexec" + mode) { f in ["race-exec", mode, f.h.path("okprog"), f.h.path(forbidden), f.marker, "2"] }
            #expect(!r.stdout.contains("allowed-runs=0\n"), "the allowed program never ran: the race didn't happen\n\(r)")
        }
    }
}
