// The C sources of the adversarial suite's programs, compiled at test time with Harness.compile.
// (Kept as string literals so the test target has no unhandled files.)

enum AdversarialSources {
    /// A forbidden program: whatever runs it, it leaves a marker file and says so.
    static let forbidden = #"""
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
int main(void) {
    const char *m = getenv("ADV_MARKER");
    int fd = open(m && *m ? m : "forbid-ran", O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) write(fd, "FORBIDDEN-PROGRAM-RAN\n", 22);
    write(1, "FORBIDDEN-PROGRAM-RAN\n", 22);
    return 0;
}
"""#

    /// A forbidden program that acts before making any trapped syscall: static, no libc, no
    /// open; it writes to an inherited fd 3. Built with -static -nostdlib.
    static let forbiddenStatic = #"""
// A forbidden program that acts without a single trapped syscall: no libc, no loader, no
// open. It writes to fd 3, which the process that exec'd it left open, and exits.
static long sys3(long n, long a, long b, long c) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}
void _start(void) {
    static const char msg[] = "STATIC-FORBIDDEN-RAN\n";
    sys3(1, 3, (long)msg, sizeof msg - 1);
    sys3(231, 0, 0, 0);
    for (;;) {}
}
"""#

    /// A harmless program.
    static let allowed = #"""
#include <unistd.h>
int main(void) { write(1, "ALLOWED-PROGRAM-RAN\n", 20); return 0; }
"""#

    /// The attack helper: `adv MODE ARGS...`, one attack per mode.
    static let helper = helperSetup + "\n" + helperAttacks

    /// The first half of the helper's source: includes, shared routines, the reports.
    static let helperSetup = #"""
// AgentGate adversarial helper: one binary, one attack per argv[1]. Every mode prints what it
// obtained (file contents, "ATTACK-SUCCEEDED ...") so the test can tell whether the forbidden
// effect happened; it never prints its own arguments.
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <ftw.h>

#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452
#endif
#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    char line[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(1, line, (size_t)n);
    (void)w;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

// Reads fd to the end and prints the bytes as "GOT:<content>"; returns the byte count.
static ssize_t dump(int fd, const char *label) {
    char buf[4096];
    ssize_t total = 0, n;
    char all[8192];
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        if (total + n < (ssize_t)sizeof all - 1) memcpy(all + total, buf, (size_t)n);
        total += n;
    }
    if (total > (ssize_t)sizeof all - 1) total = sizeof all - 1;
    all[total] = 0;
    for (ssize_t i = 0; i < total; i++) if (all[i] == '\n' || all[i] == 0) all[i] = ' ';
    if (n < 0) say("%s: read errno=%d", label, errno);
    say("GOT[%s]:%s", label, all);
    return total;
}


// An fd for a directory (or object) to resolve relative to: O_PATH, or, when the supervisor
// can't hand out O_PATH fds, O_RDONLY, so the attack is still tried.
static int open_base(const char *path, int extra) {
    int fd = open(path, O_PATH | extra);
    if (fd >= 0) return fd;
    say("O_PATH open of the base failed: errno=%d; retrying O_RDONLY", errno);
    return open(path, O_RDONLY | extra);
}

static int read_path(const char *label, int dirfd, const char *path) {
    int fd = openat(dirfd, path, O_RDONLY);
    if (fd < 0) { say("%s: open errno=%d", label, errno); return -1; }
    dump(fd, label);
    close(fd);
    return 0;
}

static void result(const char *op, long rc) {
    say("op=%s rc=%ld errno=%d", op, rc, rc < 0 ? errno : 0);
}

