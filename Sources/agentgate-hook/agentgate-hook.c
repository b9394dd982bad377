// agentgate-hook: the agent hook's fast path (`agentgate-hook claude-code|codex`).
//
// An agent runs its PreToolUse hook before every tool call. Inside an agentgate-supervise
// session the session's supervisor decides the call, so the hook only has to pass its input on
// and the answer back: this program does that without the Swift runtime, Foundation or a policy
// to load (about 1 ms against 13 for `agentgate hook`). Outside a session, or for anything but
// `claude-code`/`codex`, it runs `agentgate hook ...` (the agentgate beside it), with stdin
// untouched. Built by the Makefile and scripts (a static C program, no Swift), never by SwiftPM.
//
// Protocol 2 of the session's hook socket (HookChannel.swift): the hello "agentgate-hook/2"
// carries one end of a socketpair; on it go the session, the agent and PATH ("P" before it, or
// "-"), each NUL-ended, then the hook's stdin to the end of the stream. The answer is
// "STATUS LENGTH\n", LENGTH bytes for stdout, then the rest for stderr. Which socket is the
// session's is settled exactly as `agentgate hook` settles it (HookChannel.sessionSocket); any
// failure blocks the call (exit 2, the reason on stderr).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define AGENTGATE_HOOK_MAX_INPUT (32u << 20)       // HookInput.maximumLength
#define AGENTGATE_HOOK_MAX_RAW (256u << 10)        // HookChannel.maximumRawInput
#define AGENTGATE_HOOK_MAX_ANSWER (8u << 20)
#define AGENTGATE_HOOK_CONNECT_MS 3000             // HookChannel.connectDeadlineNanoseconds
#define AGENTGATE_HOOK_ANSWER_MS 15000

static uint64_t agentgate_hook_now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

/// Blocks the call: `agentgate hook: MESSAGE; the tool call is blocked`, exit 2.
static void agentgate_hook_block(const char *format, ...) {
    char message[1024];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(message, sizeof message, format, arguments);
    va_end(arguments);
    dprintf(2, "agentgate hook: %s; the tool call is blocked\n", message);
    _exit(2);
}

/// `agentgate hook ARGS...`, the agentgate program in this program's directory.
static void agentgate_hook_run_full(int argc, char **argv) {
    char self[PATH_MAX];
    ssize_t length = readlink("/proc/self/exe", self, sizeof self - 16);
    if (length <= 0) agentgate_hook_block("cannot find agentgate: /proc/self/exe: %s", strerror(errno));
    self[length] = 0;
    char *slash = strrchr(self, '/');
    if (!slash) agentgate_hook_block("cannot find agentgate beside %s", self);
    strcpy(slash + 1, "agentgate");
    char **arguments = calloc((size_t)argc + 2, sizeof *arguments);
    if (!arguments) agentgate_hook_block("out of memory");
    arguments[0] = "agentgate";
    arguments[1] = "hook";
    for (int index = 1; index < argc; index++) arguments[index + 1] = argv[index];
    execv(self, arguments);
    agentgate_hook_block("cannot run %s: %s", self, strerror(errno));
}

/// `agentgate hook ARGS...` with `input` (already read) as its stdin: a request over
/// AGENTGATE_HOOK_MAX_RAW is parsed in the hook's own process, not the supervisor's, and
/// `agentgate hook` sends the session's supervisor only the call it maps it to.
static void agentgate_hook_run_full_with(int argc, char **argv, const unsigned char *input, size_t count) {
    int fd = memfd_create("agentgate-hook-input", 0);
    if (fd < 0) agentgate_hook_block("cannot hold the input: %s", strerror(errno));
    while (count > 0) {
        ssize_t n = write(fd, input, count);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) agentgate_hook_block("cannot hold the input: %s", strerror(n < 0 ? errno : ENOSPC));
        input += n;
        count -= (size_t)n;
    }
    if (lseek(fd, 0, SEEK_SET) != 0 || (fd != 0 && dup2(fd, 0) != 0)) agentgate_hook_block("cannot hold the input: %s", strerror(errno));
    if (fd != 0) close(fd);
    agentgate_hook_run_full(argc, argv);
}

