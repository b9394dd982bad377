import Foundation
import Glibc
import Testing

/// Agents that sandbox their own commands (Codex's Linux sandbox, bubblewrap's --seccomp)
/// stack a seccomp filter of their own. The built-in policy lets them (`allow_unsupervised:
/// [seccomp]`), because a stacked filter can only refuse more: the kernel refuses a second
/// listener (EBUSY), and the supervisor's notification takes precedence over a stacked
/// filter's allow, log or trace.
@Suite("Stacked seccomp filters under the built-in policy")
struct StackedFilterTests {
    static let program = """
        #define _GNU_SOURCE
        #include <errno.h>
        #include <fcntl.h>
        #include <stddef.h>
        #include <stdio.h>
        #include <string.h>
        #include <unistd.h>
        #include <sys/prctl.h>
        #include <sys/socket.h>
        #include <sys/syscall.h>
        #include <linux/filter.h>
        #include <linux/seccomp.h>

        // One syscall gets `action`, every other one is allowed.
        static long stack(int nr, unsigned action, unsigned flags) {
            struct sock_filter code[] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
                BPF_STMT(BPF_RET | BPF_K, action),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
            };
            struct sock_fprog prog = { 4, code };
            return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
        }

        static const char *opened(const char *path) {
            int fd = open(path, O_RDONLY);
            if (fd < 0) return strerror(errno);
            close(fd);
            return "opened";
        }

        int main(int argc, char **argv) {
            const char *key = argv[1], *source = argv[2];
            if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 3;
            // A sandbox's network filter, as Codex's: socket() refused with EACCES.
            long rc = stack(__NR_socket, SECCOMP_RET_ERRNO | EACCES, 0);
            printf("network filter: %s\\n", rc == 0 ? "installed" : strerror(errno));
            int s = socket(AF_INET, SOCK_STREAM, 0);
            printf("socket: %s\\n", s >= 0 ? "made" : strerror(errno));
            printf("source: %s\\n", opened(source));
            // A filter that allows every openat outright.
            rc = stack(__NR_openat, SECCOMP_RET_ALLOW, SECCOMP_FILTER_FLAG_TSYNC);
            printf("allow filter: %s\\n", rc == 0 ? "installed" : strerror(errno));
            printf("key: %s\\n", opened(key));
            // A listener of its own, to answer its openat itself.
            rc = stack(__NR_openat, SECCOMP_RET_USER_NOTIF, SECCOMP_FILTER_FLAG_NEW_LISTENER);
            printf("listener: %s\\n", rc >= 0 ? "made" : strerror(errno));
            return 0;
        }
        """

    @Test("a sandbox's own filter installs and refuses what it refuses; the policy's refusals still hold under it")
    func stackedFilters() throws {
        let h = try Harness()
        let binary = try h.compile("stack", Self.program)
        try h.mkdir("home/project")
        try h.mkdir("home/.ssh")
        try h.write("home/.ssh/id_rsa", "SECRET\n", mode: 0o600)
        try h.write("home/project/main.c", "int main(void) { return 0; }\n")
        let environment = ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": h.path("home"), "LANG": "C.UTF-8"]
        let argv = [binary, h.path("home/.ssh/id_rsa"), h.path("home/project/main.c")]
        let bare = try RunningProcess(argv, directory: h.path("home/project"), environment: environment).wait()
        let supervised = try RunningProcess([Harness.supervisor, "-q", "--db", h.db, "--"] + argv,
                                            directory: h.path("home/project"), environment: environment).wait()
        let start = "network filter: installed\nsocket: Permission denied\nsource: opened\nallow filter: installed\n"
        // Bare, the key opens and the agent gets a listener of its own (the attack works there).
        #expect(bare.status == 0 && bare.stdout == start + "key: opened\nlistener: made\n", "\(bare)")
        // Supervised, the policy still refuses the key, and the kernel refuses the listener.
        #expect(supervised.status == 0 && supervised.stdout == start + "key: Permission denied\nlistener: Device or resource busy\n",
                "\(supervised)")
        let session = h.query("select policy_path from sessions").first?.first ?? ""
        #expect(session.contains("builtin"), "\(session)")
        let refused = h.query("select action, target, rule_id from events where decision != 'allow'")
        #expect(refused == [["fs_read", h.path("home/.ssh/id_rsa"), "ssh-keys"]], "\(refused)")
    }
}
