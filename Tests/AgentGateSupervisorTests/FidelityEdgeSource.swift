// The C source of the fidelity edge program: every trapped syscall family against every edge
// of path and argument handling, one line per case (what the call returned and what it left
// behind). FidelityEdgeTests runs it bare and supervised and compares the two outputs.

enum FidelityEdgeSource {
    static let program = #"""
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <termios.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <utime.h>
#include <stddef.h>

// Runs every edge case of the supervised syscall families, each in a fresh directory under the
// current one, and prints one line per case: its name, what the call returned, and what it left
// behind. Run bare and supervised, the outputs must be identical.
//   edge BASE RO_DIR [ONLY_CASE]
// BASE is a directory to work in; RO_DIR a read-only mount holding the file f and the directory
// d ("-" when there is none).

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#define RENAME_EXCHANGE 2
#define RENAME_WHITEOUT 4
#endif
#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

static char base[4096];
static const char *ro = NULL;
static const char *only = NULL;
static char line[65536];
static size_t used;
static int count;
static char baseline[8192]; // the listing of a fresh case directory
static int inet_port; // a loopback TCP port with a listener, for connects
static int udp_port;  // a loopback UDP port with a bound socket
static char long_name[300];   // 256 bytes: ENAMETOOLONG as a name
static char long_path[4200];  // 4096 bytes: ENAMETOOLONG as a path
static char max_path[4200];   // 4095 bytes naming ./f: the longest path accepted

static void out(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + used, sizeof line - used, fmt, ap);
    va_end(ap);
    if (n > 0) used += (size_t)n < sizeof line - used ? (size_t)n : sizeof line - used - 1;
}

static void put(const char *name, const char *text) {
    int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) { if (write(fd, text, strlen(text)) < 0) {} close(fd); }
}

static void fixtures(void) {
    put("f", "hello\n");
    mkdir("d", 0755);
    mkdir("e", 0755);
    put("e/x", "x\n");
    symlink("f", "ln");
    symlink("missing", "dl");
    symlink("d", "dd");
    symlink("loop", "loop");
}

static const char *en(int e) { return e ? strerrorname_np(e) : "0"; }

static void list(const char *dir, const char *prefix, int depth) {
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0) { out(" [%s?%s]", prefix, en(errno)); return; }
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (!strcmp(name, ".") || !strcmp(name, "..") || !strncmp(name, "srv", 3)) { free(names[i]); continue; }
        char path[8192], shown[8192];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        snprintf(shown, sizeof shown, "%s%s", prefix, name);
        struct stat st;
        if (lstat(path, &st) != 0) { out(" %s?", shown); free(names[i]); continue; }
        char type = S_ISREG(st.st_mode) ? 'f' : S_ISDIR(st.st_mode) ? 'd' : S_ISLNK(st.st_mode) ? 'l'
                  : S_ISFIFO(st.st_mode) ? 'p' : S_ISSOCK(st.st_mode) ? 's' : S_ISCHR(st.st_mode) ? 'c' : '?';
        out(" %s:%c%o", shown, type, (unsigned)(st.st_mode & 07777));
        if (S_ISREG(st.st_mode)) out(":%lld:%lu", (long long)st.st_size, (unsigned long)st.st_nlink);
        if (st.st_uid != getuid() || st.st_gid != getgid()) out(":%u.%u", st.st_uid, st.st_gid);
        if (st.st_mtime < 1000000000) out(":t%lld", (long long)st.st_mtime);
        if (S_ISLNK(st.st_mode)) {
            char target[4200];
            ssize_t len = readlink(path, target, sizeof target - 1);
            if (len >= 0) { target[len] = 0; out("->%.40s", target); }
        } else {
            char xattrs[1024];
            ssize_t len = llistxattr(path, xattrs, sizeof xattrs);
            for (ssize_t at = 0; len > 0 && at < len; at += (ssize_t)strlen(xattrs + at) + 1) {
                char value[64];
                ssize_t vl = lgetxattr(path, xattrs + at, value, sizeof value - 1);
                value[vl > 0 ? vl : 0] = 0;
                out(":%s=%s", xattrs + at, value);
            }
        }
        if (S_ISDIR(st.st_mode) && depth < 2) {
            char sub[8192];
            snprintf(sub, sizeof sub, "%s/", shown);
            list(path, sub, depth + 1);
        }
        free(names[i]);
    }
    free(names);
}

// Starts a case: a fresh directory with the fixtures, as the working directory.
static int begin(const char *name) {
    if (only && strcmp(only, name) != 0) return 0;
    char dir[32];
    snprintf(dir, sizeof dir, "c%03d", ++count);
    if (chdir(base) != 0 || mkdir(dir, 0755) != 0 || chdir(dir) != 0) { printf("%s: cannot make %s\n", name, dir); return 0; }
    fixtures();
    used = 0;
    out("%s:", name);
    return 1;
}

enum { PLAIN, FD, EXEC };

static void finish(long rc, int err) {
    out(" rc=%ld errno=%s |", rc < 0 ? -1 : rc, rc < 0 ? en(err) : "0");
    size_t mark = used;
    list(".", "", 0);
    out("\n");
    // A listing that is just the fixtures is shown as "=".
    if (strncmp(line + mark, baseline, used - mark) == 0 && strlen(baseline) == used - mark) {
        used = mark;
        out(" =\n");
    }
    if (write(1, line, used) < 0) {}
    if (chdir(base) != 0) {}
}

// A call that returns an fd: its type, status flags and fd flags are part of the answer.
static void finish_fd(long rc, int err) {
    if (rc >= 0) {
        struct stat st;
        fstat((int)rc, &st);
        out(" fd=%ld type=%o fl=%o fdfl=%d nlink=%lu", rc, (unsigned)(st.st_mode & S_IFMT), (unsigned)fcntl((int)rc, F_GETFL),
            fcntl((int)rc, F_GETFD), (unsigned long)st.st_nlink);
        close((int)rc);
        rc = 0;
    }
    finish(rc, err);
}

#define CASE(name, expr) do { if (begin(name)) { errno = 0; long rc_ = (long)(expr); int e_ = errno; finish(rc_, e_); } } while (0)
#define FDCASE(name, expr) do { if (begin(name)) { errno = 0; long rc_ = (long)(expr); int e_ = errno; finish_fd(rc_, e_); } } while (0)

static long openat2_(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve, size_t size) {
    struct { struct open_how how; uint64_t extra; } big;
    memset(&big, 0, sizeof big);
    big.how.flags = flags;
    big.how.mode = mode;
    big.how.resolve = resolve;
    return syscall(SYS_openat2, dirfd, path, &big, size);
}

static int dirfd_of(const char *path) { return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC); }

// exec in a child: "exec errno=E" when it failed, else "status=N" (or "signal=N").
static void exec_case(const char *name, const char *path, int dirfd, int flags, int at) {
    if (!begin(name)) return;
    put("script-ok", "#!/bin/sh\nexit 7\n");
    chmod("script-ok", 0755);
    put("script-missing", "#!/nonexistent/interpreter\nexit 7\n");
    chmod("script-missing", 0755);
    put("script-dir", "#!/tmp\nexit 7\n");
    chmod("script-dir", 0755);
    put("script-empty", "#!\nexit 7\n");
    chmod("script-empty", 0755);
    put("garbage", "\x01\x02\x03\x04garbage\n");
    chmod("garbage", 0755);
    put("noexec", "#!/bin/sh\nexit 7\n");
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return;
    int dfd = dirfd == -2 ? open("script-ok", O_RDONLY) : dirfd == -3 ? open(".", O_PATH | O_DIRECTORY) : dirfd;
    pid_t child = fork();
    if (child == 0) {
        close(fds[0]);
        char *argv[] = { "prog", NULL };
        char *envp[] = { "PATH=/usr/bin:/bin", NULL };
        if (at) syscall(SYS_execveat, dfd, path, argv, envp, flags);
        else execve(path, argv, envp);
        int e = errno;
        if (write(fds[1], &e, sizeof e) < 0) {}
        _exit(255);
    }
    close(fds[1]);
    int e = 0;
    ssize_t n = read(fds[0], &e, sizeof e);
    close(fds[0]);
    int status = 0;
    waitpid(child, &status, 0);
    if (dfd >= 0 && dirfd < -1) close(dfd);
    if (n == sizeof e) out(" exec errno=%s", en(e));
    else if (WIFEXITED(status)) out(" status=%d", WEXITSTATUS(status));
    else out(" signal=%d", WTERMSIG(status));
    finish(0, 0);
}

static socklen_t unix_address(struct sockaddr_un *sun, const char *path) {
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    size_t len = strlen(path);
    memcpy(sun->sun_path, path, len < sizeof sun->sun_path ? len : sizeof sun->sun_path);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (len < sizeof sun->sun_path ? 1 : 0));
}

// A unix socket of `type` listening (or bound, for datagrams) at `path` in the case directory.
static int unix_server(int type, const char *path) {
    int s = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun;
    socklen_t len = unix_address(&sun, path);
    if (bind(s, (struct sockaddr *)&sun, len) != 0) return -1;
    if (type != SOCK_DGRAM) listen(s, 8);
    return s;
}

static long unix_connect(int type, const char *path) {
    int s = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun;
    socklen_t len = unix_address(&sun, path);
    long rc = connect(s, (struct sockaddr *)&sun, len);
    int e = errno;
    close(s);
    errno = e;
    return rc;
}

static long unix_bind(const char *path) {
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun;
    socklen_t len = unix_address(&sun, path);
    long rc = bind(s, (struct sockaddr *)&sun, len);
    int e = errno;
    close(s);
    errno = e;
    return rc;
}

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sin;
}

