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
        let notify = AGENTGATE_FILTER_NOTIFY
        for entry in table.trapped {
            var rc: Int32 = 0
            switch entry.trap {
            case .always:
                rc = agentgate_filter_add(filter, entry.number, notify, 0)
            case .argEquals(let arg, let values):
                for value in values where rc == 0 {
                    // int arguments: the kernel ignores the upper half, so must the comparison.
                    rc = agentgate_filter_add_arg(filter, entry.number, notify, 0, arg, AGENTGATE_ARG_EQ32, value, 0)
                }
            case .argNonZero(let arg):
                rc = agentgate_filter_add_arg(filter, entry.number, notify, 0, arg, AGENTGATE_ARG_NE, 0, 0)
            case .argAnyBit(let arg, let bits):
                for bit in bits where rc == 0 {
                    rc = agentgate_filter_add_arg(filter, entry.number, notify, 0, arg, AGENTGATE_ARG_MASKED_EQ, bit, bit)
                }
            case .kernelErrno(let errno):
                rc = agentgate_filter_add(filter, entry.number, AGENTGATE_FILTER_ERRNO, errno)
            case .argMaskedEquals(let arg, let mask, let value):
                rc = agentgate_filter_add_arg(filter, entry.number, notify, 0, arg, AGENTGATE_ARG_MASKED_EQ, value, mask)
            case .argsEqual(let pairs):
                let args = pairs.map { UInt32($0.arg) }
                let values = pairs.map(\.value)
                rc = agentgate_filter_add_equal_args(filter, entry.number, notify, 0, args, values, Int32(pairs.count))
            }
            guard rc == 0 else { throw SupervisorError(.filterBuild, "cannot add the filter rule for \(entry.name)", result: rc) }
        }
        let rc = agentgate_filter_export(filter, SyscallTable.highestKnownSyscall, &bpf)
        guard rc == 0 else { throw SupervisorError(.filterBuild, "cannot export the seccomp filter", result: rc) }
    }

    deinit { agentgate_bpf_free(&bpf) }
}
