import AgentGatePolicy
import AgentGateStore
import CSupport
import Glibc
import Logging
import Synchronization

/// Asks the person at the session's terminal about paused calls (`ask`), on /dev/tty only,
/// never on the agent's stdout. One thread, started with the session when the supervisor runs
/// in its terminal's foreground: it waits for pending asks, takes the terminal from the agent
/// (stops the agent's foreground group, saves the terminal's mode, switches to the alternate
/// screen), asks about each pending ask in turn, then gives everything back and asks the agent
/// to redraw (SIGCONT, SIGWINCH). The control socket answers in parallel.
final class TerminalPrompt: Sendable {
    private let core: SupervisorCore
    /// `alice (uid 1000)`: who answers at this terminal, as the audit records it.
    private let user: String
    /// Set before the prompt stops the agent's group and cleared after it continues it, so
    /// the supervisor's job-control following doesn't take that stop for the user's ^Z.
    private let holding = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let thread = Mutex<Thread?>(nil)

    init(core: SupervisorCore) {
        self.core = core
        self.user = ControlPeer(pid: getpid(), uid: getuid()).userDescription
    }

    /// Whether the prompt holds the terminal now (the agent's group it stopped is stopped by it).
    var holdsTerminal: Bool { holding.load(ordering: .acquiring) }

    /// Whether a stop of `pid` reported to the supervisor is the prompt's doing (or already
    /// over): the prompt holds the terminal, or `pid` is no longer stopped.
    func causedStop(of pid: pid_t) -> Bool { holdsTerminal || !ProcessState.isStopped(pid) }

    /// Starts the prompt's thread. False when it could not be created.
    func start() -> Bool {
        let thread = Thread { [self] in run() }
        guard thread.start(detached: false) else { return false }
        self.thread.withLock { $0 = thread }
        return true
    }

    /// Ends the prompt (the session is over); it gives the terminal back first. Once is enough.
    func stop() {
        stopping.store(true, ordering: .releasing)
        thread.withLock { current in
            defer { current = nil }
            return current
        }?.join()
    }

    private var isStopping: Bool { stopping.load(ordering: .acquiring) }

    private func run() {
        while !isStopping {
            let pending = core.asks.waitForPending(timeoutMilliseconds: 250)
            guard !pending.isEmpty else { continue }
            guard pending.contains(where: { core.asks.isPending($0.id) }) else {
                // Answered, and its thread is about to take the answer.
                usleep(10_000)
                continue
            }
            switch TerminalHold.take(core: core, setHolding: { [self] in holding.store($0, ordering: .releasing) }) {
            case .taken(var hold):
                let ended = present(&hold)
                // A hangup while the prompt held the terminal reached the prompt's group, not
                // the agent's: the agent's gets it now, as it would have.
                hold.release(hangUp: ended != nil && !Supervisor.hasControllingTerminal())
                if let ended { return giveUp(ended) }
            case .notForeground:
                // Someone outside the session has the terminal (the job was put in the
                // background): look again shortly; the socket and the timeout still answer.
                usleep(250_000)
            case .failed(let why):
                return giveUp(why)
            }
        }
    }

    /// The terminal can't be used: says so once; asks wait for the control socket or their timeout.
    private func giveUp(_ why: String) {
        core.asks.stopPrompting()
        core.log.warning("terminal prompt stopped: \(why); asks now wait for `agentgate approve`/`deny` or their timeout")
    }

    /// Asks about every pending ask, oldest first, until none is left. Returns why the
    /// terminal can't be used any more, or nil.
    private func present(_ hold: inout TerminalHold) -> String? {
        var lastOutcome: String?
        while !isStopping {
            let pending = Self.unanswered(core.asks)
            guard let ask = pending.first else {
                // What the last answer did to the policy (a rule saved, or why not) stays a
                // moment, or until a key, before the agent gets its screen back.
                if let lastOutcome, hold.draw([AskPromptScreen.fitted(AskPromptScreen.shown(lastOutcome), width: hold.columns())]) {
                    _ = hold.readKey(timeoutMilliseconds: 1500)
                }
                return nil
            }
            switch converse(about: ask, lastOutcome: lastOutcome, &hold) {
            case .settled(let note): lastOutcome = note
            case .terminalGone(let why): return why
            }
        }
        return nil
    }

