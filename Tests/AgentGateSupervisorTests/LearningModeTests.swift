import Foundation
import Glibc
import Testing

/// `agentgate-supervise --learn` and `agentgate policy suggest`, on a real session: a git
/// commit, a make of a C file and a Python script, learned under a default-deny policy, then run
/// again under the suggested policy.
@Suite struct LearningModeTests {
    static let work = """
        set -e
        git init -q repo
        cd repo
        printf 'hello\\n' > README
        git add README
        git -c user.name=learner -c user.email=learner@example.invalid commit -q -m first
        cd ..
        make -s
        ./hello > hello.out
        python3 gen.py
        cat data/in1.txt data/in2.txt > /dev/null

        """
    static let gen = """
        import json, os, pathlib
        os.makedirs("out", exist_ok=True)
        total = 0
        for name in sorted(os.listdir("data")):
            total += len(pathlib.Path("data", name).read_text())
        for i in range(5):
            pathlib.Path("out", f"f{i}.json").write_text(json.dumps({"i": i, "total": total}))

        """

    func prepare(_ h: Harness) throws {
        for directory in ["work/data", "home/.ssh", "tmp"] {
            try FileManager.default.createDirectory(atPath: h.path(directory), withIntermediateDirectories: true)
        }
        try h.write("work/work.sh", Self.work)
        try h.write("work/gen.py", Self.gen)
        try h.write("work/hello.c", "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n")
        try h.write("work/Makefile", "hello: hello.c\n\tcc -O1 -o hello hello.c\n")
        for i in 1...4 { try h.write("work/data/in\(i).txt", "data \(i)\n") }
        try h.write("home/.ssh/id_rsa", "-----BEGIN FAKE KEY-----\n", mode: 0o600)
    }

    /// Runs the supervisor in `work`, with the test's own HOME and TMPDIR.
    func supervise(_ h: Harness, _ options: [String], _ script: String) -> Harness.Result {
        h.run(["/usr/bin/env", "-i", "-C", h.path("work"), "HOME=\(h.path("home"))", "TMPDIR=\(h.path("tmp"))",
               "PATH=/usr/local/bin:/usr/bin:/bin", Harness.supervisor, "--db", h.db] + options + ["--", "/bin/sh", "-c", script],
              timeout: 120)
    }

    func cleanWork(_ h: Harness) {
        for name in ["repo", "out", "hello", "hello.out"] { try? FileManager.default.removeItem(atPath: h.path("work/" + name)) }
    }

