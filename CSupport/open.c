// Performing an open on the agent's behalf: resolve first (O_PATH, no side effects), let Swift
// decide on the resolved path, then open exactly the object that was decided on.
#include "CSupport.h"
#include "internal.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <linux/openat2.h>
#include <dirent.h>

#define PROC_SUPER_MAGIC_VALUE 0x9fa0
#define PROC_ROOT_INODE 1

static void note_owner(agentgate_lookup_context *ctx, pid_t pid) {
    if (!ctx) return;
    if (ctx->owner_count < 8) ctx->owners[ctx->owner_count] = pid;
    if (ctx->owner_count < 9) ctx->owner_count++;
}

// The pid owning a directory inside /proc (the first numeric component of its path), or -1.
static pid_t proc_owner(int dirfd) {
    char link[32], path[256];
    snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 0) return -1;
    path[n] = '\0';
    if (strncmp(path, "/proc/", 6) != 0) return -1;
    char *end = NULL;
    long pid = strtol(path + 6, &end, 10);
    if (end == path + 6 || (*end != '/' && *end != '\0')) return -1;
    return (pid_t)pid;
}

// Resolves `path` one component at a time the way the kernel would for the agent: ordinary
// symlinks are followed by hand, /proc/self and /proc/thread-self name the agent, and each
// magic link followed is reported with its owner. Used only when a lookup met a magic link.
static int walk(int dirfd, const char *path, int flags, agentgate_lookup_context *ctx) {
    char pending[PATH_MAX * 2];
    size_t len = strlen(path);
    if (len >= sizeof pending) return -ENAMETOOLONG;
    memcpy(pending, path, len + 1);
    int cur = openat(pending[0] == '/' ? AT_FDCWD : dirfd, pending[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cur < 0) return -errno;
    size_t pos = 0;
    int links = 0;
    while (1) {
        while (pending[pos] == '/') pos++;
        if (pending[pos] == '\0') break;
        size_t start = pos;
        while (pending[pos] != '/' && pending[pos] != '\0') pos++;
        char name[256];
        size_t name_len = pos - start;
        if (name_len >= sizeof name) { close(cur); return -ENAMETOOLONG; }
        memcpy(name, pending + start, name_len);
        name[name_len] = '\0';
        size_t rest = pos;
        while (pending[rest] == '/') rest++;
        int last = pending[rest] == '\0';
        int trailing = last && pending[pos] == '/';
        if (strcmp(name, ".") == 0) continue;
        int next = openat(cur, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0) { int err = errno; close(cur); return -err; }
        struct stat st;
        if (fstat(next, &st) != 0) { int err = errno; close(next); close(cur); return -err; }
        if (!S_ISLNK(st.st_mode) || (last && !trailing && (flags & O_NOFOLLOW))) {
            close(cur);
            cur = next;
            continue;
        }
        if (++links > 40) { close(next); close(cur); return -ELOOP; }
        struct statfs fs;
        int on_proc = fstatfs(cur, &fs) == 0 && fs.f_type == PROC_SUPER_MAGIC_VALUE;
        struct stat cur_st;
        int proc_root = on_proc && fstat(cur, &cur_st) == 0 && cur_st.st_ino == PROC_ROOT_INODE;
        char target[PATH_MAX];
        target[0] = '\0';
        if (proc_root && strcmp(name, "self") == 0 && ctx) {
            snprintf(target, sizeof target, "%d", ctx->agent_tgid);
        } else if (proc_root && strcmp(name, "thread-self") == 0 && ctx) {
            snprintf(target, sizeof target, "%d/task/%d", ctx->agent_tgid, ctx->agent_tid);
        } else if (on_proc && !proc_root) {
            // A magic link (fd/N, cwd, root, exe, map_files/…): follow it one step and report
            // whose it was; the caller refuses the supervisor's own.
            pid_t owner = proc_owner(cur);
            note_owner(ctx, owner);
            close(next);
            // The agent's own links are followed whatever its dumpability, as the kernel lets
            // a process follow its own: with the supervisor's rights when it acts as the agent.
            bool suspended = ctx && owner == ctx->agent_tgid && agentgate_thread_suspend_credentials();
            next = openat(cur, name, O_PATH | O_CLOEXEC);
            int follow_err = errno;
            agentgate_thread_resume_credentials(suspended);
            if (next < 0) { close(cur); return -follow_err; }
            close(cur);
            cur = next;
            if (last && trailing) {
                if (fstat(cur, &st) == 0 && !S_ISDIR(st.st_mode)) { close(cur); return -ENOTDIR; }
            }
            continue;
        } else {
            ssize_t n = readlinkat(cur, name, target, sizeof target - 1);
            if (n < 0) { int err = errno; close(next); close(cur); return -err; }
            target[n] = '\0';
        }
        close(next);
        // Splice the link's text in front of what remains.
        size_t target_len = strlen(target);
        size_t remaining = strlen(pending + pos);
        if (target_len + 1 + remaining + 1 > sizeof pending) { close(cur); return -ENAMETOOLONG; }
        char tail[PATH_MAX * 2];
        memcpy(tail, pending + pos, remaining + 1); // starts with '/' unless empty
        memcpy(pending, target, target_len);
        memcpy(pending + target_len, tail, remaining + 1);
        pos = 0;
        if (target[0] == '/') {
            close(cur);
            cur = openat(AT_FDCWD, "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (cur < 0) return -errno;
        }
    }
    if ((flags & O_DIRECTORY)) {
        struct stat st;
        if (fstat(cur, &st) == 0 && !S_ISDIR(st.st_mode)) { close(cur); return -ENOTDIR; }
    }
    return cur;
}

static int lookup_ctx(int dirfd, const char *path, int flags, uint64_t resolve, agentgate_lookup_context *ctx) {
    if (ctx && ctx->force_walk && resolve == 0) return walk(dirfd, path, flags & (O_NOFOLLOW | O_DIRECTORY), ctx);
    // Magic links are refused on the fast path: they'd resolve with the supervisor's view of
    // /proc/self and its own right to follow other processes' links.
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)(flags | O_CLOEXEC);
    how.resolve = resolve | RESOLVE_NO_MAGICLINKS;
    long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    // A scoped lookup that crosses ".." fails with EAGAIN when any rename or mount happens on
    // the machine meanwhile (the global rename_lock/mount_lock seqcounts). The man page tells
    // callers to retry; the supervisor does, so its work adds no failure the agent's call
    // wouldn't have. RESOLVE_CACHED's EAGAIN is a real answer and is kept.
    for (int retry = 0; fd < 0 && errno == EAGAIN && retry < 8
         && (resolve & (RESOLVE_IN_ROOT | RESOLVE_BENEATH)) && !(resolve & RESOLVE_CACHED); retry++)
        fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    if (fd >= 0) return (int)fd;
    int err = errno;
    if ((err == ENOENT || err == ENOTDIR) && resolve == 0 && ctx) {
        // /proc/self reached through a symlink (/dev/fd/N, /dev/stdin, a link of the agent's)
        // names the supervisor on this fast path, and fails where the supervisor lacks what the
        // agent has. Such a lookup crossed into procfs, another mount: a failure that crossed a
        // mount is walked again as the agent (one more openat2 for a plain missing file).
        how.resolve = RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
        long again = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
        if (again >= 0) close((int)again);
        else if (errno == EXDEV) return walk(dirfd, path, flags & (O_NOFOLLOW | O_DIRECTORY), ctx);
        return -err;
    }
    if (err != ELOOP || (resolve & (RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS))) return -err;
    // Either a magic link or too many symlinks: walk it by hand (other RESOLVE_* rules can't be
    // honoured by the walk, so refuse those).
    if (resolve != 0) return -EXDEV;
    return walk(dirfd, path, flags & (O_NOFOLLOW | O_DIRECTORY), ctx);
}


// The name `directory` has in `parent`: an entry with its device and inode (by d_ino first,
// then, for a mount point, whose entry shows the covered inode, by stat of every directory).
static int entry_name(int parent, const struct stat *directory, char *name, size_t capacity) {
    for (int pass = 0; pass < 2; pass++) {
        int listing = openat(parent, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (listing < 0) return -errno;
        char buffer[8192];
        long n;
        while ((n = syscall(SYS_getdents64, listing, buffer, sizeof buffer)) > 0) {
            for (long offset = 0; offset < n;) {
                struct dirent64 *entry = (struct dirent64 *)(buffer + offset);
                offset += entry->d_reclen;
                const char *d = entry->d_name;
                if (d[0] == '.' && (d[1] == '\0' || (d[1] == '.' && d[2] == '\0'))) continue;
                if (pass == 0 ? entry->d_ino != directory->st_ino
                              : (entry->d_type != DT_DIR && entry->d_type != DT_UNKNOWN)) continue;
                struct stat st;
                if (fstatat(parent, d, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
                if (st.st_dev != directory->st_dev || st.st_ino != directory->st_ino) continue;
                close(listing);
                size_t length = strlen(d);
                if (length + 1 > capacity) return -ENAMETOOLONG;
                memcpy(name, d, length + 1);
                return (int)length;
            }
        }
        close(listing);
    }
    return -ENOENT;
}

// The absolute name of directory `fd`, built from its ancestors' entries up to "/": for names
// longer than the page readlink of /proc/self/fd/N can show (it fails with ENAMETOOLONG). The
// components are gathered from the end of `buf`, then moved to its start.
static int walked_dir_path(int fd, char *buf, size_t capacity, size_t *len) {
    if (capacity < 2) return -ENAMETOOLONG;
    size_t start = capacity - 1;
    buf[start] = '\0';
    int cur = openat(fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cur < 0) return -errno;
    struct stat cur_st;
    if (fstat(cur, &cur_st) != 0) { int err = errno; close(cur); return -err; }
    for (;;) {
        int parent = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (parent < 0) { int err = errno; close(cur); return -err; }
        struct stat parent_st;
        if (fstat(parent, &parent_st) != 0) { int err = errno; close(parent); close(cur); return -err; }
        if (parent_st.st_dev == cur_st.st_dev && parent_st.st_ino == cur_st.st_ino) { close(parent); break; }
        char name[256];
        int length = entry_name(parent, &cur_st, name, sizeof name);
        close(cur);
        if (length < 0) { close(parent); return length; }
        if ((size_t)length + 1 > start) { close(parent); return -ENAMETOOLONG; }
        start -= (size_t)length;
        memcpy(buf + start, name, (size_t)length);
        buf[--start] = '/';
        cur = parent;
        cur_st = parent_st;
    }
    close(cur);
    if (start == capacity - 1) buf[--start] = '/';
    *len = capacity - 1 - start;
    memmove(buf, buf + start, *len + 1);
    return 0;
}

static int fd_path(int fd, char *buf, size_t capacity, size_t *len) {
    char link[32];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, buf, capacity - 1);
    // Past a page the kernel can't show the name (ENAMETOOLONG); a directory is then named
    // from its ancestors, as getcwd's fallback does. (A file is named through its parent by
    // the callers that have one.)
    if (n < 0 && errno == ENAMETOOLONG) {
        // Any failure of the walk (a file, an unreadable ancestor) is the name being too long.
        return walked_dir_path(fd, buf, capacity, len) == 0 ? 0 : -ENAMETOOLONG;
    }
    if (n < 0) return -errno;
    if ((size_t)n >= capacity - 1) return -ENAMETOOLONG;
    buf[n] = '\0';
    *len = (size_t)n;
    return 0;
}

// `buf` = the resolved name of directory `parent` + "/" + `name` (no doubled slash at "/").
static int entry_path(int parent, const char *name, char *buf, size_t capacity, size_t *len) {
    size_t parent_len = 0;
    int rc = fd_path(parent, buf, capacity, &parent_len);
    if (rc < 0) return rc;
    size_t name_len = strlen(name);
    if (parent_len + 1 + name_len + 1 > capacity) return -ENAMETOOLONG;
    if (!(parent_len == 1 && buf[0] == '/')) buf[parent_len++] = '/';
    memcpy(buf + parent_len, name, name_len + 1);
    *len = parent_len + name_len;
    return 0;
}

// Names `out`'s object through `parent` and `name` (its entry there), for a file whose name
// is past the page /proc/self/fd shows: the parent, a directory, is walked (fd_path).
static int name_in_parent(int parent, const char *name, agentgate_open_prepared *out) {
    struct stat st;
    if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_dev != out->object_device
        || st.st_ino != out->object_inode) return -ENAMETOOLONG;
    return entry_path(parent, name, out->resolved, sizeof out->resolved, &out->resolved_len);
}

static int finish_existing(agentgate_open_prepared *out, int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) { int err = errno; close(fd); return -err; }
    out->kind = AGENTGATE_OPEN_EXISTING;
    out->object_fd = fd;
    out->file_type = st.st_mode & S_IFMT;
    out->link_count = (unsigned)st.st_nlink;
    out->device_number = (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) ? (uint64_t)st.st_rdev : 0;
    out->object_device = (uint64_t)st.st_dev;
    out->object_inode = (uint64_t)st.st_ino;
    return fd_path(fd, out->resolved, sizeof out->resolved, &out->resolved_len);
}

// Splits `path` into its directory part (copied into `dir`, "." when none) and final component.
static int split_path(const char *path, char *dir, size_t dir_capacity, char *name, size_t name_capacity) {
    size_t len = strlen(path);
    if (len == 0) return -ENOENT;
    if (path[len - 1] == '/') return -EISDIR; // O_CREAT on "x/": the kernel refuses too
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t base_len = strlen(base);
    if (base_len >= name_capacity) return -ENAMETOOLONG;
    memcpy(name, base, base_len + 1);
    if (!slash) { snprintf(dir, dir_capacity, "."); return 0; }
    size_t dir_len = (size_t)(slash - path);
    if (dir_len == 0) { snprintf(dir, dir_capacity, "/"); return 0; }
    if (dir_len >= dir_capacity) return -ENAMETOOLONG;
    memcpy(dir, path, dir_len);
    dir[dir_len] = '\0';
    return 0;
}

// What the final component of a path is, as the kernel's lookup classifies it (LAST_NORM,
// LAST_DOT, LAST_DOTDOT, LAST_ROOT), and whether slashes follow it.
enum { NAME_NORMAL = 0, NAME_DOT = 1, NAME_DOTDOT = 2, NAME_ROOT = 3 };

// Splits `path` like split_path, but trailing slashes are reported in `*trailing` instead of
// refused, and `*type` says whether the final component is ".", ".." or the root ("/", "//"),
// for which `name` is "." and `dir` is the directory the dots are looked up in.
static int split_final(const char *path, char *dir, size_t dir_capacity, char *name, size_t name_capacity,
                       int *type, int *trailing) {
    char copy[PATH_MAX];
    size_t len = strlen(path);
    *type = NAME_NORMAL;
    *trailing = 0;
    if (len == 0) return -ENOENT;
    if (len >= sizeof copy) return -ENAMETOOLONG;
    memcpy(copy, path, len + 1);
    while (len > 1 && copy[len - 1] == '/') { copy[--len] = '\0'; *trailing = 1; }
    if (strcmp(copy, "/") == 0) {
        *type = NAME_ROOT;
        snprintf(dir, dir_capacity, "/");
        snprintf(name, name_capacity, ".");
        return 0;
    }
    int rc = split_path(copy, dir, dir_capacity, name, name_capacity);
    if (rc < 0) return rc;
    if (strcmp(name, ".") == 0) *type = NAME_DOT;
    else if (strcmp(name, "..") == 0) *type = NAME_DOTDOT;
    return 0;
}

// For O_NOFOLLOW opens of an existing regular file: keeps the parent directory and the name
// the object was found under, so the file can be opened by that name with O_NOFOLLOW (which a
// reopen through /proc/self/fd can't carry). Only when the name still holds the object.
static void keep_entry(agentgate_open_prepared *out, int parent, const char *name) {
    struct stat object, entry;
    if (fstat(out->object_fd, &object) != 0 || fstatat(parent, name, &entry, AT_SYMLINK_NOFOLLOW) != 0
        || object.st_dev != entry.st_dev || object.st_ino != entry.st_ino || strlen(name) >= sizeof out->name) {
        close(parent);
        return;
    }
    out->parent_fd = parent;
    snprintf(out->name, sizeof out->name, "%s", name);
}

// The path a scoped lookup (RESOLVE_IN_ROOT, RESOLVE_BENEATH) must follow for the symlink body
// `target` found in `parent`: spelled from `root`, so the scope stays the original one. Returns
// 0, or -EACCES when the parent can't be named inside the root.
static int scoped_link_path(int root, int parent, const char *target, char *out, size_t capacity) {
    if (target[0] == '/') {
        if (strlen(target) >= capacity) return -ENAMETOOLONG;
        snprintf(out, capacity, "%s", target);
        return 0;
    }
    char root_path[PATH_MAX], parent_path[PATH_MAX];
    size_t root_len = 0, parent_len = 0;
    if (fd_path(root, root_path, sizeof root_path, &root_len) < 0) return -EACCES;
    if (fd_path(parent, parent_path, sizeof parent_path, &parent_len) < 0) return -EACCES;
    const char *inside;
    if (parent_len == root_len && memcmp(parent_path, root_path, root_len) == 0) inside = "";
    else if (root_len == 1 && root_path[0] == '/') inside = parent_path + 1;
    else if (parent_len > root_len && memcmp(parent_path, root_path, root_len) == 0 && parent_path[root_len] == '/')
        inside = parent_path + root_len + 1;
    else return -EACCES; // never expected: the parent was resolved inside the root
    int n = snprintf(out, capacity, "%s%s%s", inside, inside[0] ? "/" : "", target);
    return n < 0 || (size_t)n >= capacity ? -ENAMETOOLONG : 0;
}

/// A protected_regular or protected_fifos setting (0 when it can't be read: the check is then
/// the kernel's default of off).
static int protected_level(const char *sysctl) {
    char text[16];
    return agentgate_read_small_file(AT_FDCWD, sysctl, text, sizeof text) > 0 ? atoi(text) : 0;
}

/// The kernel's may_create_in_sticky, which an O_CREAT open of an existing file makes and the
/// supervisor's reopen (without O_CREAT) would skip: in a sticky directory, a regular file
/// (fs.protected_regular) or FIFO (fs.protected_fifos) owned neither by the caller's fsuid nor
/// by the directory's owner can't be opened with O_CREAT: EACCES when the directory is
/// world-writable, or group-writable at level 2. No capability overrides it.
static int sticky_create_check(const struct stat *directory, const struct stat *file) {
    if (!(directory->st_mode & S_ISVTX)) return 0;
    if (!S_ISREG(file->st_mode) && !S_ISFIFO(file->st_mode)) return 0;
    if (file->st_uid == directory->st_uid) return 0;
    if (file->st_uid == (uid_t)syscall(SYS_setfsuid, -1)) return 0; // the thread's fsuid (the agent's)
    if (!(directory->st_mode & 0022)) return 0;
    int level = protected_level(S_ISREG(file->st_mode) ? "/proc/sys/fs/protected_regular" : "/proc/sys/fs/protected_fifos");
    if (level == 0) return 0;
    if (directory->st_mode & 0002) return -EACCES;
    return level >= 2 ? -EACCES : 0;
}

/// The same for an existing file reached through a symlink: its directory is the one the
/// target lies in.
static int sticky_create_check_fd(int fd, const struct stat *file) {
    char link[48], target[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0 || target[0] != '/') return 0;
    target[n] = '\0';
    char *slash = strrchr(target, '/');
    if (slash == target) slash[1] = '\0'; else *slash = '\0';
    struct stat directory;
    if (stat(target, &directory) != 0) return 0;
    return sticky_create_check(&directory, file);
}

static int prepare_create(int dirfd, const char *path, uint64_t flags, uint64_t resolve,
                          agentgate_open_prepared *out) {
    agentgate_lookup_context *ctx = &out->context;
    char dir[PATH_MAX];
    char name[256];
    char link_target[PATH_MAX];
    char spelled[PATH_MAX];
    int type = NAME_NORMAL, trailing = 0;
    int rc = split_final(path, dir, sizeof dir, name, sizeof name, &type, &trailing);
    if (rc < 0) return rc;
    int parent = lookup_ctx(dirfd, dir, O_PATH | O_DIRECTORY, resolve, ctx);
    if (parent < 0) return parent;
    // Follow dangling symlinks by hand (the kernel creates their target): 40 follows at most
    // (MAXSYMLINKS), and then a 41st look at the name the last one reached.
    for (int depth = 0; depth <= 40; depth++) {
        // ".", ".." and "/" name an existing directory; "x/" can't be created as a file. The
        // kernel answers these once the parent is resolved.
        if (type != NAME_NORMAL) {
            close(parent);
            // Under RESOLVE_* rules the final ".." (or "/") must itself be a step they allow:
            // RESOLVE_BENEATH or RESOLVE_NO_XDEV out of the starting point is EXDEV first.
            if (resolve && depth == 0) {
                int whole = lookup_ctx(dirfd, path, O_PATH, resolve, ctx);
                if (whole < 0) return whole;
                close(whole);
            }
            return (flags & O_EXCL) ? -EEXIST : -EISDIR;
        }
        if (trailing) { close(parent); return -EISDIR; }
        struct stat st;
        if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            if (!S_ISLNK(st.st_mode)) {
                if (flags & O_EXCL) { close(parent); return -EEXIST; }
                if (S_ISDIR(st.st_mode)) { close(parent); return -EISDIR; }
                struct stat directory;
                if (fstat(parent, &directory) == 0) {
                    int refused = sticky_create_check(&directory, &st);
                    if (refused) { close(parent); return refused; }
                }
                int fd = openat(parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                int err = errno;
                if (fd < 0) { close(parent); return -err; }
                rc = finish_existing(out, fd);
                if (rc == -ENAMETOOLONG && !S_ISDIR(st.st_mode)) rc = name_in_parent(parent, name, out);
                if (rc == 0 && (flags & O_NOFOLLOW) && S_ISREG(st.st_mode)) keep_entry(out, parent, name);
                else close(parent);
                return rc;
            }
            if (flags & O_EXCL) { close(parent); return -EEXIST; }
            if (flags & O_NOFOLLOW) { close(parent); return -ELOOP; }
            int fd = lookup_ctx(parent, name, O_PATH, resolve, ctx);
            if (fd >= 0) {
                close(parent);
                struct stat target;
                if (fstat(fd, &target) == 0) {
                    if (S_ISDIR(target.st_mode)) { close(fd); return -EISDIR; }
                    int refused = sticky_create_check_fd(fd, &target);
                    if (refused) { close(fd); return refused; }
                }
                return finish_existing(out, fd);
            }
            if (fd != -ENOENT) { close(parent); return fd; }
            // Dangling: create what it points at, resolved under the same RESOLVE_* rules. A
            // scoped lookup (in root, beneath) follows it from the original root. (The kernel's
            // may_follow_link, fs.protected_symlinks, was made by the lookup just above, which
            // then fails with EACCES rather than ENOENT.)
            ssize_t n = readlinkat(parent, name, link_target, sizeof link_target - 1);
            if (n < 0) { int err = errno; close(parent); return -err; }
            if ((size_t)n >= sizeof link_target - 1) { close(parent); return -ENAMETOOLONG; }
            link_target[n] = '\0';
            int base = link_target[0] == '/' ? AT_FDCWD : parent;
            const char *follow = link_target;
            if (resolve & (RESOLVE_IN_ROOT | RESOLVE_BENEATH)) {
                rc = scoped_link_path(dirfd, parent, link_target, spelled, sizeof spelled);
                if (rc < 0) { close(parent); return rc; }
                base = dirfd;
                follow = spelled;
            }
            rc = split_final(follow, dir, sizeof dir, name, sizeof name, &type, &trailing);
            if (rc < 0) { close(parent); return rc; }
            int next = lookup_ctx(base, dir, O_PATH | O_DIRECTORY, resolve, ctx);
            close(parent);
            if (next < 0) return next;
            parent = next;
            continue;
        }
        if (errno != ENOENT) { int err = errno; close(parent); return -err; }
        out->kind = AGENTGATE_OPEN_CREATE;
        out->parent_fd = parent;
        snprintf(out->name, sizeof out->name, "%s", name);
        return entry_path(parent, name, out->resolved, sizeof out->resolved, &out->resolved_len);
    }
    close(parent);
    return -ELOOP;
}

static void reset_prepared(agentgate_open_prepared *out) {
    out->context.owner_count = 0;
    out->kind = AGENTGATE_OPEN_NONE;
    out->object_fd = -1;
    out->parent_fd = -1;
    out->file_type = 0;
    out->link_count = 1;
    out->device_number = 0;
    out->object_device = 0;
    out->object_inode = 0;
    out->name[0] = '\0';
    out->resolved[0] = '\0';
    out->resolved_len = 0;
}

int agentgate_open_prepare(int dirfd, const char *path, uint64_t flags, uint64_t resolve,
                           agentgate_open_prepared *out) {
    reset_prepared(out);
    if (path[0] == '\0') return -ENOENT;
    if ((flags & O_TMPFILE) == O_TMPFILE) {
        // O_NOFOLLOW too: a symlink to a directory is then no directory (ENOTDIR).
        int fd = lookup_ctx(dirfd, path, O_PATH | O_DIRECTORY | (int)(flags & O_NOFOLLOW), resolve, &out->context);
        if (fd < 0) return fd;
        out->kind = AGENTGATE_OPEN_TMPFILE;
        out->object_fd = fd;
        out->file_type = S_IFDIR;
        return fd_path(fd, out->resolved, sizeof out->resolved, &out->resolved_len);
    }
    if ((flags & O_CREAT) && !(flags & O_PATH)) {
        if (flags & O_DIRECTORY) return -EINVAL;
        return prepare_create(dirfd, path, flags, resolve, out);
    }
    int fd = lookup_ctx(dirfd, path, O_PATH | (int)(flags & (O_NOFOLLOW | O_DIRECTORY)), resolve, &out->context);
    if (fd < 0) return fd;
    int rc = finish_existing(out, fd);
    if (rc == -ENAMETOOLONG && out->file_type != S_IFDIR) {
        // A file past a page: named through its parent, when the path's last component is it.
        char dir[PATH_MAX], name[256];
        int type = NAME_NORMAL, trailing = 0;
        if (split_final(path, dir, sizeof dir, name, sizeof name, &type, &trailing) == 0 && type == NAME_NORMAL && !trailing) {
            agentgate_lookup_context scratch = out->context;
            int parent = lookup_ctx(dirfd, dir, O_PATH | O_DIRECTORY, resolve, &scratch);
            // Through symlinks at the end (not under RESOLVE_IN_ROOT/BENEATH, whose absolute
            // targets mean something else): each one's target, until the file itself.
            for (int follows = 0; parent >= 0 && follows <= 40; follows++) {
                struct stat st;
                if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0) break;
                if (!S_ISLNK(st.st_mode) || (resolve & (RESOLVE_IN_ROOT | RESOLVE_BENEATH))) {
                    rc = name_in_parent(parent, name, out);
                    break;
                }
                char target[PATH_MAX];
                ssize_t n = readlinkat(parent, name, target, sizeof target - 1);
                if (n <= 0) break;
                target[n] = '\0';
                if (split_final(target, dir, sizeof dir, name, sizeof name, &type, &trailing) != 0 || type != NAME_NORMAL || trailing) break;
                int next = lookup_ctx(target[0] == '/' ? AT_FDCWD : parent, dir, O_PATH | O_DIRECTORY, resolve, &scratch);
                close(parent);
                parent = next;
            }
            if (parent >= 0) close(parent);
        }
    }
    if (rc == 0 && (flags & O_NOFOLLOW) && !(flags & O_PATH) && out->file_type == S_IFREG) {
        char dir[PATH_MAX], name[256];
        int type = NAME_NORMAL, trailing = 0;
        if (split_final(path, dir, sizeof dir, name, sizeof name, &type, &trailing) == 0 && type == NAME_NORMAL && !trailing) {
            agentgate_lookup_context scratch = out->context;
            int parent = lookup_ctx(dirfd, dir, O_PATH | O_DIRECTORY, resolve, &scratch);
            if (parent >= 0) keep_entry(out, parent, name);
        }
    }
    return rc;
}

