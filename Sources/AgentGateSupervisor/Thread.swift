import Glibc
import Synchronization

/// A joinable pthread running a Swift closure (Foundation's Thread can't be joined).
final class Thread: @unchecked Sendable {
    private var handle = pthread_t()
    private let body: @Sendable () -> Void
    private let stackSize: Int
    private var started = false

    init(stackSize: Int = 1 << 20, _ body: @escaping @Sendable () -> Void) {
        self.stackSize = stackSize
        self.body = body
    }

    /// Starts the thread. Returns false when it could not be created; the body has not run.
    @discardableResult
    func start(detached: Bool = true) -> Bool {
        let box = Unmanaged.passRetained(self)
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setstacksize(&attributes, stackSize)
        if detached { pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED)) }
        let rc = pthread_create(&handle, &attributes, { raw in
            let thread = Unmanaged<Thread>.fromOpaque(raw!).takeRetainedValue()
            thread.body()
            return nil
        }, box.toOpaque())
        pthread_attr_destroy(&attributes)
        if rc != 0 { box.release() }
        started = rc == 0
        return started
    }

    func join() {
        guard started else { return }
        pthread_join(handle, nil)
    }

    /// Lets a joinable thread end without being joined (pthread_detach).
    func detach() {
        guard started else { return }
        pthread_detach(handle)
    }
}

/// A fixed set of threads started together, before the agent can act, and none later: the agent
/// must not be able to choose when a new supervisor thread id appears (it could aim a pid-named
/// call at it). Each runs the owner's loop; `stop` wakes each once and joins them unless one is
/// still busy.
final class SessionThreads: Sendable {
    private let threads = Mutex<[Thread]>([])

    /// Starts up to `count` threads running `body`. False when not even one could be made.
    func start(_ count: Int, stackSize: Int = 256 << 10, _ body: @escaping @Sendable () -> Void) -> Bool {
        var started: [Thread] = []
        started.reserveCapacity(count)
        for _ in 0..<count {
            let thread = Thread(stackSize: stackSize, body)
            guard thread.start(detached: false) else { break }
            started.append(thread)
        }
        threads.withLock { $0 = started }
        return !started.isEmpty
    }

    /// No thread runs (none could be started, or they were stopped).
    var isEmpty: Bool { threads.withLock { $0.isEmpty } }

    /// Calls `wake` once per thread, joins them when `join` says so afterwards (a thread still
    /// stuck in its work would never be joined), and forgets them. For threads that may still
    /// finish work the caller must see done (a decision recorded) before it goes on.
    func stop(wake: () -> Void, join: () -> Bool) {
        let all = threads.withLock { $0 }
        for _ in all { wake() }
        if join() { for thread in all { thread.join() } }
        threads.withLock { $0 = [] }
    }

    /// Forgets the threads, which their owner has told to end; detached when `detaching`, to
    /// end on their own. For threads whose owner doesn't need to wait for them: they have no
    /// work left (the owner checks before it detaches them) and touch only its own state once
    /// told to end. Otherwise they are left as they are, as a thread still stuck in work
    /// nothing could interrupt was before (the process is about to exit).
    func release(detaching: Bool) {
        let all = threads.withLock { threads in
            defer { threads = [] }
            return threads
        }
        if detaching { for thread in all { thread.detach() } }
    }
}

/// A POSIX counting semaphore (sem_init/sem_post/sem_wait), safe to share between threads.
final class CountingSemaphore: @unchecked Sendable {
    private let semaphore: UnsafeMutablePointer<sem_t>

    init(_ value: UInt32 = 0) {
        semaphore = .allocate(capacity: 1)
        sem_init(semaphore, 0, value)
    }

    deinit {
        sem_destroy(semaphore)
        semaphore.deallocate()
    }

    /// sem_post.
    func signal() { sem_post(semaphore) }

    /// sem_wait, again after a signal.
    func wait() { while sem_wait(semaphore) != 0 {} }

    /// sem_timedwait: true when it was signalled within `milliseconds`, false on a timeout (or
    /// an interrupting signal).
    func wait(milliseconds: Int) -> Bool {
        var until = timespec()
        clock_gettime(CLOCK_REALTIME, &until)
        let nanoseconds = Int(until.tv_nsec) + milliseconds * 1_000_000
        until.tv_sec += nanoseconds / 1_000_000_000
        until.tv_nsec = nanoseconds % 1_000_000_000
        return sem_timedwait(semaphore, &until) == 0
    }
}
