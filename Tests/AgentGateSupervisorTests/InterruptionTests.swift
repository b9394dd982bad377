import Foundation
import Glibc
import Testing

/// Signals and limits around calls the supervisor answers or performs: a signal for
/// the agent must interrupt, restart or end a call exactly as the kernel does bare, a call that
/// can't fail with EINTR must not, and an open at the fd limit must fail with EMFILE, not hang.
/// Every case runs bare and supervised in the same run and the two are compared; each run has
/// an inner `timeout -s KILL` and a test-side timeout, so a hang fails instead of hanging.
@Suite(.serialized) struct InterruptionTests {
    private static let built: Result<[String: String], HarnessError> = {
        do {
            let h = try Harness("InterruptionBinaries")
            return .success([
                "eintr": try h.compile("eintr", InterruptionSources.eintr),
                "emfile": try h.compile("emfile", InterruptionSources.emfile),
                "interrupt": try h.compile("interrupt", InterruptionSources.interrupt),
                "threads": try h.compile("threads", InterruptionSources.threads),
            ])
        } catch let error as HarnessError {
            return .failure(error)
        } catch {
            return .failure(HarnessError(message: "\(error)"))
        }
    }()

    private static func binary(_ name: String) throws -> String { try built.get()[name]! }

    /// The milliseconds a helper reported as "elapsed N ms" on stderr, or nil.
    private static func elapsed(_ result: Harness.Result) -> Int? {
        guard let range = result.stderr.range(of: "elapsed ") else { return nil }
        return Int(result.stderr[range.upperBound...].prefix { $0.isNumber })
    }

    /// The signals the eintr helper reported as "signals N" on stderr (0 if none).
    private static func signals(_ result: Harness.Result) -> Int {
        guard let range = result.stderr.range(of: "signals ") else { return 0 }
        return Int(result.stderr[range.upperBound...].prefix { $0.isNumber }) ?? 0
    }

    /// kill(getpid(), 0), mkdir + rmdir, open + close of a regular file and stat, 3,000 times
    /// under a 10 kHz SIGALRM. Bare, none of them ever fails with EINTR. Supervised with an
    /// SA_RESTART handler none may either: a signal that comes before the supervisor has
    /// received the call restarts it in the kernel, and after it (WAIT_KILLABLE_RECV) the signal
    /// waits for the answer. Without SA_RESTART the kernel itself fails a call that a signal
    /// interrupts before the supervisor receives it (seccomp_do_user_notification returns
    /// -ERESTARTSYS, which a handler without SA_RESTART turns into EINTR): a floor no supervisor
    /// can remove (a minimal C supervisor that answers CONTINUE at once measured 8-14% of such
    /// calls here, 1.3% with SYNC_WAKE_UP). What must hold there: no call the supervisor
    /// received is answered EINTR, and a call that failed with EINTR left nothing behind.
    @Test func aTimerSignalNeverFailsACallThatCantFailWithEINTR() throws {
        let h = try Harness()
        let helper = try Self.binary("eintr")
        let policy = try h.policy("default: allow\nrules: []\n")
        let clean = "kill=0 mkdir=0 open=0 stat=0 wrong=0\n"
        for mode in ["restart", "norestart"] {
            let bare = h.bare(["timeout", "-s", "KILL", "100", helper, mode, "3000", h.dir], timeout: 120)
            #expect(bare.status == 0 && bare.stdout == clean, "bare \(mode): \(bare)")
            #expect(Self.signals(bare) >= 100, "bare \(mode): too few signals to mean anything: \(bare)")
        }
        for injection in ["atomic", "two-step"] {
            let supervised = h.supervised(["timeout", "-s", "KILL", "100", helper, "restart", "3000", h.dir], policy: policy,
                                          extra: ["--fd-injection", injection], timeout: 120)
            #expect(supervised.status == 0 && supervised.stdout == clean, "SA_RESTART, \(injection): \(supervised)")
            #expect(Self.signals(supervised) >= 100, "SA_RESTART, \(injection): too few signals: \(supervised)")
        }
        let before = h.query("select sum(count) from \(Harness.decisions)").first?.first ?? "0"
        let supervised = h.supervised(["timeout", "-s", "KILL", "100", helper, "norestart", "3000", h.dir], policy: policy, timeout: 120)
        #expect(supervised.status == 0, "\(supervised)")
        #expect(supervised.stdout.hasSuffix(" stat=0 wrong=0\n"), "\(supervised)")
        #expect(Self.signals(supervised) >= 100, "too few signals: \(supervised)")
        #expect(Int(h.query("select sum(count) from \(Harness.decisions)").first?.first ?? "0")! > Int(before)!)
        let answeredEINTR = h.query("select count(*) from \(Harness.decisions) where errno = 4").first?.first
        #expect(answeredEINTR == "0", "calls the supervisor answered with EINTR: \(answeredEINTR ?? "?")")
    }

