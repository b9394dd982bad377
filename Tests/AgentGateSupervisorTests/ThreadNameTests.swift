import Foundation
import Glibc
import Testing

/// A program naming a thread other than the calling one (glibc's pthread_setname_np writes
/// /proc/self/task/TID/comm, as .NET's and many C++ runtimes' thread pools do) runs under the
/// built-in policy as it does bare; another process's name stays the kernel's to refuse. So do
/// the JVM's write of its core dump filter. Lowering the OOM score stays refused: the
/// supervisor raises the agent's to 500 so that it goes first when memory runs out.
@Suite("Thread names under the built-in policy")
struct ThreadNameTests {
    static let program = """
        #define _GNU_SOURCE
        #include <errno.h>
        #include <fcntl.h>
        #include <pthread.h>
        #include <signal.h>
        #include <stdio.h>
        #include <string.h>
        #include <unistd.h>

        static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
        static void *idle(void *unused) { (void)unused; pthread_mutex_lock(&lock); pthread_mutex_unlock(&lock); return NULL; }

        int main(void) {
            pthread_t thread;
            pthread_mutex_lock(&lock);
            if (pthread_create(&thread, NULL, idle, NULL) != 0) return 3;
            int set = pthread_setname_np(thread, "named-worker");
            char name[32] = "";
            int got = pthread_getname_np(thread, name, sizeof name);
            printf("set %s, got %s: %s\\n", strerror(set), strerror(got), name);
            pthread_mutex_unlock(&lock);
            pthread_join(thread, NULL);
            // A child's name: the file opens, and the kernel refuses the write (EINVAL).
            pid_t child = fork();
            if (child == 0) { pause(); _exit(0); }
            char path[64];
            snprintf(path, sizeof path, "/proc/%d/comm", (int)child);
            int fd = open(path, O_WRONLY);
            int openErrno = fd < 0 ? errno : 0;
            ssize_t written = fd < 0 ? -1 : write(fd, "renamed", 7);
            printf("child: open %s, write %s\\n", strerror(openErrno), fd < 0 ? "-" : written < 0 ? strerror(errno) : "done");
            if (fd >= 0) close(fd);
            // The core dump filter, as the JVM sets it at start.
            fd = open("/proc/self/coredump_filter", O_WRONLY);
            written = fd < 0 ? -1 : write(fd, "0x33", 4);
            printf("coredump_filter: %s\\n", fd < 0 || written < 0 ? strerror(errno) : "done");
            if (fd >= 0) close(fd);
            // The OOM score: raised to 500 (as the supervisor does), then lowered again, which
            // needs no privilege when it started at 0. Supervised, both are refused.
            fd = open("/proc/self/oom_score_adj", O_WRONLY);
            if (fd >= 0) { (void)!write(fd, "500", 3); close(fd); }
            fd = open("/proc/self/oom_score_adj", O_WRONLY);
            written = fd < 0 ? -1 : write(fd, "0", 1);
            printf("oom_score_adj lowered: %s\\n", fd < 0 || written < 0 ? strerror(errno) : "done");
            if (fd >= 0) close(fd);
            // A process that doesn't exist: ENOENT, as bare, and recorded as refused (it isn't
            // the session's), though a rule allows the name.
            fd = open("/proc/999999999/comm", O_WRONLY);
            printf("gone: %s\\n", fd < 0 ? strerror(errno) : "opened");
            kill(child, SIGKILL);
            return 0;
        }
        """

    @Test("pthread_setname_np for another thread and the core dump filter work as bare; the OOM score floor holds; another process's name is the kernel's to refuse")
    func namingAnotherThread() throws {
        let h = try Harness()
        let binary = try h.compile("setname", Self.program)
        try h.mkdir("home/project")
        let environment = ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": h.path("home"), "LANG": "C.UTF-8"]
        let bare = try RunningProcess([binary], directory: h.path("home/project"), environment: environment).wait()
        let supervised = try RunningProcess([Harness.supervisor, "-q", "--db", h.db, "--", binary],
                                            directory: h.path("home/project"), environment: environment).wait()
        let common = "set Success, got Success: named-worker\nchild: open Success, write Invalid argument\ncoredump_filter: done\n"
        let gone = "gone: No such file or directory\n"
        #expect(bare.status == 0 && bare.stdout == common + "oom_score_adj lowered: done\n" + gone, "\(bare)")
        #expect(supervised.status == 0 && supervised.stdout == common + "oom_score_adj lowered: Permission denied\n" + gone, "\(supervised)")
        let session = h.query("select policy_path from sessions").first?.first ?? ""
        #expect(session.contains("builtin"), "\(session)")
        let refused = h.query("select action, target, rule_id from events where decision != 'allow'")
        let oom = refused.filter { $0[1].hasSuffix("/oom_score_adj") }
        #expect(oom.count == 2 && oom.allSatisfy { $0.first == "fs_write" && $0.last == "other-writes" }, "\(refused)")
        let missing = h.query("select decision, reason from events where target = '/proc/999999999/comm'")
        #expect(missing.count == 1 && missing.first?.first == "deny" && (missing.first?.last ?? "").contains("outside the session")
                && (missing.first?.last ?? "").contains("ENOENT as bare"), "\(missing)")
        #expect(refused.count == 3, "\(refused)")
    }
}
