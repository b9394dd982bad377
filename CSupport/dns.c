// The DNS capture namespace: a helper process in a network namespace of its own where every
// IPv4 and IPv6 address is local (a `local 0.0.0.0/0` and `local ::/0` route on loopback, the
// kernel's "AnyIP"). A socket made there and connected to any resolver's address, say
// 10.255.255.53:53, reaches the forwarder's listener on port 53, and the forwarder answers from
// that same address. So an agent whose DNS socket is swapped for one made there sees exactly the
// peer it asked for (getpeername, recvfrom's source, which glibc, c-ares and musl all check),
// while every query goes through the supervisor.
//
// Sockets keep the namespace they were made in, so the helper only makes sockets and hands them
// back over a unix socket (SCM_RIGHTS); the supervisor uses them from its own threads. An
// unprivileged supervisor gets the namespace from a user namespace of its own (where it holds
// CAP_NET_ADMIN over that network only); root gets a plain network namespace.
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

/// What the helper is asked for: a socket of this kind.
typedef struct {
    int32_t domain;
    int32_t type;
    int32_t protocol;
} agentgate_dns_socket_request;

/// Its answer: 0 and one fd as SCM_RIGHTS, or -errno and none.
typedef struct {
    int32_t result;
} agentgate_dns_socket_reply;

static int send_with_fds(int control, const void *data, size_t length, const int *fds, int count) {
    struct iovec iov = {.iov_base = (void *)data, .iov_len = length};
    union {
        char buffer[CMSG_SPACE(sizeof(int) * AGENTGATE_DNS_LISTENERS)];
        struct cmsghdr align;
    } control_buffer;
    struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1};
    if (count > 0) {
        memset(&control_buffer, 0, sizeof control_buffer);
        message.msg_control = control_buffer.buffer;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)count);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)count);
        memcpy(CMSG_DATA(header), fds, sizeof(int) * (size_t)count);
    }
    ssize_t sent;
    do { sent = sendmsg(control, &message, MSG_NOSIGNAL); } while (sent < 0 && errno == EINTR);
    return sent == (ssize_t)length ? 0 : (sent < 0 ? -errno : -EIO);
}

/// Receives `length` bytes and up to `capacity` fds (close-on-exec). Returns the fd count or -errno.
static int receive_with_fds(int control, void *data, size_t length, int *fds, int capacity) {
    struct iovec iov = {.iov_base = data, .iov_len = length};
    union {
        char buffer[CMSG_SPACE(sizeof(int) * AGENTGATE_DNS_LISTENERS)];
        struct cmsghdr align;
    } control_buffer;
    struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1,
                             .msg_control = control_buffer.buffer, .msg_controllen = sizeof control_buffer.buffer};
    ssize_t received;
    do { received = recvmsg(control, &message, MSG_CMSG_CLOEXEC); } while (received < 0 && errno == EINTR);
    if (received < 0) return -errno;
    int count = 0;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        int n = (int)((header->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int incoming[AGENTGATE_DNS_LISTENERS];
        if (n > AGENTGATE_DNS_LISTENERS) n = AGENTGATE_DNS_LISTENERS;
        memcpy(incoming, CMSG_DATA(header), sizeof(int) * (size_t)n);
        for (int i = 0; i < n; i++) {
            if (count < capacity) fds[count++] = incoming[i];
            else close(incoming[i]);
        }
    }
    if ((size_t)received != length) {
        for (int i = 0; i < count; i++) close(fds[i]);
        return received == 0 ? -ECONNRESET : -EIO;
    }
    return count;
}

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t length = (ssize_t)strlen(text);
    ssize_t written = write(fd, text, (size_t)length);
    int error = written == length ? 0 : (written < 0 ? -errno : -EIO);
    close(fd);
    return error;
}

