import CSupport
import Glibc
import Synchronization

/// A file's identity: device and inode.
struct ImageIdentity: Sendable, Equatable {
    let device: UInt64
    let inode: UInt64

    init(fd: Int32) {
        var dev: UInt64 = 0, ino: UInt64 = 0, mode: UInt32 = 0
        _ = agentgate_fstat_identity(fd, &dev, &ino, &mode)
        device = dev
        inode = ino
    }

    init(path: String) {
        var dev: UInt64 = 0, ino: UInt64 = 0
        _ = agentgate_stat_identity(path, &dev, &ino)
        device = dev
        inode = ino
    }
}

/// Images approved for an exec, checked at the process's next trapped call: the kernel re-reads
/// the path after CONTINUE, so another thread could have swapped it for a program never decided
/// on. A process found running anything else is killed before its call proceeds.
final class ImageVerifier: Sendable {
    private struct Pending: Sendable {
        let expected: ImageIdentity
        let previous: ImageIdentity
    }
    private let pending = Mutex<[pid_t: Pending]>([:])
    private let count = Atomic<Int>(0)

    func expect(_ image: ImageIdentity, previous: ImageIdentity, tgid: pid_t) {
        pending.withLock { table in
            if table.updateValue(Pending(expected: image, previous: previous), forKey: tgid) == nil {
                count.add(1, ordering: .relaxed)
            }
        }
    }

    /// Whether the process behind `tid` runs an image it was allowed to. Only a thread-group
    /// leader can have just exec'd (exec makes the caller the leader).
    func verify(tid: pid_t) -> Bool {
        guard count.load(ordering: .relaxed) > 0 else { return true }
        guard let entry = pending.withLock({ table -> Pending? in
            guard let entry = table.removeValue(forKey: tid) else { return nil }
            count.subtract(1, ordering: .relaxed)
            return entry
        }) else { return true }
        let running = ImageIdentity(path: "/proc/\(tid)/exe")
        return running == entry.expected || running == entry.previous
    }
}
