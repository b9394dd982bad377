import Foundation
import Glibc
import Testing

/// A program naming a thread other than the calling one (glibc's pthread_setname_np writes
/// /proc/self/task/TID/comm, as .NET's and many C++ runtimes' thread pools do) runs under the
/// built-in policy as it does bare; another process's name stays the kernel's to refuse. So do
/// the JVM's write of its core dump filter and a browser's of its OOM score.
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
            // A child's name: the file opens, and the kernel refuses the write (EINVAL). Its
            // OOM score and core dump filter are written as the kernel lets (raising needs no
            // privilege).
            pid_t child = fork();
            if (child == 0) { pause(); _exit(0); }
            char path[64];
            snprintf(path, sizeof path, "/proc/%d/comm", (int)child);
            int fd = open(path, O_WRONLY);
            int openErrno = fd < 0 ? errno : 0;
            ssize_t written = fd < 0 ? -1 : write(fd, "renamed", 7);
            printf("child: open %s, write %s\\n", strerror(openErrno), fd < 0 ? "-" : written < 0 ? strerror(errno) : "done");
            const char *files[] = { "oom_score_adj", "coredump_filter" };
            const char *values[] = { "500", "0x33" };
            for (int i = 0; i < 2; i++) {
                snprintf(path, sizeof path, "/proc/self/%s", files[i]);
                fd = open(path, O_WRONLY);
                written = fd < 0 ? -1 : write(fd, values[i], strlen(values[i]));
                printf("%s: %s\\n", files[i], fd < 0 || written < 0 ? strerror(errno) : "done");
                if (fd >= 0) close(fd);
            }
            kill(child, SIGKILL);
            return 0;
        }
        """

    @Test("pthread_setname_np for another thread, the OOM score and the core dump filter work as bare; another process's name is the kernel's to refuse")
    func namingAnotherThread() throws {
        let h = try Harness()
        let binary = try h.compile("setname", Self.program)
        try h.mkdir("home/project")
        let environment = ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": h.path("home"), "LANG": "C.UTF-8"]
        let bare = try RunningProcess([binary], directory: h.path("home/project"), environment: environment).wait()
        let supervised = try RunningProcess([Harness.supervisor, "-q", "--db", h.db, "--", binary],
                                            directory: h.path("home/project"), environment: environment).wait()
        let expected = "set Success, got Success: named-worker\nchild: open Success, write Invalid argument\noom_score_adj: done\ncoredump_filter: done\n"
        #expect(bare.status == 0 && bare.stdout == expected, "\(bare)")
        #expect(supervised.status == 0 && supervised.stdout == expected, "\(supervised)")
        let session = h.query("select policy_path from sessions").first?.first ?? ""
        #expect(session.contains("builtin"), "\(session)")
        let refused = h.query("select action, target from events where decision != 'allow'")
        #expect(refused.isEmpty, "\(refused)")
    }
}