/// Maps the helper's ids into its new user namespace (as root there), so files it would make
/// aren't owned by the overflow id. Only async-signal-safe calls: this runs after fork.
static void map_identity(uid_t uid, gid_t gid) {
    char line[64];
    char digits[24];
    write_file("/proc/self/setgroups", "deny");
    // "0 <id> 1" without snprintf.
    for (int pass = 0; pass < 2; pass++) {
        unsigned long value = pass == 0 ? (unsigned long)uid : (unsigned long)gid;
        int n = 0;
        do { digits[n++] = (char)('0' + value % 10); value /= 10; } while (value && n < 23);
        int k = 0;
        line[k++] = '0'; line[k++] = ' ';
        while (n) line[k++] = digits[--n];
        line[k++] = ' '; line[k++] = '1'; line[k] = 0;
        write_file(pass == 0 ? "/proc/self/uid_map" : "/proc/self/gid_map", line);
    }
}

static int loopback_up(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    memcpy(request.ifr_name, "lo", 3);
    int error = 0;
    if (ioctl(fd, SIOCGIFFLAGS, &request) < 0) error = -errno;
    else {
        request.ifr_flags |= IFF_UP;
        if (ioctl(fd, SIOCSIFFLAGS, &request) < 0) error = -errno;
    }
    close(fd);
    return error;
}

/// `ip route add local 0.0.0.0/0 dev lo` (or `::/0`): every address of the family is local.
static int route_everything_locally(int family) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) return -errno;
    struct {
        struct nlmsghdr header;
        struct rtmsg route;
        char attributes[64];
    } request;
    memset(&request, 0, sizeof request);
    request.header.nlmsg_type = RTM_NEWROUTE;
    request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;
    request.header.nlmsg_seq = 1;
    request.route.rtm_family = (unsigned char)family;
    request.route.rtm_dst_len = 0;
    request.route.rtm_table = RT_TABLE_LOCAL;
    request.route.rtm_protocol = RTPROT_BOOT;
    request.route.rtm_scope = RT_SCOPE_HOST;
    request.route.rtm_type = RTN_LOCAL;
    size_t length = NLMSG_LENGTH(sizeof(struct rtmsg));
    // RTA_OIF = lo; RTA_TABLE for completeness.
    unsigned int interface = if_nametoindex("lo");
    if (interface == 0) interface = 1;
    struct rtattr *attribute = (struct rtattr *)((char *)&request + NLMSG_ALIGN(length));
    attribute->rta_type = RTA_OIF;
    attribute->rta_len = RTA_LENGTH(sizeof(int));
    memcpy(RTA_DATA(attribute), &interface, sizeof(int));
    length = NLMSG_ALIGN(length) + RTA_ALIGN(attribute->rta_len);
    request.header.nlmsg_len = (uint32_t)length;

    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    int error = 0;
    if (sendto(fd, &request, length, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
        error = -errno;
    } else {
        char answer[512];
        ssize_t n = recv(fd, answer, sizeof answer, 0);
        if (n < 0) error = -errno;
        else if ((size_t)n >= NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
            struct nlmsghdr *reply = (struct nlmsghdr *)answer;
            if (reply->nlmsg_type == NLMSG_ERROR) error = ((struct nlmsgerr *)NLMSG_DATA(reply))->error;
        }
    }
    close(fd);
    return error;
}

/// A listener on port 53 of every address of `family`, answering from the address it was asked
/// on (IP_PKTINFO / IPV6_PKTINFO, with FREEBIND so an AnyIP address may be the source).
static int listener(int family, int type) {
    int fd = socket(family, type | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    int rc;
    if (family == AF_INET) {
        setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &on, sizeof on);
        if (type == SOCK_DGRAM) setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on);
        struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(53)};
        rc = bind(fd, (struct sockaddr *)&address, sizeof address);
    } else {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
        setsockopt(fd, IPPROTO_IPV6, AGENTGATE_IPV6_FREEBIND, &on, sizeof on);
        if (type == SOCK_DGRAM) setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on);
        struct sockaddr_in6 address = {.sin6_family = AF_INET6, .sin6_port = htons(53)};
        rc = bind(fd, (struct sockaddr *)&address, sizeof address);
    }
    if (rc == 0 && type == SOCK_STREAM) rc = listen(fd, 64);
    if (rc < 0) { int error = -errno; close(fd); return error; }
    return fd;
}

