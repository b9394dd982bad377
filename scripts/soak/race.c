// The race soak's agent (scripts/soak.sh): flips a path between an allowed and a denied
// target in a tight loop while other threads call the syscall on it, for SECONDS, and counts
// attempts and wins (the denied target reached). The policy the soak runs it under allows
// everything in DIR except DIR/deny/ (no reads, writes, binds or renames into it), the
// program DIR/bin/forbidden, and connects to DIR/deny.sock.
//
//   race MODE SECONDS DIR        MODE: open | exec | connect | bind | rename
// Prints "attempts=N allowed=N wins=N": every call, those that reached the allowed target, and
// those that reached the denied one.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BARRIER() __asm__ volatile("" ::: "memory")

static volatile int stop;
static long attempts, allowed, wins;
static char dir[2048];
static char allowed_path[4096], denied_path[4096];
// The flipped buffer (a path, or a sockaddr_un's sun_path), aligned as a real one is.
static char flip_buffer[4096] __attribute__((aligned(64)));
static struct sockaddr_un flip_address __attribute__((aligned(64)));
static char *flip_target = flip_buffer;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void *flipper(void *arg) {
    (void)arg;
    size_t la = strlen(allowed_path) + 1, lb = strlen(denied_path) + 1;
    while (!stop) {
        memcpy(flip_target, allowed_path, la);
        BARRIER();
        for (volatile int i = 0; i < 50; i++) {}
        memcpy(flip_target, denied_path, lb);
        BARRIER();
        for (volatile int i = 0; i < 50; i++) {}
    }
    return NULL;
}

// What one call reached.
enum { FAILED, ALLOWED, WON };
static void count(int outcome) {
    __atomic_add_fetch(&attempts, 1, __ATOMIC_RELAXED);
    if (outcome == ALLOWED) __atomic_add_fetch(&allowed, 1, __ATOMIC_RELAXED);
    if (outcome == WON) __atomic_add_fetch(&wins, 1, __ATOMIC_RELAXED);
}

static void *open_loop(void *arg) {
    (void)arg;
    char content[64];
    while (!stop) {
        int fd = open(flip_buffer, O_RDONLY | O_CLOEXEC);
        if (fd < 0) { count(FAILED); continue; }
        ssize_t n = read(fd, content, sizeof content - 1);
        close(fd);
        content[n > 0 ? n : 0] = 0;
        count(strncmp(content, "DENIED", 6) == 0 ? WON : strncmp(content, "ALLOWED", 7) == 0 ? ALLOWED : FAILED);
    }
    return NULL;
}

static void *connect_loop(void *arg) {
    (void)arg;
    while (!stop) {
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0) { usleep(1000); continue; }
        int outcome = FAILED;
        if (connect(s, (struct sockaddr *)&flip_address, sizeof flip_address) == 0) {
            struct sockaddr_un peer;
            socklen_t length = sizeof peer;
            memset(&peer, 0, sizeof peer);
            if (getpeername(s, (struct sockaddr *)&peer, &length) == 0)
                outcome = strcmp(peer.sun_path, denied_path) == 0 ? WON : strcmp(peer.sun_path, allowed_path) == 0 ? ALLOWED : FAILED;
        }
        close(s);
        count(outcome);
    }
    return NULL;
}

static void *bind_loop(void *arg) {
    (void)arg;
    struct stat st;
    while (!stop) {
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0) { usleep(1000); continue; }
        int rc = bind(s, (struct sockaddr *)&flip_address, sizeof flip_address);
        close(s);
        int won = rc == 0 && lstat(denied_path, &st) == 0;
        if (won) unlink(denied_path);
        count(won ? WON : rc == 0 && unlink(allowed_path) == 0 ? ALLOWED : FAILED);
    }
    return NULL;
}

static void *rename_loop(void *arg) {
    char source[4200];
    snprintf(source, sizeof source, "%s/ok/source-%ld", dir, (long)arg);
    struct stat st;
    while (!stop) {
        int fd = open(source, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) close(fd);
        int rc = rename(source, flip_buffer);
        int won = rc == 0 && lstat(denied_path, &st) == 0;
        if (won) unlink(denied_path);
        count(won ? WON : rc == 0 && unlink(allowed_path) == 0 ? ALLOWED : FAILED);
    }
    return NULL;
}