/// Whether `fd` is an AF_UNIX SOCK_SEQPACKET socket (the inherited hook socket's kind).
static int agentgate_hook_is_session_socket(int fd) {
    int type = 0, domain = 0;
    socklen_t length = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) != 0) return 0;
    length = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length) != 0) return 0;
    return domain == AF_UNIX && type == SOCK_SEQPACKET;
}

/// The session's hook socket by name ($AGENTGATE_HOOK_SOCKET): only SESSION.hook in a control
/// directory of this user (a directory, owned by the user or root, closed to group and others),
/// with a listener of this user or root (HookChannel.connect).
static int agentgate_hook_connect(const char *path, const char *session) {
    size_t path_length = strlen(path), session_length = strlen(session);
    size_t suffix_length = 1 + session_length + 5; // "/" SESSION ".hook"
    if (session_length == 0 || strchr(session, '/') || path_length <= suffix_length ||
        path[path_length - suffix_length] != '/' || memcmp(path + path_length - suffix_length + 1, session, session_length) != 0 ||
        memcmp(path + path_length - 5, ".hook", 5) != 0)
        agentgate_hook_block("$AGENTGATE_HOOK_SOCKET (%s) is not $AGENTGATE_SESSION.hook in a control directory", path);
    char directory[PATH_MAX];
    size_t directory_length = path_length - suffix_length;
    if (directory_length >= sizeof directory || path[0] != '/')
        agentgate_hook_block("$AGENTGATE_HOOK_SOCKET (%s) is not in a control directory of yours (mode 0700)", path);
    memcpy(directory, path, directory_length);
    directory[directory_length] = 0;
    struct stat info;
    if (lstat(directory, &info) != 0 || !S_ISDIR(info.st_mode) || (info.st_uid != geteuid() && info.st_uid != 0) ||
        (info.st_mode & 077) != 0)
        agentgate_hook_block("$AGENTGATE_HOOK_SOCKET (%s) is not in a control directory of yours (mode 0700)", path);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (path_length >= sizeof address.sun_path) agentgate_hook_block("$AGENTGATE_HOOK_SOCKET is too long for a socket path");
    memcpy(address.sun_path, path, path_length);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) agentgate_hook_block("cannot make a socket: %s", strerror(errno));
    // A full backlog answers EAGAIN on a non-blocking unix socket: retried until the deadline.
    uint64_t deadline = agentgate_hook_now_ms() + AGENTGATE_HOOK_CONNECT_MS;
    while (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        int error = errno;
        if ((error == EAGAIN || error == EINTR) && agentgate_hook_now_ms() < deadline) {
            usleep(2000);
            continue;
        }
        agentgate_hook_block("cannot reach the session's hook socket %s: %s", path, strerror(error));
    }
    struct ucred credentials;
    socklen_t length = sizeof credentials;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0 ||
        (credentials.uid != geteuid() && credentials.uid != 0))
        agentgate_hook_block("the socket at %s is not a hook socket of yours", path);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

/// The session's hook socket, or -1 outside a session (HookChannel.sessionSocket).
static int agentgate_hook_session_socket(void) {
    const char *path = getenv("AGENTGATE_HOOK_SOCKET");
    if (path && !*path) path = NULL;
    const char *session = getenv("AGENTGATE_SESSION");
    if (!session) session = "";
    const char *descriptor = getenv("AGENTGATE_HOOK_FD");
    if (!descriptor) return path ? agentgate_hook_connect(path, session) : -1;
    char *end = NULL;
    errno = 0;
    long fd = strtol(descriptor, &end, 10);
    // As Swift's Int32(text): an optional sign and digits, nothing around them.
    if (!*descriptor || !(descriptor[0] == '+' || descriptor[0] == '-' || (descriptor[0] >= '0' && descriptor[0] <= '9')) ||
        *end || errno || fd < 0 || fd > INT_MAX)
        agentgate_hook_block("$AGENTGATE_HOOK_FD is \"%s\", not a descriptor", descriptor);
    if (agentgate_hook_is_session_socket((int)fd)) return (int)fd;
    // Not inherited (the agent started this hook with its standard fds only): by name.
    if (path) return agentgate_hook_connect(path, session);
    agentgate_hook_block("$AGENTGATE_HOOK_FD names fd %ld, which is not the session's hook socket", fd);
    return -1;
}

