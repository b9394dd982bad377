import AgentGatePolicy
import CSupport
import Glibc

/// Calls that may change the caller's credentials: they continue in the kernel, and from the
/// first real change on, calls performed for the agent check its credentials first.
enum CredentialHandlers {
    static func prctl(_ call: TrappedCall) {
        let n = call.notification, core = call.core
        if n.arg(0) == prctlSetSeccomp {
            UnsupervisedRouteHandlers.unsupervised(call, route: .seccomp, errno: EPERM)
            return
        }
        if n.arg(0) == prctlSetMM {
            // Checkpoint/restore's rewrite of /proc/PID/exe, argv and the memory map: it would make
            // a swapped-in image look like the approved one.
            UnsupervisedRouteHandlers.unsupervised(call, route: .kernel, errno: EPERM, target: "prctl(PR_SET_MM)")
            return
        }
        if n.arg(0) == prctlSetDumpable {
            // A supervisor running as the agent's own user can't read a non-dumpable process's
            // memory, so every later call of it would fail. The process stays dumpable and is
            // told it succeeded (ssh-agent and gpg-agent insist on it); with CAP_SYS_PTRACE the
            // supervisor reads it either way, and the call goes through.
            if n.arg(1) == 0 && !core.readsUndumpableMemory {
                core.listener.succeed(n.id, value: 0)
            } else {
                core.listener.continueSyscall(n.id)
            }
            return
        }
        core.noteCredentialChange() // capability bounding set, securebits or ambient caps
        core.listener.continueSyscall(n.id)
    }

    static func credentials(_ call: TrappedCall) {
        let n = call.notification, core = call.core
        // Marked before the kernel applies the change, so no emulated call can race past it.
        // Calls that set every id to what it already is (compilers do this constantly) change
        // nothing and are told apart by their register values alone.
        if !core.isCredentialNoOp(name: call.syscall, n) { core.noteCredentialChange() }
        core.listener.continueSyscall(n.id)
    }
}