/// The helper: set up the namespace, send the four listeners, then make sockets on request
/// until the supervisor goes away.
static void helper_main(int control, uid_t uid, gid_t gid) {
    int32_t status = 0;
    int stage = 0;
    if (geteuid() == 0 && unshare(CLONE_NEWNET) == 0) {
        // root: a network namespace is enough.
    } else if (unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0) {
        map_identity(uid, gid);
    } else {
        status = -errno;
        stage = 1;
    }
    int listeners[AGENTGATE_DNS_LISTENERS] = {-1, -1, -1, -1};
    if (status == 0) { status = loopback_up(); stage = 2; }
    if (status == 0) { status = route_everything_locally(AF_INET); stage = 3; }
    // IPv6 may be disabled on the machine: then only IPv4 is captured.
    bool ipv6 = status == 0 && route_everything_locally(AF_INET6) == 0;
    if (status == 0) {
        stage = 4;
        int kinds[AGENTGATE_DNS_LISTENERS][2] = {
            {AF_INET, SOCK_DGRAM}, {AF_INET6, SOCK_DGRAM}, {AF_INET, SOCK_STREAM}, {AF_INET6, SOCK_STREAM}};
        for (int i = 0; i < AGENTGATE_DNS_LISTENERS && status == 0; i++) {
            if (kinds[i][0] == AF_INET6 && !ipv6) continue;
            int fd = listener(kinds[i][0], kinds[i][1]);
            if (fd < 0) status = fd;
            else listeners[i] = fd;
        }
    }
    // Stage and status first, then the listeners that exist (in order, -1 for a missing one).
    int32_t header[2] = {status, stage};
    int sendable[AGENTGATE_DNS_LISTENERS];
    int count = 0;
    int32_t present = 0;
    for (int i = 0; i < AGENTGATE_DNS_LISTENERS; i++) {
        if (listeners[i] >= 0) { sendable[count++] = listeners[i]; present |= 1 << i; }
    }
    int32_t opening[3] = {header[0], header[1], present};
    if (send_with_fds(control, opening, sizeof opening, sendable, status == 0 ? count : 0) < 0 || status != 0) _exit(1);
    for (int i = 0; i < AGENTGATE_DNS_LISTENERS; i++) if (listeners[i] >= 0) close(listeners[i]);
    // From here the helper only makes sockets: it keeps no capability (root's included) and
    // can gain none.
    struct __user_cap_header_struct cap_header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct cap_data[2];
    memset(cap_data, 0, sizeof cap_data);
    syscall(SYS_capset, &cap_header, cap_data);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);

    for (;;) {
        agentgate_dns_socket_request request;
        ssize_t n;
        do { n = recv(control, &request, sizeof request, 0); } while (n < 0 && errno == EINTR);
        if (n != (ssize_t)sizeof request) _exit(0);
        agentgate_dns_socket_reply reply = {0};
        int fd = -1;
        bool allowed = (request.domain == AF_INET || request.domain == AF_INET6)
            && (request.type == SOCK_DGRAM || request.type == SOCK_STREAM);
        if (!allowed) reply.result = -EAFNOSUPPORT;
        else {
            fd = socket(request.domain, request.type | SOCK_CLOEXEC, request.protocol);
            reply.result = fd < 0 ? -errno : 0;
        }
        int rc = send_with_fds(control, &reply, sizeof reply, &fd, fd >= 0 ? 1 : 0);
        if (fd >= 0) close(fd);
        if (rc < 0) _exit(0);
    }
}