    /// The pending asks nobody has answered yet, oldest first (an answered one stays pending
    /// until its thread takes the answer).
    private static func unanswered(_ asks: AskBroker) -> [PendingAsk] { asks.pending().filter { asks.isPending($0.id) } }

    private enum Conversation {
        /// The ask was answered here (with what to show next), or vanished (timed out,
        /// answered over the socket, withdrawn).
        case settled(String?)
        case terminalGone(String)
    }

    /// Where the conversation about one ask stands.
    private enum Stage: Equatable {
        case choosing(notice: String?)
        /// Always (allow) or Never (deny), at this breadth, with the rule it would save.
        case confirming(allow: Bool, breadth: AskBreadth, proposal: RuleProposal)
    }

    private func converse(about ask: PendingAsk, lastOutcome: String?, _ hold: inout TerminalHold) -> Conversation {
        var stage = Stage.choosing(notice: lastOutcome)
        var drawn: (Stage, Int, Int, Int)? = nil
        while !isStopping {
            guard core.asks.isPending(ask.id) else { return .settled(nil) }
            let now = agentgate_monotonic_ns()
            let secondsLeft = ask.deadline > now ? Int((ask.deadline - now + 999_999_999) / 1_000_000_000) : 0
            let more = max(0, Self.unanswered(core.asks).count - 1)
            let width = hold.columns()
            if drawn == nil || drawn! != (stage, secondsLeft, more, width) {
                let lines: [String] = switch stage {
                case .choosing(let notice):
                    AskPromptScreen.choosing(ask, moreWaiting: more, secondsLeft: secondsLeft, notice: notice, width: width)
                case .confirming(let allow, let breadth, let proposal):
                    AskPromptScreen.confirming(ask, allow: allow, breadth: breadth, proposal: proposal,
                                               secondsLeft: secondsLeft, width: width)
                }
                guard hold.draw(lines) else { return .terminalGone("the terminal can't be written to") }
                drawn = (stage, secondsLeft, more, width)
            }
            let key: UInt8
            switch hold.readKey(timeoutMilliseconds: 200) {
            case .none: continue
            case .key(let byte): key = byte
            case .gone(let why): return .terminalGone(why)
            }
            switch stage {
            case .choosing:
                switch key {
                case UInt8(ascii: "a"): return answer(ask, .allowOnce)
                case UInt8(ascii: "d"), 0x03: return answer(ask, .deny)
                case UInt8(ascii: "A"), UInt8(ascii: "N"):
                    let allow = key == UInt8(ascii: "A")
                    if let proposal = core.asks.proposal(for: ask.id, allow ? .always(.usual) : .never(.usual)) {
                        stage = .confirming(allow: allow, breadth: .usual, proposal: proposal)
                    } else if core.asks.isPending(ask.id) {
                        stage = .choosing(notice: AskPromptScreen.cannotSave)
                    }
                default: break
                }
            case .confirming(let allow, let breadth, let proposal):
                switch key {
                case UInt8(ascii: "y"):
                    // A rule that can't be saved: the answer is for this call only, as shown.
                    let given: AskAnswer = proposal.refusal != nil ? (allow ? .allowOnce : .deny)
                        : (allow ? .always(breadth) : .never(breadth))
                    return answer(ask, given)
                case UInt8(ascii: "n"), 0x1b: stage = .choosing(notice: nil)
                case 0x03: return answer(ask, .deny)
                case UInt8(ascii: "w") where AskPromptScreen.offersDirectory(ask):
                    let other: AskBreadth = breadth == .directory ? .usual : .directory
                    if let changed = core.asks.proposal(for: ask.id, allow ? .always(other) : .never(other)) {
                        stage = .confirming(allow: allow, breadth: other, proposal: changed)
                    }
                default: break
                }
            }
        }
        return .settled(nil)
    }

