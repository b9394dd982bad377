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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/openat2.h>

static int lookup(int dirfd, const char *path, int flags, uint64_t resolve) {
    if (resolve == 0) {
        int fd = openat(dirfd, path, flags | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
    }
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)(flags | O_CLOEXEC);
    how.resolve = resolve;
    long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    return fd < 0 ? -errno : (int)fd;
}

static int fd_path(int fd, char *buf, size_t capacity, size_t *len) {
    char link[32];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, buf, capacity - 1);
    if (n < 0) return -errno;
    if ((size_t)n >= capacity - 1) return -ENAMETOOLONG;
    buf[n] = '\0';
    *len = (size_t)n;
    return 0;
}

static int finish_existing(agentgate_open_prepared *out, int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) { int err = errno; close(fd); return -err; }
    out->kind = AGENTGATE_OPEN_EXISTING;
    out->object_fd = fd;
    out->file_type = st.st_mode & S_IFMT;
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

static int prepare_create(int dirfd, const char *path, uint64_t flags, uint64_t resolve,
                          agentgate_open_prepared *out) {
    char dir[PATH_MAX];
    char name[256];
    char link_target[PATH_MAX];
    int rc = split_path(path, dir, sizeof dir, name, sizeof name);
    if (rc < 0) return rc;
    int parent = lookup(dirfd, dir, O_PATH | O_DIRECTORY, resolve);
    if (parent < 0) return parent;
    // Follow dangling symlinks by hand (the kernel creates their target), at most 40 deep.
    for (int depth = 0; depth < 40; depth++) {
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) { close(parent); return -EISDIR; }
        struct stat st;
        if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            if (!S_ISLNK(st.st_mode)) {
                if (flags & O_EXCL) { close(parent); return -EEXIST; }
                int fd = openat(parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                int err = errno;
                close(parent);
                return fd < 0 ? -err : finish_existing(out, fd);
            }
            if (flags & O_EXCL) { close(parent); return -EEXIST; }
            if (flags & O_NOFOLLOW) { close(parent); return -ELOOP; }
            int fd = lookup(parent, name, O_PATH, resolve);
            if (fd >= 0) { close(parent); return finish_existing(out, fd); }
            if (fd != -ENOENT) { close(parent); return fd; }
            // Dangling: create what it points at. Under openat2 RESOLVE_* rules we can't follow
            // faithfully by hand, so refuse rather than guess.
            if (resolve != 0) { close(parent); return -EACCES; }
            ssize_t n = readlinkat(parent, name, link_target, sizeof link_target - 1);
            if (n < 0) { int err = errno; close(parent); return -err; }
            if ((size_t)n >= sizeof link_target - 1) { close(parent); return -ENAMETOOLONG; }
            link_target[n] = '\0';
            rc = split_path(link_target, dir, sizeof dir, name, sizeof name);
            if (rc < 0) { close(parent); return rc; }
            int next = openat(dir[0] == '/' ? AT_FDCWD : parent, dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
            int err = errno;
            close(parent);
            if (next < 0) return -err;
            parent = next;
            continue;
        }
        if (errno != ENOENT) { int err = errno; close(parent); return -err; }
        out->kind = AGENTGATE_OPEN_CREATE;
        out->parent_fd = parent;
        snprintf(out->name, sizeof out->name, "%s", name);
        size_t parent_len = 0;
        rc = fd_path(parent, out->resolved, sizeof out->resolved, &parent_len);
        if (rc < 0) return rc;
        size_t name_len = strlen(name);
        if (parent_len + 1 + name_len + 1 > sizeof out->resolved) return -ENAMETOOLONG;
        if (!(parent_len == 1 && out->resolved[0] == '/')) out->resolved[parent_len++] = '/';
        memcpy(out->resolved + parent_len, name, name_len + 1);
        out->resolved_len = parent_len + name_len;
        return 0;
    }
    close(parent);
    return -ELOOP;
}