// ---------------------------------------------------------------------------------------------
// io_uring, raw (no liburing): submits one SQE and returns the CQE's result.
static int uring_one(const struct io_uring_sqe *proto, int *res) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    int fd = (int)syscall(__NR_io_uring_setup, 4, &p);
    if (fd < 0) return -errno;
    size_t sqsz = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cqsz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    if (p.features & IORING_FEAT_SINGLE_MMAP) { if (cqsz > sqsz) sqsz = cqsz; cqsz = sqsz; }
    char *sq = mmap(NULL, sqsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
    if (sq == MAP_FAILED) return -errno;
    char *cq = sq;
    if (!(p.features & IORING_FEAT_SINGLE_MMAP)) {
        cq = mmap(NULL, cqsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
        if (cq == MAP_FAILED) return -errno;
    }
    struct io_uring_sqe *sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                                     MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
    if (sqes == MAP_FAILED) return -errno;
    unsigned *tail = (unsigned *)(sq + p.sq_off.tail);
    unsigned mask = *(unsigned *)(sq + p.sq_off.ring_mask);
    unsigned *array = (unsigned *)(sq + p.sq_off.array);
    unsigned t = *tail, idx = t & mask;
    sqes[idx] = *proto;
    array[idx] = idx;
    __atomic_store_n(tail, t + 1, __ATOMIC_RELEASE);
    int r = (int)syscall(__NR_io_uring_enter, fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0);
    if (r < 0) return -errno;
    unsigned *chead = (unsigned *)(cq + p.cq_off.head);
    unsigned *ctail = (unsigned *)(cq + p.cq_off.tail);
    unsigned cmask = *(unsigned *)(cq + p.cq_off.ring_mask);
    struct io_uring_cqe *cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    unsigned h = __atomic_load_n(chead, __ATOMIC_ACQUIRE);
    if (h == __atomic_load_n(ctail, __ATOMIC_ACQUIRE)) return -EAGAIN;
    *res = cqes[h & cmask].res;
    __atomic_store_n(chead, h + 1, __ATOMIC_RELEASE);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Network helpers.
static int inet_address(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len) {
    memset(ss, 0, sizeof *ss);
    if (strchr(host, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) return -1;
        *len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &a->sin_addr) != 1) return -1;
        *len = sizeof *a;
    }
    return 0;
}

static void after_connect(int s, const char *payload) {
    ssize_t w = write(s, payload, strlen(payload));
    char buf[64] = {0};
    ssize_t n = read(s, buf, sizeof buf - 1);
    say("connected: wrote=%zd reply=%s", w, n > 0 ? buf : "");
}

// ---------------------------------------------------------------------------------------------
// Races. Each runs for at most `seconds` and stops at the first forbidden success.
static volatile int race_stop;
// Keeps the compiler from merging or dropping the flipping stores.
#define BARRIER() __asm__ volatile("" ::: "memory")
static char race_buf[4096];
static const char *race_a, *race_b;
static char allowed_content[4096];
static long race_ok, race_fail;

static void *flip_path(void *arg) {
    (void)arg;
    size_t la = strlen(race_a) + 1, lb = strlen(race_b) + 1;
    while (!race_stop) {
        memcpy(race_buf, race_a, la);
        BARRIER();
        for (volatile int i = 0; i < 50; i++) {}
        memcpy(race_buf, race_b, lb);
        BARRIER();
        for (volatile int i = 0; i < 50; i++) {}
    }
    return NULL;
}