    /// Answers `ask`; returns what to show with the next ask (a rule saved, or why the answer
    /// wasn't taken).
    private func answer(_ ask: PendingAsk, _ answer: AskAnswer) -> Conversation {
        switch core.asks.answer(ask.id, answer, by: .terminal(user: user)) {
        case .success(let outcome): return .settled(outcome.ruleNote.map { "ask \(ask.id): \($0)" })
        case .failure(let failure): return .settled(failure.message)
        }
    }
}

/// The terminal while the prompt holds it: /dev/tty, the group that had the foreground
/// (stopped by the prompt when it is the agent's), and the mode to restore.
struct TerminalHold {
    let fd: Int32
    /// The foreground group the prompt took the terminal from.
    let previousForeground: pid_t
    /// Whether the prompt stopped that group (it is the session's), so must continue it.
    let stoppedGroup: Bool
    let savedMode: termios
    let setHolding: (Bool) -> Void

    enum Taking {
        case taken(TerminalHold)
        /// A group outside the session has the foreground: the prompt doesn't touch it.
        case notForeground
        case failed(String)
    }

    /// Takes the terminal. `setHolding` is told true before the agent's group is stopped, and
    /// false once it is continued.
    static func take(core: SupervisorCore, setHolding: @escaping (Bool) -> Void) -> Taking {
        let fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else { return .failed("cannot open /dev/tty (\(String(cString: strerror(errno))))") }
        let foreground = agentgate_tcgetpgrp(fd)
        guard foreground > 0 else {
            close(fd)
            return .failed("the terminal has no foreground process group")
        }
        let membership = core.groupMembership(of: foreground)
        guard membership == .session || membership == .supervisor else {
            close(fd)
            return .notForeground
        }
        let stops = membership == .session
        // Set before the stop, so the supervisor never follows it as the user's ^Z.
        setHolding(true)
        if stops {
            kill(-foreground, SIGSTOP)
            ProcessState.waitUntilStopped(foreground, milliseconds: 200)
        }
        var mode = termios()
        // SIGTTOU is blocked in every supervisor thread: a background group may take the
        // foreground.
        guard agentgate_tcsetpgrp(fd, getpgrp()) == 0, tcgetattr(fd, &mode) == 0 else {
            if stops { kill(-foreground, SIGCONT) }
            setHolding(false)
            close(fd)
            return .failed("cannot take the terminal's foreground")
        }
        var raw = mode
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO | ISIG | IEXTEN)
        raw.c_iflag &= ~tcflag_t(IXON | ICRNL | INLCR)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        // Keys typed for the agent before the prompt appeared must not answer it.
        tcflush(fd, TCIFLUSH)
        tcsetattr(fd, TCSANOW, &raw)
        let hold = TerminalHold(fd: fd, previousForeground: foreground, stoppedGroup: stops, savedMode: mode, setHolding: setHolding)
        _ = hold.write("\u{1b}[?1049h\u{1b}[H\u{1b}[2J")
        return .taken(hold)
    }

    /// Leaves the alternate screen, restores the mode, gives the foreground back, and
    /// continues the agent's group and asks it to redraw (or, after a hangup, passes it on).
    mutating func release(hangUp: Bool = false) {
        _ = write("\u{1b}[?1049l")
        var mode = savedMode
        tcsetattr(fd, TCSADRAIN, &mode)
        if agentgate_tcsetpgrp(fd, previousForeground) != 0 && stoppedGroup {
            // The group has gone: the supervisor keeps the terminal until the session ends.
            _ = agentgate_tcsetpgrp(fd, getpgrp())
        }
        if stoppedGroup {
            if hangUp { kill(-previousForeground, SIGHUP) }
            kill(-previousForeground, SIGCONT)
            if !hangUp { kill(-previousForeground, SIGWINCH) }
        }
        setHolding(false)
        close(fd)
    }

    /// The terminal's width (80 when it doesn't say).
    func columns() -> Int {
        let columns = agentgate_terminal_columns(fd)
        return columns > 0 ? Int(columns) : 80
    }

    /// Clears the screen and draws `lines`. False when the terminal can't be written to.
    func draw(_ lines: [String]) -> Bool {
        write("\u{1b}[H\u{1b}[2J" + lines.joined(separator: "\r\n"))
    }

    private func write(_ text: String) -> Bool {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return false }
            bytes = bytes.dropFirst(written)
        }
        return true
    }

    enum KeyRead: Equatable {
        case none
        case key(UInt8)
        case gone(String)
    }

    /// One key within `timeoutMilliseconds`. An escape sequence (an arrow key) is read whole
    /// and reads as Esc; the keys after it are kept.
    /// A key that arrived alone, or `.none`. Whatever follows a byte at once belongs to the same
    /// burst: a terminal's reply to a query (an OSC colour or clipboard report, a DCS or APC
    /// string, a CSI report) comes as one, and a process of the session can make the terminal
    /// send one while the prompt is up, with letters in it (`ESC ] 11 ; rgb:aaaa/…` held an
    /// `a`, "allow once"; found by a review on 2026-12-07). A person's key comes alone; a burst,
    /// escape sequences (arrow keys) and pastes included, is dropped whole; but a key followed
    /// only by Enter (`a` then CR or LF, as a typed line or pexpect's sendline sends it) counts.
    func readKey(timeoutMilliseconds: Int32) -> KeyRead {
        let first = readByte(timeoutMilliseconds: timeoutMilliseconds)
        guard case .key(let byte) = first else { return first }
        var burst = 1
        var onlyLineEnds = true
        while burst < 1 << 16 {
            switch readByte(timeoutMilliseconds: 15) {
            case .key(let next):
                burst += 1
                if next != 0x0d && next != 0x0a { onlyLineEnds = false }
                continue
            case .gone(let why): return .gone(why)
            case .none: break
            }
            break
        }
        return burst == 1 || (onlyLineEnds && burst <= 3 && byte != 0x1b) ? .key(byte) : .none
    }

    private func readByte(timeoutMilliseconds: Int32) -> KeyRead {
        let events = agentgate_poll_one(fd, Int16(POLLIN), timeoutMilliseconds)
        if events < 0 { return events == -EINTR ? .none : .gone("polling the terminal failed") }
        if events == 0 { return .none }
        let revents = Int16(truncatingIfNeeded: events)
        if revents & Int16(POLLIN) == 0 && revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 {
            return .gone("the terminal hung up")
        }
        var byte: UInt8 = 0
        let n = read(fd, &byte, 1)
        if n < 0 { return errno == EINTR || errno == EAGAIN ? .none : .gone("the terminal can't be read (\(String(cString: strerror(errno))))") }
        if n == 0 { return .gone("the terminal hung up") }
        return .key(byte)
    }
}

/// A process's run state, from /proc/PID/stat.
enum ProcessState {
    /// Whether `pid` is stopped (state T).
    static func isStopped(_ pid: pid_t) -> Bool { state(of: pid) == UInt8(ascii: "T") }

    /// Waits until `pid` is stopped, it has gone, or `milliseconds` pass: the prompt draws
    /// once the agent has stopped drawing.
    static func waitUntilStopped(_ pid: pid_t, milliseconds: Int) {
        let deadline = agentgate_monotonic_ns() + UInt64(milliseconds) * 1_000_000
        while agentgate_monotonic_ns() < deadline {
            guard let state = state(of: pid), state != UInt8(ascii: "T") else { return }
            usleep(2000)
        }
    }

    private static func state(of pid: pid_t) -> UInt8? {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 1024) { buffer -> UInt8? in
            let n = agentgate_read_small_file(AT_FDCWD, "/proc/\(pid)/stat", buffer.baseAddress!, buffer.count)
            guard n > 0 else { return nil }
            let text = String(cBuffer: buffer.baseAddress!, count: n)
            guard let close = text.lastIndex(of: ")") else { return nil }
            return text[text.index(after: close)...].utf8.dropFirst().first
        }
    }
}