// sendto on a unix socket of `type`: connected to a server at srv (connected != 0) or not, to
// the address `path` (NULL: none).
static long unix_sendto(int type, int connected, const char *path) {
    int server = unix_server(type, "srv");
    int s = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun;
    socklen_t len;
    if (connected) {
        len = unix_address(&sun, "srv");
        connect(s, (struct sockaddr *)&sun, len);
    }
    long rc;
    if (path) {
        len = unix_address(&sun, path);
        rc = sendto(s, "hi", 2, MSG_DONTWAIT, (struct sockaddr *)&sun, len);
    } else {
        rc = sendto(s, "hi", 2, MSG_DONTWAIT, NULL, 0);
    }
    int e = errno;
    close(s);
    close(server);
    errno = e;
    return rc;
}

static long unix_sendmsg_named(int type, int connected, const char *path) {
    int server = unix_server(type, "srv");
    int s = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun;
    socklen_t len;
    if (connected) {
        len = unix_address(&sun, "srv");
        connect(s, (struct sockaddr *)&sun, len);
    }
    len = unix_address(&sun, path);
    struct iovec v = { "hi", 2 };
    struct msghdr m = { .msg_name = &sun, .msg_namelen = len, .msg_iov = &v, .msg_iovlen = 1 };
    long rc = sendmsg(s, &m, MSG_DONTWAIT);
    int e = errno;
    close(s);
    close(server);
    errno = e;
    return rc;
}

static long inet_connect(int type, struct sockaddr *address, socklen_t len) {
    int s = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    long rc = connect(s, address, len);
    int e = errno;
    close(s);
    errno = e;
    return rc;
}

static long inet_sendto(int type, struct sockaddr *address, socklen_t len, int connect_first) {
    int s = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (connect_first) {
        struct sockaddr_in sin = loopback(type == SOCK_DGRAM ? udp_port : inet_port);
        connect(s, (struct sockaddr *)&sin, sizeof sin);
    }
    long rc = sendto(s, "hi", 2, MSG_DONTWAIT | MSG_NOSIGNAL, address, len);
    int e = errno;
    close(s);
    errno = e;
    return rc;
}

static long inet_bind(struct sockaddr *address, socklen_t len, int twice) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    long rc = bind(s, address, len);
    if (twice) rc = bind(s, address, len);
    int e = errno;
    close(s);
    errno = e;
    return rc;
}

// A send to a peer that has gone. With SIGPIPE at its default the sender dies of it; with a
// handler the call fails with EPIPE and the handler has run by the time it returns.
static volatile sig_atomic_t pipe_signals;
static void on_pipe(int sig) { (void)sig; pipe_signals++; }

static void epipe_case(const char *name, int use_sendmsg, int nosignal, int handler) {
    if (!begin(name)) return;
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    close(sv[1]);
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_t child = fork();
    if (child == 0) {
        signal(SIGPIPE, handler ? on_pipe : SIG_DFL);
        pipe_signals = 0;
        struct sockaddr_un sun;
        socklen_t len = unix_address(&sun, "anything");
        struct iovec v = { "hi", 2 };
        struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
        (void)len;
        long rc = use_sendmsg ? sendmsg(sv[0], &m, nosignal ? MSG_NOSIGNAL : 0)
                              : sendto(sv[0], "hi", 2, nosignal ? MSG_NOSIGNAL : 0, (struct sockaddr *)&sun, len);
        int report[3] = { (int)rc, errno, pipe_signals };
        if (write(fds[1], report, sizeof report) < 0) {}
        _exit(0);
    }
    close(fds[1]);
    int report[3] = { 0, 0, 0 };
    ssize_t n = read(fds[0], report, sizeof report);
    close(fds[0]);
    close(sv[0]);
    int status = 0;
    waitpid(child, &status, 0);
    if (n == sizeof report) out(" rc=%d errno=%s signals=%d", report[0], en(report[0] < 0 ? report[1] : 0), report[2]);
    if (WIFSIGNALED(status)) out(" signal=%d", WTERMSIG(status));
    finish(0, 0);
}

// A blocking 4 MiB send on a stream: it returns once everything is sent.
static void big_send_case(const char *name, int family) {
    if (!begin(name)) return;
    int sv[2] = { -1, -1 };
    if (family == AF_UNIX) {
        socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    } else {
        int server = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sin = loopback(0);
        bind(server, (struct sockaddr *)&sin, sizeof sin);
        listen(server, 1);
        socklen_t len = sizeof sin;
        getsockname(server, (struct sockaddr *)&sin, &len);
        sv[0] = socket(AF_INET, SOCK_STREAM, 0);
        connect(sv[0], (struct sockaddr *)&sin, sizeof sin);
        sv[1] = accept(server, NULL, NULL);
        close(server);
    }
    size_t size = 4 << 20;
    char *buffer = malloc(size);
    for (size_t i = 0; i < size; i++) buffer[i] = (char)(i * 7 + 3);
    pid_t child = fork();
    if (child == 0) {
        close(sv[0]);
        size_t total = 0;
        unsigned sum = 0;
        char chunk[65536];
        ssize_t n;
        while ((n = read(sv[1], chunk, sizeof chunk)) > 0) {
            for (ssize_t i = 0; i < n; i++) sum = sum * 31 + (unsigned char)chunk[i];
            total += (size_t)n;
        }
        _exit(total == size && sum != 0 ? 0 : 1);
    }
    close(sv[1]);
    struct iovec v = { buffer, size };
    struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
    long rc = sendmsg(sv[0], &m, 0);
    int e = errno;
    close(sv[0]);
    int status = 0;
    waitpid(child, &status, 0);
    free(buffer);
    out(" received-all=%d", WIFEXITED(status) && WEXITSTATUS(status) == 0);
    finish(rc, e);
}

// What a receiver with SO_PASSCRED is told about the sender of a message sent with sendmsg.
static void passcred_case(const char *name, int type) {
    if (!begin(name)) return;
    int sv[2];
    socketpair(AF_UNIX, type, 0, sv);
    int one = 1;
    setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    struct iovec v = { "hi", 2 };
    struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
    long rc = sendmsg(sv[0], &m, 0);
    int e = errno;
    char data[8];
    union { char buf[CMSG_SPACE(sizeof(struct ucred))]; struct cmsghdr align; } control;
    struct iovec rv = { data, sizeof data };
    struct msghdr r = { .msg_iov = &rv, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf };
    ssize_t n = recvmsg(sv[1], &r, MSG_DONTWAIT);
    struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&r) : NULL;
    if (c && c->cmsg_type == SCM_CREDENTIALS) {
        struct ucred cred;
        memcpy(&cred, CMSG_DATA(c), sizeof cred);
        out(" pid=%s uid=%s gid=%s", cred.pid == getpid() ? "self" : "other", cred.uid == getuid() ? "self" : "other",
            cred.gid == getgid() ? "self" : "other");
    } else {
        out(" no-credentials");
    }
    close(sv[0]);
    close(sv[1]);
    finish(rc, e);
}

// A session leader and a pseudo-terminal: mode 0 opens it without O_NOCTTY (the kernel makes
// it the controlling terminal), mode 1 takes it with TIOCSCTTY, mode 2 opens it with O_NOCTTY.
// Then /dev/tty is opened: is it that terminal (a byte written to it reaches the master)?
static void tty_case(const char *name, int mode) {
    if (!begin(name)) return;
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) { out(" no-pty=%s", en(errno)); finish(0, 0); return; }
    char slave_name[64];
    snprintf(slave_name, sizeof slave_name, "%s", ptsname(master));
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_t child = fork();
    if (child == 0) {
        setsid();
        int slave = open(slave_name, O_RDWR | (mode == 2 ? O_NOCTTY : 0));
        if (mode == 1) ioctl(slave, TIOCSCTTY, 0);
        int tty = open("/dev/tty", O_RDWR);
        int tty_errno = tty >= 0 ? 0 : errno;
        int report[3] = { slave >= 0, tcgetsid(slave) == getpid(), tty_errno };
        if (tty >= 0 && write(tty, "X", 1) != 1) report[2] = -1;
        if (write(fds[1], report, sizeof report) < 0) {}
        _exit(0);
    }
    close(fds[1]);
    int report[3] = { 0, 0, 0 };
    ssize_t n = read(fds[0], report, sizeof report);
    close(fds[0]);
    waitpid(child, NULL, 0);
    char byte = 0;
    fcntl(master, F_SETFL, O_NONBLOCK);
    ssize_t got = read(master, &byte, 1);
    close(master);
    if (n == sizeof report)
        out(" slave=%d ctty=%s devtty=%s reaches-pty=%d", report[0], report[1] ? "self" : "none", en(report[2]), got == 1 && byte == 'X');
    finish(0, 0);
}