    /// An open at RLIMIT_NOFILE fails with EMFILE, as bare, with either way of installing the fd
    /// (ADDFD with FLAG_SEND used to leave the agent waiting forever), and creates or truncates
    /// nothing: the kernel fails before it looks the path up.
    @Test(arguments: ["atomic", "two-step"])
    func anOpenAtTheFileLimitFailsWithEMFILE(injection: String) throws {
        let h = try Harness()
        let helper = try Self.binary("emfile")
        let policy = try h.policy("default: allow\nrules: []\n")
        let expected = """
            open: EMFILE after 13
            create: EMFILE, file absent
            truncate: EMFILE, size 5
            socket: EMFILE
            after close: 3

            """
        let bare = h.bare(["timeout", "-s", "KILL", "20", helper, h.dir], timeout: 30)
        #expect(bare.status == 0 && bare.stdout == expected, "\(bare)")
        let supervised = h.supervised(["timeout", "-s", "KILL", "20", helper, h.dir], policy: policy,
                                      extra: ["--fd-injection", injection], timeout: 30)
        #expect(supervised.status == bare.status && supervised.stdout == bare.stdout, "\(supervised)")
    }

    /// A call the supervisor performs on a worker (a FIFO open with no writer, a connect to a
    /// full backlog, a send on a full socket, the same with SO_SNDTIMEO) ends when a signal for
    /// the agent arrives, as bare: restarted under SA_RESTART (and then completing once a child
    /// frees what it waits for, or waiting on until `timeout` ends it), EINTR without SA_RESTART
    /// (and always with a send timeout), ended by the default action of SIGALRM, SIGTERM and
    /// SIGINT; within a second of the signal.
    @Test(arguments: ["fifo", "connect", "send", "sendtimeo"])
    func aBlockingPerformedCallEndsWhenTheAgentIsSignalled(call: String) throws {
        let h = try Harness()
        let helper = try Self.binary("interrupt")
        let policy = try h.policy("default: allow\nrules: []\n")
        let cases: [(mode: String, wrapper: [String])] = [
            ("restart", ["timeout", "-s", "KILL", "10"]),
            ("hold", ["timeout", "-k", "5", "-s", "TERM", "2"]),
            ("norestart", ["timeout", "-s", "KILL", "10"]),
            ("none", ["timeout", "-s", "KILL", "10"]),
            ("wait", ["timeout", "-k", "5", "-s", "TERM", "1"]),
            ("wait", ["timeout", "-k", "5", "-s", "INT", "1"]),
        ]
        for (mode, wrapper) in cases {
            try? FileManager.default.removeItem(atPath: h.path("fifo"))
            let command = wrapper + [helper, call, mode, h.dir]
            let bare = h.bare(command, timeout: 30)
            try? FileManager.default.removeItem(atPath: h.path("fifo"))
            let started = monotonicSeconds()
            let supervised = h.supervised(command, policy: policy, timeout: 30)
            let seconds = monotonicSeconds() - started
            let label = "\(call) \(mode) \(wrapper.dropFirst().joined(separator: " "))"
            #expect(bare.status != 137 && bare.status != -1, "bare \(label): \(bare)")
            #expect(supervised.status == bare.status, "\(label): bare \(bare.status), supervised \(supervised)")
            #expect(supervised.stdout == bare.stdout, "\(label): bare \(bare.stdout), supervised \(supervised)")
            if mode == "norestart" || (call == "sendtimeo" && (mode == "restart" || mode == "hold")) {
                #expect(bare.stdout.hasSuffix("\(call): EINTR\n"), "bare \(label): \(bare)")
                let delay = Self.elapsed(supervised) ?? Int.max
                #expect(delay < 2500, "\(label): the call ended \(delay) ms after it began (the signal came at 1000 ms)")
            }
            if mode == "wait" || mode == "hold" { #expect(seconds < 8, "\(label): the session took \(seconds) s") }
        }
    }

    /// A process-directed signal goes to a thread that doesn't block it; the supervisor must end
    /// a performed call only on the thread the kernel routed the signal to. Main blocks SIGALRM
    /// (the waiting thread takes it, EINTR), main doesn't (main takes it, the open goes on), and
    /// pthread_kill aims it at the waiting thread.
    @Test(arguments: ["blockmain", "free", "direct"])
    func aSignalEndsOnlyTheCallOfTheThreadItIsFor(mode: String) throws {
        let h = try Harness()
        let helper = try Self.binary("threads")
        let policy = try h.policy("default: allow\nrules: []\n")
        let command = ["timeout", "-s", "KILL", "10", helper, mode, h.dir]
        let bare = h.bare(command, timeout: 30)
        #expect(bare.status == 0, "\(bare)")
        try? FileManager.default.removeItem(atPath: h.path("fifo"))
        let supervised = h.supervised(command, policy: policy, timeout: 30)
        #expect(supervised.status == bare.status && supervised.stdout == bare.stdout, "bare \(bare.stdout), supervised \(supervised)")
    }
}

private func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// The C helpers of InterruptionTests.
enum InterruptionSources {
    /// eintr MODE COUNT DIR: COUNT rounds of kill(getpid(), 0), mkdir + rmdir, open + close and
    /// stat under a 100 µs ITIMER_REAL; MODE restart or norestart (SA_RESTART on the handler).
    static let eintr = #"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
// The test runner's blocked and ignored signals would be inherited: start from the defaults.
static void reset_signals(void) {
    for (int signo = 1; signo < 32; signo++) if (signo != SIGKILL && signo != SIGSTOP) signal(signo, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}
static volatile long ticks;
static void on_alarm(int s) { (void)s; ticks++; }
static long eintr[4], wrong;
static const char *names[4] = { "kill", "mkdir", "open", "stat" };
int main(int argc, char **argv) {
    reset_signals();
    int restart = argc > 1 && strcmp(argv[1], "restart") == 0;
    int n = argc > 2 ? atoi(argv[2]) : 3000;
    const char *dir = argc > 3 ? argv[3] : ".";
    char file[4096], sub[4096];
    snprintf(file, sizeof file, "%s/eintr-file", dir);
    snprintf(sub, sizeof sub, "%s/eintr-dir", dir);
    int fd = open(file, O_CREAT | O_WRONLY, 0644); if (fd < 0) { perror("create"); return 2; } close(fd);
    rmdir(sub);
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = on_alarm; sa.sa_flags = restart ? SA_RESTART : 0;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = { { 0, 100 }, { 0, 100 } };
    setitimer(ITIMER_REAL, &it, NULL);
    struct stat st;
    for (int i = 0; i < n; i++) {
        // Each call is retried after EINTR; an EINTR must leave no effect behind (as bare).
        while (kill(getpid(), 0) != 0) { if (errno != EINTR) { wrong++; break; } eintr[0]++; }
        while (mkdir(sub, 0755) != 0) {
            if (errno != EINTR) { wrong++; break; }
            eintr[1]++;
            if (stat(sub, &st) == 0) { wrong++; break; } // EINTR, yet created
        }
        while (rmdir(sub) != 0) {
            if (errno != EINTR) { wrong++; break; }
            eintr[1]++;
            if (stat(sub, &st) != 0 && errno == ENOENT) { wrong++; break; } // EINTR, yet removed
        }
        int f;
        while ((f = open(file, O_RDONLY)) < 0) { if (errno != EINTR) { wrong++; break; } eintr[2]++; }
        if (f >= 0) close(f);
        while (stat(file, &st) != 0) { if (errno != EINTR) { wrong++; break; } eintr[3]++; }
    }
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, NULL);
    for (int i = 0; i < 4; i++) printf("%s=%ld ", names[i], eintr[i]);
    printf("wrong=%ld\n", wrong);
    fprintf(stderr, "signals %ld\n", ticks);
    return 0;
}
"""#

    /// emfile DIR: opens until RLIMIT_NOFILE (16) is reached, then a create, a truncation and a
    /// socket at the limit, and an open after closing one fd.
    static let emfile = #"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {
    const char *dir = argv[1];
    char file[4096], created[4096], fifo[4096];
    snprintf(file, sizeof file, "%s/emfile-existing", dir);
    snprintf(created, sizeof created, "%s/emfile-created", dir);
    snprintf(fifo, sizeof fifo, "%s/emfile-fifo", dir);
    close_range(3, ~0U, 0); // whatever was inherited: count from a known table
    int fd = open(file, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0 || write(fd, "keep\n", 5) != 5) { perror("setup"); return 2; }
    close(fd);
    unlink(created);
    struct rlimit limit = { 16, 16 };
    if (setrlimit(RLIMIT_NOFILE, &limit)) { perror("setrlimit"); return 2; }
    int count = 0;
    for (;;) {
        int f = open(file, O_RDONLY);
        if (f < 0) { printf("open: %s after %d\n", strerrorname_np(errno), count); break; }
        count++;
        if (count > 100) { printf("no limit\n"); return 1; }
    }
    int c = open(created, O_CREAT | O_WRONLY, 0644);
    const char *ce = c < 0 ? strerrorname_np(errno) : "ok";
    printf("create: %s, file %s\n", ce, access(created, F_OK) == 0 ? "exists" : "absent");
    int t = open(file, O_WRONLY | O_TRUNC);
    const char *te = t < 0 ? strerrorname_np(errno) : "ok";
    struct stat st; stat(file, &st);
    printf("truncate: %s, size %ld\n", te, (long)st.st_size);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("socket: %s\n", s < 0 ? strerrorname_np(errno) : "ok");
    close(3);
    int again = open(file, O_RDONLY);
    printf("after close: %d\n", again);
    return 0;
}
"""#

