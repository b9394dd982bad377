// Acting with the agent's identity on one supervisor thread, for calls performed on the
// agent's behalf after the agent changed its credentials. Linux credentials belong to each
// thread; only glibc's wrappers spread a change to the whole process, so raw syscalls are used.
#include "CSupport.h"
#include "internal.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

_Static_assert(sizeof(((agentgate_thread_credentials *)0)->groups) / sizeof(uint32_t) == 256, "group capacity");

// What this thread acts as, while it does.
static __thread int acting;
static __thread agentgate_thread_credentials acting_as;
static __thread agentgate_thread_credentials own_identity;

int agentgate_thread_assumed_credentials(agentgate_thread_credentials *out) {
    if (!acting) return 0;
    *out = acting_as;
    return 1;
}

static int read_own(agentgate_thread_credentials *out) {
    memset(out, 0, sizeof *out);
    uid_t r, e, s;
    gid_t gr, ge, gs;
    if (syscall(SYS_getresuid, &r, &e, &s) != 0) return -errno;
    if (syscall(SYS_getresgid, &gr, &ge, &gs) != 0) return -errno;
    out->ruid = r; out->euid = e; out->suid = s;
    out->rgid = gr; out->egid = ge; out->sgid = gs;
    // setfs[ug]id with an invalid id changes nothing and returns the current one.
    out->fsuid = (uint32_t)syscall(SYS_setfsuid, -1);
    out->fsgid = (uint32_t)syscall(SYS_setfsgid, -1);
    long count = syscall(SYS_getgroups, 256, out->groups);
    if (count < 0) return -errno;
    out->group_count = (uint32_t)count;
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &header, data) != 0) return -errno;
    for (int i = 0; i < 2; i++) {
        out->effective[i] = data[i].effective;
        out->permitted[i] = data[i].permitted;
        out->inheritable[i] = data[i].inheritable;
    }
    long bits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
    if (bits < 0) return -errno;
    out->securebits = (uint32_t)bits;
    return 0;
}

static int set_capabilities(const uint32_t effective[2], const agentgate_thread_credentials *own) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    for (int i = 0; i < 2; i++) {
        data[i].effective = effective[i] & own->permitted[i];
        data[i].permitted = own->permitted[i];
        data[i].inheritable = own->inheritable[i];
    }
    return syscall(SYS_capset, &header, data) == 0 ? 0 : -errno;
}

// Back to the thread's own identity; aborts if it can't.
static void restore_raw(const agentgate_thread_credentials *saved) {
    // Capabilities first: the id changes below need CAP_SETUID/CAP_SETGID back.
    uint32_t all[2] = { saved->effective[0], saved->effective[1] };
    if (set_capabilities(all, saved) != 0) abort();
    if (syscall(SYS_setresuid, saved->ruid, saved->euid, saved->suid) != 0) abort();
    syscall(SYS_setfsuid, saved->fsuid);
    if (syscall(SYS_setresgid, saved->rgid, saved->egid, saved->sgid) != 0) abort();
    syscall(SYS_setfsgid, saved->fsgid);
    if (syscall(SYS_setgroups, saved->group_count, saved->groups) != 0) abort();
    if (prctl(PR_SET_SECUREBITS, saved->securebits, 0, 0, 0) != 0) abort();
    agentgate_thread_credentials now;
    if (read_own(&now) != 0 || now.euid != saved->euid || now.fsuid != saved->fsuid || now.egid != saved->egid ||
        now.fsgid != saved->fsgid || now.effective[0] != saved->effective[0] || now.effective[1] != saved->effective[1])
        abort();
}

// Takes on `as`, the thread's own identity being `own`. Returns 0 or an errno, with the own
// identity back on failure.
static int assume_raw(const agentgate_thread_credentials *as, const agentgate_thread_credentials *own) {
    if (as->group_count > 256) return EINVAL;
    // With SECBIT_NO_SETUID_FIXUP, the uid changes leave the capability sets alone: the
    // effective set is then set exactly, and CAP_SETUID stays usable for setfsuid.
    if (prctl(PR_SET_SECUREBITS, own->securebits | SECBIT_NO_SETUID_FIXUP, 0, 0, 0) != 0) return errno;
    int err = 0;
    if (syscall(SYS_setgroups, as->group_count, as->groups) != 0) err = errno;
    if (!err && syscall(SYS_setresgid, as->rgid, as->egid, as->sgid) != 0) err = errno;
    if (!err && syscall(SYS_setresuid, as->ruid, as->euid, as->suid) != 0) err = errno;
    if (!err) {
        syscall(SYS_setfsgid, as->fsgid);
        syscall(SYS_setfsuid, as->fsuid);
        if ((uint32_t)syscall(SYS_setfsgid, -1) != as->fsgid || (uint32_t)syscall(SYS_setfsuid, -1) != as->fsuid) err = EPERM;
    }
    if (!err) err = -set_capabilities(as->effective, own);
    if (err) restore_raw(own);
    return err;
}

int agentgate_thread_assume_credentials(const agentgate_thread_credentials *as) {
    if (acting) return -EBUSY;
    int rc = read_own(&own_identity);
    if (rc != 0) return rc;
    int err = assume_raw(as, &own_identity);
    if (err) return -err;
    acting_as = *as;
    acting = 1;
    return 0;
}

void agentgate_thread_restore_credentials(void) {
    if (!acting) return;
    restore_raw(&own_identity);
    acting = 0;
}

bool agentgate_thread_suspend_credentials(void) {
    if (!acting) return false;
    restore_raw(&own_identity);
    acting = 0;
    return true;
}

void agentgate_thread_resume_credentials(bool suspended) {
    if (!suspended) return;
    // It was taken on moments ago; failing now leaves the thread as itself, which would act
    // with more privilege than the agent has: stop instead.
    if (assume_raw(&acting_as, &own_identity) != 0) abort();
    acting = 1;
}