static void *open_loop(void *arg) {
    const char *path = arg ? (const char *)arg : race_buf;
    char buf[4096];
    while (!race_stop) {
        int fd = open(path, O_RDONLY);
        if (fd < 0) { __atomic_add_fetch(&race_fail, 1, __ATOMIC_RELAXED); continue; }
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0) continue;
        buf[n] = 0;
        if (strcmp(buf, allowed_content) != 0) {
            race_stop = 1;
            for (ssize_t i = 0; i < n; i++) if (buf[i] == '\n') buf[i] = ' ';
            say("LEAKED:%s", buf);
            return NULL;
        }
        __atomic_add_fetch(&race_ok, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static int load_allowed(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) { say("cannot read the allowed file: errno=%d", errno); return -1; }
    ssize_t n = read(fd, allowed_content, sizeof allowed_content - 1);
    close(fd);
    allowed_content[n > 0 ? n : 0] = 0;
    return 0;
}

static int race_open(const char *allowed, const char *secret, double seconds) {
    if (load_allowed(allowed)) return 1;
    race_a = allowed; race_b = secret;
    strcpy(race_buf, allowed);
    pthread_t f, o1, o2;
    pthread_create(&f, NULL, flip_path, NULL);
    pthread_create(&o1, NULL, open_loop, NULL);
    pthread_create(&o2, NULL, open_loop, NULL);
    double end = now() + seconds;
    while (!race_stop && now() < end) usleep(10000);
    race_stop = 1;
    pthread_join(f, NULL); pthread_join(o1, NULL); pthread_join(o2, NULL);
    say("race: allowed-reads=%ld failed-opens=%ld", race_ok, race_fail);
    return 0;
}

static const char *link_path, *link_tmp;
static void *flip_symlink(void *arg) {
    (void)arg;
    while (!race_stop) {
        unlink(link_tmp);
        if (symlink(race_a, link_tmp) == 0) rename(link_tmp, link_path);
        unlink(link_tmp);
        if (symlink(race_b, link_tmp) == 0) rename(link_tmp, link_path);
    }
    return NULL;
}

static int race_symlink(const char *link, const char *allowed, const char *secret, double seconds) {
    if (load_allowed(allowed)) return 1;
    static char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", link);
    link_path = link; link_tmp = tmp; race_a = allowed; race_b = secret;
    unlink(link);
    if (symlink(allowed, link) != 0) say("symlink: errno=%d", errno);
    pthread_t f, o1, o2;
    pthread_create(&f, NULL, flip_symlink, NULL);
    pthread_create(&o1, NULL, open_loop, (void *)link);
    pthread_create(&o2, NULL, open_loop, (void *)link);
    double end = now() + seconds;
    while (!race_stop && now() < end) usleep(10000);
    race_stop = 1;
    pthread_join(f, NULL); pthread_join(o1, NULL); pthread_join(o2, NULL);
    say("race: allowed-reads=%ld failed-opens=%ld", race_ok, race_fail);
    return 0;
}

static struct sockaddr_in race_addr __attribute__((aligned(64)));
static int race_port_a, race_port_b;
static void *flip_port(void *arg) {
    (void)arg;
    while (!race_stop) {
        race_addr.sin_port = htons((uint16_t)race_port_a);
        BARRIER();
        for (volatile int i = 0; i < 50; i++) {}
        race_addr.sin_port = htons((uint16_t)race_port_b);
        BARRIER();
        for (volatile int i = 0; i < 50; i++) {}
    }
    return NULL;
}

static void *connect_loop(void *arg) {
    (void)arg;
    while (!race_stop) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0) { usleep(1000); continue; }
        if (connect(s, (struct sockaddr *)&race_addr, sizeof race_addr) == 0) {
            struct sockaddr_in peer;
            socklen_t len = sizeof peer;
            getpeername(s, (struct sockaddr *)&peer, &len);
            if (ntohs(peer.sin_port) == race_port_b) {
                ssize_t w = write(s, "RACED-IN\n", 9);
                (void)w;
                say("LEAKED-CONNECT to the denied port");
                race_stop = 1;
            } else {
                __atomic_add_fetch(&race_ok, 1, __ATOMIC_RELAXED);
            }
        } else {
            __atomic_add_fetch(&race_fail, 1, __ATOMIC_RELAXED);
        }
        close(s);
    }
    return NULL;
}

static int race_connect(int allowed, int denied, double seconds) {
    race_addr.sin_family = AF_INET;
    race_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    race_addr.sin_port = htons((uint16_t)allowed);
    race_port_a = allowed; race_port_b = denied;
    pthread_t f, c1, c2;
    pthread_create(&f, NULL, flip_port, NULL);
    pthread_create(&c1, NULL, connect_loop, NULL);
    pthread_create(&c2, NULL, connect_loop, NULL);
    double end = now() + seconds;
    while (!race_stop && now() < end) usleep(10000);
    race_stop = 1;
    pthread_join(f, NULL); pthread_join(c1, NULL); pthread_join(c2, NULL);
    say("race: allowed-connects=%ld failed-connects=%ld", race_ok, race_fail);
    return 0;
}