int agentgate_dns_namespace_start(int *control_out, int listeners[AGENTGATE_DNS_LISTENERS], int *stage_out) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) return -errno;
    uid_t uid = geteuid();
    gid_t gid = getegid();
    pid_t child = fork();
    if (child < 0) {
        int error = -errno;
        close(pair[0]);
        close(pair[1]);
        return error;
    }
    if (child == 0) {
        // Only async-signal-safe calls from here: the supervisor is multithreaded. The helper is
        // a grandchild, handed to init at once: it is no process of the session's, and the
        // supervisor's reaping never sees it. It ends when the supervisor's end of the control
        // socket closes (the supervisor exits, or dies).
        pid_t helper = fork();
        if (helper != 0) _exit(helper < 0 ? 1 : 0);
        // Out of the terminal's process group, so the user's ^C and ^Z reach only the agent.
        setsid();
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        signal(SIGPIPE, SIG_IGN);
        int control = pair[1];
        // Nothing of the supervisor's (its listener, the database) stays open here.
        if (control != 3) {
            if (dup2(control, 3) < 0) _exit(1);
            control = 3;
        }
        syscall(SYS_close_range, 0, 2, 0);
        syscall(SYS_close_range, 4, ~0U, 0);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) { dup2(null, 0); dup2(null, 1); dup2(null, 2); if (null > 2 && null != 3) close(null); }
        fcntl(control, F_SETFD, FD_CLOEXEC);
        helper_main(control, uid, gid);
        _exit(0);
    }
    close(pair[1]);
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
    int32_t opening[3] = {0, 0, 0};
    int received[AGENTGATE_DNS_LISTENERS];
    int count = receive_with_fds(pair[0], opening, sizeof opening, received, AGENTGATE_DNS_LISTENERS);
    if (count < 0 || opening[0] != 0) {
        int error = count < 0 ? count : opening[0];
        if (count > 0) for (int i = 0; i < count; i++) close(received[i]);
        *stage_out = count < 0 ? 0 : opening[1];
        close(pair[0]); // the helper sees the end and exits
        return error == 0 ? -EIO : error;
    }
    int next = 0;
    for (int i = 0; i < AGENTGATE_DNS_LISTENERS; i++) {
        listeners[i] = (opening[2] & (1 << i)) && next < count ? received[next++] : -1;
    }
    *control_out = pair[0];
    *stage_out = 0;
    return 0;
}

int agentgate_dns_namespace_socket(int control, int domain, int type, int protocol) {
    agentgate_dns_socket_request request = {.domain = domain, .type = type, .protocol = protocol};
    ssize_t sent;
    do { sent = send(control, &request, sizeof request, MSG_NOSIGNAL); } while (sent < 0 && errno == EINTR);
    if (sent != (ssize_t)sizeof request) return sent < 0 ? -errno : -EIO;
    agentgate_dns_socket_reply reply = {0};
    int fd = -1;
    int count = receive_with_fds(control, &reply, sizeof reply, &fd, 1);
    if (count < 0) return count;
    if (reply.result < 0) { if (count > 0) close(fd); return reply.result; }
    return count == 1 ? fd : -EIO;
}

// MARK: - Datagrams with their local address

int agentgate_dns_receive(int fd, void *buffer, size_t capacity, void *peer, uint32_t *peer_length,
                          void *local, uint32_t *local_length) {
    struct iovec iov = {.iov_base = buffer, .iov_len = capacity};
    union {
        char buffer[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo))];
        struct cmsghdr align;
    } control;
    struct sockaddr_storage from;
    struct msghdr message = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1,
                             .msg_control = control.buffer, .msg_controllen = sizeof control.buffer};
    ssize_t n;
    do { n = recvmsg(fd, &message, MSG_TRUNC); } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    uint32_t peer_capacity = *peer_length;
    memcpy(peer, &from, message.msg_namelen < peer_capacity ? message.msg_namelen : peer_capacity);
    *peer_length = message.msg_namelen;
    *local_length = 0;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level == IPPROTO_IP && header->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo info;
            memcpy(&info, CMSG_DATA(header), sizeof info);
            struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(53), .sin_addr = info.ipi_addr};
            memcpy(local, &address, sizeof address);
            *local_length = sizeof address;
        } else if (header->cmsg_level == IPPROTO_IPV6 && header->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo info;
            memcpy(&info, CMSG_DATA(header), sizeof info);
            struct sockaddr_in6 address = {.sin6_family = AF_INET6, .sin6_port = htons(53), .sin6_addr = info.ipi6_addr};
            memcpy(local, &address, sizeof address);
            *local_length = sizeof address;
        }
    }
    return (int)n;
}