    @Test func learnSuggestAndRunAgainWithNoDenial() throws {
        let tools = ["/usr/bin/git", "/usr/bin/make", "/usr/bin/cc", "/usr/bin/python3"]
        if let missing = tools.first(where: { access($0, X_OK) != 0 }) {
            print("skipped: \(missing) is not installed")
            return
        }
        let h = try Harness()
        try prepare(h)
        let policy = try h.policy("""
            version: 2
            default: deny
            rules:
              - id: ssh-keys
                match: {target_glob: "$HOME/.ssh/**"}
                decision: deny
                reason: SSH keys

            """)
        // Nothing is blocked while learning, not even the credential read (it is recorded as would-deny).
        let learned = supervise(h, ["--learn", "--policy", policy, "--session", "learn1"],
                                "sh ./work.sh && cat \"$HOME/.ssh/id_rsa\" > /dev/null")
        #expect(learned.status == 0, "\(learned.stderr)")
        #expect(learned.stderr.contains("learning mode: every decision is recorded"), "\(learned.stderr)")
        #expect(learned.stderr.contains("policy suggest --db \(h.db) learn1"), "\(learned.stderr)")
        #expect(h.exists("work/repo/.git/HEAD") && h.exists("work/out/f4.json") && h.exists("work/hello"))
        #expect(h.query("SELECT mode FROM sessions WHERE id = 'learn1'") == [["learn"]])
        let wouldDeny = h.query("SELECT count(*) FROM events WHERE session_id = 'learn1' AND decision = 'deny' AND enforced = 0")
        #expect(Int(wouldDeny.first?.first ?? "0") ?? 0 > 10, "\(wouldDeny)")
        let show = h.cli(["show", "learn1"])
        #expect(show.stdout.contains("learning session: nothing was blocked"), "\(show.stdout)")
        let audit = h.cli(["audit", "--session", "learn1", "--decision", "deny"])
        #expect(audit.stdout.contains("would deny \(h.path("home/.ssh/id_rsa"))"), "\(audit.stdout)")

        // The diff against the session's own policy, one comment per rule.
        let diff = h.cli(["policy", "suggest", "learn1"])
        #expect(diff.status == 0, "\(diff.stderr)")
        #expect(diff.stdout.hasPrefix("--- \(policy)\n+++ suggested (session learn1)\n"), "\(diff.stdout)")
        #expect(diff.stdout.contains("\n+  # learned: "), "\(diff.stdout)")
        #expect(diff.stdout.contains("+    match: {action: fs_write, target_glob: \"$PWD/**\"}"), "\(diff.stdout)")
        #expect(diff.stdout.contains("+    match: {action: fs_write, target_glob: \"$TMPDIR/**\"}"), "\(diff.stdout)")
        #expect(diff.stdout.contains("+#   fs_read \(h.path("home/.ssh/id_rsa")): the built-in policy's rule ssh-keys denies it"),
                "\(diff.stdout)")
        #expect(!diff.stdout.contains("+    match: {action: fs_read, target_glob: \"$HOME/.ssh"), "\(diff.stdout)")
        let suggested = h.path("suggested.yaml")
        let written = h.cli(["policy", "suggest", "learn1", "--output", suggested])
        #expect(written.status == 0, "\(written.stderr)")
        #expect(written.stderr.contains("held back"), "\(written.stderr)")
        let check = h.run([Harness.agentgate, "check", "--policy", suggested, "--action", "fs_read", h.path("home/.ssh/id_rsa")])
        #expect(check.status == 1, "\(check.stdout) \(check.stderr)")

        // The same session under the suggested policy: not one denial.
        cleanWork(h)
        let again = supervise(h, ["--policy", suggested, "--session", "again"], "sh ./work.sh")
        #expect(again.status == 0, "\(again.stderr)")
        let refused = h.query("SELECT action, target FROM events WHERE session_id = 'again' AND decision != 'allow'")
        #expect(refused.isEmpty, "\(refused)")
        #expect(h.exists("work/repo/.git/HEAD") && h.exists("work/out/f4.json") && h.exists("work/hello"))

        // The held-back probes are still refused: the credential, and a write outside the workspace.
        let key = supervise(h, ["--policy", suggested, "--session", "probe-key"], "cat \"$HOME/.ssh/id_rsa\"")
        #expect(key.status != 0 && !key.stdout.contains("FAKE KEY"), "\(key.stdout) \(key.stderr)")
        let outside = supervise(h, ["--policy", suggested, "--session", "probe-write"], "echo x > \"$HOME/outside.txt\"")
        #expect(outside.status != 0 && !h.exists("home/outside.txt"), "\(outside.stderr)")
    }

    @Test func learningStillProtectsTheSupervisorsOwnFiles() throws {
        let h = try Harness()
        try prepare(h)
        let policy = try h.policy("version: 2\ndefault: allow\nrules: []\n")
        let result = supervise(h, ["--learn", "--policy", policy, "--session", "learn-protect"],
                               "echo tampered >> \"\(policy)\"; echo tampered >> \"\(h.db)\"; cat \"\(h.db)\" > /dev/null")
        #expect(result.status != 0)
        #expect(try String(contentsOfFile: policy, encoding: .utf8) == "version: 2\ndefault: allow\nrules: []\n")
        let refusals = h.query("SELECT count(*) FROM events WHERE session_id = 'learn-protect' AND decision = 'deny' AND enforced = 1")
        #expect(Int(refusals.first?.first ?? "0") ?? 0 >= 3, "\(refusals)")
        // Never suggested as allowed: listed as the supervisor's own refusals.
        let diff = h.cli(["policy", "suggest", "learn-protect"])
        #expect(diff.stdout.contains("refused by the supervisor itself"), "\(diff.stdout) \(diff.stderr)")
        #expect(!diff.stdout.contains("target_glob: \(h.db)") && !diff.stdout.contains("audit.db\""), "\(diff.stdout)")
    }
}
