extension AdversarialSources {
    /// The second half of the helper's source: the attacks and `main`.
    static let helperAttacks = #"""
// After a signal attack: did the stand-in die? (bare) / are we, and so the supervisor, alive?
static void check_target_alive(pid_t target, int standin) {
    if (standin) {
        for (int i = 0; i < 100; i++) {
            int status;
            pid_t r = waitpid(target, &status, WNOHANG);
            if (r == target) {
                if (WIFSIGNALED(status)) say("ATTACK-SUCCEEDED stand-in killed by signal %d", WTERMSIG(status));
                else say("stand-in exited status %d", WEXITSTATUS(status));
                return;
            }
            usleep(10000);
        }
        say("stand-in still alive");
        kill(target, SIGKILL);
        waitpid(target, NULL, 0);
    } else {
        usleep(300000); // the window for the supervisor to die: an absence can't be polled
        if (kill(target, 0) != 0 && errno == ESRCH) say("ATTACK-SUCCEEDED supervisor gone");
        say("SURVIVED");
    }
}

static int read_proc(pid_t target, const char *rel, const char *label) {
    char path[128];
    snprintf(path, sizeof path, "/proc/%d/%s", target, rel);
    int fd = open(path, O_RDONLY);
    if (fd < 0) { say("%s: open errno=%d", label, errno); return -1; }
    char buf[8192];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) { say("%s: opened, read=%zd errno=%d", label, n, errno); say("ATTACK-SUCCEEDED %s opened", label); return 0; }
    buf[n] = 0;
    for (ssize_t i = 0; i < n; i++) if (buf[i] == 0 || buf[i] == '\n') buf[i] = ' ';
    buf[n > 200 ? 200 : n] = 0;
    say("ATTACK-SUCCEEDED %s read %zd bytes: %s", label, n, buf);
    return 0;
}

// The first readable mapping of `target` from its maps file, else 0.
static uintptr_t first_mapping(pid_t target) {
    char path[64], buf[65536];
    snprintf(path, sizeof path, "/proc/%d/maps", target);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    unsigned long lo = 0;
    char perms[8] = {0};
    if (sscanf(buf, "%lx-%*x %4s", &lo, perms) == 2 && perms[0] == 'r') return lo;
    return 0;
}

// A thread of `process` other than its leader (found with stat, which is never trapped), or 0.
// Every id above the leader's, wrapping at pid_max: on a busy machine other processes take
// hundreds of ids between the supervisor's start and its threads'.
static pid_t find_thread(pid_t process) {
    long pid_max = 32768;
    FILE *f = fopen("/proc/sys/kernel/pid_max", "r");
    if (f) { if (fscanf(f, "%ld", &pid_max) != 1) pid_max = 32768; fclose(f); }
    for (long k = 1; k < pid_max; k++) {
        long id = process + k;
        if (id >= pid_max) id -= pid_max - 300; // the kernel wraps to 300
        char path[64];
        struct stat st;
        snprintf(path, sizeof path, "/proc/%d/task/%ld", process, id);
        if (stat(path, &st) == 0) return (pid_t)id;
    }
    return 0;
}

