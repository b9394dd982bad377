// What an ELF image is, read from the file the way the kernel's binfmt_elf reads it: its type,
// the interpreter it names (PT_INTERP), and, for shared objects, their DT_SONAME. The
// supervisor uses this to decide the interpreter the kernel will map, and to recognise the
// dynamic loader whatever it is called.
#include "CSupport.h"
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

_Static_assert(sizeof(Elf64_Ehdr) == 64, "Elf64_Ehdr layout");
_Static_assert(sizeof(Elf64_Phdr) == 56, "Elf64_Phdr layout");
_Static_assert(sizeof(Elf64_Dyn) == 16, "Elf64_Dyn layout");
_Static_assert(sizeof(((agentgate_elf_info *)0)->interpreter) == AGENTGATE_ELF_INTERPRETER_CAPACITY, "interpreter buffer");

static int read_exact(int fd, void *buf, size_t len, uint64_t offset) {
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, (char *)buf + got, len - got, (off_t)(offset + got));
        if (n < 0) { if (errno == EINTR) continue; return -errno; }
        if (n == 0) return -ENOEXEC; // truncated: the kernel refuses it too
        got += (size_t)n;
    }
    return 0;
}

// The file offset of a virtual address, through the PT_LOAD segment that maps it.
static int vaddr_to_offset(const Elf64_Phdr *phdrs, int count, uint64_t vaddr, uint64_t *offset) {
    for (int i = 0; i < count; i++) {
        if (phdrs[i].p_type != PT_LOAD) continue;
        if (vaddr >= phdrs[i].p_vaddr && vaddr - phdrs[i].p_vaddr < phdrs[i].p_filesz) {
            *offset = vaddr - phdrs[i].p_vaddr + phdrs[i].p_offset;
            return 0;
        }
    }
    return -ENOENT;
}

static int inspect(int file, agentgate_elf_info *out) {
    Elf64_Ehdr header;
    ssize_t n = pread(file, &header, sizeof header, 0);
    if (n < 0) return -errno;
    if ((size_t)n < EI_NIDENT || memcmp(header.e_ident, ELFMAG, SELFMAG) != 0) return 0; // not ELF
    out->is_elf = true;
    out->elf_class = header.e_ident[EI_CLASS];
    if (header.e_ident[EI_CLASS] != ELFCLASS64 || (size_t)n < sizeof header) return 0;
    out->type = header.e_type;
    out->machine = header.e_machine;
    if (header.e_phentsize != sizeof(Elf64_Phdr) || header.e_phnum == 0 || header.e_phnum > 512) return 0;
    int count = header.e_phnum;
    Elf64_Phdr phdrs[512];
    int rc = read_exact(file, phdrs, (size_t)count * sizeof(Elf64_Phdr), header.e_phoff);
    if (rc < 0) return rc;
    for (int i = 0; i < count; i++) {
        if (phdrs[i].p_type != PT_INTERP) continue;
        // binfmt_elf: the first PT_INTERP counts; 2..PATH_MAX bytes ending in a NUL.
        if (phdrs[i].p_filesz < 2 || phdrs[i].p_filesz > AGENTGATE_ELF_INTERPRETER_CAPACITY) return -ENOEXEC;
        rc = read_exact(file, out->interpreter, phdrs[i].p_filesz, phdrs[i].p_offset);
        if (rc < 0) return rc;
        if (out->interpreter[phdrs[i].p_filesz - 1] != '\0') return -ENOEXEC;
        out->has_interpreter = true;
        break;
    }
    for (int i = 0; i < count; i++) {
        if (phdrs[i].p_type != PT_DYNAMIC) continue;
        size_t entries = phdrs[i].p_filesz / sizeof(Elf64_Dyn);
        if (entries > 1024) entries = 1024; // DT_SONAME and DT_STRTAB come early
        Elf64_Dyn dynamic[1024];
        if (read_exact(file, dynamic, entries * sizeof(Elf64_Dyn), phdrs[i].p_offset) < 0) break;
        uint64_t strtab = 0, soname = 0;
        int has_strtab = 0, has_soname = 0;
        for (size_t d = 0; d < entries && dynamic[d].d_tag != DT_NULL; d++) {
            if (dynamic[d].d_tag == DT_STRTAB) { strtab = dynamic[d].d_un.d_ptr; has_strtab = 1; }
            if (dynamic[d].d_tag == DT_SONAME) { soname = dynamic[d].d_un.d_val; has_soname = 1; }
        }
        if (!has_soname) break;
        out->has_soname = true;
        uint64_t offset = 0;
        if (has_strtab && vaddr_to_offset(phdrs, count, strtab, &offset) == 0) {
            ssize_t got = pread(file, out->soname, sizeof out->soname - 1, (off_t)(offset + soname));
            if (got > 0) out->soname[got] = '\0';
        }
        break;
    }
    return 0;
}

int agentgate_elf_inspect(int fd, agentgate_elf_info *out) {
    memset(out, 0, sizeof *out);
    struct stat st;
    if (fstat(fd, &st) != 0) return -errno;
    if (!S_ISREG(st.st_mode)) return -EACCES; // the kernel execs regular files only
    char link[32];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    // Non-blocking and without a controlling terminal, like agentgate_read_head.
    int file = open(link, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (file < 0) return -errno;
    int rc = inspect(file, out);
    close(file);
    return rc;
}

ssize_t agentgate_image_read(int fd, char *head, size_t capacity, agentgate_elf_info *out, int *inspected) {
    memset(out, 0, sizeof *out);
    *inspected = 1;
    if (capacity < 2) return -EINVAL;
    struct stat st;
    if (fstat(fd, &st) != 0) { *inspected = -errno; return -errno; }
    if (!S_ISREG(st.st_mode)) { *inspected = -EACCES; return -EINVAL; } // the kernel execs regular files only
    char link[32];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    // Non-blocking and without a controlling terminal, like agentgate_read_head.
    int file = open(link, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (file < 0) { *inspected = -errno; return -errno; }
    ssize_t n = pread(file, head, capacity - 1, 0);
    if (n < 0) {
        int err = errno;
        close(file);
        *inspected = -err;
        return -err;
    }
    head[n] = '\0';
    if (!(n >= 2 && head[0] == '#' && head[1] == '!')) *inspected = inspect(file, out);
    close(file);
    return n;
}