int agentgate_open_prepare_fd(int fd, agentgate_open_prepared *out) {
    reset_prepared(out);
    int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) return -errno;
    return finish_existing(out, copy);
}

// An O_NOFOLLOW open of an existing regular file, by the name it was found under, so the fd's
// status flags carry O_NOFOLLOW as the kernel's own open would. The name must still hold the
// decided file (the caller holds the namespace lock, so the agent can't rename another file
// over it meanwhile), and the file opened is checked to be that file before it is used.
// O_TRUNC is applied only then, through the verified fd.
static int reopen_by_name(const agentgate_open_prepared *prepared, uint64_t flags) {
    struct stat want, entry, got;
    if (fstat(prepared->object_fd, &want) != 0) return -errno;
    if (fstatat(prepared->parent_fd, prepared->name, &entry, AT_SYMLINK_NOFOLLOW) != 0
        || entry.st_dev != want.st_dev || entry.st_ino != want.st_ino) return -EAGAIN;
    int open_flags = (int)(flags & ~(uint64_t)(O_CREAT | O_EXCL | O_TRUNC)) | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    int fd = openat(prepared->parent_fd, prepared->name, open_flags);
    if (fd < 0) return errno == EWOULDBLOCK ? -EWOULDBLOCK : -errno;
    if (fstat(fd, &got) != 0 || got.st_dev != want.st_dev || got.st_ino != want.st_ino) { close(fd); return -EAGAIN; }
    if (flags & O_TRUNC) {
        char link[32];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        int truncating = open(link, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (truncating < 0) { int err = errno; close(fd); return err == EWOULDBLOCK ? -EWOULDBLOCK : -err; }
        close(truncating);
    }
    if (!(flags & O_NONBLOCK)) {
        int status = fcntl(fd, F_GETFL);
        if (status >= 0) fcntl(fd, F_SETFL, status & ~O_NONBLOCK);
    }
    return fd;
}

bool agentgate_has_default_acl(int directory_fd) {
    char link[48];
    snprintf(link, sizeof link, "/proc/self/fd/%d", directory_fd);
    return getxattr(link, "system.posix_acl_default", NULL, 0) > 0;
}

int agentgate_open_finish(const agentgate_open_prepared *prepared, uint64_t flags, uint64_t mode, unsigned umask_bits, bool may_block) {
    // The umask applies only where the directory has no default ACL; where it has one, the
    // kernel builds the mode from the ACL instead (the supervisor's own umask is 0).
    unsigned create_mode = (unsigned)(mode & 07777);
    if (prepared->kind == AGENTGATE_OPEN_CREATE || prepared->kind == AGENTGATE_OPEN_TMPFILE) {
        int directory = prepared->kind == AGENTGATE_OPEN_CREATE ? prepared->parent_fd : prepared->object_fd;
        if (!agentgate_has_default_acl(directory)) create_mode &= ~umask_bits;
    }
    switch (prepared->kind) {
    case AGENTGATE_OPEN_EXISTING: {
        if (flags & O_PATH) {
            int fd = fcntl(prepared->object_fd, F_DUPFD_CLOEXEC, 0);
            return fd < 0 ? -errno : fd;
        }
        if (prepared->file_type == S_IFLNK) return -ELOOP; // O_NOFOLLOW on a symlink
        if ((flags & O_NOFOLLOW) && prepared->parent_fd >= 0 && !may_block) return reopen_by_name(prepared, flags);
        char link[48];
        // Reopen the very inode that was decided on. O_NOFOLLOW would refuse the magic link,
        // and the fd's status flags must show it as the kernel's own open would: a directory
        // keeps it through "N/" (a trailing slash follows the link whatever O_NOFOLLOW says,
        // and unlike "N/." needs no search permission), a regular file was opened by name above.
        // O_CREAT/O_EXCL no longer apply; O_NOCTTY keeps terminals from becoming ours.
        int keeps_nofollow = (flags & O_NOFOLLOW) && prepared->file_type == S_IFDIR;
        snprintf(link, sizeof link, keeps_nofollow ? "/proc/self/fd/%d/" : "/proc/self/fd/%d", prepared->object_fd);
        int reopen = (int)(flags & ~(uint64_t)(O_CREAT | O_EXCL | (keeps_nofollow ? 0 : O_NOFOLLOW))) | O_CLOEXEC | O_NOCTTY;
        // Opening a directory never waits (no lease, no other end), so it needs no O_NONBLOCK
        // and no fcntl to take it off again.
        if (may_block || (flags & O_NONBLOCK) || prepared->file_type == S_IFDIR) {
            int fd = open(link, reopen);
            return fd < 0 ? -errno : fd;
        }
        int fd = open(link, reopen | O_NONBLOCK);
        if (fd < 0) return errno == EWOULDBLOCK ? -EWOULDBLOCK : -errno;
        // The agent didn't ask for O_NONBLOCK. F_SETFL sets only the status flags it can change
        // (O_APPEND, O_ASYNC, O_DIRECT, O_NOATIME, O_NONBLOCK), and the open just took them
        // from `reopen`: no F_GETFL needed to keep the others.
        fcntl(fd, F_SETFL, reopen & ~O_NONBLOCK);
        return fd;
    }
    case AGENTGATE_OPEN_CREATE: {
        // O_EXCL: only a new file is created here, never whatever (a symlink, a FIFO, a file)
        // appeared under the name since the decision; then the open is decided again. Not
        // O_NOFOLLOW, which the file's status flags (F_GETFL) would show; O_EXCL doesn't stay.
        int fd = openat(prepared->parent_fd, prepared->name, (int)flags | O_EXCL | O_CLOEXEC | O_NOCTTY, create_mode);
        if (fd >= 0) {
            struct stat st;
            if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) { close(fd); return -EAGAIN; } // never expected
            return fd;
        }
        if (errno == EEXIST && !(flags & O_EXCL)) return -EAGAIN; // something appeared: decide again
        return -errno;
    }
    case AGENTGATE_OPEN_TMPFILE: {
        int fd = openat(prepared->object_fd, ".", (int)flags | O_CLOEXEC, create_mode);
        return fd < 0 ? -errno : fd;
    }
    case AGENTGATE_OPEN_NONE:
        break;
    }
    return -EINVAL;
}

