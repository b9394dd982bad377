import AgentGateStore
import AgentGateSupervisor
import Foundation
import Glibc

/// `agentgate-supervise --unit NAME`: the supervisor re-executes itself under `systemd-run`, in a
/// transient scope or service, so that the supervisor and the agent run in a unit with its limits,
/// its logs and a clean way to stop it.
///
/// The caller decides the session id, then runs `systemd-run … -- SELF --in-unit NAME
/// --unit-handoff FILE --session ID …` and waits for it. The re-executed supervisor checks that
/// it is in the unit, takes the handoff file (the caller's environment, for a service, whose
/// processes the manager starts with its own) and removes it. A handoff file still there when
/// systemd-run has exited means that systemd refused the unit (a bad property, a name in use):
/// the agent never ran, and the caller says so with status 2.
/// systemd-run's pid while `UnitLaunch.run` waits for it, for the signal handler that passes
/// SIGTERM and SIGHUP on (set once, before the handlers are installed; read only by them).
nonisolated(unsafe) private var unitLaunchChild: pid_t = 0

struct UnitLaunch {
    enum Kind: String { case scope, service }
    enum Manager: String { case system, user }

    let unit: String
    let kind: Kind
    let manager: Manager
    let properties: [String]

    /// The handoff file's first line: its format, and the kind of unit it was written for.
    static let handoffMagic = "agentgate-unit-handoff-v1"

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// NAME with the kind's suffix ("nightly" → "nightly.scope"); a name with the other kind's
    /// suffix, or one systemd would refuse, is an error.
    static func unitName(_ name: String, kind: Kind) throws(Failure) -> String {
        let other: Kind = kind == .scope ? .service : .scope
        if name.hasSuffix("." + other.rawValue) {
            throw Failure(description: "--unit \(name) names a \(other.rawValue), but the session would run in a \(kind.rawValue)"
                          + (kind == .scope ? " (add --service)" : " (leave out --service)"))
        }
        let full = name.hasSuffix("." + kind.rawValue) ? name : name + "." + kind.rawValue
        let stem = full.dropLast(kind.rawValue.count + 1)
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.-@\\".unicodeScalars)
        guard !stem.isEmpty, full.utf8.count <= 255, stem.unicodeScalars.allSatisfy(allowed.contains),
              !stem.hasPrefix("."), !stem.hasSuffix("@"), stem.filter({ $0 == "@" }).count <= 1 else {
            throw Failure(description: "--unit \(name): not a valid unit name (letters, digits and :_.-@\\ only, at most 255 bytes)")
        }
        return full
    }

    /// Why systemd-run can't start the unit here, checked before anything runs: no systemd-run,
    /// no manager to talk to, or already inside a unit agentgate-supervise made.
    func preflight(environment: [String: String]) throws(Failure) -> String {
        if let inside = environment["AGENTGATE_UNIT"], !inside.isEmpty {
            throw Failure(description: "--unit \(unit): already running in unit \(inside), started by agentgate-supervise --unit; "
                          + "a second unit would start outside it (run without --unit)")
        }
        guard let systemdRun = ProgramLookup.resolve("systemd-run", path: environment["PATH"]), access(systemdRun, X_OK) == 0 else {
            throw Failure(description: "--unit needs systemd-run, which is not on PATH (install systemd)")
        }
        switch manager {
        case .system:
            var info = stat()
            guard stat("/run/systemd/system", &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
                throw Failure(description: "--unit: systemd is not running as the init system here (no /run/systemd/system)")
            }
        case .user:
            guard let runtime = environment["XDG_RUNTIME_DIR"], runtime.hasPrefix("/") else {
                throw Failure(description: "--unit --user: no user manager reachable (XDG_RUNTIME_DIR is not set; log in through "
                              + "PAM/logind, or use --system as root)")
            }
            let bus = environment["DBUS_SESSION_BUS_ADDRESS"].map { !$0.isEmpty } ?? false || access(runtime + "/bus", F_OK) == 0
            // A scope can go through the manager's private socket; a service's --wait needs the bus.
            let reachable = bus || (kind == .scope && access(runtime + "/systemd/private", F_OK) == 0)
            guard reachable else {
                throw Failure(description: "--unit --user: no user manager reachable (no \(runtime)/bus"
                              + (kind == .scope ? " or \(runtime)/systemd/private" : "") + " and no DBUS_SESSION_BUS_ADDRESS)")
            }
        }
        return systemdRun
    }

    /// systemd-run's arguments, up to and including `--`.
    func systemdRunArguments(session: String, cwd: String, interactive: Bool) -> [String] {
        var arguments = ["--" + manager.rawValue, "--unit", unit, "--description", "AgentGate session \(session)", "--quiet"]
        switch kind {
        case .scope:
            arguments.append("--scope")
        case .service:
            // The supervisor's stdio and exit status reach the caller; the unit is removed even
            // when it failed, so that the name can be used again.
            arguments += ["--wait", "--collect", interactive ? "--pty" : "--pipe", "--working-directory", cwd]
        }
        // The supervisor makes the session's own cgroup below the unit's.
        if !properties.contains(where: { $0.hasPrefix("Delegate=") }) { arguments += ["--property", "Delegate=yes"] }
        for property in properties { arguments += ["--property", property] }
        arguments.append("--")
        return arguments
    }

