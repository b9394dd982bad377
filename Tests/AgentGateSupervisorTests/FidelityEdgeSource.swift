// The C source of the fidelity edge program: every trapped syscall family against every edge
// of path and argument handling, one line per case (what the call returned and what it left
// behind). FidelityEdgeTests runs it bare and supervised and compares the two outputs.

enum FidelityEdgeSource {
    static let program = programSupport + "\n" + programCases

    /// The first half of the source: the helpers every case uses.
    static let programSupport = #"""
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
#include <sys/resource.h>
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
    // A scoped lookup across ".." fails with EAGAIN when anything on the machine renames or
    // mounts meanwhile; openat2(2) says to retry, as this program does, bare or supervised.
    long rc = syscall(SYS_openat2, dirfd, path, &big, size);
    for (int retry = 0; rc < 0 && errno == EAGAIN && (resolve & (RESOLVE_IN_ROOT | RESOLVE_BENEATH))
         && !(resolve & RESOLVE_CACHED) && retry < 8; retry++)
        rc = syscall(SYS_openat2, dirfd, path, &big, size);
    return rc;
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
    // binfmt_script reads 256 bytes: a name with no end in them is "truncated" (ENOEXEC); a
    // line cut there keeps its argument up to byte 255; a NUL ends the argument (found by a
    // review on 2026-12-07).
    char text[400];
    memset(text, 'a', sizeof text); text[0] = '#'; text[1] = '!'; text[2] = '/'; text[300] = 0;
    put("script-long", text);
    chmod("script-long", 0755);
    text[300] = '\n'; text[301] = 0;
    put("script-long-newline", text);
    chmod("script-long-newline", 0755);
    memset(text, 'x', sizeof text); memcpy(text, "#!/bin/sh ", 10); text[300] = 0;
    put("script-long-argument", text);
    chmod("script-long-argument", 0755);
    put("script-blank", "#!   \t \nexit 7\n");
    chmod("script-blank", 0755);
    {
        int fd = open("script-nul", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
        if (fd >= 0) { if (write(fd, "#!/bin/sh \0abc\nexit 7\n", 22) < 0) {} close(fd); }
        chmod("script-nul", 0755);
    }
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

// As passcred_case, with an fd passed along, from a child that dropped from root to another
// user (`drop`: a root supervisor sends for it as that user, without root's capabilities), and
// with SCM_CREDENTIALS naming the child itself (`explicit`) or none (the kernel attaches them).
static void passcred_child_case(const char *name, int drop, int explicit) {
    if (!begin(name)) return;
    if (drop && getuid() != 0) { out(" not-root"); finish(0, 0); return; }
    int sv[2], report[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    int one = 1;
    setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    if (pipe(report) != 0) return;
    pid_t child = fork();
    if (child == 0) {
        if (drop && (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0)) _exit(1);
        union { char buf[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))]; struct cmsghdr align; } rights;
        memset(&rights, 0, sizeof rights);
        struct iovec v = { "hi", 2 };
        struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1, .msg_control = rights.buf,
                            .msg_controllen = explicit ? sizeof rights.buf : CMSG_SPACE(sizeof(int)) };
        struct cmsghdr *h = CMSG_FIRSTHDR(&m);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int));
        int passed = 0;
        memcpy(CMSG_DATA(h), &passed, sizeof passed);
        if (explicit) {
            struct ucred own = { getpid(), getuid(), getgid() };
            h = CMSG_NXTHDR(&m, h);
            h->cmsg_level = SOL_SOCKET;
            h->cmsg_type = SCM_CREDENTIALS;
            h->cmsg_len = CMSG_LEN(sizeof own);
            memcpy(CMSG_DATA(h), &own, sizeof own);
        }
        int result[2] = { (int)sendmsg(sv[0], &m, 0), errno };
        if (write(report[1], result, sizeof result) < 0) {}
        _exit(0);
    }
    int result[2] = { -1, 0 };
    if (read(report[0], result, sizeof result) != sizeof result) result[1] = EIO;
    waitpid(child, NULL, 0);
    char data[8];
    union { char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    struct iovec rv = { data, sizeof data };
    struct msghdr r = { .msg_iov = &rv, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf };
    ssize_t n = recvmsg(sv[1], &r, MSG_DONTWAIT);
    int fds = 0;
    for (struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&r) : NULL; c; c = CMSG_NXTHDR(&r, c)) {
        if (c->cmsg_type == SCM_CREDENTIALS) {
            struct ucred cred;
            memcpy(&cred, CMSG_DATA(c), sizeof cred);
            out(" pid=%s uid=%s gid=%s", cred.pid == child ? "sender" : "other", cred.uid == (drop ? 65534 : getuid()) ? "sender" : "other",
                cred.gid == (drop ? 65534 : getgid()) ? "sender" : "other");
        } else if (c->cmsg_type == SCM_RIGHTS) {
            int fd;
            memcpy(&fd, CMSG_DATA(c), sizeof fd);
            fds++;
            close(fd);
        }
    }
    out(" fds=%d", fds);
    close(sv[0]);
    close(sv[1]);
    close(report[0]);
    close(report[1]);
    finish(result[0], result[1]);
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
"""#
}
