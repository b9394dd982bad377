import Foundation
import Glibc
import Testing

/// What a supervised session prints around the agent's own output: `-v` and `--log` decision
/// lines, and the closing summary.
@Suite struct SessionOutputTests {
    let policy = """
        version: 1
        default: allow
        rules:
          - id: secrets
            match: {action: fs_read, target_glob: "**/secret*"}
            decision: deny
            reason: no secrets
        """

    @Test func verboseDenialIsAWholeLineBeforeTheAgentsOwnError() throws {
        let h = try Harness()
        try h.write("secret.txt", "s3cret\n")
        let policy = try h.policy(self.policy)
        let bare = h.bare(["cat", h.path("secret.txt")])
        #expect(bare.status == 0 && bare.stdout == "s3cret\n")
        let result = h.supervised(["cat", h.path("secret.txt")], policy: policy, extra: ["-v"])
        #expect(result.status == 1)
        let lines = result.stderr.split(separator: "\n").map(String.init)
        let denial = lines.firstIndex { $0.hasPrefix("agentgate: ✗") && $0.contains("fs_read deny \(h.path("secret.txt")) (rule secrets: no secrets) pid=") }
        let agentError = lines.firstIndex { $0 == "cat: \(h.path("secret.txt")): Permission denied" }
        #expect(denial != nil && agentError != nil && denial! < agentError!, "\(result.stderr)")
        // -v leaves out the plain allowed reads (cat's reads of its messages while it prints the
        // error would otherwise land inside its line); the exec is shown.
        #expect(lines.contains { $0.contains("exec allow cat \(h.path("secret.txt"))") })
        #expect(!lines.contains { $0.contains("fs_read allow") }, "\(result.stderr)")
        let everything = h.supervised(["cat", h.path("secret.txt")], policy: policy, extra: ["-vv"])
        #expect(everything.stderr.contains("fs_read allow"), "\(everything.stderr)")
    }

    @Test func logFileGetsEveryDecisionAndTheAgentCannotReadIt() throws {
        let h = try Harness()
        let policy = try h.policy(self.policy)
        let log = h.path("decisions.log")
        let result = h.supervised(["sh", "-c", "cat \(log); echo done"], policy: policy, extra: ["--log", log])
        #expect(result.stdout == "done\n")
        #expect(result.stderr.contains("cat: \(log): Permission denied"), "\(result.stderr)")
        #expect(!result.stderr.contains("agentgate: ✓"))
        let text = try String(contentsOfFile: log, encoding: .utf8)
        #expect(text.contains("exec allow sh -c"))
        #expect(text.contains("fs_read allow"))
        #expect(text.contains("fs_read deny \(log) (the supervisor's audit database, decision log and policy are off limits)"), "\(text)")
        var info = stat()
        #expect(stat(log, &info) == 0 && info.st_mode & 0o777 == 0o600)
        // Appends, never truncates.
        _ = h.supervised(["true"], policy: policy, extra: ["--log", log])
        #expect(try String(contentsOfFile: log, encoding: .utf8).hasPrefix(text))
    }

    @Test func unopenableLogIsAnErrorBeforeTheCommandRuns() throws {
        let h = try Harness()
        let policy = try h.policy(self.policy)
        let result = h.supervised(["touch", h.path("ran")], policy: policy, extra: ["--log", h.path("missing/dir/log")])
        #expect(result.status == 2)
        #expect(result.stderr.contains("cannot open the decision log \(h.path("missing/dir/log")): No such file or directory"))
        #expect(!h.exists("ran"))
    }

    @Test func sessionEndsWithASummaryWhoseCommandWorksWhenCopied() throws {
        let h = try Harness()
        try h.write("secret.txt", "s3cret\n")
        let policy = try h.policy(self.policy)
        let result = h.supervised(["sh", "-c", "cat \(h.path("secret.txt")); exit 3"], policy: policy,
                                  extra: ["--session", "summary-test"])
        #expect(result.status == 3)
        let summary = try #require(result.stderr.split(separator: "\n").last.map(String.init))
        #expect(summary.hasPrefix("agentgate-supervise: session summary-test ended (exit 3): "), "\(summary)")
        #expect(summary.contains(" allowed, 1 denied, 0 asked — "), "\(summary)")
        let command = try #require(summary.components(separatedBy: " — ").last)
        let shown = h.run(["sh", "-c", command])
        #expect(shown.status == 0, "\(command): \(shown)")
        #expect(shown.stdout.contains("summary-test"), "\(shown.stdout)")
        let quiet = h.supervised(["true"], policy: policy, extra: ["-q"])
        #expect(quiet.status == 0 && quiet.stderr.isEmpty, "\(quiet.stderr)")
    }