_Static_assert(AGENTGATE_VALID_OPEN_FLAGS == (O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND | O_NONBLOCK
               | O_SYNC | O_DSYNC | FASYNC | O_DIRECT | 0100000 /* the kernel's O_LARGEFILE */ | O_DIRECTORY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC
               | O_PATH | O_TMPFILE), "VALID_OPEN_FLAGS");
_Static_assert(AGENTGATE_O_PATH_FLAGS == (O_DIRECTORY | O_NOFOLLOW | O_PATH | O_CLOEXEC), "O_PATH_FLAGS");
_Static_assert(AGENTGATE_O_TMPFILE_BIT == (O_TMPFILE & ~O_DIRECTORY), "__O_TMPFILE");
_Static_assert(AGENTGATE_O_DIRECTORY == O_DIRECTORY, "O_DIRECTORY");
_Static_assert(AGENTGATE_RESOLVE_BENEATH == RESOLVE_BENEATH && AGENTGATE_RESOLVE_IN_ROOT == RESOLVE_IN_ROOT
               && AGENTGATE_RESOLVE_CACHED == RESOLVE_CACHED, "RESOLVE_*");
_Static_assert(AGENTGATE_VALID_RESOLVE_FLAGS == (RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH
               | RESOLVE_IN_ROOT | RESOLVE_CACHED), "VALID_RESOLVE_FLAGS");
