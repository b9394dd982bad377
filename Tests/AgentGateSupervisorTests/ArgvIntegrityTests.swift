import Foundation
import Glibc
import Testing

/// Argv rules decide on what really runs: argv[0] is the caller's choice and proves nothing, and the
/// argv decided must be the argv the new image gets.
@Suite("Argv rules see the program and argv that really run", .serialized) struct ArgvIntegrityTests {
    @Test func argv0DoesNotDisguiseTheProgram() throws {
        let h = try Harness()
        let policy = try h.policy("""
            version: 2
            default: allow
            rules:
              - match: {action: exec, argv: [git, "**"]}
                decision: allow
              - match: {action: exec, argv: [touch, "**"]}
                decision: deny
              - match: {action: exec, command: "echo * | sh*"}
                decision: deny
            """)
        // touch run with argv[0] "git" must still be touch to the rules.
        let disguised = ["python3", "-c", "import os, sys; os.execv('/usr/bin/touch', ['git', sys.argv[1]])"]
        #expect(h.bare(disguised + [h.path("bare")]).status == 0 && h.exists("bare"))
        _ = h.supervised(disguised + [h.path("supervised")], policy: policy)
        #expect(!h.exists("supervised"))
        // A shell run under another name still has its -c string read.
        let shell = ["python3", "-c", "import os; os.execv('/bin/sh', ['x', '-c', \"echo 'echo PWNED' | sh\"])"]
        #expect(h.bare(shell).stdout.contains("PWNED"))
        #expect(!h.supervised(shell, policy: policy).stdout.contains("PWNED"))
    }

    /// The check compares bytes: arguments that aren't UTF-8, or that hold a backslash (which
    /// the audit's text form escapes), run as they do bare, under a policy with argv rules.
    @Test func argumentsOfAnyBytesRunAsTheyDoBare() throws {
        let h = try Harness()
        let policy = try h.policy("""
            version: 2
            default: allow
            rules:
              - match: {action: exec, argv: [touch, "**"]}
                decision: deny
            """)
        let script = """
            import os, subprocess, sys
            for argv in ([b"/bin/echo", b"a\\xffb"], [b"/bin/echo", b"\\\\x41"], [b"printf", b"\\\\x41\\\\n"],
                         [b"/bin/echo", b"tab\\there", b"\\\\", b""]):
                r = subprocess.run(argv, stdout=subprocess.PIPE)
                sys.stdout.write("%d %r\\n" % (r.returncode, r.stdout))
            """
        let bare = h.bare(["python3", "-c", script])
        #expect(bare.status == 0 && bare.stdout.split(separator: "\n").count == 4 && !bare.stdout.contains("-9"), "\(bare)")
        let supervised = h.supervised(["python3", "-c", script], policy: policy)
        #expect(supervised.status == 0, "\(supervised)")
        #expect(supervised.stdout == bare.stdout, "bare:\n\(bare.stdout)\nsupervised:\n\(supervised.stdout)\n\(supervised.stderr)")
    }

    @Test func argvRewrittenDuringExecIsCaught() throws {
        let h = try Harness()
        try h.write("public.txt", "PUBLIC\n")
        try h.write("secret.txt", "SECRET\n")
        // One thread flips an argument between public.txt and secret.txt while another execs
        // cp with it. A rule denies copying the secret by argv; reads are otherwise allowed.
        let race = try h.compile("argv-race", """
            #include <pthread.h>
            #include <stdio.h>
            #include <string.h>
            #include <unistd.h>
            #include <sys/wait.h>
            static char name[256];
            static char *dir;
            static void *flipper(void *unused) {
                char a[256], b[256];
                snprintf(a, sizeof a, "%s/public.txt", dir);
                snprintf(b, sizeof b, "%s/secret.txt", dir);
                for (;;) { memcpy(name, b, strlen(b) + 1); memcpy(name, a, strlen(a) + 1); }
                return NULL;
            }
            int main(int argc, char **argv) {
                dir = argv[1];
                char out[256];
                snprintf(out, sizeof out, "%s/out.txt", dir);
                snprintf(name, sizeof name, "%s/public.txt", dir);
                for (int attempt = 0; attempt < 300; attempt++) {
                    pid_t pid = fork();
                    if (pid == 0) {
                        pthread_t t; pthread_create(&t, NULL, flipper, NULL);
                        char *args[] = {"cp", name, out, NULL};
                        execv("/bin/cp", args);
                        _exit(111);
                    }
                    waitpid(pid, NULL, 0);
                    FILE *f = fopen(out, "r");
                    char line[64] = {0};
                    if (f) { fgets(line, sizeof line, f); fclose(f); }
                    if (strncmp(line, "SECRET", 6) == 0) { printf("copied the secret on attempt %d\\n", attempt); return 0; }
                }
                printf("never copied the secret\\n");
                return 1;
            }
            """, flags: ["-pthread"])
        let policy = try h.policy("""
            version: 2
            default: allow
            rules:
              - match: {action: exec, argv: [cp, "**", "*secret*", "**"]}
                decision: deny
            """)
        let bare = h.bare([race, h.dir])
        #expect(bare.stdout.contains("copied the secret"), "\(bare.stdout)")
        try? FileManager.default.removeItem(atPath: h.path("out.txt"))
        let supervised = h.supervised([race, h.dir], policy: policy, timeout: 120)
        #expect(supervised.stdout.contains("never copied the secret"), "\(supervised.stdout)\(supervised.stderr.suffix(500))")
    }

    /// The kernel takes up to 6 MiB of argv and envp (a quarter of the stack limit): an argv it
    /// runs is inspected, never refused as too long (found by a review on 2026-12-07: 200,000
    /// one-byte arguments got E2BIG), and one it refuses gets its own E2BIG.
    @Test("an argv as long as the kernel takes runs; a longer one gets the kernel's E2BIG")
    func argvAsLongAsTheKernelTakes() throws {
        let h = try Harness()
        let policy = try h.policy("default: allow\nrules: []\n")
        let script = """
            import subprocess, sys
            try:
                print(subprocess.run(['/bin/true'] + ['a'] * int(sys.argv[1])).returncode)
            except OSError as e:
                print('errno', e.errno)
            """
        for (count, expected) in [(200_000, "0\n"), (700_000, "errno 7\n")] {
            let bare = h.bare(["python3", "-c", script, "\(count)"])
            #expect(bare.stdout == expected, "bare \(count): \(bare)")
            let supervised = h.supervised(["python3", "-c", script, "\(count)"], policy: policy, timeout: 120)
            #expect(supervised.stdout == expected, "supervised \(count): \(supervised)")
        }
    }
}