/// Appends to a growing buffer; exits (blocking the call) past `limit`.
struct agentgate_hook_buffer {
    unsigned char *bytes;
    size_t count, capacity;
};

static void agentgate_hook_append(struct agentgate_hook_buffer *buffer, const void *bytes, size_t count, size_t limit,
                                  const char *what) {
    if (buffer->count + count > limit) agentgate_hook_block("%s", what);
    if (buffer->count + count > buffer->capacity) {
        size_t capacity = buffer->capacity ? buffer->capacity : 65536;
        while (capacity < buffer->count + count) capacity *= 2;
        unsigned char *grown = realloc(buffer->bytes, capacity);
        if (!grown) agentgate_hook_block("out of memory");
        buffer->bytes = grown;
        buffer->capacity = capacity;
    }
    memcpy(buffer->bytes + buffer->count, bytes, count);
    buffer->count += count;
}

/// Waits for `events` on `fd` until `deadline` (ms); blocks the call when it passes.
static void agentgate_hook_wait(int fd, short events, uint64_t deadline, const char *what) {
    for (;;) {
        uint64_t now = agentgate_hook_now_ms();
        if (now >= deadline) agentgate_hook_block("%s", what);
        struct pollfd poller = {.fd = fd, .events = events};
        int ready = poll(&poller, 1, (int)(deadline - now));
        if (ready > 0) return;
        if (ready < 0 && errno != EINTR) agentgate_hook_block("%s: %s", what, strerror(errno));
    }
}

static void agentgate_hook_write_all(int fd, const unsigned char *bytes, size_t count) {
    while (count > 0) {
        ssize_t n = write(fd, bytes, count);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) _exit(2);
        bytes += n;
        count -= (size_t)n;
    }
}

