// The C source of the escape helper: attacks on the supervisor itself, on processes outside the
// session, and through kernel interfaces that act without an open or a connect. Compiled at test
// time with Harness.compile. Every mode prints what it obtained ("ATTACK-SUCCEEDED …", file
// contents, results) so a test can tell whether the forbidden effect happened.

enum EscapeSources {
    static let helper = #"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/fs.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/prctl.h>
#include <sys/xattr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif

// struct sched_attr (include/uapi/linux/sched/types.h, which clashes with glibc's sched.h).
struct sched_attr_v1 {
    uint32_t size, sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime, sched_deadline, sched_period;
    uint32_t sched_util_min, sched_util_max;
};

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

static void result(const char *op, long rc) {
    say("op=%s rc=%ld errno=%d", op, rc, rc < 0 ? errno : 0);
}

static int unix_listen(const char *path) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    unlink(path);
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 8) != 0) { result("listen", -1); return -1; }
    return s;
}

static int unix_connect(const char *path) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    long rc = connect(s, (struct sockaddr *)&a, sizeof a);
    result("connect", rc);
    return rc == 0 ? s : -1;
}

static pid_t pidfd_pid(int pidfd) {
    char path[64], text[2048];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
    int f = open(path, O_RDONLY);
    if (f < 0) return -1;
    ssize_t n = read(f, text, sizeof text - 1);
    close(f);
    if (n <= 0) return -1;
    text[n] = 0;
    char *p = strstr(text, "Pid:");
    return p ? (pid_t)strtol(p + 4, NULL, 10) : -1;
}

// Copies every fd of the process behind `pidfd` and reports what it got: a seccomp listener
// (the supervisor's) or the content of a file whose path contains `secret`.
static int steal(int pidfd, const char *secret) {
    int stolen = 0, found = 0;
    for (int fd = 0; fd < 512; fd++) {
        int copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
        if (copy < 0) continue;
        stolen++;
        char link[64], target[4096];
        snprintf(link, sizeof link, "/proc/self/fd/%d", copy);
        ssize_t n = readlink(link, target, sizeof target - 1);
        target[n > 0 ? n : 0] = 0;
        if (strstr(target, "seccomp")) { say("ATTACK-SUCCEEDED stole the seccomp listener (%s)", target); found = 1; }
        if (secret && strstr(target, secret)) {
            char buf[256];
            lseek(copy, 0, SEEK_SET);
            ssize_t r = read(copy, buf, sizeof buf - 1);
            if (r > 0) { buf[r] = 0; say("ATTACK-SUCCEEDED stole %s: GOT:%s", target, buf); found = 1; }
        }
        close(copy);
    }
    say("stole %d fds", stolen);
    return found;
}

static int peer_pidfd(int s) {
    int pidfd = -1;
    socklen_t len = sizeof pidfd;
    long rc = getsockopt(s, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len);
    result("SO_PEERPIDFD", rc);
    if (rc != 0) return -1;
    say("peer pidfd names pid %d (my pid %d, parent %d)", pidfd_pid(pidfd), getpid(), getppid());
    return pidfd;
}

static void peer_credentials(int s, pid_t expected) {
    struct ucred cred;
    socklen_t len = sizeof cred;
    long rc = getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &len);
    result("SO_PEERCRED", rc);
    if (rc == 0) say("SO_PEERCRED pid=%d expected=%d %s", cred.pid, expected, cred.pid == expected ? "PEERCRED-OK" : "PEERCRED-MISMATCH");
}

