// The load soak's agent (scripts/soak.sh): THREADS threads each open and read allowed files
// up to OPENS times, while one thread execs /bin/true, one connects to a unix socket and one
// forks children that exit at once, all until SECONDS pass. Every call here is allowed, so
// every failure counts. Prints one line of counts.
//
//   load THREADS OPENS SECONDS DIR
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile int stop;
static long opens, open_failures, execs, exec_failures, connects, connect_failures, forks, fork_failures;
static long opens_per_thread;
static char dir[2048], socket_path[4096];

static void add(long *counter) { __atomic_add_fetch(counter, 1, __ATOMIC_RELAXED); }

static void *open_loop(void *arg) {
    char path[4200], buffer[64];
    snprintf(path, sizeof path, "%s/ok/file-%ld", dir, (long)arg % 8);
    for (long i = 0; i < opens_per_thread && !stop; i++) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) { add(&open_failures); fprintf(stderr, "load: open %s: %s\n", path, strerror(errno)); continue; }
        ssize_t n = read(fd, buffer, sizeof buffer);
        if (n <= 0) {
            add(&open_failures);
            fprintf(stderr, "load: read %s (fd %d): %s\n", path, fd, n == 0 ? "end of file" : strerror(errno));
        } else {
            add(&opens);
        }
        close(fd);
    }
    return NULL;
}

static void *exec_loop(void *arg) {
    (void)arg;
    while (!stop) {
        pid_t pid = fork();
        if (pid == 0) { execl("/bin/true", "true", (char *)NULL); _exit(127); }
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) add(&exec_failures);
        else add(&execs);
    }
    return NULL;
}

static void *accept_loop(void *arg) {
    int listener = (int)(long)arg;
    for (;;) {
        int c = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (c >= 0) close(c);
    }
    return NULL;
}

static void *connect_loop(void *arg) {
    (void)arg;
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", socket_path);
    while (!stop) {
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
            add(&connect_failures);
            fprintf(stderr, "load: connect: %s\n", strerror(errno));
        } else {
            add(&connects);
        }
        if (s >= 0) close(s);
        usleep(1000);
    }
    return NULL;
}

static void *fork_loop(void *arg) {
    (void)arg;
    while (!stop) {
        pid_t pid = fork();
        if (pid == 0) _exit(0);
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) < 0) add(&fork_failures); else add(&forks);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: load THREADS OPENS SECONDS DIR\n"); return 2; }
    int threads = atoi(argv[1]);
    opens_per_thread = atol(argv[2]);
    double seconds = atof(argv[3]);
    snprintf(dir, sizeof dir, "%s", argv[4]);
    snprintf(socket_path, sizeof socket_path, "%s/load.sock", dir);
    unlink(socket_path);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", socket_path);
    int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener < 0 || bind(listener, (struct sockaddr *)&a, sizeof a) != 0 || listen(listener, 512) != 0) {
        fprintf(stderr, "load: cannot listen: %s\n", strerror(errno));
        return 2;
    }
    pthread_t acceptor, others[3], *openers = calloc(threads, sizeof *openers);
    pthread_create(&acceptor, NULL, accept_loop, (void *)(long)listener);
    pthread_create(&others[0], NULL, exec_loop, NULL);
    pthread_create(&others[1], NULL, connect_loop, NULL);
    pthread_create(&others[2], NULL, fork_loop, NULL);
    for (long i = 0; i < threads; i++) pthread_create(&openers[i], NULL, open_loop, (void *)i);
    // The timer bounds the run; the openers may finish first (OPENS each).
    struct timespec start, t;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        usleep(100000);
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - start.tv_sec + (t.tv_nsec - start.tv_nsec) / 1e9 >= seconds) break;
    }
    stop = 1;
    for (int i = 0; i < threads; i++) pthread_join(openers[i], NULL);
    for (int i = 0; i < 3; i++) pthread_join(others[i], NULL);
    printf("opens=%ld open_failures=%ld execs=%ld exec_failures=%ld connects=%ld connect_failures=%ld forks=%ld fork_failures=%ld\n",
           opens, open_failures, execs, exec_failures, connects, connect_failures, forks, fork_failures);
    fflush(stdout);
    _exit(0);
}
