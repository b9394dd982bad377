import CSupport

/// The compiled seccomp program: built with libseccomp in the parent, installed by the child.
final class CompiledFilter: @unchecked Sendable {
    // Immutable after init; only read by the spawning thread.
    var bpf = agentgate_bpf()

    init(table: SyscallTable) throws(SupervisorError) {
        var error: Int32 = 0
        guard let filter = agentgate_filter_create(&error) else {
            throw SupervisorError(.filterBuild, "cannot create the seccomp filter", result: error)
        }
        defer { agentgate_filter_destroy(filter) }
        for entry in table.entries {
            let rc = agentgate_filter_add(filter, entry.number, AGENTGATE_FILTER_NOTIFY, 0)
            guard rc == 0 else { throw SupervisorError(.filterBuild, "cannot trap \(entry.name)", result: rc) }
        }
        let rc = agentgate_filter_export(filter, &bpf)
        guard rc == 0 else { throw SupervisorError(.filterBuild, "cannot export the seccomp filter", result: rc) }
    }

    deinit { agentgate_bpf_free(&bpf) }
}