int agentgate_dns_send(int fd, const void *buffer, size_t length, const void *peer, uint32_t peer_length,
                       const void *local, uint32_t local_length) {
    struct iovec iov = {.iov_base = (void *)buffer, .iov_len = length};
    union {
        char buffer[CMSG_SPACE(sizeof(struct in6_pktinfo))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr message = {.msg_name = (void *)peer, .msg_namelen = peer_length, .msg_iov = &iov, .msg_iovlen = 1};
    if (local_length >= sizeof(struct sockaddr_in) && ((const struct sockaddr *)local)->sa_family == AF_INET) {
        struct in_pktinfo info;
        memset(&info, 0, sizeof info);
        info.ipi_spec_dst = ((const struct sockaddr_in *)local)->sin_addr;
        message.msg_control = control.buffer;
        message.msg_controllen = CMSG_SPACE(sizeof info);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = IPPROTO_IP;
        header->cmsg_type = IP_PKTINFO;
        header->cmsg_len = CMSG_LEN(sizeof info);
        memcpy(CMSG_DATA(header), &info, sizeof info);
    } else if (local_length >= sizeof(struct sockaddr_in6) && ((const struct sockaddr *)local)->sa_family == AF_INET6) {
        struct in6_pktinfo info;
        memset(&info, 0, sizeof info);
        info.ipi6_addr = ((const struct sockaddr_in6 *)local)->sin6_addr;
        message.msg_control = control.buffer;
        message.msg_controllen = CMSG_SPACE(sizeof info);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = IPPROTO_IPV6;
        header->cmsg_type = IPV6_PKTINFO;
        header->cmsg_len = CMSG_LEN(sizeof info);
        memcpy(CMSG_DATA(header), &info, sizeof info);
    }
    ssize_t n;
    do { n = sendmsg(fd, &message, MSG_NOSIGNAL); } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : (int)n;
}

int agentgate_fd_cloexec(pid_t pid, int fd) {
    // /proc/PID/fdinfo/FD's "flags:" line is octal and includes O_CLOEXEC.
    char path[64];
    int k = 0;
    const char *prefix = "/proc/";
    while (*prefix) path[k++] = *prefix++;
    char digits[24];
    int n = 0;
    unsigned long value = (unsigned long)pid;
    do { digits[n++] = (char)('0' + value % 10); value /= 10; } while (value);
    while (n) path[k++] = digits[--n];
    const char *middle = "/fdinfo/";
    while (*middle) path[k++] = *middle++;
    value = (unsigned long)fd;
    do { digits[n++] = (char)('0' + value % 10); value /= 10; } while (value);
    while (n) path[k++] = digits[--n];
    path[k] = 0;
    int info = open(path, O_RDONLY | O_CLOEXEC);
    if (info < 0) return -errno;
    char text[512];
    ssize_t length = read(info, text, sizeof text - 1);
    close(info);
    if (length <= 0) return -EIO;
    text[length] = 0;
    char *flags = strstr(text, "flags:");
    if (!flags) return -EIO;
    flags += 6;
    while (*flags == ' ' || *flags == '\t') flags++;
    unsigned long octal = 0;
    while (*flags >= '0' && *flags <= '7') octal = octal * 8 + (unsigned long)(*flags++ - '0');
    return (octal & O_CLOEXEC) ? 1 : 0;
}

int agentgate_accept_cloexec(int fd) {
    int connection;
    do { connection = accept4(fd, NULL, NULL, SOCK_CLOEXEC); } while (connection < 0 && errno == EINTR);
    return connection < 0 ? -errno : connection;
}

int agentgate_wake_fd(void) {
    int fd = eventfd(0, EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}