_Static_assert(AGENTGATE_O_PATH == O_PATH, "O_PATH");
_Static_assert(AGENTGATE_O_TMPFILE == O_TMPFILE, "O_TMPFILE");
_Static_assert(AGENTGATE_AT_EMPTY_PATH == AT_EMPTY_PATH, "AT_EMPTY_PATH");
_Static_assert(AGENTGATE_UTIME_OMIT == UTIME_OMIT, "UTIME_OMIT");
_Static_assert(AGENTGATE_AT_SYMLINK_FOLLOW == AT_SYMLINK_FOLLOW, "AT_SYMLINK_FOLLOW");
_Static_assert(AGENTGATE_AT_SYMLINK_NOFOLLOW == AT_SYMLINK_NOFOLLOW, "AT_SYMLINK_NOFOLLOW");
_Static_assert(AGENTGATE_AT_REMOVEDIR == AT_REMOVEDIR, "AT_REMOVEDIR");

int agentgate_path_entry_resolve(int dirfd, const char *path, agentgate_path_entry *out) {
    out->context.owner_count = 0;
    out->parent_fd = -1;
    out->trailing_slash = false;
    out->last_type = AGENTGATE_ENTRY_NAME;
    out->name[0] = '\0';
    out->resolved[0] = '\0';
    out->resolved_len = 0;
    size_t len = strlen(path);
    if (len == 0) return -ENOENT;
    if (len >= PATH_MAX) return -ENAMETOOLONG;
    char dir[PATH_MAX];
    int type = NAME_NORMAL, trailing = 0;
    int rc = split_final(path, dir, sizeof dir, out->name, sizeof out->name, &type, &trailing);
    if (rc < 0) return rc;
    out->trailing_slash = trailing != 0;
    out->last_type = type == NAME_DOT ? AGENTGATE_ENTRY_DOT : type == NAME_DOTDOT ? AGENTGATE_ENTRY_DOTDOT
                   : type == NAME_ROOT ? AGENTGATE_ENTRY_ROOT : AGENTGATE_ENTRY_NAME;
    int parent = lookup_ctx(dirfd, dir, O_PATH | O_DIRECTORY, 0, &out->context);
    if (parent < 0) return parent;
    rc = entry_path(parent, out->name, out->resolved, sizeof out->resolved, &out->resolved_len);
    if (rc < 0) { close(parent); return rc; }
    out->parent_fd = parent;
    return 0;
}

const char *agentgate_path_entry_resolved(const agentgate_path_entry *entry) {
    return entry->resolved;
}

long agentgate_syscall6(long number, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5) {
    long rc = syscall(number, a0, a1, a2, a3, a4, a5);
    return rc < 0 ? -errno : rc;
}

ssize_t agentgate_read_head(int fd, char *buf, size_t capacity) {
    struct stat st;
    if (capacity < 2) return -EINVAL;
    if (fstat(fd, &st) != 0) return -errno;
    if (!S_ISREG(st.st_mode)) return -EINVAL;
    char link[32];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    int file = open(link, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (file < 0) return -errno;
    ssize_t n = read(file, buf, capacity - 1);
    int err = errno;
    close(file);
    if (n < 0) return -err;
    buf[n] = '\0';
    return n;
}

const char *agentgate_open_resolved(const agentgate_open_prepared *prepared) {
    return prepared->resolved;
}

void agentgate_open_release(agentgate_open_prepared *prepared) {
    if (prepared->object_fd >= 0) close(prepared->object_fd);
    if (prepared->parent_fd >= 0) close(prepared->parent_fd);
    prepared->object_fd = -1;
    prepared->parent_fd = -1;
}