// `sh -c COMMAND` in the case directory (with the exec fixtures): its exit status.
static void shell_case(const char *name, const char *command) {
    if (!begin(name)) return;
    put("script-missing", "#!/nonexistent/interpreter\nexit 7\n");
    chmod("script-missing", 0755);
    pid_t child = fork();
    if (child == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        execl("/bin/sh", "sh", "-c", command, (char *)NULL);
        _exit(255);
    }
    int status = 0;
    waitpid(child, &status, 0);
    out(" status=%d", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    finish(0, 0);
}

static struct timespec fixed_times[2] = { { 100000, 0 }, { 200000, 0 } };

int main(int argc, char **argv) {
    if (argc < 3 || chdir(argv[1]) != 0 || !getcwd(base, sizeof base)) return 2;
    {
        mkdir("baseline", 0755);
        if (chdir("baseline") != 0) return 1;
        fixtures();
        used = 0;
        list(".", "", 0);
        out("\n");
        memcpy(baseline, line, used + 1);
        if (chdir(base) != 0) return 1;
    }
    if (strcmp(argv[2], "-") != 0) ro = argv[2];
    if (argc > 3) only = argv[3];
    signal(SIGPIPE, SIG_IGN);
    umask(022);
    memset(long_name, 'n', 256);
    long_name[256] = 0;
    for (int i = 0; i < 4096; i++) long_path[i] = i % 2 ? '/' : '.';
    long_path[4096] = 0;
    // "./././…/f": 4095 bytes.
    for (int i = 0; i < 4092; i++) max_path[i] = i % 2 ? '/' : '.';
    strcpy(max_path + 4092, "//f");

    int tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = loopback(0);
    bind(tcp, (struct sockaddr *)&sin, sizeof sin);
    listen(tcp, 64);
    socklen_t slen = sizeof sin;
    getsockname(tcp, (struct sockaddr *)&sin, &slen);
    inet_port = ntohs(sin.sin_port);
    int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sin = loopback(0);
    bind(udp, (struct sockaddr *)&sin, sizeof sin);
    slen = sizeof sin;
    getsockname(udp, (struct sockaddr *)&sin, &slen);
    udp_port = ntohs(sin.sin_port);
    int closed = socket(AF_INET, SOCK_STREAM, 0); // a port nobody listens on
    sin = loopback(0);
    bind(closed, (struct sockaddr *)&sin, sizeof sin);
    slen = sizeof sin;
    getsockname(closed, (struct sockaddr *)&sin, &slen);
    int closed_port = ntohs(sin.sin_port);

    char rof[4200], rod[4200], ronew[4200], roln[4200];
    snprintf(rof, sizeof rof, "%s/f", ro ? ro : "/nonexistent-ro");
    snprintf(rod, sizeof rod, "%s/d", ro ? ro : "/nonexistent-ro");
    snprintf(ronew, sizeof ronew, "%s/new", ro ? ro : "/nonexistent-ro");
    snprintf(roln, sizeof roln, "%s/f-link", ro ? ro : "/nonexistent-ro");

    // ---- open, openat, openat2, creat
    FDCASE("open-f-rdonly", open("f", O_RDONLY));
    FDCASE("open-f-wronly-trunc", open("f", O_WRONLY | O_TRUNC));
    FDCASE("open-f-rdwr-append", open("f", O_RDWR | O_APPEND));
    FDCASE("open-f-rdonly-trunc", open("f", O_RDONLY | O_TRUNC));
    FDCASE("open-missing", open("missing", O_RDONLY));
    FDCASE("open-new-creat", open("new", O_WRONLY | O_CREAT, 0640));
    FDCASE("open-new-creat-excl", open("new", O_RDWR | O_CREAT | O_EXCL, 0600));
    FDCASE("open-f-creat", open("f", O_WRONLY | O_CREAT, 0600));
    FDCASE("open-f-creat-excl", open("f", O_WRONLY | O_CREAT | O_EXCL, 0600));
    FDCASE("open-d-creat", open("d", O_RDONLY | O_CREAT, 0600));
    FDCASE("open-d-creat-wronly", open("d", O_WRONLY | O_CREAT, 0600));
    FDCASE("open-d-creat-excl", open("d", O_RDONLY | O_CREAT | O_EXCL, 0600));
    FDCASE("open-dd-creat", open("dd", O_RDONLY | O_CREAT, 0600));
    FDCASE("open-dd-creat-excl", open("dd", O_RDONLY | O_CREAT | O_EXCL, 0600));
    FDCASE("open-dot", open(".", O_RDONLY));
    FDCASE("open-dot-wronly", open(".", O_WRONLY));
    FDCASE("open-dot-creat", open(".", O_RDONLY | O_CREAT, 0600));
    FDCASE("open-dot-creat-excl", open(".", O_RDONLY | O_CREAT | O_EXCL, 0600));
    FDCASE("open-dotdot-creat", open("..", O_RDONLY | O_CREAT, 0600));
    FDCASE("open-root-creat", open("/", O_RDONLY | O_CREAT, 0600));
    FDCASE("open-root-creat-excl", open("/", O_RDONLY | O_CREAT | O_EXCL, 0600));
    FDCASE("open-d-dot-creat", open("d/.", O_RDONLY | O_CREAT, 0600));
    FDCASE("open-missing-dot-creat", open("missing/.", O_RDONLY | O_CREAT, 0600));
    FDCASE("open-empty", open("", O_RDONLY));
    FDCASE("open-empty-creat", open("", O_RDONLY | O_CREAT, 0600));
    FDCASE("open-f-slash", open("f/", O_RDONLY));
    FDCASE("open-d-slash", open("d/", O_RDONLY));
    FDCASE("open-d-slash-wronly", open("d/", O_WRONLY));
    FDCASE("open-new-slash-creat", open("new/", O_RDWR | O_CREAT, 0600));
    FDCASE("open-f-slash-creat", open("f/", O_RDWR | O_CREAT, 0600));
    FDCASE("open-d-slash-creat", open("d/", O_RDONLY | O_CREAT, 0600));
    FDCASE("open-f-slash-creat-excl", open("f/", O_RDWR | O_CREAT | O_EXCL, 0600));
    FDCASE("open-dl-creat", open("dl", O_WRONLY | O_CREAT, 0600));
    FDCASE("open-dl-creat-excl", open("dl", O_WRONLY | O_CREAT | O_EXCL, 0600));
    FDCASE("open-dl-creat-nofollow", open("dl", O_WRONLY | O_CREAT | O_NOFOLLOW, 0600));
    FDCASE("open-dl", open("dl", O_RDONLY));
    FDCASE("open-ln", open("ln", O_RDONLY));
    FDCASE("open-ln-creat", open("ln", O_RDWR | O_CREAT, 0600));
    FDCASE("open-ln-nofollow", open("ln", O_RDONLY | O_NOFOLLOW));
    FDCASE("open-ln-nofollow-path", open("ln", O_PATH | O_NOFOLLOW));
    FDCASE("open-f-nofollow", open("f", O_RDONLY | O_NOFOLLOW));
    FDCASE("open-f-nofollow-creat", open("f", O_RDWR | O_NOFOLLOW | O_CREAT, 0600));
    FDCASE("open-new-nofollow-creat", open("new", O_RDWR | O_NOFOLLOW | O_CREAT, 0600));
    FDCASE("open-f-directory", open("f", O_RDONLY | O_DIRECTORY));
    FDCASE("open-d-directory", open("d", O_RDONLY | O_DIRECTORY));
    FDCASE("open-dd-directory", open("dd", O_RDONLY | O_DIRECTORY));
    FDCASE("open-dd-directory-nofollow", open("dd", O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    FDCASE("open-d-unsearchable-nofollow", ({ chmod("d", 0400); long r = open("d", O_RDONLY | O_DIRECTORY | O_NOFOLLOW); int e = errno; chmod("d", 0755); errno = e; r; }));
    FDCASE("open-d-unsearchable", ({ chmod("d", 0400); long r = open("d", O_RDONLY | O_DIRECTORY); int e = errno; chmod("d", 0755); errno = e; r; }));
    FDCASE("open-ln-directory", open("ln", O_RDONLY | O_DIRECTORY));
    FDCASE("open-new-creat-directory", open("new", O_RDWR | O_CREAT | O_DIRECTORY, 0600));
    FDCASE("open-loop", open("loop", O_RDONLY));
    FDCASE("open-loop-creat", open("loop", O_RDWR | O_CREAT, 0600));
    FDCASE("open-loop-sub", open("loop/x", O_RDONLY));
    FDCASE("open-longname", open(long_name, O_RDONLY));
    FDCASE("open-longname-creat", open(long_name, O_RDWR | O_CREAT, 0600));
    FDCASE("open-longpath", open(long_path, O_RDONLY));
    FDCASE("open-maxpath", open(max_path, O_RDONLY));
    FDCASE("open-missing-sub-creat", open("missing/x", O_RDWR | O_CREAT, 0600));
    FDCASE("open-f-sub-creat", open("f/x", O_RDWR | O_CREAT, 0600));
    FDCASE("open-f-sub", open("f/x", O_RDONLY));
    FDCASE("open-tmpfile", open(".", O_TMPFILE | O_RDWR, 0600));
    FDCASE("open-tmpfile-d", open("d", O_TMPFILE | O_WRONLY, 0600));
    FDCASE("open-tmpfile-f", open("f", O_TMPFILE | O_RDWR, 0600));
    FDCASE("open-tmpfile-missing", open("missing", O_TMPFILE | O_RDWR, 0600));
    FDCASE("open-tmpfile-rdonly", open(".", O_TMPFILE | O_RDONLY, 0600));
    FDCASE("open-tmpfile-excl", open(".", O_TMPFILE | O_RDWR | O_EXCL, 0600));
    FDCASE("open-f-path", open("f", O_PATH));
    FDCASE("open-f-path-creat", open("new", O_PATH | O_CREAT, 0600));
    FDCASE("open-f-cloexec", open("f", O_RDONLY | O_CLOEXEC));
    FDCASE("open-f-nonblock", open("f", O_RDONLY | O_NONBLOCK));
    FDCASE("open-f-sync-noatime", open("f", O_WRONLY | O_SYNC | O_NOATIME));
    FDCASE("open-f-unknown-flag", open("f", O_RDONLY | 010000000000));
    FDCASE("open-f-accmode3", open("f", 3));
    FDCASE("open-new-mode-bits", open("new", O_RDWR | O_CREAT, 07777));
    FDCASE("creat-f", creat("f", 0600));
    FDCASE("creat-new", creat("new", 0600));
    FDCASE("creat-d", creat("d", 0600));
    FDCASE("creat-empty", creat("", 0600));
    FDCASE("openat-dirfd-creat", ({ int dfd = dirfd_of("d"); long r = openat(dfd, "x", O_RDWR | O_CREAT, 0600); int e = errno; close(dfd); errno = e; r; }));
    FDCASE("openat-dirfd-dot", ({ int dfd = dirfd_of("d"); long r = openat(dfd, ".", O_RDONLY); int e = errno; close(dfd); errno = e; r; }));
    FDCASE("openat-dirfd-dotdot", ({ int dfd = dirfd_of("d"); long r = openat(dfd, "../f", O_RDONLY); int e = errno; close(dfd); errno = e; r; }));
    FDCASE("openat-badfd", openat(999, "x", O_RDONLY));
    FDCASE("openat-badfd-absolute", openat(999, "/", O_RDONLY));
    FDCASE("openat-filefd", ({ int fd = open("f", O_RDONLY | O_CLOEXEC); long r = openat(fd, "x", O_RDONLY); int e = errno; close(fd); errno = e; r; }));
    FDCASE("openat-filefd-empty", ({ int fd = open("f", O_RDONLY | O_CLOEXEC); long r = openat(fd, "", O_RDONLY); int e = errno; close(fd); errno = e; r; }));
    FDCASE("openat2-in-root-absolute", ({ int dfd = dirfd_of("."); long r = openat2_(dfd, "/f", O_RDONLY, 0, RESOLVE_IN_ROOT, sizeof(struct open_how)); int e = errno; close(dfd); errno = e; r; }));
    FDCASE("openat2-in-root-dotdot", ({ int dfd = dirfd_of("d"); long r = openat2_(dfd, "../../../d/../ln", O_RDONLY, 0, RESOLVE_IN_ROOT, sizeof(struct open_how)); int e = errno; close(dfd); errno = e; r; }));
    FDCASE("openat2-in-root-creat", ({ int dfd = dirfd_of("d"); long r = openat2_(dfd, "/new", O_RDWR | O_CREAT, 0600, RESOLVE_IN_ROOT, sizeof(struct open_how)); int e = errno; close(dfd); errno = e; r; }));
    FDCASE("openat2-in-root-badfd", openat2_(999, "/f", O_RDONLY, 0, RESOLVE_IN_ROOT, sizeof(struct open_how)));
    FDCASE("openat2-beneath-dotdot", ({ int dfd = dirfd_of("d"); long r = openat2_(dfd, "../f", O_RDONLY, 0, RESOLVE_BENEATH, sizeof(struct open_how)); int e = errno; close(dfd); errno = e; r; }));
    FDCASE("openat2-beneath-absolute", ({ int dfd = dirfd_of("."); long r = openat2_(dfd, "/f", O_RDONLY, 0, RESOLVE_BENEATH, sizeof(struct open_how)); int e = errno; close(dfd); errno = e; r; }));
    FDCASE("openat2-beneath-in-root", openat2_(AT_FDCWD, "f", O_RDONLY, 0, RESOLVE_BENEATH | RESOLVE_IN_ROOT, sizeof(struct open_how)));
    FDCASE("openat2-no-symlinks", openat2_(AT_FDCWD, "ln", O_RDONLY, 0, RESOLVE_NO_SYMLINKS, sizeof(struct open_how)));
    FDCASE("openat2-no-magiclinks", openat2_(AT_FDCWD, "/proc/self/cwd", O_RDONLY, 0, RESOLVE_NO_MAGICLINKS, sizeof(struct open_how)));
    FDCASE("openat2-no-xdev", openat2_(AT_FDCWD, "/proc/self", O_RDONLY, 0, RESOLVE_NO_XDEV, sizeof(struct open_how)));
    FDCASE("openat2-cached-creat", openat2_(AT_FDCWD, "new", O_RDWR | O_CREAT, 0600, RESOLVE_CACHED, sizeof(struct open_how)));
    FDCASE("openat2-cached-trunc", openat2_(AT_FDCWD, "f", O_RDWR | O_TRUNC, 0, RESOLVE_CACHED, sizeof(struct open_how)));
    FDCASE("openat2-cached-tmpfile", openat2_(AT_FDCWD, ".", O_TMPFILE | O_RDWR, 0600, RESOLVE_CACHED, sizeof(struct open_how)));
    FDCASE("openat2-bad-resolve", openat2_(AT_FDCWD, "f", O_RDONLY, 0, 0x80, sizeof(struct open_how)));
    FDCASE("openat2-bad-flags", openat2_(AT_FDCWD, "f", O_RDONLY | 010000000000, 0, 0, sizeof(struct open_how)));
    FDCASE("openat2-high-flags", openat2_(AT_FDCWD, "f", O_RDONLY | (1ULL << 40), 0, 0, sizeof(struct open_how)));
    FDCASE("openat2-path-rdwr", openat2_(AT_FDCWD, "f", O_PATH | O_RDWR, 0, 0, sizeof(struct open_how)));
    FDCASE("openat2-mode-no-creat", openat2_(AT_FDCWD, "f", O_RDONLY, 0600, 0, sizeof(struct open_how)));
    FDCASE("openat2-bad-mode", openat2_(AT_FDCWD, "new", O_RDWR | O_CREAT, 010000, 0, sizeof(struct open_how)));
    FDCASE("openat2-creat-directory", openat2_(AT_FDCWD, "new", O_RDWR | O_CREAT | O_DIRECTORY, 0600, 0, sizeof(struct open_how)));
    FDCASE("openat2-small", openat2_(AT_FDCWD, "f", O_RDONLY, 0, 0, 16));
    FDCASE("openat2-larger-zero", openat2_(AT_FDCWD, "f", O_RDONLY, 0, 0, sizeof(struct open_how) + 8));
    FDCASE("openat2-creat", openat2_(AT_FDCWD, "new", O_RDWR | O_CREAT | O_EXCL, 0640, 0, sizeof(struct open_how)));
    FDCASE("openat2-d-creat", openat2_(AT_FDCWD, "d", O_RDONLY | O_CREAT, 0640, 0, sizeof(struct open_how)));
    FDCASE("openat2-dl-creat-in-root", ({ symlink("/made", "dlabs"); int dfd = dirfd_of("."); long r = openat2_(dfd, "dlabs", O_RDWR | O_CREAT, 0600, RESOLVE_IN_ROOT, sizeof(struct open_how)); int e = errno; close(dfd); errno = e; r; }));
    FDCASE("open-ro-f-wronly", open(rof, O_WRONLY));
    FDCASE("open-ro-f-rdonly-creat", open(rof, O_RDONLY | O_CREAT, 0600));
    FDCASE("open-ro-new-creat", open(ronew, O_RDWR | O_CREAT, 0600));
    FDCASE("open-ro-f-creat-excl", open(rof, O_RDWR | O_CREAT | O_EXCL, 0600));
    FDCASE("open-ro-tmpfile", open(rod, O_TMPFILE | O_RDWR, 0600));

    // ---- mkdir, mkdirat
    CASE("mkdir-new", mkdir("new", 0750));
    CASE("mkdir-f", mkdir("f", 0755));
    CASE("mkdir-d", mkdir("d", 0755));
    CASE("mkdir-dot", mkdir(".", 0700));
    CASE("mkdirat-dot", mkdirat(AT_FDCWD, ".", 0700));
    CASE("mkdir-dotdot", mkdir("..", 0700));
    CASE("mkdir-root", mkdir("/", 0700));
    CASE("mkdir-root-slashes", mkdir("///", 0700));
    CASE("mkdir-missing-dot", mkdir("missing/.", 0700));
    CASE("mkdir-d-dot", mkdir("d/.", 0700));
    CASE("mkdir-d-dotdot", mkdir("d/..", 0700));
    CASE("mkdir-f-dot", mkdir("f/.", 0700));
    CASE("mkdir-new-slash", mkdir("new/", 0700));
    CASE("mkdir-new-slashes", mkdir("new//", 0700));
    CASE("mkdir-d-slash", mkdir("d/", 0700));
    CASE("mkdir-f-slash", mkdir("f/", 0700));
    CASE("mkdir-empty", mkdir("", 0700));
    CASE("mkdir-missing-sub", mkdir("missing/x", 0700));
    CASE("mkdir-f-sub", mkdir("f/x", 0700));
    CASE("mkdir-ln", mkdir("ln", 0700));
    CASE("mkdir-dl", mkdir("dl", 0700));
    CASE("mkdir-dd-sub", mkdir("dd/x", 0700));
    CASE("mkdir-loop-sub", mkdir("loop/x", 0700));
    CASE("mkdir-longname", mkdir(long_name, 0700));
    CASE("mkdir-longpath", mkdir(long_path, 0700));
    CASE("mkdir-mode-bits", mkdir("new", 07777));
    CASE("mkdirat-dirfd", ({ int dfd = dirfd_of("d"); long r = mkdirat(dfd, "x", 0700); int e = errno; close(dfd); errno = e; r; }));
    CASE("mkdirat-badfd", mkdirat(999, "x", 0700));
    CASE("mkdirat-filefd", ({ int fd = open("f", O_RDONLY | O_CLOEXEC); long r = mkdirat(fd, "x", 0700); int e = errno; close(fd); errno = e; r; }));
    CASE("mkdirat-dirfd-empty", ({ int dfd = dirfd_of("d"); long r = mkdirat(dfd, "", 0700); int e = errno; close(dfd); errno = e; r; }));
    CASE("mkdir-ro-new", mkdir(ronew, 0700));
    CASE("mkdir-ro-d", mkdir(rod, 0700));

    // ---- mknod, mknodat
    CASE("mknod-fifo", mknod("new", S_IFIFO | 0640, 0));
    CASE("mknod-reg", mknod("new", S_IFREG | 0640, 0));
    CASE("mknod-default-type", mknod("new", 0640, 0));
    CASE("mknod-dir-type", mknod("new", S_IFDIR | 0755, 0));
    CASE("mknod-bad-type", mknod("new", 0170000 | 0755, 0));
    CASE("mknod-sock", mknod("new", S_IFSOCK | 0755, 0));
    CASE("mknod-f", mknod("f", S_IFIFO | 0600, 0));
    CASE("mknod-dot", mknod(".", S_IFIFO | 0600, 0));
    CASE("mknod-root", mknod("/", S_IFIFO | 0600, 0));
    CASE("mknod-empty", mknod("", S_IFIFO | 0600, 0));
    CASE("mknod-new-slash", mknod("new/", S_IFIFO | 0600, 0));
    CASE("mknod-missing-sub", mknod("missing/x", S_IFIFO | 0600, 0));
    CASE("mknod-f-sub", mknod("f/x", S_IFIFO | 0600, 0));
    CASE("mknod-dl", mknod("dl", S_IFIFO | 0600, 0));
    CASE("mknodat-dirfd", ({ int dfd = dirfd_of("d"); long r = mknodat(dfd, "x", S_IFIFO | 0600, 0); int e = errno; close(dfd); errno = e; r; }));
    CASE("mknod-ro-new", mknod(ronew, S_IFIFO | 0600, 0));
    CASE("mknod-ro-f", mknod(rof, S_IFIFO | 0600, 0));

    // ---- unlink, unlinkat, rmdir
    CASE("unlink-f", unlink("f"));
    CASE("unlink-d", unlink("d"));
    CASE("unlink-dot", unlink("."));
    CASE("unlink-dotdot", unlink(".."));
    CASE("unlink-root", unlink("/"));
    CASE("unlink-d-dot", unlink("d/."));
    CASE("unlink-missing", unlink("missing"));
    CASE("unlink-f-slash", unlink("f/"));
    CASE("unlink-d-slash", unlink("d/"));
    CASE("unlink-missing-slash", unlink("missing/"));
    CASE("unlink-ln", unlink("ln"));
    CASE("unlink-ln-slash", unlink("ln/"));
    CASE("unlink-dd-slash", unlink("dd/"));
    CASE("unlink-dl", unlink("dl"));
    CASE("unlink-empty", unlink(""));
    CASE("unlink-missing-sub", unlink("missing/x"));
    CASE("unlink-f-sub", unlink("f/x"));
    CASE("unlink-loop", unlink("loop"));
    CASE("unlink-loop-sub", unlink("loop/x"));
    CASE("unlink-longname", unlink(long_name));
    CASE("unlink-longpath", unlink(long_path));
    CASE("unlinkat-removedir-d", unlinkat(AT_FDCWD, "d", AT_REMOVEDIR));
    CASE("unlinkat-removedir-e", unlinkat(AT_FDCWD, "e", AT_REMOVEDIR));
    CASE("unlinkat-removedir-dot", unlinkat(AT_FDCWD, ".", AT_REMOVEDIR));
    CASE("unlinkat-removedir-f", unlinkat(AT_FDCWD, "f", AT_REMOVEDIR));
    CASE("unlinkat-empty-path-flag", unlinkat(AT_FDCWD, "", AT_EMPTY_PATH));
    CASE("unlinkat-bad-flags", unlinkat(AT_FDCWD, "f", 0x8));
    CASE("unlinkat-dirfd", ({ int dfd = dirfd_of("e"); long r = unlinkat(dfd, "x", 0); int e = errno; close(dfd); errno = e; r; }));
    CASE("unlinkat-badfd", unlinkat(999, "x", 0));
    CASE("rmdir-d", rmdir("d"));
    CASE("rmdir-dot", rmdir("."));
    CASE("rmdir-dotdot", rmdir(".."));
    CASE("rmdir-root", rmdir("/"));
    CASE("rmdir-d-dot", rmdir("d/."));
    CASE("rmdir-d-dotdot", rmdir("d/.."));
    CASE("rmdir-f", rmdir("f"));
    CASE("rmdir-e", rmdir("e"));
    CASE("rmdir-dd", rmdir("dd"));
    CASE("rmdir-dd-slash", rmdir("dd/"));
    CASE("rmdir-d-slash", rmdir("d/"));
    CASE("rmdir-missing", rmdir("missing"));
    CASE("rmdir-empty", rmdir(""));
    CASE("unlink-ro-f", unlink(rof));
    CASE("unlink-ro-missing", unlink(ronew));
    CASE("rmdir-ro-d", rmdir(rod));

    // ---- rename, renameat, renameat2
    CASE("rename-f-new", rename("f", "new"));
    CASE("rename-f-d", rename("f", "d"));
    CASE("rename-d-f", rename("d", "f"));
    CASE("rename-d-e", rename("d", "e"));
    CASE("rename-e-d", rename("e", "d"));
    CASE("rename-d-new", rename("d", "new"));
    CASE("rename-dot-new", rename(".", "new"));
    CASE("rename-dotdot-new", rename("..", "new"));
    CASE("rename-f-dot", rename("f", "."));
    CASE("rename-f-dotdot", rename("f", ".."));
    CASE("rename-root-new", rename("/", "new"));
    CASE("rename-missing-dot", rename("missing", "."));
    CASE("rename-dot-missing-sub", rename(".", "missing/x"));
    CASE("rename-f-f", rename("f", "f"));
    CASE("rename-ln-new", rename("ln", "new"));
    CASE("rename-dl-new", rename("dl", "new"));
    CASE("rename-missing-new", rename("missing", "new"));
    CASE("rename-f-missing-sub", rename("f", "missing/x"));
    CASE("rename-f-f-sub", rename("f", "f/x"));
    CASE("rename-f-slash", rename("f/", "new"));
    CASE("rename-f-new-slash", rename("f", "new/"));
    CASE("rename-d-new-slash", rename("d", "new/"));
    CASE("rename-d-slash-new", rename("d/", "new"));
    CASE("rename-d-into-itself", rename("d", "d/sub"));
    CASE("rename-empty-new", rename("", "new"));
    CASE("rename-f-empty", rename("f", ""));
    CASE("rename-f-longname", rename("f", long_name));
    CASE("rename-f-ln", rename("f", "ln"));
    CASE("renameat-dirfd", ({ int dfd = dirfd_of("e"); long r = renameat(dfd, "x", AT_FDCWD, "new"); int e = errno; close(dfd); errno = e; r; }));
    CASE("renameat-badfd", renameat(999, "x", AT_FDCWD, "new"));
    CASE("renameat2-noreplace-exists", renameat2(AT_FDCWD, "f", AT_FDCWD, "ln", RENAME_NOREPLACE));
    CASE("renameat2-noreplace-new", renameat2(AT_FDCWD, "f", AT_FDCWD, "new", RENAME_NOREPLACE));
    CASE("renameat2-noreplace-dot", renameat2(AT_FDCWD, "f", AT_FDCWD, ".", RENAME_NOREPLACE));
    CASE("renameat2-exchange", renameat2(AT_FDCWD, "f", AT_FDCWD, "d", RENAME_EXCHANGE));
    CASE("renameat2-exchange-missing", renameat2(AT_FDCWD, "f", AT_FDCWD, "missing", RENAME_EXCHANGE));
    CASE("renameat2-exchange-noreplace", renameat2(AT_FDCWD, "f", AT_FDCWD, "d", RENAME_EXCHANGE | RENAME_NOREPLACE));
    CASE("renameat2-whiteout", renameat2(AT_FDCWD, "f", AT_FDCWD, "new", RENAME_WHITEOUT));
    CASE("renameat2-whiteout-exchange", renameat2(AT_FDCWD, "f", AT_FDCWD, "d", RENAME_WHITEOUT | RENAME_EXCHANGE));
    CASE("renameat2-bad-flags", renameat2(AT_FDCWD, "f", AT_FDCWD, "new", 0x80));
    CASE("renameat2-empty-path-flag", renameat2(AT_FDCWD, "", AT_FDCWD, "new", AT_EMPTY_PATH));
    CASE("rename-longpath", rename(long_path, "new"));
    CASE("rename-loop-sub", rename("loop/x", "new"));
    CASE("rename-ro-f", rename(rof, ronew));
    CASE("rename-ro-cross", rename("f", ronew));

    // ---- link, linkat
    CASE("link-f-new", link("f", "new"));
    CASE("link-f-d", link("f", "d"));
    CASE("link-f-dot", link("f", "."));
    CASE("link-f-root", link("f", "/"));
    CASE("link-dot-new", link(".", "new"));
    CASE("link-dotdot-new", link("..", "new"));
    CASE("link-d-new", link("d", "new"));
    CASE("link-missing-new", link("missing", "new"));
    CASE("link-missing-dot", link("missing", "."));
    CASE("link-ln-new", link("ln", "new"));
    CASE("link-dl-new", link("dl", "new"));
    CASE("link-f-slash-new", link("f/", "new"));
    CASE("link-f-new-slash", link("f", "new/"));
    CASE("link-f-missing-sub", link("f", "missing/x"));
    CASE("link-f-f-sub", link("f", "f/x"));
    CASE("link-empty-new", link("", "new"));
    CASE("link-f-empty", link("f", ""));
    CASE("link-loop-new", link("loop", "new"));
    CASE("link-f-longname", link("f", long_name));
    CASE("linkat-follow-ln", linkat(AT_FDCWD, "ln", AT_FDCWD, "new", AT_SYMLINK_FOLLOW));
    CASE("linkat-follow-dl", linkat(AT_FDCWD, "dl", AT_FDCWD, "new", AT_SYMLINK_FOLLOW));
    CASE("linkat-follow-dd", linkat(AT_FDCWD, "dd", AT_FDCWD, "new", AT_SYMLINK_FOLLOW));
    CASE("linkat-follow-loop", linkat(AT_FDCWD, "loop", AT_FDCWD, "new", AT_SYMLINK_FOLLOW));
    CASE("linkat-follow-dot", linkat(AT_FDCWD, ".", AT_FDCWD, "new", AT_SYMLINK_FOLLOW));
    CASE("linkat-empty-path", ({ int fd = open("f", O_RDONLY | O_CLOEXEC); long r = linkat(fd, "", AT_FDCWD, "new", AT_EMPTY_PATH); int e = errno; close(fd); errno = e; r; }));
    CASE("linkat-empty-path-dir", ({ int fd = dirfd_of("d"); long r = linkat(fd, "", AT_FDCWD, "new", AT_EMPTY_PATH); int e = errno; close(fd); errno = e; r; }));
    CASE("linkat-empty-no-flag", ({ int fd = open("f", O_RDONLY | O_CLOEXEC); long r = linkat(fd, "", AT_FDCWD, "new", 0); int e = errno; close(fd); errno = e; r; }));
    CASE("linkat-bad-flags", linkat(AT_FDCWD, "f", AT_FDCWD, "new", 0x2));
    CASE("linkat-dirfd", ({ int dfd = dirfd_of("e"); long r = linkat(dfd, "x", dfd, "y", 0); int e = errno; close(dfd); errno = e; r; }));
    CASE("link-longpath", link("f", long_path));
    CASE("link-ro-f", link(rof, roln));
    CASE("link-ro-f-d", link(rof, rod));

    // ---- symlink, symlinkat
    CASE("symlink-new", symlink("target", "new"));
    CASE("symlink-f", symlink("target", "f"));
    CASE("symlink-dot", symlink("target", "."));
    CASE("symlink-dotdot", symlink("target", ".."));
    CASE("symlink-root", symlink("target", "/"));
    CASE("symlink-missing-sub", symlink("target", "missing/x"));
    CASE("symlink-f-sub", symlink("target", "f/x"));
    CASE("symlink-empty-target", symlink("", "new"));
    CASE("symlink-empty-name", symlink("target", ""));
    CASE("symlink-new-slash", symlink("target", "new/"));
    CASE("symlink-d-slash", symlink("target", "d/"));
    CASE("symlink-dl", symlink("target", "dl"));
    CASE("symlink-longtarget", symlink(long_path, "new"));
    CASE("symlink-maxtarget", symlink(max_path, "new"));
    CASE("symlink-longname", symlink("target", long_name));
    CASE("symlinkat-dirfd", ({ int dfd = dirfd_of("d"); long r = symlinkat("t", dfd, "x"); int e = errno; close(dfd); errno = e; r; }));
    CASE("symlinkat-badfd", symlinkat("t", 999, "x"));
    CASE("symlink-ro-new", symlink("target", ronew));
    CASE("symlink-ro-f", symlink("target", rof));

    // ---- chmod, fchmodat, fchmodat2
    CASE("chmod-f", chmod("f", 0600));
    CASE("chmod-f-bits", chmod("f", 07777));
    CASE("chmod-ln", chmod("ln", 0600));
    CASE("chmod-dl", chmod("dl", 0600));
    CASE("chmod-missing", chmod("missing", 0600));
    CASE("chmod-f-slash", chmod("f/", 0600));
    CASE("chmod-d-slash", chmod("d/", 0700));
    CASE("chmod-dot", chmod(".", 0700));
    CASE("chmod-d-noexec", ({ chmod("d", 0600); long r = chmod("d", 0700); r; }));
    CASE("lchown-d-noexec-dot", ({ chmod("d", 0600); long r = lchown("d/.", -1, -1); int e = errno; chmod("d", 0755); errno = e; r; }));
    CASE("chmod-dotdot", chmod("d/..", 0700));
    CASE("chmod-empty", chmod("", 0600));
    CASE("chmod-loop", chmod("loop", 0600));
    CASE("chmod-longname", chmod(long_name, 0600));
    CASE("chmod-f-sub", chmod("f/x", 0600));
    CASE("fchmodat-f", syscall(SYS_fchmodat, AT_FDCWD, "f", 0600));
    CASE("fchmodat-dirfd", ({ int dfd = dirfd_of("e"); long r = syscall(SYS_fchmodat, dfd, "x", 0600); int e = errno; close(dfd); errno = e; r; }));
    CASE("fchmodat2-nofollow-ln", syscall(452, AT_FDCWD, "ln", 0600, AT_SYMLINK_NOFOLLOW));
    CASE("fchmodat2-nofollow-f", syscall(452, AT_FDCWD, "f", 0600, AT_SYMLINK_NOFOLLOW));
    CASE("fchmodat2-nofollow-dot", syscall(452, AT_FDCWD, ".", 0700, AT_SYMLINK_NOFOLLOW));
    CASE("fchmodat2-empty-path", ({ int fd = open("f", O_RDONLY | O_CLOEXEC); long r = syscall(452, fd, "", 0600, AT_EMPTY_PATH); int e = errno; close(fd); errno = e; r; }));
    CASE("fchmodat2-empty-path-nofollow", ({ int fd = open("f", O_RDONLY | O_CLOEXEC); long r = syscall(452, fd, "", 0600, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW); int e = errno; close(fd); errno = e; r; }));
    CASE("fchmodat2-empty-path-opath-link", ({ int fd = open("ln", O_PATH | O_NOFOLLOW | O_CLOEXEC); long r = syscall(452, fd, "", 0600, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW); int e = errno; close(fd); errno = e; r; }));
    CASE("fchmodat2-empty-no-flag", ({ int fd = open("f", O_RDONLY | O_CLOEXEC); long r = syscall(452, fd, "", 0600, 0); int e = errno; close(fd); errno = e; r; }));
    CASE("fchmodat2-bad-flags", syscall(452, AT_FDCWD, "f", 0600, 0x2));
    CASE("chmod-ro-f", chmod(rof, 0600));

    // ---- chown, lchown, fchownat
    CASE("chown-f-keep", chown("f", -1, -1));
    CASE("chown-f-self", chown("f", getuid(), getgid()));
    CASE("chown-f-other", chown("f", 12345, 12345));
    CASE("chown-ln", chown("ln", getuid(), getgid()));
    CASE("chown-dl", chown("dl", -1, -1));
    CASE("lchown-ln", lchown("ln", -1, -1));
    CASE("lchown-ln-other", lchown("ln", 12345, -1));
    CASE("lchown-dl", lchown("dl", -1, -1));
    CASE("lchown-dot", lchown(".", -1, -1));
    CASE("lchown-dotdot", lchown("d/..", -1, -1));
    CASE("lchown-root", lchown("/", -1, -1));
    CASE("lchown-empty", lchown("", -1, -1));
    CASE("lchown-f-slash", lchown("f/", -1, -1));
    CASE("lchown-ln-slash", lchown("ln/", -1, -1));
    CASE("lchown-dd-slash", lchown("dd/", -1, -1));
    CASE("lchown-missing", lchown("missing", -1, -1));
    CASE("chown-missing-sub", chown("missing/x", -1, -1));
    CASE("chown-loop", chown("loop", -1, -1));
    CASE("fchownat-empty-path", ({ int fd = open("f", O_RDONLY | O_CLOEXEC); long r = fchownat(fd, "", -1, -1, AT_EMPTY_PATH); int e = errno; close(fd); errno = e; r; }));
    CASE("fchownat-empty-path-nofollow", ({ int fd = open("f", O_RDONLY | O_CLOEXEC); long r = fchownat(fd, "", getuid() == 0 ? 12345 : -1, -1, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW); int e = errno; close(fd); errno = e; r; }));
    CASE("fchownat-empty-path-opath-link", ({ int fd = open("ln", O_PATH | O_NOFOLLOW | O_CLOEXEC); long r = fchownat(fd, "", -1, -1, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW); int e = errno; close(fd); errno = e; r; }));
    CASE("fchownat-nofollow-ln", fchownat(AT_FDCWD, "ln", -1, -1, AT_SYMLINK_NOFOLLOW));
    CASE("fchownat-nofollow-dot", fchownat(AT_FDCWD, ".", -1, -1, AT_SYMLINK_NOFOLLOW));
    CASE("fchownat-bad-flags", fchownat(AT_FDCWD, "f", -1, -1, 0x2));
    CASE("lchown-longname", lchown(long_name, -1, -1));
    CASE("chown-longpath", chown(long_path, -1, -1));
    CASE("chown-ro-f", chown(rof, -1, -1));

    // ---- truncate
    CASE("truncate-f", truncate("f", 2));
    CASE("truncate-f-grow", truncate("f", 100));
    CASE("truncate-d", truncate("d", 0));
    CASE("truncate-missing", truncate("missing", 0));
    CASE("truncate-ln", truncate("ln", 1));
    CASE("truncate-dl", truncate("dl", 1));
    CASE("truncate-f-slash", truncate("f/", 1));
    CASE("truncate-empty", truncate("", 1));
    CASE("truncate-negative", truncate("f", -1));
    CASE("truncate-loop", truncate("loop", 1));
    CASE("truncate-dot", truncate(".", 1));
    CASE("truncate-longname", truncate(long_name, 1));
    CASE("truncate-longpath", truncate(long_path, 1));
    CASE("truncate-ro-f", truncate(rof, 1));

    // ---- utimensat, utimes, utime
    CASE("utimensat-f", utimensat(AT_FDCWD, "f", fixed_times, 0));
    CASE("utimensat-ln", utimensat(AT_FDCWD, "ln", fixed_times, 0));
    CASE("utimensat-ln-nofollow", utimensat(AT_FDCWD, "ln", fixed_times, AT_SYMLINK_NOFOLLOW));
    CASE("utimensat-dl-nofollow", utimensat(AT_FDCWD, "dl", fixed_times, AT_SYMLINK_NOFOLLOW));
    CASE("utimensat-dl", utimensat(AT_FDCWD, "dl", fixed_times, 0));
    CASE("utimensat-dot", utimensat(AT_FDCWD, ".", fixed_times, 0));
    CASE("utimensat-dot-nofollow", utimensat(AT_FDCWD, "d/.", fixed_times, AT_SYMLINK_NOFOLLOW));
    CASE("utimensat-empty", utimensat(AT_FDCWD, "", fixed_times, 0));
    CASE("utimensat-empty-path", ({ int fd = open("f", O_RDONLY | O_CLOEXEC); long r = utimensat(fd, "", fixed_times, AT_EMPTY_PATH); int e = errno; close(fd); errno = e; r; }));
    CASE("utimensat-empty-path-nofollow", ({ int fd = open("f", O_RDONLY | O_CLOEXEC); long r = utimensat(fd, "", fixed_times, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW); int e = errno; close(fd); errno = e; r; }));
    CASE("utimensat-null-path", ({ int fd = open("f", O_RDONLY | O_CLOEXEC); long r = syscall(SYS_utimensat, fd, NULL, fixed_times, 0); int e = errno; close(fd); errno = e; r; }));
    CASE("utimensat-bad-flags", utimensat(AT_FDCWD, "f", fixed_times, 0x2));
    CASE("utimensat-bad-nsec", ({ struct timespec t[2] = { { 1, 2000000000 }, { 1, 0 } }; utimensat(AT_FDCWD, "f", t, 0); }));
    CASE("utimensat-f-slash", utimensat(AT_FDCWD, "f/", fixed_times, 0));
    CASE("utimensat-missing", utimensat(AT_FDCWD, "missing", fixed_times, 0));
    CASE("utimes-f", ({ struct timeval t[2] = { { 100000, 0 }, { 300000, 0 } }; utimes("f", t); }));
    CASE("utime-f", ({ struct utimbuf t = { 100000, 400000 }; utime("f", &t); }));
    CASE("utimensat-longpath", utimensat(AT_FDCWD, long_path, fixed_times, 0));
    CASE("utimensat-loop", utimensat(AT_FDCWD, "loop", fixed_times, 0));
    CASE("utimensat-ro-f", utimensat(AT_FDCWD, rof, fixed_times, 0));

    // ---- xattrs
    CASE("setxattr-f", setxattr("f", "user.a", "1", 1, 0));
    CASE("setxattr-ln", setxattr("ln", "user.a", "1", 1, 0));
    CASE("lsetxattr-ln", lsetxattr("ln", "user.a", "1", 1, 0));
    CASE("lsetxattr-dot", lsetxattr(".", "user.a", "1", 1, 0));
    CASE("lsetxattr-ln-slash", lsetxattr("ln/", "user.a", "1", 1, 0));
    CASE("lsetxattr-dd-slash", lsetxattr("dd/", "user.a", "1", 1, 0));
    CASE("setxattr-d", setxattr("d", "user.a", "1", 1, 0));
    CASE("setxattr-missing", setxattr("missing", "user.a", "1", 1, 0));
    CASE("setxattr-empty", setxattr("", "user.a", "1", 1, 0));
    CASE("setxattr-f-slash", setxattr("f/", "user.a", "1", 1, 0));
    CASE("setxattr-create-exists", ({ setxattr("f", "user.a", "1", 1, 0); setxattr("f", "user.a", "2", 1, XATTR_CREATE); }));
    CASE("setxattr-replace-missing", setxattr("f", "user.a", "2", 1, XATTR_REPLACE));
    CASE("setxattr-bad-namespace", setxattr("f", "bogus.a", "1", 1, 0));
    CASE("setxattr-bad-flags", setxattr("f", "user.a", "1", 1, 0x10));
    CASE("setxattr-empty-name", setxattr("f", "", "1", 1, 0));
    CASE("setxattr-empty-value", setxattr("f", "user.a", "", 0, 0));
    CASE("removexattr-missing", removexattr("f", "user.a"));
    CASE("removexattr-f", ({ setxattr("f", "user.a", "1", 1, 0); removexattr("f", "user.a"); }));
    CASE("lremovexattr-ln", lremovexattr("ln", "user.a"));
    CASE("fsetxattr-f", ({ int fd = open("f", O_RDONLY | O_CLOEXEC); long r = fsetxattr(fd, "user.b", "2", 1, 0); int e = errno; close(fd); errno = e; r; }));
    CASE("fsetxattr-badfd", fsetxattr(999, "user.b", "2", 1, 0));
    CASE("fremovexattr-f", ({ int fd = open("f", O_RDONLY | O_CLOEXEC); long r = fremovexattr(fd, "user.b"); int e = errno; close(fd); errno = e; r; }));
    CASE("setxattr-longname", setxattr(long_name, "user.a", "1", 1, 0));
    CASE("lsetxattr-longpath", lsetxattr(long_path, "user.a", "1", 1, 0));
    CASE("setxattr-loop", setxattr("loop", "user.a", "1", 1, 0));
    CASE("setxattr-ro-f", setxattr(rof, "user.a", "1", 1, 0));

    // ---- connect, bind, sendto, sendmsg: unix
    CASE("connect-unix-stream", ({ int s = unix_server(SOCK_STREAM, "srv"); long r = unix_connect(SOCK_STREAM, "srv"); int e = errno; close(s); errno = e; r; }));
    CASE("connect-unix-missing", unix_connect(SOCK_STREAM, "missing"));
    CASE("connect-unix-file", unix_connect(SOCK_STREAM, "f"));
    CASE("connect-unix-dir", unix_connect(SOCK_STREAM, "d"));
    CASE("connect-unix-dot", unix_connect(SOCK_STREAM, "."));
    CASE("connect-unix-slash", ({ int s = unix_server(SOCK_STREAM, "srv"); long r = unix_connect(SOCK_STREAM, "srv/"); int e = errno; close(s); errno = e; r; }));
    CASE("connect-unix-symlink", ({ int s = unix_server(SOCK_STREAM, "srv"); symlink("srv", "srvlink"); long r = unix_connect(SOCK_STREAM, "srvlink"); int e = errno; close(s); unlink("srvlink"); errno = e; r; }));
    CASE("connect-unix-dl", unix_connect(SOCK_STREAM, "dl"));
    CASE("connect-unix-loop", unix_connect(SOCK_STREAM, "loop"));
    CASE("connect-unix-missing-sub", unix_connect(SOCK_STREAM, "missing/x"));
    CASE("connect-unix-f-sub", unix_connect(SOCK_STREAM, "f/x"));
    CASE("connect-unix-wrong-type", ({ int s = unix_server(SOCK_STREAM, "srv"); long r = unix_connect(SOCK_DGRAM, "srv"); int e = errno; close(s); errno = e; r; }));
    CASE("connect-unix-abstract-missing", ({ int s = socket(AF_UNIX, SOCK_STREAM, 0); struct sockaddr_un a = { AF_UNIX, "\0agentgate-edge-missing" }; long r = connect(s, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + 23); int e = errno; close(s); errno = e; r; }));
    CASE("connect-unix-short", ({ int s = socket(AF_UNIX, SOCK_STREAM, 0); struct sockaddr_un a = { AF_UNIX, "" }; long r = connect(s, (struct sockaddr *)&a, 1); int e = errno; close(s); errno = e; r; }));
    CASE("connect-unix-unnamed", ({ int s = socket(AF_UNIX, SOCK_STREAM, 0); struct sockaddr_un a = { AF_UNIX, "" }; long r = connect(s, (struct sockaddr *)&a, 2); int e = errno; close(s); errno = e; r; }));
    CASE("connect-unix-too-long", ({ int s = socket(AF_UNIX, SOCK_STREAM, 0); char a[200]; memset(a, 'a', sizeof a); a[0] = AF_UNIX; a[1] = 0; long r = connect(s, (struct sockaddr *)a, sizeof a); int e = errno; close(s); errno = e; r; }));
    CASE("connect-unix-twice", ({ int srv = unix_server(SOCK_STREAM, "srv"); int s = socket(AF_UNIX, SOCK_STREAM, 0); struct sockaddr_un a; socklen_t l = unix_address(&a, "srv"); connect(s, (struct sockaddr *)&a, l); long r = connect(s, (struct sockaddr *)&a, l); int e = errno; close(s); close(srv); errno = e; r; }));
    CASE("connect-unix-dgram", ({ int s = unix_server(SOCK_DGRAM, "srv"); long r = unix_connect(SOCK_DGRAM, "srv"); int e = errno; close(s); errno = e; r; }));
    CASE("connect-unix-unspec", ({ int s = socket(AF_UNIX, SOCK_DGRAM, 0); struct sockaddr a = { AF_UNSPEC }; long r = connect(s, &a, sizeof a); int e = errno; close(s); errno = e; r; }));
    CASE("bind-unix-new", unix_bind("new"));
    CASE("bind-unix-f", unix_bind("f"));
    CASE("bind-unix-dot", unix_bind("."));
    CASE("bind-unix-root", unix_bind("/"));
    CASE("bind-unix-new-slash", unix_bind("new/"));
    CASE("bind-unix-d-slash", unix_bind("d/"));
    CASE("bind-unix-missing-sub", unix_bind("missing/x"));
    CASE("bind-unix-f-sub", unix_bind("f/x"));
    CASE("bind-unix-dl", unix_bind("dl"));
    CASE("bind-unix-twice", ({ int s = socket(AF_UNIX, SOCK_STREAM, 0); struct sockaddr_un a; socklen_t l = unix_address(&a, "new"); bind(s, (struct sockaddr *)&a, l); l = unix_address(&a, "new2"); long r = bind(s, (struct sockaddr *)&a, l); int e = errno; close(s); errno = e; r; }));
    CASE("bind-unix-abstract", ({ int s = socket(AF_UNIX, SOCK_STREAM, 0); struct sockaddr_un a = { AF_UNIX, "\0agentgate-edge-abstract" }; long r = bind(s, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + 24); int e = errno; close(s); errno = e; r; }));
    CASE("bind-unix-autobind", ({ int s = socket(AF_UNIX, SOCK_STREAM, 0); struct sockaddr_un a = { AF_UNIX, "" }; long r = bind(s, (struct sockaddr *)&a, 2); int e = errno; close(s); errno = e; r; }));
    CASE("bind-unix-short", ({ int s = socket(AF_UNIX, SOCK_STREAM, 0); struct sockaddr_un a = { AF_UNIX, "" }; long r = bind(s, (struct sockaddr *)&a, 1); int e = errno; close(s); errno = e; r; }));
    CASE("bind-unix-ro-new", unix_bind(ronew));
    CASE("sendto-unix-dgram", unix_sendto(SOCK_DGRAM, 0, "srv"));
    CASE("sendto-unix-dgram-missing", unix_sendto(SOCK_DGRAM, 0, "missing"));
    CASE("sendto-unix-dgram-file", unix_sendto(SOCK_DGRAM, 0, "f"));
    CASE("sendto-unix-dgram-connected-other", unix_sendto(SOCK_DGRAM, 1, "missing"));
    CASE("sendto-unix-stream-connected", unix_sendto(SOCK_STREAM, 1, "srv"));
    CASE("sendto-unix-stream-connected-missing", unix_sendto(SOCK_STREAM, 1, "missing"));
    CASE("sendto-unix-stream-unconnected", unix_sendto(SOCK_STREAM, 0, "srv"));
    CASE("sendto-unix-stream-unconnected-missing", unix_sendto(SOCK_STREAM, 0, "missing"));
    CASE("sendto-unix-stream-unconnected-noaddr", unix_sendto(SOCK_STREAM, 0, NULL));
    CASE("sendto-unix-seqpacket-connected", unix_sendto(SOCK_SEQPACKET, 1, "missing"));
    CASE("sendto-unix-seqpacket-unconnected", unix_sendto(SOCK_SEQPACKET, 0, "srv"));
    CASE("sendmsg-unix-stream-connected", unix_sendmsg_named(SOCK_STREAM, 1, "srv"));
    CASE("sendmsg-unix-stream-unconnected", unix_sendmsg_named(SOCK_STREAM, 0, "srv"));
    CASE("sendmsg-unix-dgram", unix_sendmsg_named(SOCK_DGRAM, 0, "srv"));
    CASE("sendmsg-unix-dgram-wrong-type", ({ int s = unix_server(SOCK_STREAM, "srv2"); long r = unix_sendmsg_named(SOCK_DGRAM, 0, "srv2"); int e = errno; close(s); errno = e; r; }));
    CASE("sendmmsg-unix-dgram", ({ int srv = unix_server(SOCK_DGRAM, "srv"); int s = socket(AF_UNIX, SOCK_DGRAM, 0); struct sockaddr_un a; socklen_t l = unix_address(&a, "srv"); struct iovec v = { "hi", 2 }; struct mmsghdr m[2]; memset(m, 0, sizeof m); for (int i = 0; i < 2; i++) { m[i].msg_hdr.msg_name = &a; m[i].msg_hdr.msg_namelen = l; m[i].msg_hdr.msg_iov = &v; m[i].msg_hdr.msg_iovlen = 1; } long r = sendmmsg(s, m, 2, MSG_DONTWAIT); int e = errno; out(" lens=%u,%u", m[0].msg_len, m[1].msg_len); close(s); close(srv); errno = e; r; }));
    CASE("sendmmsg-unix-dgram-missing", ({ int s = socket(AF_UNIX, SOCK_DGRAM, 0); struct sockaddr_un a; socklen_t l = unix_address(&a, "missing"); struct iovec v = { "hi", 2 }; struct mmsghdr m[1]; memset(m, 0, sizeof m); m[0].msg_hdr.msg_name = &a; m[0].msg_hdr.msg_namelen = l; m[0].msg_hdr.msg_iov = &v; m[0].msg_hdr.msg_iovlen = 1; long r = sendmmsg(s, m, 1, MSG_DONTWAIT); int e = errno; close(s); errno = e; r; }));
    CASE("connect-unix-longname", unix_connect(SOCK_STREAM, long_name));
    CASE("sendto-unix-long-addrlen", ({ int s = socket(AF_UNIX, SOCK_DGRAM, 0); char a[200] = { AF_UNIX }; long r = sendto(s, "hi", 2, 0, (struct sockaddr *)a, sizeof a); int e = errno; close(s); errno = e; r; }));

    // ---- connect, bind, sendto: inet
    struct sockaddr_in open_port = loopback(inet_port), closed_address = loopback(closed_port), udp_address = loopback(udp_port);
    struct sockaddr_in6 six;
    memset(&six, 0, sizeof six);
    six.sin6_family = AF_INET6;
    six.sin6_addr = in6addr_loopback;
    six.sin6_port = htons((uint16_t)inet_port);
    CASE("connect-inet", inet_connect(SOCK_STREAM, (struct sockaddr *)&open_port, sizeof open_port));
    CASE("connect-inet-refused", inet_connect(SOCK_STREAM, (struct sockaddr *)&closed_address, sizeof closed_address));
    CASE("connect-inet-short", inet_connect(SOCK_STREAM, (struct sockaddr *)&open_port, 4));
    CASE("connect-inet-family6", inet_connect(SOCK_STREAM, (struct sockaddr *)&six, sizeof six));
    CASE("connect-inet-udp", inet_connect(SOCK_DGRAM, (struct sockaddr *)&udp_address, sizeof udp_address));
    CASE("connect-inet-unspec", ({ struct sockaddr a = { AF_UNSPEC }; inet_connect(SOCK_DGRAM, &a, sizeof a); }));
    CASE("connect-inet-twice", ({ int s = socket(AF_INET, SOCK_STREAM, 0); connect(s, (struct sockaddr *)&open_port, sizeof open_port); long r = connect(s, (struct sockaddr *)&open_port, sizeof open_port); int e = errno; close(s); errno = e; r; }));
    CASE("connect-inet-badfd", connect(999, (struct sockaddr *)&open_port, sizeof open_port));
    CASE("connect-inet-notsock", ({ int fd = open("f", O_RDONLY); long r = connect(fd, (struct sockaddr *)&open_port, sizeof open_port); int e = errno; close(fd); errno = e; r; }));
    CASE("sendto-inet-udp", inet_sendto(SOCK_DGRAM, (struct sockaddr *)&udp_address, sizeof udp_address, 0));
    CASE("sendto-inet-udp-short", inet_sendto(SOCK_DGRAM, (struct sockaddr *)&udp_address, 4, 0));
    CASE("sendto-inet-udp-connected", inet_sendto(SOCK_DGRAM, (struct sockaddr *)&udp_address, sizeof udp_address, 1));
    CASE("sendto-inet-tcp-unconnected", inet_sendto(SOCK_STREAM, (struct sockaddr *)&open_port, sizeof open_port, 0));
    CASE("sendto-inet-tcp-connected", inet_sendto(SOCK_STREAM, (struct sockaddr *)&closed_address, sizeof closed_address, 1));
    CASE("bind-inet", inet_bind((struct sockaddr *)&(struct sockaddr_in){ AF_INET, 0, { htonl(INADDR_LOOPBACK) } }, sizeof(struct sockaddr_in), 0));
    CASE("bind-inet-twice", inet_bind((struct sockaddr *)&(struct sockaddr_in){ AF_INET, 0, { htonl(INADDR_LOOPBACK) } }, sizeof(struct sockaddr_in), 1));
    CASE("bind-inet-in-use", inet_bind((struct sockaddr *)&open_port, sizeof open_port, 0));
    CASE("bind-inet-nonlocal", inet_bind((struct sockaddr *)&(struct sockaddr_in){ AF_INET, 0, { htonl(0x0afffffe) } }, sizeof(struct sockaddr_in), 0));
    CASE("bind-inet-short", inet_bind((struct sockaddr *)&open_port, 4, 0));

    // ---- sends the supervisor performs: SIGPIPE, long blocking sends, credentials
    epipe_case("send-epipe-sigpipe-default", 1, 0, 0);
    epipe_case("send-epipe-sigpipe-handler", 1, 0, 1);
    epipe_case("send-epipe-nosignal", 1, 1, 1);
    big_send_case("send-4mib-unix-stream", AF_UNIX);
    big_send_case("send-4mib-tcp", AF_INET);
    passcred_case("passcred-stream", SOCK_STREAM);
    passcred_case("passcred-dgram", SOCK_DGRAM);

    // ---- execve, execveat
    exec_case("exec-script", "script-ok", AT_FDCWD, 0, 0);
    exec_case("exec-script-missing-interpreter", "script-missing", AT_FDCWD, 0, 0);
    exec_case("exec-script-dir-interpreter", "script-dir", AT_FDCWD, 0, 0);
    exec_case("exec-script-empty-interpreter", "script-empty", AT_FDCWD, 0, 0);
    exec_case("exec-garbage", "garbage", AT_FDCWD, 0, 0);
    exec_case("exec-not-executable", "noexec", AT_FDCWD, 0, 0);
    exec_case("exec-dir", "d", AT_FDCWD, 0, 0);
    exec_case("exec-dot", ".", AT_FDCWD, 0, 0);
    exec_case("exec-empty", "", AT_FDCWD, 0, 0);
    exec_case("exec-missing", "missing", AT_FDCWD, 0, 0);
    exec_case("exec-f-slash", "script-ok/", AT_FDCWD, 0, 0);
    exec_case("exec-loop", "loop", AT_FDCWD, 0, 0);
    exec_case("exec-dl", "dl", AT_FDCWD, 0, 0);
    exec_case("exec-longname", long_name, AT_FDCWD, 0, 0);
    exec_case("exec-longpath", long_path, AT_FDCWD, 0, 0);
    exec_case("execveat-empty-path", "", -2, AT_EMPTY_PATH, 1);
    exec_case("execveat-empty-no-flag", "", -2, 0, 1);
    exec_case("execveat-dirfd", "script-ok", -3, 0, 1);
    exec_case("execveat-nofollow-link", "ln", AT_FDCWD, AT_SYMLINK_NOFOLLOW, 1);
    exec_case("execveat-bad-flags", "script-ok", AT_FDCWD, 0x2, 1);
    exec_case("execveat-badfd", "script-ok", 999, 0, 1);
    shell_case("sh-script-missing-interpreter", "./script-missing");

    // ---- terminals
    tty_case("tty-implicit-controlling-terminal", 0);
    tty_case("tty-tiocsctty", 1);
    tty_case("tty-noctty", 2);

    // ---- clone3: its flags live in memory the filter can't read (see SyscallTable)
    CASE("clone3-null", syscall(435, NULL, 0));
    CASE("clone3-small", ({ char args[32] = { 0 }; syscall(435, args, sizeof args); }));
    return 0;
}
"""#
}