// The exec races. Each round forks a child that execs an allowed program while something flips
// it to the forbidden one; stops when `marker` exists (the forbidden program ran).
//   buffer         a thread flips the path buffer; the main thread calls execve on it
//   buffer-thread  the same, but execve is called from a second (non-leader) thread
//   symlink        a thread of the driver renames a symlink between the two programs
//   shebang        a thread of the driver renames a script between "#!allowed" and "#!forbidden"
//   dirfd          a thread dup2()s fd 100 between good/ and bad/; execveat(100, "prog")
//   argv           `allowed` is a shell, `forbidden` a command line: argv[1] flips between
//                  NULL and "-c" (what is decided must be what runs, argument for argument)
static const char *exec_mode;
static void *exec_thread(void *arg) {
    (void)arg;
    char *argv[] = { race_buf, NULL };
    for (int i = 0; i < 200; i++) execv(race_buf, argv);
    _exit(126);
}

static void *flip_script(void *arg) {
    (void)arg;
    while (!race_stop) {
        // (rename of a second link to the same inode is a no-op that leaves s_tmp: unlink it)
        unlink("s_tmp"); link("s_ok", "s_tmp"); rename("s_tmp", "script");
        unlink("s_tmp"); link("s_bad", "s_tmp"); rename("s_tmp", "script");
    }
    return NULL;
}

// argv[1] of an execve flipping between NULL and "-c" (the argv race).
static char *volatile race_argv[4];
static void *flip_argv(void *arg) {
    (void)arg;
    for (;;) {
        race_argv[1] = (char *)"-c";
        BARRIER();
        for (volatile int i = 0; i < 20; i++) {}
        race_argv[1] = NULL;
        BARRIER();
        for (volatile int i = 0; i < 20; i++) {}
    }
    return NULL;
}

static int dirfd_a, dirfd_b;
static void *flip_dirfd(void *arg) {
    (void)arg;
    while (!race_stop) { dup2(dirfd_a, 100); BARRIER(); dup2(dirfd_b, 100); BARRIER(); }
    return NULL;
}

static void write_file(const char *path, const char *text, mode_t mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd >= 0) { ssize_t w = write(fd, text, strlen(text)); (void)w; close(fd); }
    chmod(path, mode);
}