int agentgate_open_prepare(int dirfd, const char *path, uint64_t flags, uint64_t resolve,
                           agentgate_open_prepared *out) {
    out->kind = -1;
    out->object_fd = -1;
    out->parent_fd = -1;
    out->file_type = 0;
    out->name[0] = '\0';
    out->resolved[0] = '\0';
    out->resolved_len = 0;
    if (path[0] == '\0') return -ENOENT;
    if ((flags & O_TMPFILE) == O_TMPFILE) {
        int fd = lookup(dirfd, path, O_PATH | O_DIRECTORY, resolve);
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
    int fd = lookup(dirfd, path, O_PATH | (int)(flags & (O_NOFOLLOW | O_DIRECTORY)), resolve);
    if (fd < 0) return fd;
    return finish_existing(out, fd);
}

int agentgate_open_finish(const agentgate_open_prepared *prepared, uint64_t flags, uint64_t mode, unsigned umask_bits) {
    unsigned create_mode = (unsigned)(mode & 07777) & ~umask_bits;
    switch (prepared->kind) {
    case AGENTGATE_OPEN_EXISTING: {
        if (flags & O_PATH) {
            int fd = fcntl(prepared->object_fd, F_DUPFD_CLOEXEC, 0);
            return fd < 0 ? -errno : fd;
        }
        if (prepared->file_type == S_IFLNK) return -ELOOP; // O_NOFOLLOW on a symlink
        char link[32];
        snprintf(link, sizeof link, "/proc/self/fd/%d", prepared->object_fd);
        // Reopen the very inode that was decided on. O_NOFOLLOW would refuse the magic link and
        // O_CREAT/O_EXCL no longer apply; O_NOCTTY keeps terminals from becoming ours.
        int reopen = (int)(flags & ~(uint64_t)(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_CLOEXEC | O_NOCTTY;
        int fd = open(link, reopen);
        return fd < 0 ? -errno : fd;
    }
    case AGENTGATE_OPEN_CREATE: {
        int fd = openat(prepared->parent_fd, prepared->name, (int)flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, create_mode);
        if (fd >= 0) return fd;
        // A symlink appeared where nothing was when we decided: decide again.
        if (errno == ELOOP && !(flags & O_NOFOLLOW)) return -EAGAIN;
        return -errno;
    }
    case AGENTGATE_OPEN_TMPFILE: {
        int fd = openat(prepared->object_fd, ".", (int)flags | O_CLOEXEC, create_mode);
        return fd < 0 ? -errno : fd;
    }
    }
    return -EINVAL;
}

_Static_assert(AGENTGATE_O_PATH == O_PATH, "O_PATH");
_Static_assert(AGENTGATE_O_TMPFILE == O_TMPFILE, "O_TMPFILE");
_Static_assert(AGENTGATE_AT_EMPTY_PATH == AT_EMPTY_PATH, "AT_EMPTY_PATH");
_Static_assert(AGENTGATE_AT_SYMLINK_FOLLOW == AT_SYMLINK_FOLLOW, "AT_SYMLINK_FOLLOW");
_Static_assert(AGENTGATE_AT_SYMLINK_NOFOLLOW == AT_SYMLINK_NOFOLLOW, "AT_SYMLINK_NOFOLLOW");
_Static_assert(AGENTGATE_AT_REMOVEDIR == AT_REMOVEDIR, "AT_REMOVEDIR");

int agentgate_path_entry_resolve(int dirfd, const char *path, agentgate_path_entry *out) {
    out->parent_fd = -1;
    out->trailing_slash = 0;
    out->name[0] = '\0';
    out->resolved[0] = '\0';
    out->resolved_len = 0;
    size_t len = strlen(path);
    if (len == 0) return -ENOENT;
    if (len >= PATH_MAX) return -ENAMETOOLONG;
    char copy[PATH_MAX];
    memcpy(copy, path, len + 1);
    while (len > 1 && copy[len - 1] == '/') { copy[--len] = '\0'; out->trailing_slash = 1; }
    if (strcmp(copy, "/") == 0) return -EBUSY;
    char dir[PATH_MAX];
    int rc = split_path(copy, dir, sizeof dir, out->name, sizeof out->name);
    if (rc < 0) return rc;
    if (strcmp(out->name, ".") == 0 || strcmp(out->name, "..") == 0) return -EINVAL;
    int parent = lookup(dirfd, dir, O_PATH | O_DIRECTORY, 0);
    if (parent < 0) return parent;
    size_t parent_len = 0;
    rc = fd_path(parent, out->resolved, sizeof out->resolved, &parent_len);
    if (rc < 0) { close(parent); return rc; }
    size_t name_len = strlen(out->name);
    if (parent_len + 1 + name_len + 1 > sizeof out->resolved) { close(parent); return -ENAMETOOLONG; }
    if (!(parent_len == 1 && out->resolved[0] == '/')) out->resolved[parent_len++] = '/';
    memcpy(out->resolved + parent_len, out->name, name_len + 1);
    out->resolved_len = parent_len + name_len;
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

const char *agentgate_open_resolved(const agentgate_open_prepared *prepared) {
    return prepared->resolved;
}

void agentgate_open_release(agentgate_open_prepared *prepared) {
    if (prepared->object_fd >= 0) close(prepared->object_fd);
    if (prepared->parent_fd >= 0) close(prepared->parent_fd);
    prepared->object_fd = -1;
    prepared->parent_fd = -1;
}
