import Glibc

/// Where running supervisors keep their control sockets (`SESSIONID.sock`): the one place both
/// `agentgate-supervise` and the `agentgate` control commands learn the path from.
/// `$AGENTGATE_RUNTIME_DIR` when set; else `$RUNTIME_DIRECTORY` (systemd's `RuntimeDirectory=`,
/// /run/agentgate for a system service); else `$XDG_RUNTIME_DIR/agentgate/` when XDG_RUNTIME_DIR
/// is a directory of the user's own with mode 0700; else `/tmp/agentgate-UID/`. Each is created
/// 0700 when missing and refused when it belongs to someone else or is open to group or others.
public struct ControlDirectory: Sendable, Equatable {
    public let path: String
    /// Other directories the control commands look in for sessions: those of system services
    /// (`/run/agentgate/NAME/`, made for the session's user by agentgate-session@.service) that
    /// belong to this user with mode 0700, or every one of them for root.
    public let alsoSearched: [String]

    /// Why the directory can't be used.
    public struct Unusable: Error, CustomStringConvertible {
        public let description: String
    }

    /// The longest socket path a sockaddr_un holds (108 bytes with its NUL).
    static let maximumSocketPathLength = 107

    public init(path: String, alsoSearched: [String] = []) {
        self.path = path
        self.alsoSearched = alsoSearched
    }

    /// Where agentgate-session@.service puts each session's control directory.
    public static let systemSessionsDirectory = "/run/agentgate"

    /// `systemSessionsDirectory`'s subdirectories this user may use (see `alsoSearched`).
    static func systemSessionDirectories(in root: String = systemSessionsDirectory, excluding own: String) -> [String] {
        guard let directory = opendir(root) else { return [] }
        defer { closedir(directory) }
        let uid = getuid()
        var found: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard !name.hasPrefix(".") else { continue }
            let path = root + "/" + name
            var info = stat()
            guard path != own, lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, info.st_mode & 0o077 == 0,
                  uid == 0 || info.st_uid == uid else { continue }
            found.append(path)
        }
        return found.sorted()
    }

    /// The user's control directory. With `create`, it is made when missing (the supervisor);
    /// without, a missing one is returned as is (the control commands then find no sessions).
    public static func resolve(environment: [String: String], create: Bool) throws(Unusable) -> ControlDirectory {
        let own = try resolveOwn(environment: environment, create: create)
        // A supervisor uses its own directory only; the control commands also find the sessions
        // system services run for this user.
        if create { return own }
        return ControlDirectory(path: own.path, alsoSearched: systemSessionDirectories(excluding: own.path))
    }

    /// Every directory this user's sessions may keep control sockets in: the named ones, the
    /// runtime directory's, the /tmp fallback and /run/agentgate (system services).
    public static func candidates(environment: [String: String]) -> [String] {
        var directories = ["/tmp/agentgate-\(getuid())", systemSessionsDirectory]
        if let named = environment["AGENTGATE_RUNTIME_DIR"], named.hasPrefix("/") { directories.append(named) }
        if let systemd = environment["RUNTIME_DIRECTORY"]?.split(separator: ":").first, systemd.hasPrefix("/") {
            directories.append(String(systemd))
        }
        if let runtime = environment["XDG_RUNTIME_DIR"], runtime.hasPrefix("/") {
            directories.append(runtime.hasSuffix("/") ? runtime + "agentgate" : runtime + "/agentgate")
        }
        return directories
    }

    private static func resolveOwn(environment: [String: String], create: Bool) throws(Unusable) -> ControlDirectory {
        let uid = getuid()
        if let named = environment["AGENTGATE_RUNTIME_DIR"], !named.isEmpty {
            guard named.hasPrefix("/") else {
                throw Unusable(description: "$AGENTGATE_RUNTIME_DIR must be an absolute path, not \(named)")
            }
            return try prepare(named, create: create)
        }
        if let systemd = environment["RUNTIME_DIRECTORY"]?.split(separator: ":").first, systemd.hasPrefix("/") {
            return try prepare(String(systemd), create: create)
        }
        if let runtime = environment["XDG_RUNTIME_DIR"], runtime.hasPrefix("/") {
            var info = stat()
            if stat(runtime, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR && info.st_uid == uid && info.st_mode & 0o777 == 0o700 {
                return try prepare(runtime.hasSuffix("/") ? runtime + "agentgate" : runtime + "/agentgate", create: create)
            }
        }
        return try prepare("/tmp/agentgate-\(uid)", create: create)
    }

    private static func prepare(_ path: String, create: Bool) throws(Unusable) -> ControlDirectory {
        var info = stat()
        // Made only when missing: inside a session the directory is protected, and the mkdir of
        // one that exists would be refused rather than fail with EEXIST.
        if create && lstat(path, &info) != 0 && errno == ENOENT && mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw Unusable(description: "cannot create \(path) for the session's control socket: \(String(cString: strerror(errno)))")
        }
        guard lstat(path, &info) == 0 else {
            if !create && errno == ENOENT { return ControlDirectory(path: path) }
            throw Unusable(description: "cannot use \(path) for control sockets: \(String(cString: strerror(errno)))")
        }
        let uid = getuid()
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw Unusable(description: "refusing to use \(path) for control sockets: it is not a directory (remove it)")
        }
        guard info.st_uid == uid else {
            throw Unusable(description: "refusing to use \(path) for control sockets: it belongs to uid \(info.st_uid), not to uid \(uid)")
        }
        guard info.st_mode & 0o077 == 0 else {
            let mode = String(info.st_mode & 0o777, radix: 8)
            throw Unusable(description: "refusing to use \(path) for control sockets: its mode is 0\(mode), open to group or others "
                           + "(chmod 700 \(path))")
        }
        return ControlDirectory(path: path)
    }

    /// The control socket of `session`, or nil when the id can't name one (a slash, a leading
    /// dot, or too long for a socket address).
    public func socketPath(session: String) -> String? {
        guard !session.isEmpty, !session.hasPrefix("."), !session.contains("/"), !session.utf8.contains(0) else { return nil }
        // The directory that has the session's socket; a new socket goes in `path`. The user's
        // own directory wins; a session found in several of the others is named by none (any
        // user can make a socket of that name in a directory of their own).
        var holder = path
        if access(path + "/" + session + ".sock", F_OK) != 0 {
            let holders = alsoSearched.filter { access($0 + "/" + session + ".sock", F_OK) == 0 }
            guard holders.count <= 1 else { return nil }
            holder = holders.first ?? path
        }
        let socket = holder + "/" + session + ".sock"
        return socket.utf8.count <= Self.maximumSocketPathLength ? socket : nil
    }

    /// The sessions with a control socket in the directory (running, or ended without removing it).
    public func sessions() -> [String] {
        Array(Set(([path] + alsoSearched).flatMap(Self.sessions(in:)))).sorted()
    }

    private static func sessions(in path: String) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var sessions: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasSuffix(".sock") && name.count > 5 && !name.hasPrefix(".") { sessions.append(String(name.dropLast(5))) }
        }
        return sessions.sorted()
    }

    /// The session named by `id`: exactly, or as the unique prefix of one session's id.
    public enum SessionMatch: Equatable, Sendable {
        case found(String)
        case none
        case ambiguous([String])
    }

    public func match(session id: String) -> SessionMatch {
        let sessions = sessions()
        if sessions.contains(id) { return .found(id) }
        let matches = sessions.filter { $0.hasPrefix(id) }
        switch matches.count {
        case 0: return .none
        case 1: return .found(matches[0])
        default: return .ambiguous(matches)
        }
    }
}