static int race_exec(const char *mode, const char *allowed, const char *forbidden, const char *marker, double seconds) {
    exec_mode = mode;
    race_a = allowed; race_b = forbidden;
    pthread_t driver_flipper;
    int driver_flips = 0;
    if (!strcmp(mode, "symlink")) {
        static char tmp[64] = "tool.lnk.tmp";
        link_path = "tool.lnk"; link_tmp = tmp;
        unlink("tool.lnk");
        symlink(allowed, "tool.lnk");
        pthread_create(&driver_flipper, NULL, flip_symlink, NULL);
        driver_flips = 1;
    } else if (!strcmp(mode, "shebang")) {
        char text[4200];
        snprintf(text, sizeof text, "#!%s\n", allowed); write_file("s_ok", text, 0755);
        snprintf(text, sizeof text, "#!%s\n", forbidden); write_file("s_bad", text, 0755);
        link("s_ok", "script");
        pthread_create(&driver_flipper, NULL, flip_script, NULL);
        driver_flips = 1;
    }
    double end = now() + seconds;
    long rounds = 0, ran_allowed = 0;
    while (now() < end) {
        rounds++;
        pid_t pid = fork();
        if (pid == 0) {
            race_stop = 0;
            close(1);
            if (!strcmp(mode, "symlink") || !strcmp(mode, "shebang")) {
                const char *path = !strcmp(mode, "symlink") ? "./tool.lnk" : "./script";
                char *argv[] = { (char *)path, NULL };
                for (int i = 0; i < 200; i++) execv(path, argv);
                _exit(126);
            }
            if (!strcmp(mode, "dirfd")) {
                dirfd_a = open("good", O_RDONLY | O_DIRECTORY);
                dirfd_b = open("bad", O_RDONLY | O_DIRECTORY);
                dup2(dirfd_a, 100);
                pthread_t f;
                pthread_create(&f, NULL, flip_dirfd, NULL);
                usleep(200);
                char *argv[] = { (char *)"prog", NULL };
                for (int i = 0; i < 200; i++) syscall(SYS_execveat, 100, "prog", argv, environ, 0);
                _exit(126);
            }
            if (!strcmp(mode, "argv")) {
                // `allowed` is a shell: argv[1] flips between NULL (`sh` alone, which reads the
                // empty stdin and exits 0) and "-c", which makes argv[2] (`forbidden`, a command
                // line a rule denies) the command.
                int null = open("/dev/null", O_RDONLY);
                if (null >= 0 && null != 0) { dup2(null, 0); close(null); }
                race_argv[0] = (char *)allowed; race_argv[1] = NULL; race_argv[2] = (char *)forbidden; race_argv[3] = NULL;
                pthread_t f;
                pthread_create(&f, NULL, flip_argv, NULL);
                usleep(200);
                for (int i = 0; i < 200; i++) execve(allowed, (char *const *)race_argv, environ);
                _exit(126);
            }
            if (!strcmp(mode, "static")) {
                // The forbidden program needs no trapped syscall: it writes to this fd 3.
                int fd = open(marker, O_WRONLY | O_CREAT | O_APPEND, 0644);
                if (fd >= 0 && fd != 3) { dup2(fd, 3); close(fd); }
            }
            strcpy(race_buf, allowed);
            pthread_t f;
            pthread_create(&f, NULL, flip_path, NULL);
            usleep(200);
            if (!strcmp(mode, "buffer-thread")) {
                pthread_t e;
                pthread_create(&e, NULL, exec_thread, NULL);
                for (;;) pause();
            }
            exec_thread(NULL);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) ran_allowed++;
        struct stat st;
        if (stat(marker, &st) == 0 && st.st_size > 0) { say("LEAKED-EXEC: the forbidden program ran"); break; }
    }
    if (driver_flips) { race_stop = 1; pthread_join(driver_flipper, NULL); }
    say("race: rounds=%ld allowed-runs=%ld", rounds, ran_allowed);
    return 0;
}

// Mutation races on the protected prot/file (mode 0644): chmod it to 0700 through
//   symlink  "pub/d" flipping between "real" (pub/real) and "../prot"; chmod("pub/d/file")
//   buffer   a path buffer flipping between "pub/real/file" and "prot/file"; chmod(buffer)
//   dirfd    fd 100 flipping between pub/real and prot; fchmodat(100, "file")
static volatile long mutate_ok;
static void *mutate_loop(void *arg) {
    const char *mode = arg;
    struct stat st;
    while (!race_stop) {
        long rc;
        if (!strcmp(mode, "symlink")) rc = chmod("pub/d/file", 0700);
        else if (!strcmp(mode, "buffer")) rc = chmod(race_buf, 0700);
        else rc = fchmodat(100, "file", 0700, 0);
        if (rc == 0) __atomic_add_fetch(&mutate_ok, 1, __ATOMIC_RELAXED);
        if (stat("prot/file", &st) == 0 && (st.st_mode & 0777) == 0700) {
            race_stop = 1;
            say("LEAKED-MUTATION: prot/file is now mode 0700");
        }
    }
    return NULL;
}