// For the exec-check modes: threads that exec, open, or keep the process busy.
static const char *thread_path;
static void *exec_from_thread(void *arg) {
    (void)arg;
    char *args[] = { "echo", "exec-from-thread-ran", NULL };
    execv(thread_path, args);
    say("execv from thread failed: errno=%d", errno);
    _exit(1);
}
static void *open_from_thread(void *arg) {
    (void)arg;
    // A fixed wait for the leader to be gone: seeing that would take another trapped call.
    usleep(100000);
    int fd = open(thread_path, O_RDONLY);
    say("open from thread after the leader exited: rc=%d", fd);
    _exit(fd >= 0 ? 0 : 1);
}
static void *busy_opening(void *arg) {
    (void)arg;
    for (;;) { int fd = open("/dev/null", O_RDONLY); if (fd >= 0) close(fd); }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) { say("usage: escape MODE ..."); return 2; }
    const char *m = argv[1];
    const char *a = argc > 2 ? argv[2] : NULL, *b = argc > 3 ? argv[3] : NULL;
    long rc;

    if (!strcmp(m, "peer-steal")) {
        // a: socket path; b: a file the client opens and keeps open (may be denied). The server
        // asks the kernel who its peer is and copies every fd out of that process.
        int s = unix_listen(a);
        if (s < 0) return 3;
        pid_t child = fork();
        if (child == 0) {
            int keep = b ? open(b, O_RDONLY) : -1;
            (void)keep;
            int c = unix_connect(a);
            if (c >= 0) { ssize_t w = write(c, "x", 1); (void)w; }
            sleep(3); // the peer stays connected while the parent inspects it
            _exit(0);
        }
        int conn = accept(s, NULL, NULL);
        result("accept", conn);
        char x;
        ssize_t r = read(conn, &x, 1);
        (void)r;
        peer_credentials(conn, child);
        int pidfd = peer_pidfd(conn);
        int found = pidfd >= 0 ? steal(pidfd, b) : 0;
        if (pidfd >= 0) {
            rc = syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0);
            result("pidfd_send_signal(0)", rc);
        }
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        return found ? 0 : 1;
    }
    if (!strcmp(m, "peer-steal-client")) {
        // a: the socket of a server outside the session; b: the secret it holds open.
        int c = unix_connect(a);
        if (c < 0) return 3;
        int pidfd = peer_pidfd(c);
        if (pidfd < 0) return 1;
        int found = steal(pidfd, b);
        rc = syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
        result("pidfd_send_signal(SIGKILL)", rc);
        return found ? 0 : 1;
    }
    if (!strcmp(m, "hold-serve")) {
        // a: socket path; b: a file to hold open. Serves until killed.
        int keep = open(b, O_RDONLY);
        result("open secret", keep);
        int s = unix_listen(a);
        if (s < 0) return 3;
        say("READY");
        for (;;) { int c = accept(s, NULL, NULL); if (c >= 0) close(c); }
    }
    if (!strcmp(m, "scm-pidfd")) {
        // a: a secret to hold open. Asks for SCM_PIDFD, sends itself a message (sendmsg is
        // performed by the supervisor) and copies the fds of whoever the kernel says sent it.
        int keep = a ? open(a, O_RDONLY) : -1;
        (void)keep;
        int sv[2];
        socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
        int one = 1;
        rc = setsockopt(sv[0], SOL_SOCKET, SO_PASSPIDFD, &one, sizeof one);
        result("SO_PASSPIDFD", rc);
        struct iovec v = { "m", 1 };
        struct msghdr out = { .msg_iov = &v, .msg_iovlen = 1 };
        rc = sendmsg(sv[1], &out, 0);
        result("sendmsg", rc);
        char data[8];
        union { struct cmsghdr h; char buf[CMSG_SPACE(16) * 2]; } control;
        struct iovec in_v = { data, sizeof data };
        struct msghdr in = { .msg_iov = &in_v, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf };
        rc = recvmsg(sv[0], &in, 0);
        result("recvmsg", rc);
        int found = 0;
        for (struct cmsghdr *h = CMSG_FIRSTHDR(&in); h; h = CMSG_NXTHDR(&in, h)) {
            if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_PIDFD) {
                int pidfd;
                memcpy(&pidfd, CMSG_DATA(h), sizeof pidfd);
                say("SCM_PIDFD names pid %d (my pid %d)", pidfd_pid(pidfd), getpid());
                found = steal(pidfd, a);
            }
        }
        return found ? 0 : 1;
    }
    if (!strcmp(m, "scm-credentials")) {
        // Which pid does a receiver with SO_PASSCRED see for a message this process sent?
        int sv[2];
        socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
        int one = 1;
        setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
        struct iovec v = { "m", 1 };
        struct msghdr out = { .msg_iov = &v, .msg_iovlen = 1 };
        rc = sendmsg(sv[1], &out, 0);
        result("sendmsg", rc);
        char data[8];
        union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(struct ucred))]; } control;
        struct iovec in_v = { data, sizeof data };
        struct msghdr in = { .msg_iov = &in_v, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf };
        rc = recvmsg(sv[0], &in, 0);
        result("recvmsg", rc);
        for (struct cmsghdr *h = CMSG_FIRSTHDR(&in); h; h = CMSG_NXTHDR(&in, h)) {
            if (h->cmsg_type == SCM_CREDENTIALS) {
                struct ucred c;
                memcpy(&c, CMSG_DATA(h), sizeof c);
                say("SCM_CREDENTIALS pid=%d %s", c.pid, c.pid == getpid() ? "CREDS-OK" : "CREDS-MISMATCH");
            }
        }
        // An explicit SCM_CREDENTIALS naming someone else (pid 1) must fail as it would bare.
        union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(struct ucred))]; } forged;
        memset(&forged, 0, sizeof forged);
        struct msghdr lie = { .msg_iov = &v, .msg_iovlen = 1, .msg_control = forged.buf, .msg_controllen = sizeof forged.buf };
        struct cmsghdr *h = CMSG_FIRSTHDR(&lie);
        h->cmsg_level = SOL_SOCKET; h->cmsg_type = SCM_CREDENTIALS; h->cmsg_len = CMSG_LEN(sizeof(struct ucred));
        struct ucred claim = { .pid = 1, .uid = getuid(), .gid = getgid() };
        memcpy(CMSG_DATA(h), &claim, sizeof claim);
        rc = sendmsg(sv[1], &lie, 0);
        result("sendmsg-forged-pid", rc);
        return 0;
    }
    if (!strcmp(m, "kill")) {
        rc = kill((pid_t)atoi(a), atoi(b)); result("kill", rc);
        return rc == 0 ? 0 : 1;
    }
    if (!strcmp(m, "pidfd-open")) {
        int fd = (int)syscall(SYS_pidfd_open, (pid_t)atoi(a), 0); result("pidfd_open", fd);
        if (fd >= 0) { rc = syscall(SYS_pidfd_send_signal, fd, atoi(b), NULL, 0); result("pidfd_send_signal", rc); }
        return fd >= 0 ? 0 : 1;
    }
    if (!strcmp(m, "procdir-signal")) {
        // a: pid; b: signal. pidfd_send_signal also takes a /proc/PID directory fd.
        char path[64];
        snprintf(path, sizeof path, "/proc/%s", a);
        int fd = open(path, O_RDONLY | O_DIRECTORY); result("open /proc/PID", fd);
        if (fd < 0) return 1;
        rc = syscall(SYS_pidfd_send_signal, fd, atoi(b), NULL, 0); result("pidfd_send_signal", rc);
        return rc == 0 ? 0 : 1;
    }
    if (!strcmp(m, "proc-mem")) {
        // a: pid. Reads the process's environment and memory map through /proc.
        char path[64];
        snprintf(path, sizeof path, "/proc/%s/environ", a);
        int fd = open(path, O_RDONLY); result("open environ", fd);
        if (fd >= 0) { char buf[4096]; ssize_t n = read(fd, buf, sizeof buf - 1); if (n > 0) { buf[n] = 0; for (ssize_t i = 0; i < n; i++) if (!buf[i]) buf[i] = ' '; say("GOT:%s", buf); } }
        snprintf(path, sizeof path, "/proc/%s/mem", a);
        int mem = open(path, O_RDWR); result("open mem", mem);
        return fd >= 0 || mem >= 0 ? 0 : 1;
    }
    if (!strcmp(m, "acct")) {
        // a: the file the kernel would append accounting records to.
        rc = acct(a); result("acct", rc);
        if (rc == 0) { pid_t c = fork(); if (c == 0) _exit(0); waitpid(c, NULL, 0); acct(NULL); }
        return rc == 0 ? 0 : 1;
    }
    if (!strcmp(m, "sock-packet")) {
        // a: a UDP port on 127.0.0.1. SOCK_PACKET with AF_INET is a packet socket: send a raw
        // Ethernet frame carrying a UDP datagram to that port, past any connect or sendto.
        int s = socket(AF_INET, SOCK_PACKET, htons(ETH_P_ALL));
        result("socket(AF_INET, SOCK_PACKET)", s);
        if (s < 0) return 1;
        unsigned char frame[14 + 20 + 8 + 16];
        memset(frame, 0, sizeof frame);
        frame[12] = 0x08; frame[13] = 0x00; // IPv4; lo has all-zero MAC addresses
        struct iphdr *ip = (struct iphdr *)(frame + 14);
        ip->version = 4; ip->ihl = 5; ip->ttl = 64; ip->protocol = IPPROTO_UDP;
        ip->tot_len = htons(20 + 8 + 16);
        ip->saddr = htonl(0x7f000001); ip->daddr = htonl(0x7f000001);
        uint32_t sum = 0;
        uint16_t *w = (uint16_t *)ip;
        for (int i = 0; i < 10; i++) sum += w[i];
        while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
        ip->check = (uint16_t)~sum;
        struct udphdr *udp = (struct udphdr *)(frame + 34);
        udp->source = htons(40000); udp->dest = htons((uint16_t)atoi(a)); udp->len = htons(8 + 16);
        memcpy(frame + 42, "RAW-FRAME-ARRIVE", 16);
        struct sockaddr out = { .sa_family = AF_INET };
        strcpy(out.sa_data, "lo");
        rc = sendto(s, frame, sizeof frame, 0, &out, sizeof out);
        result("sendto", rc);
        return rc > 0 ? 0 : 1;
    }
    if (!strcmp(m, "fanotify")) {
        // a: a directory to watch; b: a file in it to open. The event hands over an fd of
        // whatever file anyone opens there.
        int fan = fanotify_init(FAN_CLASS_NOTIF, O_RDONLY);
        result("fanotify_init", fan);
        if (fan < 0) return 1;
        rc = fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_OPEN, AT_FDCWD, a);
        result("fanotify_mark", rc);
        pid_t c = fork();
        if (c == 0) { int fd = open(b, O_RDONLY); (void)fd; _exit(0); }
        waitpid(c, NULL, 0);
        char buffer[4096];
        ssize_t n = read(fan, buffer, sizeof buffer);
        for (struct fanotify_event_metadata *e = (void *)buffer; n > 0 && FAN_EVENT_OK(e, n); e = FAN_EVENT_NEXT(e, n)) {
            if (e->fd < 0) continue;
            char link[64], target[4096];
            snprintf(link, sizeof link, "/proc/self/fd/%d", e->fd);
            ssize_t l = readlink(link, target, sizeof target - 1);
            target[l > 0 ? l : 0] = 0;
            if (strstr(target, b)) {
                char content[256];
                ssize_t r = read(e->fd, content, sizeof content - 1);
                if (r > 0) { content[r] = 0; say("ATTACK-SUCCEEDED fanotify fd of %s: GOT:%s", target, content); return 0; }
            }
            close(e->fd);
        }
        return 1;
    }
    if (!strcmp(m, "netlink")) {
        // a: a netlink protocol number (0 route, 12 netfilter, …).
        int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, atoi(a));
        result("socket(AF_NETLINK)", s);
        return s >= 0 ? 0 : 1;
    }
    if (!strcmp(m, "execv")) {
        // a: the path to exec; argv[3...]: its argv (argv[0] first).
        execv(a, argv + 3);
        result("execv", -1);
        return 126;
    }
    if (!strcmp(m, "same-image-race")) {
        // Run as `ld.so escape same-image-race N DIR ALLOWED LOADER FORBIDDEN`, so this process's
        // image is the loader. Children exec DIR/link, flipped (RENAME_EXCHANGE) between ALLOWED
        // and LOADER: decided on ALLOWED, the kernel may load the loader again, which then runs
        // argv[1], FORBIDDEN, never decided.
        int n = atoi(a);
        if (chdir(b) != 0) { result("chdir", -1); return 3; }
        unlink("link"); unlink("other");
        if (symlink(argv[4], "link") != 0 || symlink(argv[5], "other") != 0) { result("symlink", -1); return 3; }
        pid_t flipper = fork();
        if (flipper == 0) { for (;;) syscall(SYS_renameat2, AT_FDCWD, "link", AT_FDCWD, "other", 2 /* RENAME_EXCHANGE */); }
        for (int i = 0; i < n; i++) {
            pid_t child = fork();
            if (child == 0) { char *av[] = { "x", argv[6], NULL }; execv("link", av); _exit(126); }
            int status;
            waitpid(child, &status, 0);
        }
        kill(flipper, SIGKILL);
        waitpid(flipper, NULL, 0);
        return 0;
    }
    if (!strcmp(m, "closefds")) {
        // Runs argv[2...] with only fds 0-2: a process it leaves behind then holds nothing of
        // the caller's (the test runner waits for every holder of its own descriptors).
        for (int fd = 3; fd < 4096; fd++) close(fd);
        execvp(argv[2], argv + 2);
        result("exec", -1);
        return 127;
    }
    if (!strcmp(m, "fsetown")) {
        // a: a pid to make the owner of a pipe, with F_SETSIG SIGKILL: one write kills it.
        int p[2];
        if (pipe(p) != 0) return 3;
        rc = fcntl(p[0], F_SETOWN, atoi(a)); result("F_SETOWN", rc);
        if (rc != 0) return 1;
        fcntl(p[0], F_SETSIG, SIGKILL);
        fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_ASYNC);
        ssize_t w = write(p[1], "x", 1); (void)w;
        usleep(100000); // the window for the owner's signal to land: an absence can't be polled
        return 0;
    }
    if (!strcmp(m, "tiocvhangup")) {
        // The ioctl that does what vhangup(2) does, on a new pseudo-terminal.
        int master = posix_openpt(O_RDWR | O_NOCTTY);
        if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) { result("posix_openpt", -1); return 3; }
        int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
        result("open pts", slave);
        rc = ioctl(slave, 0x5437 /* TIOCVHANGUP */, 0); result("TIOCVHANGUP", rc);
        return rc == 0 ? 0 : 1;
    }
    if (!strcmp(m, "iptables-replace")) {
        // IPT_SO_SET_REPLACE on an ordinary UDP socket: the legacy iptables interface. Garbage
        // reaches the table code (EINVAL) only with CAP_NET_ADMIN; refused, it's EPERM.
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        char table[256];
        memset(table, 0, sizeof table);
        strcpy(table, "nat");
        rc = setsockopt(s, SOL_IP, 64 /* IPT_SO_SET_REPLACE */, table, sizeof table);
        result("IPT_SO_SET_REPLACE", rc);
        return 0;
    }
    if (!strcmp(m, "netlink-linkdown")) {
        // a: an interface; b: "sendto" or "send". RTM_NEWLINK clearing IFF_UP.
        int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        struct { struct nlmsghdr h; struct ifinfomsg i; } msg;
        memset(&msg, 0, sizeof msg);
        msg.h.nlmsg_len = sizeof msg; msg.h.nlmsg_type = RTM_NEWLINK; msg.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
        msg.i.ifi_index = (int)if_nametoindex(a); msg.i.ifi_change = IFF_UP; msg.i.ifi_flags = 0;
        struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
        rc = !strcmp(b, "send") ? send(s, &msg, sizeof msg, 0) : sendto(s, &msg, sizeof msg, 0, (struct sockaddr *)&kernel, sizeof kernel);
        result(b, rc);
        char buffer[4096];
        ssize_t n = recv(s, buffer, sizeof buffer, 0);
        struct nlmsghdr *reply = (struct nlmsghdr *)buffer;
        if (n > 0 && reply->nlmsg_type == NLMSG_ERROR) say("ack error=%d", ((struct nlmsgerr *)NLMSG_DATA(reply))->error);
        return 0;
    }
    if (!strcmp(m, "prctl-mm")) {
        // PR_SET_MM rewrites what /proc says the image, its argv and its memory map are.
        unsigned int size = 0;
        rc = prctl(PR_SET_MM, 15 /* PR_SET_MM_MAP_SIZE */, &size, 0, 0); result("PR_SET_MM", rc);
        return rc == 0 ? 0 : 1;
    }
    if (!strcmp(m, "core-limit")) {
        struct rlimit none = { RLIM_INFINITY, RLIM_INFINITY };
        rc = setrlimit(RLIMIT_CORE, &none); result("setrlimit(RLIMIT_CORE)", rc);
        long raw = syscall(SYS_setrlimit, RLIMIT_CORE, &none); result("raw setrlimit(RLIMIT_CORE)", raw);
        // The kernel reads the resource as an unsigned int: high bits are ignored, not refused.
        long wide = syscall(SYS_prlimit64, 0, (1UL << 32) | RLIMIT_CORE, &none, NULL);
        result("prlimit64(RLIMIT_CORE, high bits set)", wide);
        struct rlimit zero = { 0, 0 };
        long lower = setrlimit(RLIMIT_CORE, &zero); result("setrlimit(RLIMIT_CORE, 0)", lower);
        return 0;
    }
    if (!strcmp(m, "lease-hold")) {
        // a: a file; b: seconds. Holds a read lease, taking it again whenever it is broken.
        // Creates a.held once the lease is first held, for the caller to poll for.
        int fd = open(a, O_RDONLY), announced = 0;
        time_t end = time(NULL) + atoi(b);
        signal(SIGIO, SIG_IGN);
        while (time(NULL) < end) {
            if (fcntl(fd, F_GETLEASE) == F_UNLCK) { close(fd); fd = open(a, O_RDONLY); fcntl(fd, F_SETLEASE, F_RDLCK); }
            if (!announced && fcntl(fd, F_GETLEASE) == F_RDLCK) {
                char held[4096];
                snprintf(held, sizeof held, "%s.held", a);
                close(open(held, O_WRONLY | O_CREAT, 0644));
                announced = 1;
            }
            usleep(20000);
        }
        return 0;
    }
    if (!strcmp(m, "nofollow-slash")) {
        // a: a symlink to a directory. "link/" makes even the no-follow calls act on the directory.
        char slashed[4096];
        snprintf(slashed, sizeof slashed, "%s/", a);
        rc = syscall(452 /* fchmodat2 */, AT_FDCWD, slashed, 0777, AT_SYMLINK_NOFOLLOW); result("fchmodat2-nofollow", rc);
        rc = lchown(slashed, 65534, 65534); result("lchown", rc);
        rc = lsetxattr(slashed, "user.agentgate", "x", 1, 0); result("lsetxattr", rc);
        struct timespec times[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
        rc = utimensat(AT_FDCWD, slashed, times, AT_SYMLINK_NOFOLLOW); result("utimensat-nofollow", rc);
        return 0;
    }
    if (!strcmp(m, "userfaultfd-device")) {
        // /dev/userfaultfd makes a userfaultfd with an ioctl (USERFAULTFD_IOC_NEW), no syscall.
        int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
        result("open /dev/userfaultfd", dev);
        if (dev < 0) return 1;
        int uffd = ioctl(dev, _IO(0xAA, 0x00), O_CLOEXEC);
        result("USERFAULTFD_IOC_NEW", uffd);
        return uffd >= 0 ? 0 : 1;
    }
    if (!strcmp(m, "sethostname")) { rc = sethostname(a, strlen(a)); result("sethostname", rc); return rc == 0 ? 0 : 1; }
    if (!strcmp(m, "settime")) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        rc = clock_settime(CLOCK_REALTIME, &now); result("clock_settime", rc);
        return rc == 0 ? 0 : 1;
    }
    if (!strcmp(m, "syslog-console")) {
        // Sets the console log level to what it already is.
        int level = 7;
        FILE *f = fopen("/proc/sys/kernel/printk", "r");
        if (f) { if (fscanf(f, "%d", &level) != 1) level = 7; fclose(f); }
        rc = klogctl(8, NULL, level); result("syslog(CONSOLE_LEVEL)", rc);
        long size = klogctl(10, NULL, 0); result("syslog(SIZE_BUFFER)", size);
        return rc == 0 ? 0 : 1;
    }
    if (!strcmp(m, "vhangup")) { rc = vhangup(); result("vhangup", rc); return rc == 0 ? 0 : 1; }
    if (!strcmp(m, "freeze")) {
        // a: a directory on the file system to freeze (and thaw at once).
        int fd = open(a, O_RDONLY | O_DIRECTORY);
        rc = ioctl(fd, FIFREEZE, 0); result("FIFREEZE", rc);
        if (rc == 0) { long t = ioctl(fd, FITHAW, 0); result("FITHAW", t); }
        return rc == 0 ? 0 : 1;
    }
    if (!strcmp(m, "memfd-exec")) {
        // a: a program to copy into a memfd; b: the memfd's name. Then fexecve.
        int src = open(a, O_RDONLY);
        int mfd = memfd_create(b, MFD_CLOEXEC);
        result("memfd_create", mfd);
        char buf[65536];
        ssize_t n;
        while ((n = read(src, buf, sizeof buf)) > 0) { ssize_t w = write(mfd, buf, (size_t)n); (void)w; }
        char *args[] = { (char *)b, NULL };
        extern char **environ;
        fexecve(mfd, args, environ);
        result("fexecve", -1);
        return 1;
    }
    if (!strcmp(m, "bind-procfd")) {
        // a: a directory; b: a socket name. Binds /proc/self/fd/K/NAME with K an fd of a.
        int dir = open(a, O_PATH | O_DIRECTORY);
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un addr = { .sun_family = AF_UNIX };
        snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%s", dir, b);
        rc = bind(s, (struct sockaddr *)&addr, sizeof addr); result("bind", rc);
        struct stat st;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", a, b);
        say("socket in %s: %s", a, stat(path, &st) == 0 && S_ISSOCK(st.st_mode) ? "yes" : "no");
        return rc == 0 ? 0 : 1;
    }
    if (!strcmp(m, "fork-many")) {
        // a: how many children to start (each sleeps 3 s). Reports how many the kernel allowed.
        int n = atoi(a), started = 0, err = 0;
        for (int i = 0; i < n; i++) {
            pid_t c = fork();
            if (c == 0) { sleep(3); _exit(0); }
            if (c < 0) { err = errno; break; }
            started++;
        }
        say("started=%d errno=%d", started, err);
        while (wait(NULL) > 0) {}
        return started == n ? 0 : 1;
    }
    if (!strcmp(m, "realtime")) {
        struct sched_param p = { .sched_priority = 1 };
        rc = sched_setscheduler(0, SCHED_FIFO, &p); result("sched_setscheduler(FIFO)", rc);
        struct sched_attr_v1 attr = { .size = sizeof attr, .sched_policy = SCHED_RR, .sched_priority = 1 };
        long rc2 = syscall(SYS_sched_setattr, 0, &attr, 0); result("sched_setattr(RR)", rc2);
        struct sched_attr_v1 normal = { .size = sizeof normal, .sched_policy = SCHED_OTHER };
        long rc3 = syscall(SYS_sched_setattr, 0, &normal, 0); result("sched_setattr(OTHER)", rc3);
        return rc == 0 || rc2 == 0 ? 0 : 1;
    }
    if (!strcmp(m, "enoexec-storm")) {
        // a: count; b: a file that is neither ELF nor a script. Each child execs it (ENOEXEC)
        // and exits.
        int n = atoi(a);
        for (int i = 0; i < n; i++) {
            pid_t c = fork();
            if (c == 0) { char *args[] = { (char *)b, NULL }; execv(b, args); _exit(errno == ENOEXEC ? 0 : 1); }
            int status = 0;
            waitpid(c, &status, 0);
        }
        say("storm done");
        return 0;
    }
    if (!strcmp(m, "bind-raw")) {
        // a: a directory. Binds a/\xff/sock: a name that isn't UTF-8.
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un addr = { .sun_family = AF_UNIX };
        snprintf(addr.sun_path, sizeof addr.sun_path, "%s/\xff/sock", a);
        rc = bind(s, (struct sockaddr *)&addr, sizeof addr); result("bind", rc);
        return rc == 0 ? 0 : 1;
    }
    if (!strcmp(m, "tun")) {
        int fd = open("/dev/net/tun", O_RDWR); result("open(/dev/net/tun)", fd);
        return fd >= 0 ? 0 : 1;
    }
    if (!strcmp(m, "uevent-connect")) {
        // Connects a uevent socket to multicast group 1, where udev's listeners are.
        int s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);
        result("socket(NETLINK_KOBJECT_UEVENT)", s);
        struct sockaddr_nl group = { .nl_family = AF_NETLINK, .nl_groups = 1 };
        rc = connect(s, (struct sockaddr *)&group, sizeof group); result("connect(group 1)", rc);
        return rc == 0 ? 0 : 1;
    }
    if (!strcmp(m, "lease-read")) {
        // a: a file. Takes a read lease on it and lets it go.
        int fd = open(a, O_RDONLY);
        rc = fcntl(fd, F_SETLEASE, F_RDLCK); result("F_SETLEASE(F_RDLCK)", rc);
        if (rc == 0) fcntl(fd, F_SETLEASE, F_UNLCK);
        return rc == 0 ? 0 : 1;
    }
    if (!strcmp(m, "blkroset")) {
        // a: a block device. Sets its read-only flag to what it already is.
        int fd = open(a, O_RDONLY); result("open", fd);
        int ro = 0;
        long got = ioctl(fd, BLKROGET, &ro); result("BLKROGET", got);
        rc = ioctl(fd, BLKROSET, &ro); result("BLKROSET", rc);
        return rc == 0 ? 0 : 1;
    }
    if (!strcmp(m, "leader-exit-exec")) {
        // a: a program (echo). The main thread exits; another thread execs a.
        thread_path = a;
        pthread_t t;
        pthread_create(&t, NULL, exec_from_thread, NULL);
        pthread_exit(NULL);
    }
    if (!strcmp(m, "failed-exec-leader-exit")) {
        // a: a file that execs with ENOEXEC; b: a file to open. The exec fails in the kernel,
        // the main thread exits, another thread opens b.
        char *args[] = { (char *)a, NULL };
        execv(a, args);
        say("exec failed: errno=%d", errno);
        thread_path = b;
        pthread_t t;
        pthread_create(&t, NULL, open_from_thread, NULL);
        pthread_exit(NULL);
    }
    if (!strcmp(m, "threaded-execs")) {
        // a: count; b: a program (true). Each child starts 8 threads that keep opening
        // /dev/null, and execs b from its main thread. Reports the children that failed.
        int n = atoi(a), failed = 0;
        for (int i = 0; i < n; i++) {
            pid_t c = fork();
            if (c == 0) {
                pthread_t t;
                for (int k = 0; k < 8; k++) pthread_create(&t, NULL, busy_opening, NULL);
                usleep(2000); // let the threads get busy: the exec must race them
                char *args[] = { (char *)b, NULL };
                execv(b, args);
                _exit(99);
            }
            int status = 0;
            waitpid(c, &status, 0);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed++;
        }
        say("threaded execs: %d of %d failed", failed, n);
        return failed == 0 ? 0 : 1;
    }
    if (!strcmp(m, "undumpable")) {
        // a: a file to open; b: a program to exec, after PR_SET_DUMPABLE 0.
        rc = prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); result("PR_SET_DUMPABLE(0)", rc);
        int fd = open(a, O_RDONLY); result("open", fd);
        char *args[] = { (char *)b, "undumpable-exec-ran", NULL };
        execv(b, args);
        result("execv", -1);
        return 1;
    }
    say("unknown mode %s", m);
    return 2;
}
"""#
}