    @Test func killedAgentIsSummarisedAsSuch() throws {
        let h = try Harness()
        let policy = try h.policy(self.policy)
        #expect(h.bare(["sh", "-c", "kill -KILL $$"]).status == 128 + SIGKILL)
        let result = h.supervised(["sh", "-c", "kill -KILL $$"], policy: policy)
        #expect(result.status == 128 + SIGKILL)
        #expect(result.stderr.contains("ended (killed by signal 9): "), "\(result.stderr)")
    }

    @Test func deniedCommandNamesTheRule() throws {
        let h = try Harness()
        let policy = try h.policy("""
            version: 1
            default: allow
            rules:
              - id: no-shells
                match: {action: exec, command: "sh*"}
                decision: deny
                reason: no shells here
            """)
        #expect(h.bare(["sh", "-c", "true"]).status == 0)
        let denied = h.supervised(["sh", "-c", "true"], policy: policy, extra: ["-q"])
        #expect(denied.status == 126)
        #expect(denied.stderr == "agentgate-supervise: cannot execute /usr/bin/sh: permission denied "
                + "(denied by the policy: rule no-shells: no shells here)\n", "\(denied.stderr)")
        // Failures that aren't the policy's are told as the kernel gave them.
        try h.write("data.txt", "not a program\n")
        let notExecutable = h.supervised([h.path("data.txt")], policy: policy, extra: ["-q"])
        #expect(notExecutable.status == 126)
        #expect(notExecutable.stderr == "agentgate-supervise: cannot execute \(h.path("data.txt")): permission denied\n")
        let missing = h.supervised(["./missing"], policy: policy, extra: ["-q"])
        #expect(missing.status == 127)
        #expect(missing.stderr == "agentgate-supervise: cannot execute ./missing: no such file or directory\n")
    }

    @Test func namedDatabaseInAMissingDirectoryIsAnErrorAndNothingIsCreated() throws {
        let h = try Harness()
        let policy = try h.policy(self.policy)
        for (extra, environment) in [(["--db", h.path("missing/audit.db")], [String: String]()),
                                     ([], ["AGENTGATE_DB": h.path("missing/audit.db")])] {
            var env = ProcessInfo.processInfo.environment
            env.merge(environment) { $1 }
            let result = h.run([Harness.supervisor, "--policy", policy] + extra + ["--", "touch", h.path("ran")], environment: env)
            #expect(result.status == 2)
            #expect(result.stderr.contains("the database's directory \(h.path("missing")) is missing"), "\(result.stderr)")
            #expect(result.stderr.contains("create it first, or choose another --db"))
            #expect(!h.exists("missing") && !h.exists("ran"))
        }
    }

    @Test func missingOrReadOnlyHomeSuggestsAnotherDatabase() throws {
        let h = try Harness()
        let policy = try h.policy(self.policy)
        var env = ProcessInfo.processInfo.environment
        env["AGENTGATE_DB"] = nil
        env["XDG_DATA_HOME"] = nil
        env["HOME"] = h.path("no-such-home")
        let missing = h.run([Harness.supervisor, "--policy", policy, "--", "touch", h.path("ran")], environment: env)
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("\(h.path("no-such-home")) is missing"), "\(missing.stderr)")
        #expect(missing.stderr.contains("use --db FILE or set AGENTGATE_DB to keep it somewhere writable"))
        #expect(!h.exists("no-such-home") && !h.exists("ran"))
        // Read-only: as a user who can't write there (root could).
        guard Unprivileged.available else { return }
        try FileManager.default.createDirectory(atPath: h.path("ro-home"), withIntermediateDirectories: false)
        chmod(h.path("ro-home"), 0o555)
        env["HOME"] = h.path("ro-home")
        let readOnly = h.run(Unprivileged.argv([Harness.supervisor, "--policy", policy, "--", "true"]), environment: env)
        #expect(readOnly.status == 2)
        #expect(readOnly.stderr.contains("cannot create directory \(h.path("ro-home/.local"))"), "\(readOnly.stderr)")
        #expect(readOnly.stderr.contains("use --db FILE or set AGENTGATE_DB"))
    }
}