static void *acceptor(void *arg) {
    int listener = (int)(long)arg;
    while (!stop) {
        int c = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (c >= 0) close(c);
    }
    return NULL;
}

static int listen_on(const char *path) {
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    unlink(path);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 512) != 0) {
        fprintf(stderr, "race: cannot listen on %s: %s\n", path, strerror(errno));
        exit(2);
    }
    return s;
}

// One child per attempt: a thread flips the path while the main thread execs it; the
// forbidden program creates DIR/marker when it runs.
static void exec_rounds(double end) {
    char marker[4200];
    snprintf(marker, sizeof marker, "%s/marker", dir);
    while (now() < end) {
        pid_t pid = fork();
        if (pid == 0) {
            int null = open("/dev/null", O_WRONLY);
            if (null >= 0) { dup2(null, 1); dup2(null, 2); }
            strcpy(flip_buffer, allowed_path);
            pthread_t f;
            pthread_create(&f, NULL, flipper, NULL);
            char *argv[] = { flip_buffer, NULL };
            for (int i = 0; i < 20; i++) execv(flip_buffer, argv);
            _exit(126);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        struct stat st;
        int won = stat(marker, &st) == 0;
        if (won) unlink(marker);
        count(won ? WON : WIFEXITED(status) && WEXITSTATUS(status) == 0 ? ALLOWED : FAILED);
    }
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: race open|exec|connect|bind|rename SECONDS DIR\n"); return 2; }
    const char *mode = argv[1];
    double seconds = atof(argv[2]);
    snprintf(dir, sizeof dir, "%s", argv[3]);
    void *(*loop)(void *) = NULL;
    if (!strcmp(mode, "open")) {
        snprintf(allowed_path, sizeof allowed_path, "%s/ok/file", dir);
        snprintf(denied_path, sizeof denied_path, "%s/deny/file", dir);
        loop = open_loop;
    } else if (!strcmp(mode, "exec")) {
        snprintf(allowed_path, sizeof allowed_path, "%s/bin/allowed", dir);
        snprintf(denied_path, sizeof denied_path, "%s/bin/forbidden", dir);
    } else if (!strcmp(mode, "connect")) {
        snprintf(allowed_path, sizeof allowed_path, "%s/ok.sock", dir);
        snprintf(denied_path, sizeof denied_path, "%s/deny.sock", dir);
        flip_target = flip_address.sun_path;
        loop = connect_loop;
    } else if (!strcmp(mode, "bind")) {
        snprintf(allowed_path, sizeof allowed_path, "%s/ok/bound.sock", dir);
        snprintf(denied_path, sizeof denied_path, "%s/deny/bound.sock", dir);
        flip_target = flip_address.sun_path;
        loop = bind_loop;
    } else if (!strcmp(mode, "rename")) {
        snprintf(allowed_path, sizeof allowed_path, "%s/ok/renamed", dir);
        snprintf(denied_path, sizeof denied_path, "%s/deny/renamed", dir);
        loop = rename_loop;
    } else {
        fprintf(stderr, "race: unknown mode %s\n", mode);
        return 2;
    }
    flip_address.sun_family = AF_UNIX;
    strcpy(flip_target, allowed_path);
    double end = now() + seconds;
    if (!loop) {
        exec_rounds(end);
    } else {
        pthread_t listeners[2];
        if (loop == connect_loop) {
            pthread_create(&listeners[0], NULL, acceptor, (void *)(long)listen_on(allowed_path));
            pthread_create(&listeners[1], NULL, acceptor, (void *)(long)listen_on(denied_path));
        }
        pthread_t f, workers[2];
        pthread_create(&f, NULL, flipper, NULL);
        for (long i = 0; i < 2; i++) pthread_create(&workers[i], NULL, loop, (void *)i);
        while (now() < end) usleep(20000);
        stop = 1;
        pthread_join(f, NULL);
        for (int i = 0; i < 2; i++) pthread_join(workers[i], NULL);
        // (acceptors block in accept: the process exits under them)
    }
    printf("attempts=%ld allowed=%ld wins=%ld\n", attempts, allowed, wins);
    fflush(stdout);
    _exit(0);
}