int main(int argc, char **argv) {
    if (argc != 2 || (strcmp(argv[1], "claude-code") != 0 && strcmp(argv[1], "codex") != 0)) agentgate_hook_run_full(argc, argv);
    // Outside a session (neither variable set): `agentgate hook`, stdin untouched.
    const char *named = getenv("AGENTGATE_HOOK_SOCKET");
    if (!getenv("AGENTGATE_HOOK_FD") && !(named && *named)) agentgate_hook_run_full(argc, argv);

    // The request: the fields, then stdin to its end (within 10 s, as `agentgate hook` reads it).
    struct agentgate_hook_buffer request = {0};
    const char *session = getenv("AGENTGATE_SESSION");
    const char *path = getenv("PATH");
    agentgate_hook_append(&request, session ? session : "", strlen(session ? session : "") + 1, SIZE_MAX, "");
    agentgate_hook_append(&request, argv[1], strlen(argv[1]) + 1, SIZE_MAX, "");
    agentgate_hook_append(&request, path ? "P" : "-", 1, SIZE_MAX, "");
    if (path) agentgate_hook_append(&request, path, strlen(path), SIZE_MAX, "");
    agentgate_hook_append(&request, "", 1, SIZE_MAX, "");
    size_t header = request.count;
    unsigned char chunk[65536];
    uint64_t deadline = agentgate_hook_now_ms() + 10000;
    for (;;) {
        agentgate_hook_wait(0, POLLIN, deadline, "stdin did not end within 10 s");
        ssize_t n = read(0, chunk, sizeof chunk);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n < 0) agentgate_hook_block("cannot read stdin: %s", strerror(errno));
        if (n == 0) break;
        agentgate_hook_append(&request, chunk, (size_t)n, header + AGENTGATE_HOOK_MAX_INPUT, "the input is over 32 MiB");
    }
    // The whole request, its header included, within what the supervisor takes.
    if (request.count > AGENTGATE_HOOK_MAX_RAW) agentgate_hook_run_full_with(argc, argv, request.bytes + header, request.count - header);
    int session_socket = agentgate_hook_session_socket();
    if (session_socket < 0) agentgate_hook_block("$AGENTGATE_HOOK_FD names no socket");

    // The channel: one end of a socketpair, sent with the hello.
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) agentgate_hook_block("cannot make a socketpair: %s", strerror(errno));
    static const char hello[] = "agentgate-hook/2";
    union {
        char buffer[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct iovec part = {.iov_base = (void *)hello, .iov_len = sizeof hello - 1};
    struct msghdr message = {.msg_iov = &part, .msg_iovlen = 1, .msg_control = control.buffer, .msg_controllen = sizeof control.buffer};
    struct cmsghdr *header_message = CMSG_FIRSTHDR(&message);
    header_message->cmsg_level = SOL_SOCKET;
    header_message->cmsg_type = SCM_RIGHTS;
    header_message->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header_message), &pair[1], sizeof(int));
    ssize_t sent;
    do sent = sendmsg(session_socket, &message, MSG_NOSIGNAL); while (sent < 0 && errno == EINTR);
    if (sent < 0) agentgate_hook_block("cannot reach the session's supervisor: %s", strerror(errno));
    close(pair[1]);

    // Send while reading: a refusal comes before the supervisor reads all of a large input.
    fcntl(pair[0], F_SETFL, O_NONBLOCK);
    struct agentgate_hook_buffer answer = {0};
    size_t offset = 0;
    int writing = 1;
    deadline = agentgate_hook_now_ms() + AGENTGATE_HOOK_ANSWER_MS;
    for (;;) {
        uint64_t now = agentgate_hook_now_ms();
        if (now >= deadline) agentgate_hook_block("no answer from the session's supervisor");
        struct pollfd poller = {.fd = pair[0], .events = (short)(POLLIN | (writing ? POLLOUT : 0))};
        int ready = poll(&poller, 1, (int)(deadline - now));
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) agentgate_hook_block("no answer from the session's supervisor: %s", strerror(errno));
        if (writing && (poller.revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = send(pair[0], request.bytes + offset, request.count - offset, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) offset += (size_t)n;
            if ((n < 0 && errno != EAGAIN && errno != EINTR) || offset == request.count) {
                shutdown(pair[0], SHUT_WR);
                writing = 0;
            }
        }
        if (poller.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(pair[0], chunk, sizeof chunk, MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (n <= 0) break;
            agentgate_hook_append(&answer, chunk, (size_t)n, AGENTGATE_HOOK_MAX_ANSWER, "an answer from the session's supervisor that isn't one");
        }
    }

    // "STATUS LENGTH\n", stdout, stderr.
    unsigned char *newline = answer.count ? memchr(answer.bytes, '\n', answer.count < 64 ? answer.count : 64) : NULL;
    if (!newline) agentgate_hook_block("no answer from the session's supervisor");
    *newline = 0;
    char *rest = NULL;
    errno = 0;
    long status = strtol((char *)answer.bytes, &rest, 10);
    unsigned long length = (rest && *rest == ' ') ? strtoul(rest + 1, &rest, 10) : ULONG_MAX;
    size_t body = (size_t)(newline + 1 - answer.bytes);
    if (errno || !rest || *rest || status < 0 || status > 255 || length > answer.count - body)
        agentgate_hook_block("an answer from the session's supervisor that isn't one");
    agentgate_hook_write_all(1, answer.bytes + body, length);
    agentgate_hook_write_all(2, answer.bytes + body + length, answer.count - body - length);
    return (int)status;
}