// who: "parent" (the supervisor) or "standin", with "-thread" to aim at one of its non-leader
// threads' ids instead of its pid.
static int attack(const char *name, const char *who, const char *arg) {
    int standin = strncmp(who, "standin", 7) == 0;
    int thread = strstr(who, "-thread") != NULL;
    pid_t process = standin ? start_standin(arg) : getppid();
    if (process <= 0) { say("no target"); return 1; }
    standin_pid = standin ? process : 0;
    report_target(process);
    say("target-pgid=%d own-pgid=%d", getpgid(process), getpgrp());
    pid_t target = process;
    if (thread) {
        target = find_thread(process);
        say("target-thread=%d", target);
        if (target <= 0) { say("no thread found"); if (standin) { kill(process, SIGKILL); waitpid(process, NULL, 0); } return 1; }
    }
    long rc;
    if (!strcmp(name, "kill")) {
        rc = kill(target, SIGKILL); result("kill", rc);
        check_target_alive(process, standin);
    } else if (!strcmp(name, "tkill")) {
        rc = syscall(SYS_tkill, target, SIGKILL); result("tkill", rc);
        check_target_alive(process, standin);
    } else if (!strcmp(name, "tgkill")) {
        rc = syscall(SYS_tgkill, target, target, SIGKILL); result("tgkill", rc);
        check_target_alive(process, standin);
    } else if (!strcmp(name, "tgkill-threads")) {
        // Only threads of `target` can match (the tgid is checked), so guessing is safe.
        int sent = 0;
        for (int k = 1; k < 256; k++) if (syscall(SYS_tgkill, target, target + k, SIGKILL) == 0) { sent++; say("tgkill thread %d sent", target + k); break; }
        say("threads signalled=%d", sent);
        check_target_alive(process, standin);
    } else if (!strcmp(name, "rt_sigqueueinfo")) {
        siginfo_t si; memset(&si, 0, sizeof si);
        si.si_signo = SIGKILL; si.si_code = SI_QUEUE; si.si_pid = getpid(); si.si_uid = getuid();
        rc = syscall(SYS_rt_sigqueueinfo, target, SIGKILL, &si); result("rt_sigqueueinfo", rc);
        check_target_alive(process, standin);
    } else if (!strcmp(name, "rt_tgsigqueueinfo")) {
        siginfo_t si; memset(&si, 0, sizeof si);
        si.si_signo = SIGKILL; si.si_code = SI_QUEUE; si.si_pid = getpid(); si.si_uid = getuid();
        rc = syscall(SYS_rt_tgsigqueueinfo, target, target, SIGKILL, &si); result("rt_tgsigqueueinfo", rc);
        check_target_alive(process, standin);
    } else if (!strcmp(name, "pidfd_send_signal")) {
        int pidfd = (int)syscall(SYS_pidfd_open, target, thread ? O_EXCL /* PIDFD_THREAD */ : 0); result("pidfd_open", pidfd);
        rc = pidfd >= 0 ? syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) : -1;
        result("pidfd_send_signal", rc);
        check_target_alive(process, standin);
    } else if (!strcmp(name, "killpg")) {
        pid_t pgid = getpgid(target);
        if (pgid == getpgrp()) { say("refusing: the target shares our process group"); return 1; }
        // Never signal a group the target merely belongs to (e.g. a test runner's).
        if (pgid != target) { say("refusing: the target (%d) doesn't lead its process group %d", target, pgid); return 1; }
        rc = kill(-pgid, SIGKILL); result("killpg", rc);
        check_target_alive(process, standin);
    } else if (!strcmp(name, "prlimit")) {
        // Lowers the target's RLIMIT_NOFILE (starving it of fds) and RLIMIT_CPU (the kernel
        // SIGKILLs a process past its hard CPU limit). Restored right after when it worked.
        struct rlimit old_nofile, old_cpu, low = { 3, 3 }, cpu = { 1, 1 }, now_nofile;
        prlimit(target, RLIMIT_NOFILE, NULL, &old_nofile);
        prlimit(target, RLIMIT_CPU, NULL, &old_cpu);
        rc = prlimit(target, RLIMIT_NOFILE, &low, NULL); result("prlimit NOFILE", rc);
        long rc2 = prlimit(target, RLIMIT_CPU, &cpu, NULL); result("prlimit CPU", rc2);
        if (prlimit(target, RLIMIT_NOFILE, NULL, &now_nofile) == 0 && now_nofile.rlim_cur == 3)
            say("ATTACK-SUCCEEDED the target's RLIMIT_NOFILE is now 3");
        else if (rc == 0 || rc2 == 0) say("ATTACK-SUCCEEDED prlimit on the target returned success");
        if (rc == 0) prlimit(target, RLIMIT_NOFILE, &old_nofile, NULL);
        if (rc2 == 0) prlimit(target, RLIMIT_CPU, &old_cpu, NULL);
        if (standin) { kill(process, SIGKILL); waitpid(process, NULL, 0); }
        else check_target_alive(process, 0);
    } else if (!strncmp(name, "sigio", 5) || !strcmp(name, "dnotify") || !strcmp(name, "lease")) {
        // No kill() at all: make the kernel deliver the signal. An fd's owner (F_SETOWN and
        // friends) gets SIGIO, or the signal chosen with F_SETSIG, when the fd's event fires.
        //   sigio          F_SETOWN pid, F_SETSIG SIGKILL, O_ASYNC, write
        //   sigio-default  F_SETOWN pid, O_ASYNC, write: plain SIGIO, whose default action kills
        //   sigio-pgrp     F_SETOWN -pgid (the target's own group), F_SETSIG SIGKILL
        //   sigio-ioctl    ioctl FIOSETOWN + FIOASYNC instead of fcntl
        //   sigio-tid      F_SETOWN_EX F_OWNER_TID (a thread target)
        //   dnotify        F_NOTIFY on a directory, then create a file in it
        //   lease          F_SETLEASE on a file, then a non-blocking open for write breaks it
        int fd = -1, other = -1;
        char path[4096] = "";
        if (!strcmp(name, "dnotify")) {
            snprintf(path, sizeof path, "dnotify.%d", getpid());
            mkdir(path, 0755);
            fd = open(path, O_RDONLY | O_DIRECTORY);
        }
        else if (!strcmp(name, "lease")) { snprintf(path, sizeof path, "lease.%d", getpid()); fd = open(path, O_RDONLY | O_CREAT, 0644); }
        else { int sv[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, sv); fd = sv[0]; other = sv[1]; }
        result("fd", fd);
        if (!strcmp(name, "sigio-pgrp")) {
            pid_t pgid = getpgid(process);
            if (pgid != process || pgid == getpgrp()) { say("refusing: the target doesn't lead its own process group"); return 1; }
            rc = fcntl(fd, F_SETOWN, -pgid);
        } else if (!strcmp(name, "sigio-ioctl")) {
            int owner = target;
            rc = ioctl(fd, FIOSETOWN, &owner);
        } else if (!strcmp(name, "sigio-tid")) {
            struct f_owner_ex ex = { F_OWNER_TID, target };
            rc = fcntl(fd, F_SETOWN_EX, &ex);
        } else rc = fcntl(fd, F_SETOWN, target);
        result("set owner", rc);
        if (rc != 0) {
            // F_NOTIFY and F_SETLEASE would make us the owner: firing now would only signal ourselves.
            say("owner not set: not firing");
            check_target_alive(process, standin);
            if (path[0] && strcmp(name, "dnotify") != 0) unlink(path);
            return 0;
        }
        if (strcmp(name, "sigio-default") != 0) { rc = fcntl(fd, F_SETSIG, SIGKILL); result("F_SETSIG", rc); }
        if (!strcmp(name, "dnotify")) {
            rc = fcntl(fd, F_NOTIFY, DN_CREATE); result("F_NOTIFY", rc);
            char file[4200];
            snprintf(file, sizeof file, "%s/new", path);
            int f = open(file, O_WRONLY | O_CREAT, 0644); close(f);
            path[0] = 0; // a directory: left in place
        } else if (!strcmp(name, "lease")) {
            rc = fcntl(fd, F_SETLEASE, F_RDLCK); result("F_SETLEASE", rc);
            pid_t child = fork();
            if (child == 0) { int f = open(path, O_WRONLY | O_NONBLOCK); _exit(f >= 0 ? 0 : 1); }
            waitpid(child, NULL, 0);
        } else {
            if (!strcmp(name, "sigio-ioctl")) { int on = 1; rc = ioctl(fd, FIOASYNC, &on); }
            else rc = fcntl(fd, F_SETFL, O_ASYNC | O_NONBLOCK);
            result("async", rc);
            ssize_t w = write(other, "x", 1); (void)w;
        }
        check_target_alive(process, standin);
        if (path[0]) unlink(path);
    } else if (!strcmp(name, "cgroup-kill")) {
        // No signal syscall: move the target into a fresh cgroup (v2) and write cgroup.kill.
        char mnt[512] = "", line[4096];
        FILE *mi = fopen("/proc/self/mountinfo", "r");
        while (mi && fgets(line, sizeof line, mi)) {
            char point[512], type[64];
            // ... mount-point ... - fstype source options
            char *dash = strstr(line, " - ");
            if (!dash || sscanf(line, "%*s %*s %*s %*s %511s", point) != 1 || sscanf(dash + 3, "%63s", type) != 1) continue;
            if (!strcmp(type, "cgroup2")) { strcpy(mnt, point); break; }
        }
        if (mi) fclose(mi);
        if (!mnt[0]) { say("CGROUP-UNAVAILABLE: no cgroup2 mount"); if (standin) { kill(process, SIGKILL); waitpid(process, NULL, 0); } return 5; }
        char dir[1024], file[1200], pid[32];
        snprintf(dir, sizeof dir, "%s/agentgate-adv-%d", mnt, getpid());
        say("cgroup=%s", dir);
        rc = mkdir(dir, 0755); result("mkdir cgroup", rc);
        if (rc != 0 && standin) { say("CGROUP-UNAVAILABLE: can't create a cgroup"); kill(process, SIGKILL); waitpid(process, NULL, 0); return 5; }
        snprintf(file, sizeof file, "%s/cgroup.procs", dir);
        snprintf(pid, sizeof pid, "%d", process);
        int fd = open(file, O_WRONLY); result("open cgroup.procs", fd);
        rc = fd >= 0 ? write(fd, pid, strlen(pid)) : -1; result("move target", rc);
        if (fd >= 0) close(fd);
        snprintf(file, sizeof file, "%s/cgroup.kill", dir);
        fd = open(file, O_WRONLY); result("open cgroup.kill", fd);
        rc = fd >= 0 ? write(fd, "1", 1) : -1; result("cgroup.kill", rc);
        if (fd >= 0) close(fd);
        check_target_alive(process, standin);
        // Clean up: anything still in it goes back to the root cgroup, then the directory goes.
        snprintf(file, sizeof file, "%s/cgroup.procs", mnt);
        fd = open(file, O_WRONLY);
        if (fd >= 0) { ssize_t w = write(fd, pid, strlen(pid)); (void)w; close(fd); }
        rmdir(dir);
    } else if (!strcmp(name, "kill-all")) {
        rc = kill(-1, SIGKILL); result("kill(-1)", rc);
        check_target_alive(process, standin);
    } else if (!strcmp(name, "setpgid")) {
        pid_t pgid = getpgid(target);
        rc = setpgid(0, pgid); result("setpgid", rc);
        if (getpgrp() == pgid) say("ATTACK-SUCCEEDED joined the target's process group %d", pgid);
        if (standin) { kill(process, SIGKILL); waitpid(process, NULL, 0); }
        else check_target_alive(process, 0);
    } else if (!strcmp(name, "ptrace-attach") || !strcmp(name, "ptrace-seize")) {
        int seize = !strcmp(name, "ptrace-seize");
        rc = ptrace(seize ? PTRACE_SEIZE : PTRACE_ATTACH, target, 0, 0); result(name, rc);
        if (rc == 0) {
            say("ATTACK-SUCCEEDED %s", name);
            if (seize) ptrace(PTRACE_INTERRUPT, target, 0, 0);
            int status;
            waitpid(target, &status, __WALL);
            errno = 0;
            long word = ptrace(PTRACE_PEEKDATA, target, (void *)first_mapping(target), 0);
            say("peek=%lx errno=%d", word, errno);
            ptrace(PTRACE_DETACH, target, 0, 0);
            kill(target, SIGCONT);
        }
        if (standin) { kill(process, SIGKILL); waitpid(process, NULL, 0); }
        else check_target_alive(process, 0);
    } else if (!strcmp(name, "proc-mem") || !strcmp(name, "proc-mem-write") || !strcmp(name, "proc-task-mem")) {
        char path[128];
        if (!strcmp(name, "proc-task-mem")) snprintf(path, sizeof path, "/proc/%d/task/%d/mem", target, target);
        else snprintf(path, sizeof path, "/proc/%d/mem", target);
        int fd = open(path, !strcmp(name, "proc-mem-write") ? O_RDWR : O_RDONLY);
        result("open mem", fd);
        if (fd >= 0) {
            uintptr_t at = standin ? (uintptr_t)standin_memory : first_mapping(target);
            char buf[64] = {0};
            ssize_t n = at ? pread(fd, buf, 40, (off_t)at) : -1;
            if (n > 0) { for (int i = 0; i < n; i++) if (buf[i] < 32 || buf[i] > 126) buf[i] = '.'; buf[n] = 0; }
            say("ATTACK-SUCCEEDED %s opened; read %zd bytes at %lx: %s", name, n, (unsigned long)at, n > 0 ? buf : "");
        }
        if (standin) { kill(process, SIGKILL); waitpid(process, NULL, 0); }
        else check_target_alive(process, 0);
    } else if (!strcmp(name, "proc-environ") || !strcmp(name, "proc-maps") || !strcmp(name, "proc-cwd")) {
        if (!strcmp(name, "proc-environ")) read_proc(target, "environ", name);
        else if (!strcmp(name, "proc-maps")) read_proc(target, "maps", name);
        else { char rel[4096]; snprintf(rel, sizeof rel, "cwd/%s", arg ? arg : "."); read_proc(target, rel, name); }
        if (standin) { kill(process, SIGKILL); waitpid(process, NULL, 0); }
        else check_target_alive(process, 0);
    } else if (!strcmp(name, "proc-fd")) {
        for (int n = 3; n < 64; n++) {
            char path[64], link[4096];
            snprintf(path, sizeof path, "/proc/%d/fd/%d", target, n);
            ssize_t l = readlink(path, link, sizeof link - 1);
            int fd = open(path, O_RDONLY);
            if (fd < 0) continue;
            link[l > 0 ? l : 0] = 0;
            char buf[128] = {0};
            ssize_t r = read(fd, buf, sizeof buf - 1);
            if (r > 0) { for (int i = 0; i < r; i++) if (buf[i] < 32 || buf[i] > 126) buf[i] = '.'; buf[r] = 0; }
            say("ATTACK-SUCCEEDED opened the target's fd %d (%s): %s", n, link, r > 0 ? buf : "");
            close(fd);
            break;
        }
        if (standin) { kill(process, SIGKILL); waitpid(process, NULL, 0); }
        else check_target_alive(process, 0);
    } else if (!strcmp(name, "proc-self-fd")) {
        // Opens /proc/self/fd/N for every N this process does NOT have open: any success is a
        // file from someone else's fd table (the supervisor's, if it resolves /proc/self as
        // itself). Bare, the stand-in's table is named explicitly.
        for (int n = 3; n < 64; n++) {
            if (!standin && fcntl(n, F_GETFD) >= 0) continue;
            char path[64], link[4096] = {0};
            if (standin) snprintf(path, sizeof path, "/proc/%d/fd/%d", target, n);
            else snprintf(path, sizeof path, "/proc/self/fd/%d", n);
            int fd = open(path, O_RDONLY);
            if (fd < 0) continue;
            snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
            ssize_t l = readlink(path, link, sizeof link - 1);
            (void)l;
            say("ATTACK-SUCCEEDED opened fd %d of another fd table: %s", n, link);
            close(fd);
            break;
        }
        if (standin) { kill(process, SIGKILL); waitpid(process, NULL, 0); }
        else check_target_alive(process, 0);
    } else if (!strcmp(name, "pidfd-getfd")) {
        int pidfd = (int)syscall(SYS_pidfd_open, target, thread ? O_EXCL /* PIDFD_THREAD */ : 0); result("pidfd_open", pidfd);
        for (int n = 3; pidfd >= 0 && n < 64; n++) {
            int fd = (int)syscall(SYS_pidfd_getfd, pidfd, n, 0);
            if (fd < 0) continue;
            char path[64], link[4096] = {0};
            snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
            ssize_t l = readlink(path, link, sizeof link - 1);
            (void)l;
            say("ATTACK-SUCCEEDED stole the target's fd %d (%s)", n, link);
            break;
        }
        if (standin) { kill(process, SIGKILL); waitpid(process, NULL, 0); }
        else check_target_alive(process, 0);
    } else if (!strcmp(name, "vm-readv") || !strcmp(name, "vm-writev")) {
        int writing = !strcmp(name, "vm-writev");
        uintptr_t at = standin ? (uintptr_t)standin_memory : first_mapping(target);
        if (!at) at = 0x10000; // unknown layout: a fault (EFAULT) still proves access was granted
        char buf[64] = "OVERWRITTEN-BY-AGENT";
        struct iovec local = { buf, 27 }, remote = { (void *)at, 27 };
        rc = writing ? syscall(SYS_process_vm_writev, target, &local, 1, &remote, 1, 0)
                     : syscall(SYS_process_vm_readv, target, &local, 1, &remote, 1, 0);
        result(name, rc);
        if (rc > 0) { buf[rc < 63 ? rc : 63] = 0; say("ATTACK-SUCCEEDED %s %ld bytes: %s", name, rc, writing ? "" : buf); }
        else if (rc < 0 && errno == EFAULT) say("ATTACK-SUCCEEDED %s permitted (EFAULT on a guessed address)", name);
        if (standin) { kill(process, SIGKILL); waitpid(process, NULL, 0); }
        else check_target_alive(process, 0);
    } else {
        say("unknown attack %s", name);
        return 2;
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
static int install_filter(const char *via) {
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0), // nr
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 1234),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { 4, code };
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); // what lets an unprivileged process stack a filter
    long rc = !strcmp(via, "prctl") ? prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0)
                                    : syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
    result(via, rc);
    int fd = openat(AT_FDCWD, "/etc/hostname", O_RDONLY);
    if (fd < 0 && errno == 1234) say("ATTACK-SUCCEEDED the agent's own filter answers openat");
    else say("openat after: fd=%d errno=%d", fd, fd < 0 ? errno : 0);
    return 0;
}