    /// The handoff file: the kind of unit, then (for a service) the caller's environment,
    /// NUL-separated. Private to the user (0600, in the control directory).
    static func writeHandoff(at path: String, kind: Kind, environment: [String]) throws(Failure) {
        var bytes = Array((handoffMagic + "\n" + kind.rawValue + "\n").utf8)
        if kind == .service {
            for entry in environment { bytes += Array(entry.utf8) + [0] }
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            throw Failure(description: "cannot create \(path) to hand the session over to the unit: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if written != bytes.count {
            unlink(path)
            throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Takes the handoff file in the unit: checks it is the user's own and private, reads it and
    /// removes it. Returns the caller's environment for a service, nil for a scope (which
    /// inherited it).
    static func takeHandoff(at path: String, unit: String) throws(Failure) -> [String]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            throw Failure(description: "in unit \(unit): cannot open the handoff file \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_uid == geteuid(), info.st_mode & 0o077 == 0,
              info.st_size < 4 << 20 else {
            throw Failure(description: "in unit \(unit): refusing the handoff file \(path) (not a private file of this user)")
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        unlink(path)
        guard count == bytes.count else {
            throw Failure(description: "in unit \(unit): cannot read the handoff file \(path)")
        }
        let header = Array((handoffMagic + "\n").utf8)
        guard bytes.starts(with: header) else {
            throw Failure(description: "in unit \(unit): \(path) is not a handoff file of this version of agentgate-supervise")
        }
        let rest = bytes.dropFirst(header.count)
        guard let newline = rest.firstIndex(of: 0x0a), let kind = Kind(rawValue: String(decoding: rest[..<newline], as: UTF8.self)) else {
            throw Failure(description: "in unit \(unit): \(path) is not a handoff file of this version of agentgate-supervise")
        }
        guard kind == .service else { return nil }
        return rest[(newline + 1)...].split(separator: 0, omittingEmptySubsequences: true).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Replaces this process's environment with `entries` (before anything reads it).
    static func replaceEnvironment(with entries: [String]) {
        clearenv()
        for entry in entries {
            guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex else { continue }
            setenv(String(entry[..<equals]), String(entry[entry.index(after: equals)...]), 1)
        }
    }

    /// Runs systemd-run and waits for it, with SIGINT and SIGQUIT ignored meanwhile (they are
    /// the agent's, from the terminal), and SIGTERM and SIGHUP passed on to it (to the supervisor
    /// itself, for a scope), as they would reach a supervisor started without --unit. Returns
    /// its exit status the way a shell reports it.
    static func run(_ program: String, _ arguments: [String]) throws(Failure) -> Int32 {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGQUIT)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF))
        let argv = ([program] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let oldInt = signal(SIGINT, SIG_IGN)
        let oldQuit = signal(SIGQUIT, SIG_IGN)
        defer {
            signal(SIGINT, oldInt)
            signal(SIGQUIT, oldQuit)
        }
        var pid = pid_t()
        let rc = posix_spawn(&pid, program, nil, &attributes, argv, environ)
        guard rc == 0 else {
            throw Failure(description: "cannot run \(program): \(String(cString: strerror(rc)))")
        }
        unitLaunchChild = pid
        for forwarded in [SIGTERM, SIGHUP] {
            signal(forwarded) { received in
                if unitLaunchChild > 0 { kill(unitLaunchChild, received) }
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw Failure(description: "waiting for \(program): \(String(cString: strerror(errno)))") }
        }
        let signalNumber = status & 0x7f
        return signalNumber == 0 ? (status >> 8) & 0xff : 128 + signalNumber
    }

    /// The path to re-execute: the name this binary was started by when it is this binary (a
    /// multi-call binary tells its commands apart by it), else /proc/self/exe.
    static func selfPath() -> String {
        let executable = CommandLine.executablePathname
        if let invoked = CommandLine.arguments.first, invoked.contains("/") {
            let absolute = invoked.hasPrefix("/") ? invoked : FileManager.default.currentDirectoryPath + "/" + invoked
            var a = stat(), b = stat()
            if stat(absolute, &a) == 0, stat(executable, &b) == 0, a.st_dev == b.st_dev, a.st_ino == b.st_ino {
                return URL(fileURLWithPath: absolute).standardized.path
            }
        } else if let invoked = CommandLine.arguments.first,
                  let found = ProgramLookup.resolve(invoked, path: ProcessInfo.processInfo.environment["PATH"]) {
            var a = stat(), b = stat()
            if stat(found, &a) == 0, stat(executable, &b) == 0, a.st_dev == b.st_dev, a.st_ino == b.st_ino,
               found.hasPrefix("/") {
                return found
            }
        }
        return executable
    }
}