static int race_mutate(const char *mode, double seconds) {
    pthread_t f, m1, m2;
    if (!strcmp(mode, "symlink")) {
        static char tmp[64] = "pub/d.tmp";
        link_path = "pub/d"; link_tmp = tmp; race_a = "real"; race_b = "../prot";
        unlink("pub/d");
        symlink("real", "pub/d");
        pthread_create(&f, NULL, flip_symlink, NULL);
    } else if (!strcmp(mode, "buffer")) {
        race_a = "pub/real/file"; race_b = "prot/file";
        strcpy(race_buf, race_a);
        pthread_create(&f, NULL, flip_path, NULL);
    } else {
        dirfd_a = open("pub/real", O_RDONLY | O_DIRECTORY);
        dirfd_b = open("prot", O_RDONLY | O_DIRECTORY);
        say("dirfds %d %d", dirfd_a, dirfd_b);
        dup2(dirfd_a, 100);
        pthread_create(&f, NULL, flip_dirfd, NULL);
    }
    pthread_create(&m1, NULL, mutate_loop, (void *)mode);
    pthread_create(&m2, NULL, mutate_loop, (void *)mode);
    double end = now() + seconds;
    while (!race_stop && now() < end) usleep(10000);
    race_stop = 1;
    pthread_join(f, NULL); pthread_join(m1, NULL); pthread_join(m2, NULL);
    say("race: allowed-mutations=%ld", mutate_ok);
    return 0;
}

// UDP sendto with the destination port flipping between an allowed and a denied port.
static volatile long sent_ok;
static void *sendto_loop(void *arg) {
    (void)arg;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    while (!race_stop) {
        if (sendto(s, "RACED-DATAGRAM", 14, 0, (struct sockaddr *)&race_addr, sizeof race_addr) > 0)
            __atomic_add_fetch(&sent_ok, 1, __ATOMIC_RELAXED);
        else __atomic_add_fetch(&race_fail, 1, __ATOMIC_RELAXED);
    }
    close(s);
    return NULL;
}

static int race_sendto(int allowed, int denied, double seconds) {
    race_addr.sin_family = AF_INET;
    race_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    race_addr.sin_port = htons((uint16_t)allowed);
    race_port_a = allowed; race_port_b = denied;
    pthread_t f, c1, c2;
    pthread_create(&f, NULL, flip_port, NULL);
    pthread_create(&c1, NULL, sendto_loop, NULL);
    pthread_create(&c2, NULL, sendto_loop, NULL);
    double end = now() + seconds;
    while (now() < end) usleep(10000);
    race_stop = 1;
    pthread_join(f, NULL); pthread_join(c1, NULL); pthread_join(c2, NULL);
    say("race: sent=%ld failed=%ld", sent_ok, race_fail);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Tampering. The target is the supervisor ("parent": the agent's parent) or, bare, a stand-in
// child of this process in its own process group with two extra threads, an open file and a
// marker in memory.
static char standin_memory[64] = "STANDIN-MEMORY-MARKER-5c1e";
static pid_t standin_pid;

static void *sleeper(void *arg) { (void)arg; for (;;) pause(); return NULL; }

static pid_t start_standin(const char *fd_file) {
    int ready[2];
    if (pipe(ready) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(ready[0]);
        // Default dispositions and an empty mask: the test runner may leave some ignored/blocked.
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < 32; sig++) if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = fd_file ? open(fd_file, O_RDONLY) : -1;
        (void)fd;
        pthread_t t1, t2;
        pthread_create(&t1, NULL, sleeper, NULL);
        pthread_create(&t2, NULL, sleeper, NULL);
        ssize_t w = write(ready[1], "r", 1);
        (void)w;
        for (int i = 0; i < 300; i++) usleep(100000);
        _exit(0);
    }
    char c;
    close(ready[1]);
    ssize_t r = read(ready[0], &c, 1);
    (void)r;
    close(ready[0]);
    setpgid(pid, pid);
    return pid;
}

static void report_target(pid_t pid) {
    char path[64], exe[4096];
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    ssize_t n = readlink(path, exe, sizeof exe - 1);
    const char *base = "?";
    if (n > 0) { exe[n] = 0; base = strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe; }
    say("target=%d exe=%s", pid, base);
}
"""#
}