    /// interrupt CALL MODE DIR (see its first lines).
    static let interrupt = #"""
// interrupt CALL MODE DIR: one blocking call (CALL: fifo, connect, send, sendtimeo) and a signal.
// MODE: restart   SIGALRM handler with SA_RESTART at 1 s; a child then frees what the call waits
//                 for, so the restarted call completes
//       hold      the same handler, nothing freed: the restarted call waits until `timeout`
//                 ends the process
//       norestart SIGALRM handler without SA_RESTART at 1 s: the call fails with EINTR
//       none      SIGALRM at 1 s with its default action: the process ends
//       wait      no signal of its own (run under `timeout -s SIG 1`)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

// The test runner's blocked and ignored signals would be inherited: start from the defaults.
static void reset_signals(void) {
    for (int signo = 1; signo < 32; signo++) if (signo != SIGKILL && signo != SIGSTOP) signal(signo, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}
static int release_pipe[2] = { -1, -1 };
static void on_alarm(int signo) {
    (void)signo;
    write(1, "handler ran\n", 12);
    if (release_pipe[1] >= 0) write(release_pipe[1], "r", 1);
}
static long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
    if (argc < 4) return 2;
    const char *call = argv[1], *mode = argv[2], *dir = argv[3];
    reset_signals();
    setvbuf(stdout, NULL, _IONBF, 0);
    char fifo[4096];
    int listener = -1, sock = -1, pair[2] = { -1, -1 };
    struct sockaddr_in address;
    if (!strcmp(call, "fifo")) {
        snprintf(fifo, sizeof fifo, "%s/fifo", dir);
        if (mkfifo(fifo, 0600) != 0 && errno != EEXIST) { perror("mkfifo"); return 2; }
    } else if (!strcmp(call, "connect")) {
        // A loopback listener with backlog 0 whose accept queue holds one connection: full, so
        // the kernel drops the next SYN and a blocking connect waits for a retransmission.
        listener = socket(AF_INET, SOCK_STREAM, 0);
        memset(&address, 0, sizeof address);
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t length = sizeof address;
        if (bind(listener, (struct sockaddr *)&address, sizeof address) || listen(listener, 0)
            || getsockname(listener, (struct sockaddr *)&address, &length)) { perror("listen"); return 2; }
        int filler = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(filler, (struct sockaddr *)&address, sizeof address);
        struct pollfd p = { filler, POLLOUT, 0 };
        if (poll(&p, 1, 2000) != 1) { fprintf(stderr, "filler did not connect\n"); return 2; }
        sock = socket(AF_INET, SOCK_STREAM, 0);
    } else if (!strcmp(call, "send") || !strcmp(call, "sendtimeo")) {
        // A unix stream pair nobody reads, filled up.
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair)) { perror("socketpair"); return 2; }
        int size = 4096;
        setsockopt(pair[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
        fcntl(pair[0], F_SETFL, O_NONBLOCK);
        char chunk[1024] = { 0 };
        while (send(pair[0], chunk, sizeof chunk, 0) > 0) {}
        fcntl(pair[0], F_SETFL, 0);
        if (!strcmp(call, "sendtimeo")) {
            struct timeval timeout = { 8, 0 };
            setsockopt(pair[0], SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
        }
    } else return 2;

    pid_t releaser = -1;
    if (!strcmp(mode, "restart")) {
        pipe(release_pipe);
        releaser = fork();
        if (releaser == 0) {
            char byte;
            if (read(release_pipe[0], &byte, 1) != 1) _exit(3);
            if (!strcmp(call, "fifo")) {
                int fd = open(fifo, O_WRONLY);
                _exit(fd < 0 ? 4 : 0);
            } else if (!strcmp(call, "connect")) {
                close(accept(listener, NULL, NULL)); // frees the queue for a retransmitted SYN
                close(accept(listener, NULL, NULL));
                _exit(0);
            } else {
                close(pair[0]);
                char buffer[65536];
                while (read(pair[1], buffer, sizeof buffer) > 0) {}
                _exit(0);
            }
        }
        close(release_pipe[0]);
        if (pair[1] >= 0) close(pair[1]);
    }
    if (strcmp(mode, "wait")) {
        if (strcmp(mode, "none")) {
            struct sigaction action;
            memset(&action, 0, sizeof action);
            action.sa_handler = on_alarm;
            action.sa_flags = strcmp(mode, "norestart") ? SA_RESTART : 0;
            sigaction(SIGALRM, &action, NULL);
        }
        alarm(1);
    }
    long start = now_ms();
    long rc;
    if (!strcmp(call, "fifo")) {
        rc = open(fifo, O_RDONLY);
    } else if (!strcmp(call, "connect")) {
        rc = connect(sock, (struct sockaddr *)&address, sizeof address);
    } else {
        static char payload[65536];
        struct iovec vector = { payload, sizeof payload };
        struct msghdr message;
        memset(&message, 0, sizeof message);
        message.msg_iov = &vector;
        message.msg_iovlen = 1;
        rc = sendmsg(pair[0], &message, 0); // sendmsg: trapped and performed by the supervisor
    }
    int error = errno;
    long elapsed = now_ms() - start;
    if (rc < 0) printf("%s: %s\n", call, strerrorname_np(error));
    else if (!strcmp(call, "fifo") || !strcmp(call, "connect")) printf("%s: ok\n", call);
    else printf("%s: sent %s\n", call, rc == 65536 ? "all" : rc > 0 ? "part" : "none");
    fprintf(stderr, "elapsed %ld ms\n", elapsed);
    if (releaser > 0) {
        if (pair[0] >= 0) close(pair[0]);
        int status;
        waitpid(releaser, &status, 0);
    }
    return 0;
}
"""#

    /// threads MODE DIR: a second thread waits in a FIFO open; SIGALRM is sent to the process
    /// (main blocking it or not) or to that thread.
    static let threads = #"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
// The test runner's blocked and ignored signals would be inherited: start from the defaults.
static void reset_signals(void) {
    for (int signo = 1; signo < 32; signo++) if (signo != SIGKILL && signo != SIGSTOP) signal(signo, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}
static char fifo[4096];
static void on_alarm(int s) { (void)s; char b[64]; int n = snprintf(b, sizeof b, "handler in %s\n", gettid() == getpid() ? "main" : "thread"); write(1, b, n); }
static void *opener(void *arg) {
    (void)arg;
    int fd = open(fifo, O_RDONLY);
    printf("thread open: %s\n", fd < 0 ? strerrorname_np(errno) : "ok");
    return NULL;
}
int main(int argc, char **argv) {
    // argv[1]: blockmain (main blocks SIGALRM), free (main doesn't), direct (pthread_kill the thread)
    reset_signals();
    setvbuf(stdout, NULL, _IONBF, 0);
    snprintf(fifo, sizeof fifo, "%s/fifo", argv[2]);
    mkfifo(fifo, 0600);
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = on_alarm; sigaction(SIGALRM, &sa, NULL);
    pthread_t t; pthread_create(&t, NULL, opener, NULL);
    // A fixed wait, on purpose: this case is about a call the supervisor is already performing,
    // and from inside the agent a pending notification and a performed open look the same
    // (both read as openat in /proc/TID/syscall). A second is long enough for either.
    sleep(1); // the thread is waiting in its open by now
    sigset_t set; sigemptyset(&set); sigaddset(&set, SIGALRM);
    if (!strcmp(argv[1], "blockmain")) pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (!strcmp(argv[1], "direct")) pthread_kill(t, SIGALRM); else kill(getpid(), SIGALRM);
    // In "free" the handler runs here in main and the thread's open goes on: free it after a while.
    // The wait is the behaviour under test: the open must still be pending a second later.
    sleep(1);
    int w = open(fifo, O_WRONLY | O_NONBLOCK);
    const char *writer = w < 0 ? strerrorname_np(errno) : "ok";
    pthread_join(t, NULL); // printed after the thread's line, which may race with it
    printf("writer: %s\n", writer);
    return 0;
}
"""#
}
