import AgentGateStore
import CSupport
import Glibc

/// What the audit's `processes` table records about one process image, read from /proc:
/// `status` (PPid, effective Uid/Gid, CapEff), `exe`, `cmdline` and `cgroup`. For the
/// supervisor's process table to pass to `AuditWriter.recordProcessStart` when it first sees
/// a process and after each exec (about four small reads; cache it with the process entry).
enum ProcessSnapshot {
    /// The process's current image, or nil when it is gone (its /proc entry can't be read).
    /// `known` is its status and executable as read for the notification just answered, when
    /// that call can't have changed them (an open): they are not read again.
    static func read(pid: pid_t, known: (status: ProcStatus, executable: String)? = nil,
                     startTimeMicros: Int64 = AuditClock.nowMicros()) -> ProcessRecord? {
        let status = known?.status ?? ProcStatus(tid: pid)
        guard status.readOK else { return nil }
        return ProcessRecord(
            pid: status.tgid == 0 ? pid : status.tgid, ppid: status.ppid,
            executable: known?.executable ?? ProcessTable.readLink("/proc/\(pid)/exe") ?? "?",
            argv: commandLine(of: pid),
            uid: status.uids.count > 1 ? status.uids[1] : (status.uids.first ?? UInt32.max),
            gid: status.gids.count > 1 ? status.gids[1] : (status.gids.first ?? UInt32.max),
            capabilities: Capabilities.names(ofMask: status.capEff),
            cgroup: SessionContextCollector.cgroup(of: "\(pid)"),
            startTimeMicros: startTimeMicros)
    }

    /// argv from /proc/PID/cmdline (NUL-separated; up to 64 KiB).
    static func commandLine(of pid: pid_t) -> [String] {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 65536) { buffer in
            let count = agentgate_read_small_file(AT_FDCWD, "/proc/\(pid)/cmdline", buffer.baseAddress!, buffer.count)
            guard count > 0 else { return [] }
            let bytes = UnsafeRawBufferPointer(start: buffer.baseAddress!, count: count)
            var parts = bytes.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            if parts.last == "" { parts.removeLast() }
            return parts
        }
    }

    /// The exit status the audit records for a wait status: the exit code, or 128+N when the
    /// process was killed by signal N.
    static func exitStatus(code: Int32, value: Int32) -> Int32 {
        code == Int32(CLD_EXITED) ? value : 128 + value
    }
}