// Runs `fn` in a child created with clone/clone3 and the given flags; returns its exit status.
static char clone_stack[1 << 16] __attribute__((aligned(16)));
struct ns_exec { const char *forbidden, *allowed; };
static int ns_child(void *arg) {
    struct ns_exec *x = arg;
    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    long rc = mount(x->forbidden, x->allowed, NULL, MS_BIND, NULL); result("mount", rc);
    char *argv[] = { (char *)x->allowed, NULL };
    execv(x->allowed, argv);
    say("exec errno=%d", errno);
    return 126;
}

static int ns_exec(const char *how, const char *forbidden, const char *allowed) {
    struct ns_exec x = { forbidden, allowed };
    if (!strcmp(how, "unshare") || !strcmp(how, "unshare-user")) {
        long rc = unshare(CLONE_NEWNS | (!strcmp(how, "unshare-user") ? CLONE_NEWUSER : 0)); result("unshare", rc);
        return ns_child(&x);
    }
    pid_t pid;
    if (!strcmp(how, "clone")) {
        pid = clone(ns_child, clone_stack + sizeof clone_stack, CLONE_NEWNS | SIGCHLD, &x);
        result("clone", pid);
    } else {
        struct { uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls; } args;
        memset(&args, 0, sizeof args);
        args.flags = CLONE_NEWNS;
        args.exit_signal = SIGCHLD;
        pid = (pid_t)syscall(SYS_clone3, &args, sizeof args);
        if (pid == 0) _exit(ns_child(&x));
        result("clone3", pid);
    }
    if (pid < 0) return 1;
    int status = 0;
    waitpid(pid, &status, 0);
    say("child status=%d", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return 0;
}

// The orphan that keeps opening a file after the supervisor is killed.
static int orphan_loop(const char *out, const char *target) {
    pid_t pid = fork();
    if (pid != 0) {
        for (int i = 0; i < 300; i++) usleep(100000); // the top-level agent waits to be killed
        return 0;
    }
    setsid();
    if (fork() != 0) _exit(0); // the grandchild, reparented away from the agent
    int fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) _exit(1);
    close(0); close(1); close(2);
    dprintf(fd, "pid=%d\n", getpid());
    for (int i = 0; i < 150; i++) {
        int f = open(target, O_RDONLY);
        if (f >= 0) { dprintf(fd, "ok\n"); close(f); }
        else dprintf(fd, "err=%d\n", errno);
        usleep(100000); // the loop's pace: one open every 100 ms, before and after the kill
    }
    _exit(0);
}


// ---------------------------------------------------------------------------------------------
// A description of a directory tree (type, mode, owner, mtime, size, content, xattrs, link
// targets), for "did anything change" checks.
static int snap_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)flag; (void)ftw;
    char extra[600] = "";
    if (S_ISREG(st->st_mode)) {
        int fd = open(path, O_RDONLY | O_NONBLOCK);
        char buf[256] = {0};
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
        if (fd >= 0) close(fd);
        for (ssize_t i = 0; i < n; i++) if (buf[i] < 32 || buf[i] > 126) buf[i] = '.';
        snprintf(extra, sizeof extra, " content=%s", n > 0 ? buf : "");
    } else if (S_ISLNK(st->st_mode)) {
        char buf[512] = {0};
        ssize_t n = readlink(path, buf, sizeof buf - 1);
        (void)n;
        snprintf(extra, sizeof extra, " -> %s", buf);
    }
    char names[1024] = {0}, xattrs[1024] = "";
    ssize_t ln = llistxattr(path, names, sizeof names);
    for (ssize_t off = 0; ln > 0 && off < ln; off += (ssize_t)strlen(names + off) + 1) {
        char value[128] = {0};
        ssize_t vn = lgetxattr(path, names + off, value, sizeof value - 1);
        (void)vn;
        size_t used = strlen(xattrs);
        snprintf(xattrs + used, sizeof xattrs - used, " %s=%s", names + off, value);
    }
    say("%s mode=%o uid=%d gid=%d nlink=%lu mtime=%ld size=%ld%s%s", path, st->st_mode, st->st_uid, st->st_gid,
        (unsigned long)st->st_nlink, (long)st->st_mtime, (long)st->st_size, extra, xattrs);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) { say("usage: adv MODE ..."); return 2; }
    const char *m = argv[1];
    const char *a = argc > 2 ? argv[2] : NULL, *b = argc > 3 ? argv[3] : NULL, *c = argc > 4 ? argv[4] : NULL;
    long rc;

    if (!strcmp(m, "launch")) {
        // Runs argv[2...] with default signal dispositions and an empty signal mask, as from a
        // login shell (a test runner may have left SIGIO & co. ignored or blocked).
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < 65; sig++) if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
        execv(argv[2], argv + 2);
        say("launch: exec errno=%d", errno);
        return 127;
    }
    if (!strcmp(m, "setkeep")) return setxattr(a, "user.keep", "yes", 3, 0) == 0 ? 0 : 1;
    if (!strcmp(m, "snapshot")) {
        for (int i = 2; i < argc; i++) if (nftw(argv[i], snap_entry, 16, FTW_PHYS) != 0) say("%s: missing", argv[i]);
        return 0;
    }

    // ---- reads ----
    if (!strcmp(m, "read")) return read_path("read", AT_FDCWD, a) ? 3 : 0;
    if (!strcmp(m, "chdir-read")) { rc = chdir(a); result("chdir", rc); return read_path("read", AT_FDCWD, b) ? 3 : 0; }
    if (!strcmp(m, "opath-reopen")) {
        // a: the object to take an O_PATH fd of; b: "proc" | "devfd" | "thread"; c: a path below it, or NULL.
        int fd = open_base(a, 0);
        result("open O_PATH", fd);
        if (fd < 0) return 3;
        char path[4096];
        const char *prefix = !strcmp(b, "proc") ? "/proc/self/fd" : !strcmp(b, "devfd") ? "/dev/fd" : "/proc/thread-self/fd";
        snprintf(path, sizeof path, "%s/%d%s%s", prefix, fd, c ? "/" : "", c ? c : "");
        return read_path("reopen", AT_FDCWD, path) ? 3 : 0;
    }
    if (!strcmp(m, "openat-dirfd")) {
        // a: the directory; b: the name in it; c: "opath" | "rdonly" | "chdir-dot"
        int dfd;
        if (!strcmp(c, "chdir-dot")) { rc = chdir(a); result("chdir", rc); dfd = open(".", O_RDONLY | O_DIRECTORY); }
        else dfd = !strcmp(c, "opath") ? open_base(a, O_DIRECTORY) : open(a, O_RDONLY | O_DIRECTORY);
        result("open dir", dfd);
        if (dfd < 0) return 3;
        return read_path("openat", dfd, b) ? 3 : 0;
    }
    if (!strcmp(m, "openat2")) {
        // a: dirfd directory; b: path; c: resolve flags (number)
        int dfd = open_base(a, O_DIRECTORY);
        result("open dir", dfd);
        struct stat st;
        fstatat(dfd, b[0] == '/' ? b + 1 : b, &st, 0); // warms the dcache for RESOLVE_CACHED
        struct open_how how = { .flags = O_RDONLY, .mode = 0, .resolve = strtoull(c, NULL, 0) };
        int fd = (int)syscall(SYS_openat2, dfd, b, &how, sizeof how);
        result("openat2", fd);
        if (fd < 0) return 3;
        dump(fd, "openat2");
        return 0;
    }
    if (!strcmp(m, "link-read")) {
        // a: source, b: new name; c: "link" | "linkat" | "linkat-follow"
        if (!strcmp(c, "link")) rc = link(a, b);
        else rc = linkat(AT_FDCWD, a, AT_FDCWD, b, !strcmp(c, "linkat-follow") ? AT_SYMLINK_FOLLOW : 0);
        result(c, rc);
        return read_path("via-link", AT_FDCWD, b) ? 3 : 0;
    }
    if (!strcmp(m, "rename-read")) {
        // a: source dir, b: destination dir, c: file to read afterwards
        rc = rename(a, b); result("rename", rc);
        int r = read_path("after-rename", AT_FDCWD, c);
        if (rc == 0) rename(b, a);
        return r ? 3 : 0;
    }
    if (!strcmp(m, "bind-read")) {
        // a: source, b: mount point, c: path to read
        rc = mount(a, b, NULL, MS_BIND, NULL); result("mount", rc);
        int r = read_path("via-mount", AT_FDCWD, c);
        if (rc == 0) umount2(b, MNT_DETACH);
        return r ? 3 : 0;
    }
    if (!strcmp(m, "unshare-bind-read")) {
        // argv[2]: "ns" | "user-ns"; then source, mount point, path to read
        int flags = CLONE_NEWNS | (!strcmp(a, "user-ns") ? CLONE_NEWUSER : 0);
        rc = unshare(flags); result("unshare", rc);
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
        rc = mount(b, c, NULL, MS_BIND, NULL); result("mount", rc);
        return read_path("via-mount", AT_FDCWD, argv[5]) ? 3 : 0;
    }
    if (!strcmp(m, "chroot-read")) {
        rc = chroot(a); result("chroot", rc);
        rc = chdir("/"); result("chdir", rc);
        return read_path("in-chroot", AT_FDCWD, b) ? 3 : 0;
    }
    if (!strcmp(m, "handle-read")) {
        // a: the file; b: any directory on the same mount
        struct file_handle *fh = malloc(sizeof *fh + MAX_HANDLE_SZ);
        fh->handle_bytes = MAX_HANDLE_SZ;
        int mount_id;
        rc = name_to_handle_at(AT_FDCWD, a, fh, &mount_id, 0); result("name_to_handle_at", rc);
        int mfd = open(b, O_RDONLY | O_DIRECTORY); result("open mount dir", mfd);
        int fd = open_by_handle_at(mfd, fh, O_RDONLY); result("open_by_handle_at", fd);
        if (fd < 0) return 3;
        dump(fd, "by-handle");
        return 0;
    }
    if (!strcmp(m, "uring-read")) {
        struct io_uring_sqe sqe;
        memset(&sqe, 0, sizeof sqe);
        sqe.opcode = IORING_OP_OPENAT;
        sqe.fd = AT_FDCWD;
        sqe.addr = (uint64_t)(uintptr_t)a;
        sqe.open_flags = O_RDONLY;
        int res = 0;
        rc = uring_one(&sqe, &res);
        if (rc < 0) { errno = (int)-rc; result("io_uring", -1); return 3; }
        say("io_uring openat res=%d", res);
        if (res < 0) return 3;
        dump(res, "io_uring");
        return 0;
    }
    if (!strcmp(m, "int80-read")) {
        char *low = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
        if (low == MAP_FAILED) { say("mmap MAP_32BIT failed"); return 4; }
        strncpy(low, a, 4095);
        long fd;
        __asm__ volatile("int $0x80" : "=a"(fd) : "a"(5L), "b"((long)(uintptr_t)low), "c"(0L), "d"(0L)
                         : "memory", "r8", "r9", "r10", "r11");
        say("int80 open=%ld", fd);
        if (fd < 0) return 3;
        long n;
        __asm__ volatile("int $0x80" : "=a"(n) : "a"(3L), "b"(fd), "c"((long)(uintptr_t)(low + 4096)), "d"(4000L)
                         : "memory", "r8", "r9", "r10", "r11");
        if (n > 0) { low[4096 + n] = 0; for (long i = 0; i < n; i++) if (low[4096 + i] == '\n') low[4096 + i] = ' '; say("GOT[int80]:%s", low + 4096); }
        return 0;
    }
    if (!strcmp(m, "x32-read")) {
        char *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
        strncpy(low, a, 4095);
        long fd = syscall(0x40000000L | __NR_open, low, O_RDONLY, 0);
        if (fd < 0 && errno == ENOSYS) { say("X32-UNSUPPORTED: the kernel has no x32 ABI (ENOSYS)"); return 5; }
        result("x32 open", fd);
        if (fd < 0) return 3;
        dump((int)fd, "x32");
        return 0;
    }
    if (!strcmp(m, "race-open")) return race_open(a, b, atof(c));
    if (!strcmp(m, "race-symlink")) return race_symlink(a, b, c, atof(argv[5]));

    // ---- writes: each prints op=NAME rc= errno= ----
    if (!strcmp(m, "write-open")) {
        // a: path; b: "trunc" | "creat" | "append" | "creat-excl"
        int flags = O_WRONLY | (!strcmp(b, "trunc") ? O_TRUNC : !strcmp(b, "append") ? O_APPEND :
                                !strcmp(b, "creat-excl") ? O_CREAT | O_EXCL : O_CREAT);
        if (!strcmp(b, "rdonly-trunc")) flags = O_RDONLY | O_TRUNC; // Linux truncates even read-only
        int fd = open(a, flags, 0644); result("open", fd);
        if (fd >= 0) { ssize_t w = write(fd, "PWNED\n", 6); say("wrote=%zd", w); }
        return 0;
    }
    if (!strcmp(m, "fsop")) {
        const char *op = a;
        struct timeval tv[2] = { { 1000, 0 }, { 1000, 0 } };
        struct timespec ts[2] = { { 1000, 0 }, { 1000, 0 } };
        struct utimbuf ub = { 1000, 1000 };
        if (!strcmp(op, "unlink")) rc = unlink(b);
        else if (!strcmp(op, "unlinkat")) { int d = open_base(b, O_DIRECTORY); rc = unlinkat(d, c, 0); }
        else if (!strcmp(op, "rmdir")) rc = rmdir(b);
        else if (!strcmp(op, "unlinkat-dir")) rc = unlinkat(AT_FDCWD, b, AT_REMOVEDIR);
        else if (!strcmp(op, "rename")) rc = rename(b, c);
        else if (!strcmp(op, "renameat")) rc = renameat(AT_FDCWD, b, AT_FDCWD, c);
        else if (!strcmp(op, "renameat2-exchange")) rc = syscall(SYS_renameat2, AT_FDCWD, b, AT_FDCWD, c, RENAME_EXCHANGE);
        else if (!strcmp(op, "renameat2-noreplace")) rc = syscall(SYS_renameat2, AT_FDCWD, b, AT_FDCWD, c, RENAME_NOREPLACE);
        else if (!strcmp(op, "mkdir")) rc = mkdir(b, 0755);
        else if (!strcmp(op, "mkdirat")) rc = mkdirat(AT_FDCWD, b, 0755);
        else if (!strcmp(op, "mknod")) rc = mknod(b, S_IFIFO | 0644, 0);
        else if (!strcmp(op, "mknodat")) rc = mknodat(AT_FDCWD, b, S_IFREG | 0644, 0);
        else if (!strcmp(op, "symlink")) rc = symlink(c, b);
        else if (!strcmp(op, "symlinkat")) rc = symlinkat(c, AT_FDCWD, b);
        else if (!strcmp(op, "link")) rc = link(c, b);
        else if (!strcmp(op, "linkat")) rc = linkat(AT_FDCWD, c, AT_FDCWD, b, 0);
        else if (!strcmp(op, "truncate")) rc = truncate(b, 0);
        else if (!strcmp(op, "chmod")) rc = chmod(b, 0777);
        else if (!strcmp(op, "fchmodat")) rc = fchmodat(AT_FDCWD, b, 0777, 0);
        else if (!strcmp(op, "fchmodat2")) rc = syscall(__NR_fchmodat2, AT_FDCWD, b, 0777, 0);
        else if (!strcmp(op, "chown")) rc = chown(b, 4242, 4242);
        else if (!strcmp(op, "lchown")) rc = lchown(b, 4242, 4242);
        else if (!strcmp(op, "fchownat")) rc = fchownat(AT_FDCWD, b, 4242, 4242, 0);
        else if (!strcmp(op, "utime")) rc = utime(b, &ub);
        else if (!strcmp(op, "utimes")) rc = utimes(b, tv);
        else if (!strcmp(op, "utimensat")) rc = utimensat(AT_FDCWD, b, ts, 0);
        else if (!strcmp(op, "futimesat")) rc = syscall(SYS_futimesat, AT_FDCWD, b, tv);
        else if (!strcmp(op, "setxattr")) rc = setxattr(b, "user.agentgate", "PWNED", 5, 0);
        else if (!strcmp(op, "lsetxattr")) rc = lsetxattr(b, "user.agentgate", "PWNED", 5, 0);
        else if (!strcmp(op, "removexattr")) rc = removexattr(b, "user.keep");
        else if (!strcmp(op, "lremovexattr")) rc = lremovexattr(b, "user.keep");
        else if (!strcmp(op, "creat")) { rc = creat(b, 0644); if (rc >= 0) { ssize_t w = write((int)rc, "PWNED\n", 6); (void)w; } }
        else if (!strcmp(op, "fchmod-rdonly")) { int fd = open(b, O_RDONLY); result("open", fd); rc = fchmod(fd, 0777); }
        else if (!strcmp(op, "fchown-rdonly")) { int fd = open(b, O_RDONLY); result("open", fd); rc = fchown(fd, 4242, 4242); }
        else if (!strcmp(op, "fsetxattr-rdonly")) { int fd = open(b, O_RDONLY); result("open", fd); rc = fsetxattr(fd, "user.agentgate", "PWNED", 5, 0); }
        else if (!strcmp(op, "futimens-rdonly")) { int fd = open(b, O_RDONLY); result("open", fd); rc = futimens(fd, ts); }
        else if (!strcmp(op, "reopen-write")) {
            // Opens b read-only (allowed), then upgrades via /proc/self/fd/N or /dev/fd/N (c).
            int fd = open(b, O_RDONLY); result("open", fd);
            char path[64];
            snprintf(path, sizeof path, "%s/%d", c, fd);
            rc = open(path, O_WRONLY | O_TRUNC);
            if (rc >= 0) { ssize_t w = write((int)rc, "PWNED\n", 6); (void)w; }
        } else if (!strcmp(op, "link-then-write")) {
            // Hard-links the protected b to the allowed c, then writes through c.
            rc = link(b, c); result("link", rc);
            rc = open(c, O_WRONLY | O_TRUNC);
            if (rc >= 0) { ssize_t w = write((int)rc, "PWNED\n", 6); (void)w; }
        } else if (!strcmp(op, "rename-ancestor-then-write")) {
            // b: an ancestor of the protected file; c: a new name for it; argv[5]: the file's
            // path relative to the ancestor. Moves the ancestor away, writes, moves it back.
            rc = rename(b, c); result("rename away", rc);
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", c, argv[5]);
            int fd = open(path, O_WRONLY | O_TRUNC); result("open moved", fd);
            if (fd >= 0) { ssize_t w = write(fd, "PWNED\n", 6); (void)w; close(fd); }
            if (rc == 0) { rc = rename(c, b); result("rename back", rc); }
            rc = fd;
        } else if (!strcmp(op, "tmpfile-link")) {
            // b: directory for the O_TMPFILE; c: the name to give it; argv[5]: "empty-path" | "proc-fd"
            int fd = open(b, O_TMPFILE | O_WRONLY, 0644); result("open O_TMPFILE", fd);
            if (fd >= 0) { ssize_t w = write(fd, "PWNED\n", 6); (void)w; }
            if (argc > 5 && !strcmp(argv[5], "proc-fd")) {
                char path[64];
                snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
                rc = linkat(AT_FDCWD, path, AT_FDCWD, c, AT_SYMLINK_FOLLOW);
            } else rc = linkat(fd, "", AT_FDCWD, c, AT_EMPTY_PATH);
        } else if (!strncmp(op, "procfd-", 7)) {
            // A path-based call on /proc/self/fd/N of a read-only fd of b.
            int fd = open(b, O_RDONLY); result("open", fd);
            char path[64];
            snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
            const char *what = op + 7;
            if (!strcmp(what, "chmod")) rc = chmod(path, 0777);
            else if (!strcmp(what, "chown")) rc = chown(path, 4242, 4242);
            else if (!strcmp(what, "truncate")) rc = truncate(path, 0);
            else if (!strcmp(what, "setxattr")) rc = setxattr(path, "user.agentgate", "PWNED", 5, 0);
            else if (!strcmp(what, "utimensat")) rc = utimensat(AT_FDCWD, path, ts, 0);
            else { say("unknown procfd op %s", what); return 2; }
        } else { say("unknown fsop %s", op); return 2; }
        result(op, rc);
        return 0;
    }

    // ---- exec ----
    if (!strcmp(m, "exec")) {
        // a: program; remaining args passed as argv (argv[0] = a)
        execv(a, argv + 2);
        say("exec errno=%d", errno);
        return 126;
    }
    if (!strcmp(m, "chdir-exec")) {
        rc = chdir(a); result("chdir", rc);
        char *args[] = { (char *)b, NULL };
        execv(b, args);
        say("exec errno=%d", errno);
        return 126;
    }
    if (!strcmp(m, "execveat-fd")) {
        int fd = open(a, O_RDONLY); result("open", fd);
        char *args[] = { (char *)"prog", NULL };
        syscall(SYS_execveat, fd, "", args, environ, AT_EMPTY_PATH);
        say("exec errno=%d", errno);
        return 126;
    }
    if (!strcmp(m, "execveat-dirfd")) {
        int dfd = open_base(a, O_DIRECTORY); result("open dir", dfd);
        char *args[] = { (char *)b, NULL };
        syscall(SYS_execveat, dfd, b, args, environ, 0);
        say("exec errno=%d", errno);
        return 126;
    }
    if (!strcmp(m, "exec-procfd")) {
        // a: program; b: fd number to dup it to; c: "proc" | "thread" | "devfd"
        int fd = open_base(a, 0); result("open O_PATH", fd);
        int n = atoi(b);
        if (fd >= 0 && fd != n) { dup2(fd, n); close(fd); }
        char path[64];
        snprintf(path, sizeof path, "%s/%d", !strcmp(c, "thread") ? "/proc/thread-self/fd" : !strcmp(c, "devfd") ? "/dev/fd" : "/proc/self/fd", n);
        char *args[] = { path, NULL };
        execv(path, args);
        say("exec errno=%d", errno);
        return 126;
    }
    if (!strcmp(m, "ns-exec")) return ns_exec(a, b, c);
    if (!strcmp(m, "race-exec")) return race_exec(a, b, c, argv[5], atof(argv[6]));
    if (!strcmp(m, "race-mutate")) return race_mutate(a, atof(b));

    // ---- network ----
    if (!strcmp(m, "connect")) {
        // a: host (v4 or v6 text), b: port
        struct sockaddr_storage ss; socklen_t len;
        if (inet_address(a, atoi(b), &ss, &len)) { say("bad address"); return 2; }
        int s = socket(ss.ss_family, SOCK_STREAM, 0);
        rc = connect(s, (struct sockaddr *)&ss, len); result("connect", rc);
        if (rc == 0) after_connect(s, "HELLO-FROM-AGENT\n");
        return 0;
    }
    if (!strcmp(m, "udp")) {
        // a: "sendto" | "sendmsg" | "sendmmsg" | "connect-send"; b: host; c: port
        struct sockaddr_storage ss; socklen_t len;
        if (inet_address(b, atoi(c), &ss, &len)) { say("bad address"); return 2; }
        int s = socket(ss.ss_family, SOCK_DGRAM, 0);
        char payload[] = "UDP-PAYLOAD-FROM-AGENT";
        struct iovec iov = { payload, sizeof payload - 1 };
        struct msghdr msg; memset(&msg, 0, sizeof msg);
        msg.msg_name = &ss; msg.msg_namelen = len; msg.msg_iov = &iov; msg.msg_iovlen = 1;
        if (!strcmp(a, "sendto")) rc = sendto(s, payload, sizeof payload - 1, 0, (struct sockaddr *)&ss, len);
        else if (!strcmp(a, "sendmsg")) rc = sendmsg(s, &msg, 0);
        else if (!strcmp(a, "connected-sendto")) {
            // connect() to an allowed address (argv[5] = its port), then sendto() the denied one.
            struct sockaddr_storage ok; socklen_t oklen;
            inet_address(b, atoi(argv[5]), &ok, &oklen);
            rc = connect(s, (struct sockaddr *)&ok, oklen); result("connect allowed", rc);
            rc = sendto(s, payload, sizeof payload - 1, 0, (struct sockaddr *)&ss, len);
        }
        else if (!strcmp(a, "sendmmsg")) {
            struct mmsghdr mm[2]; memset(mm, 0, sizeof mm);
            mm[0].msg_hdr = msg; mm[1].msg_hdr = msg;
            rc = sendmmsg(s, mm, 2, 0);
        } else { rc = connect(s, (struct sockaddr *)&ss, len); result("connect", rc); rc = send(s, payload, sizeof payload - 1, 0); }
        result(a, rc);
        return 0;
    }
    if (!strcmp(m, "tfo")) {
        struct sockaddr_storage ss; socklen_t len;
        if (inet_address(a, atoi(b), &ss, &len)) { say("bad address"); return 2; }
        int s = socket(ss.ss_family, SOCK_STREAM, 0);
        if (c && !strcmp(c, "sendmsg")) {
            struct iovec iov = { (void *)"TFO-PAYLOAD-FROM-AGENT\n", 23 };
            struct msghdr msg; memset(&msg, 0, sizeof msg);
            msg.msg_name = &ss; msg.msg_namelen = len; msg.msg_iov = &iov; msg.msg_iovlen = 1;
            rc = sendmsg(s, &msg, MSG_FASTOPEN);
        } else rc = sendto(s, "TFO-PAYLOAD-FROM-AGENT\n", 23, MSG_FASTOPEN, (struct sockaddr *)&ss, len);
        result("MSG_FASTOPEN", rc);
        if (rc >= 0) after_connect(s, "MORE\n");
        return 0;
    }
    if (!strcmp(m, "unix")) {
        // a: "stream" | "dgram"; b: socket path
        struct sockaddr_un un; memset(&un, 0, sizeof un);
        un.sun_family = AF_UNIX;
        socklen_t unlen = sizeof un;
        if (b[0] == '@') { // abstract: a NUL, then the name; the length says where it ends
            memcpy(un.sun_path + 1, b + 1, strlen(b + 1));
            unlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(b));
        } else strncpy(un.sun_path, b, sizeof un.sun_path - 1);
        int dgram = !strcmp(a, "dgram");
        int s = socket(AF_UNIX, dgram ? SOCK_DGRAM : SOCK_STREAM, 0);
        if (dgram) { rc = sendto(s, "UNIX-PAYLOAD-FROM-AGENT", 23, 0, (struct sockaddr *)&un, unlen); result("sendto", rc); }
        else { rc = connect(s, (struct sockaddr *)&un, unlen); result("connect", rc); if (rc == 0) { ssize_t w = write(s, "UNIX-PAYLOAD-FROM-AGENT", 23); (void)w; } }
        return 0;
    }
    if (!strcmp(m, "uring-connect")) {
        struct sockaddr_in sa; memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET; sa.sin_port = htons((uint16_t)atoi(a)); sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct io_uring_sqe sqe; memset(&sqe, 0, sizeof sqe);
        sqe.opcode = IORING_OP_CONNECT; sqe.fd = s; sqe.addr = (uint64_t)(uintptr_t)&sa; sqe.off = sizeof sa;
        int res = 0;
        rc = uring_one(&sqe, &res);
        if (rc < 0) { errno = (int)-rc; result("io_uring", -1); return 3; }
        say("io_uring connect res=%d", res);
        if (res == 0) after_connect(s, "URING-PAYLOAD\n");
        return 0;
    }
    if (!strcmp(m, "race-connect")) return race_connect(atoi(a), atoi(b), atof(c));
    if (!strcmp(m, "race-sendto")) return race_sendto(atoi(a), atoi(b), atof(c));

    // ---- supervisor tampering ----
    if (!strcmp(m, "attack")) return attack(a, b, c);
    if (!strcmp(m, "seccomp")) return install_filter(a);
    if (!strcmp(m, "kernel")) {
        // Routes into the kernel itself. bpf: load a trivial socket filter program ("return 0");
        // iopl: raise the I/O privilege level to 3 (raw port I/O).
        if (!strcmp(a, "bpf")) {
            struct sock_filter_insn { uint8_t code; uint8_t regs; int16_t off; int32_t imm; } insns[] = {
                { 0xb7, 0, 0, 0 }, // r0 = 0
                { 0x95, 0, 0, 0 }, // exit
            };
            union { struct { uint32_t type, insn_cnt; uint64_t insns, license; uint32_t log_level, log_size; uint64_t log_buf; uint32_t kern_version; } load; char pad[256]; } attr;
            memset(&attr, 0, sizeof attr);
            attr.load.type = 1; // BPF_PROG_TYPE_SOCKET_FILTER
            attr.load.insn_cnt = 2;
            attr.load.insns = (uint64_t)(uintptr_t)insns;
            attr.load.license = (uint64_t)(uintptr_t)"GPL";
            rc = syscall(SYS_bpf, 5 /* BPF_PROG_LOAD */, &attr, 128);
            result("bpf", rc);
            if (rc >= 0) say("ATTACK-SUCCEEDED a BPF program was loaded");
        } else if (!strcmp(a, "iopl")) {
            rc = syscall(SYS_iopl, 3); result("iopl", rc);
            if (rc == 0) say("ATTACK-SUCCEEDED iopl(3)");
        } else if (!strcmp(a, "ioperm")) {
            rc = syscall(SYS_ioperm, 0x80, 1, 1); result("ioperm", rc);
            if (rc == 0) say("ATTACK-SUCCEEDED ioperm on port 0x80");
        }
        return 0;
    }
    if (!strcmp(m, "orphan-loop")) return orphan_loop(a, b);
    if (!strcmp(m, "procfs-environ")) {
        // a: mount point for a fresh procfs; b: "parent" | "standin"
        int standin = !strcmp(b, "standin");
        pid_t target = standin ? start_standin(NULL) : getppid();
        report_target(target);
        rc = mount("proc", a, "proc", 0, NULL); result("mount proc", rc);
        char path[4096];
        snprintf(path, sizeof path, "%s/%d/environ", a, target);
        int fd = open(path, O_RDONLY); result("open", fd);
        if (fd >= 0) { char buf[256]; ssize_t n = read(fd, buf, sizeof buf - 1); say("ATTACK-SUCCEEDED read %zd bytes of the target's environ", n); }
        if (rc == 0) umount2(a, MNT_DETACH);
        if (standin) { kill(target, SIGKILL); waitpid(target, NULL, 0); } else check_target_alive(target, 0);
        return 0;
    }
    say("unknown mode %s", m);
    return 2;
}
"""#
}
