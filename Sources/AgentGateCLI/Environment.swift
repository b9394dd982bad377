import AgentGatePolicy
import AgentGateStore
import AgentGateSupervisor
import Foundation
import Glibc

/// Where things live, resolved the same way by every command. For a user, the XDG base
/// directories; for a system service, the directories systemd hands it (`StateDirectory=`,
/// `ConfigurationDirectory=`, `RuntimeDirectory=`), which are /var/lib/agentgate, /etc/agentgate
/// and /run/agentgate in the units AgentGate ships. `agentgate paths` prints them.
public enum AgentGatePaths {
    /// A path, and what chose it (for `agentgate paths` and error messages).
    public struct Location: Sendable, Equatable {
        public let path: String
        /// "--db", "$AGENTGATE_DB", "$STATE_DIRECTORY", "$XDG_DATA_HOME", "default", …
        public let source: String
    }

    /// The system-wide directories, for agentgate run by the system manager.
    public static let systemDataDirectory = "/var/lib/agentgate"
    public static let systemConfigurationDirectory = "/etc/agentgate"
    public static let systemRuntimeDirectory = "/run/agentgate"
    /// The policy an administrator sets for every user who names none of their own.
    public static let systemPolicyFile = systemConfigurationDirectory + "/policy.yaml"

    /// The first absolute directory of a systemd `*_DIRECTORY` variable (a colon-separated list
    /// when the unit names several).
    static func systemdDirectory(_ name: String, _ environment: [String: String]) -> String? {
        guard let value = environment[name], let first = value.split(separator: ":").first, first.hasPrefix("/") else { return nil }
        return String(first)
    }

    /// $STATE_DIRECTORY (systemd), else $XDG_DATA_HOME/agentgate, else ~/.local/share/agentgate.
    public static func dataDirectory(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Location {
        if let state = systemdDirectory("STATE_DIRECTORY", environment) { return Location(path: state, source: "$STATE_DIRECTORY") }
        if let xdg = environment["XDG_DATA_HOME"], xdg.hasPrefix("/") { return Location(path: xdg + "/agentgate", source: "$XDG_DATA_HOME") }
        return Location(path: home(environment) + "/.local/share/agentgate", source: "default")
    }

    /// `--db`, else $AGENTGATE_DB, else agentgate.db in the data directory.
    public static func databaseLocation(_ explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> Location {
        if let explicit, !explicit.isEmpty { return Location(path: explicit, source: "--db") }
        if let fromEnv = environment["AGENTGATE_DB"], !fromEnv.isEmpty { return Location(path: fromEnv, source: "$AGENTGATE_DB") }
        let data = dataDirectory(environment)
        return Location(path: data.path + "/agentgate.db", source: data.source)
    }

    /// `--db`, else $AGENTGATE_DB, else $STATE_DIRECTORY/agentgate.db, else
    /// $XDG_DATA_HOME/agentgate/agentgate.db, else ~/.local/share/agentgate/agentgate.db.
    public static func database(_ explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        databaseLocation(explicit, environment: environment).path
    }

    /// Where the default database's missing directories may be made: the home directory (or
    /// $XDG_DATA_HOME, when that is elsewhere), which must exist already. systemd makes
    /// $STATE_DIRECTORY itself.
    public static func databaseDirectoryRoot(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let state = systemdDirectory("STATE_DIRECTORY", environment) { return state }
        let home = home(environment)
        if let xdg = environment["XDG_DATA_HOME"], xdg.hasPrefix("/"), !(xdg == home || xdg.hasPrefix(home + "/")) {
            return xdg
        }
        return home
    }

    /// $CONFIGURATION_DIRECTORY (systemd), else $XDG_CONFIG_HOME/agentgate, else ~/.config/agentgate.
    public static func configurationDirectory(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Location {
        if let configuration = systemdDirectory("CONFIGURATION_DIRECTORY", environment) {
            return Location(path: configuration, source: "$CONFIGURATION_DIRECTORY")
        }
        if let xdg = environment["XDG_CONFIG_HOME"], xdg.hasPrefix("/") { return Location(path: xdg + "/agentgate", source: "$XDG_CONFIG_HOME") }
        return Location(path: home(environment) + "/.config/agentgate", source: "default")
    }

    /// Where `agentgate serve` keeps its bearer token: server.token in the configuration directory.
    public static func serverToken(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        configurationDirectory(environment).path + "/server.token"
    }

    /// Every place a server of this user's (or the system's) may keep its token, whatever
    /// environment it was started with. A supervised agent may read none of them: the token
    /// answers asks over HTTP, which an agent may be allowed to reach on loopback.
    public static func serverTokenCandidates(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        var paths = [serverToken(environment), home(environment) + "/.config/agentgate/server.token",
                     systemConfigurationDirectory + "/server.token"]
        if let entry = getpwuid(getuid()), let dir = entry.pointee.pw_dir {
            paths.append(String(cString: dir) + "/.config/agentgate/server.token")
        }
        var seen = Set<String>()
        return paths.filter { seen.insert($0).inserted }
    }

    public static func home(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let home = environment["HOME"], home.hasPrefix("/") { return home }
        if let entry = getpwuid(getuid()), let dir = entry.pointee.pw_dir { return String(cString: dir) }
        return "/"
    }

    /// Where a dangling symlink at `path` points (absolute, relative to its directory), or nil
    /// when `path` is not a symlink or its destination exists. Creating a file through it (open
    /// with O_CREAT) creates the destination.
    public static func danglingSymlinkDestination(_ path: String) -> String? { ActionTargets.danglingSymlinkDestination(path) }

    public static func currentDirectory() -> String {
        FileManager.default.currentDirectoryPath
    }
}

extension PolicyVariables {
    /// The variables a policy sees when run from here: `$PWD`, `$HOME` and `$TMPDIR` resolved
    /// (decisions are made on paths as the kernel resolved them, so a symlinked home would
    /// otherwise match no rule), `$AGENT`, the environment for `${env:NAME}`, and `scope:`
    /// directories resolved the same way when the policy loads.
    /// `workingDirectory`: `$PWD` (default: this process's).
    static func current(agent: String?, workingDirectory: String? = nil,
                        environment: [String: String] = ProcessInfo.processInfo.environment) -> PolicyVariables {
        let temporary = environment["TMPDIR"].flatMap { $0.hasPrefix("/") ? $0 : nil } ?? "/tmp"
        return PolicyVariables(workingDirectory: FilePaths.resolved(workingDirectory ?? AgentGatePaths.currentDirectory()),
                               home: FilePaths.resolved(AgentGatePaths.home(environment)),
                               temporaryDirectory: FilePaths.resolved(temporary),
                               agent: agent, environment: environment,
                               scopeResolver: .init { FilePaths.resolvedExisting($0) })
    }
}

/// The policy a session runs under, and where it came from.
public struct LoadedPolicy: Sendable {
    /// How the policy was found.
    public enum Origin: Sendable, Equatable {
        /// `--policy FILE`.
        case option
        /// `$AGENTGATE_POLICY`.
        case environment
        /// The user's configuration, `$XDG_CONFIG_HOME/agentgate/policy.yaml`: found without
        /// being named, so it must be a file no supervised agent can have written.
        case userConfiguration
        /// The system's configuration, /etc/agentgate/policy.yaml, when the user has none: found
        /// without being named, checked the same way.
        case systemConfiguration
        /// The policy embedded in the binary.
        case builtIn
    }

    public let policy: Policy
    /// The file, or "builtin:default.yaml".
    public let source: String
    /// SHA-256 over the bytes of every policy file, in load order (the policy, then its includes).
    public let sha256: String
    /// Every file the policy was read from, as absolute paths (empty for the built-in policy).
    public let files: [String]
    public let origin: Origin
    /// The policy.d files read after it, in order (see `dropInFiles`).
    public var dropIns: [String] = []

    /// One line for the user: which policy is in force, and how it was found.
    public var announcement: String {
        let digest = sha256.isEmpty ? "" : ", sha256 \(sha256.prefix(12))"
        let main = mainAnnouncement(digest: digest)
        return dropIns.isEmpty ? main : main + "; then policy.d: " + dropIns.joined(separator: ", ")
    }

    private func mainAnnouncement(digest: String) -> String {
        switch origin {
        case .option: return "policy \(source) (--policy\(digest))"
        case .environment: return "policy \(source) ($AGENTGATE_POLICY\(digest))"
        case .userConfiguration: return "policy \(source) (your configuration\(digest))"
        case .systemConfiguration: return "policy \(source) (the system's configuration\(digest))"
        case .builtIn: return "policy: the built-in default (\(source); see agentgate init to write your own)"
        }
    }

    /// Where AgentGate's own configuration lives. No supervised agent may write there, whatever
    /// the policy says: a policy found there without being named is trusted.
    public static func configurationDirectory(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        AgentGatePaths.configurationDirectory(environment).path
    }

    /// The files tried, in order, when no policy is named: the user's configuration, then the
    /// system's (/etc/agentgate/policy.yaml).
    public static func implicitFiles(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        let user = configurationDirectory(environment) + "/policy.yaml"
        return user == AgentGatePaths.systemPolicyFile ? [user] : [user, AgentGatePaths.systemPolicyFile]
    }

    /// System directories an implicitly found policy may include from (the supervisor protects
    /// them as well).
    public static let systemPolicyDirectories = ["/etc/agentgate", "/usr/share/agentgate"]

    /// policy.d: the system's (that configuration management fills), then the user's. Their
    /// `*.yaml` files are read after the policy, in name order, as if it ended with an include
    /// of each.
    public static func dropInDirectories(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        let system = AgentGatePaths.systemConfigurationDirectory + "/policy.d"
        let user = configurationDirectory(environment) + "/policy.d"
        return user == system ? [system] : [system, user]
    }

    /// The drop-in files in force, in load order. Each must be one no agent could have written,
    /// as for a policy found without being named: a regular file in its policy.d (a symlink
    /// out of it is refused), owned by the user or root, writable by nobody else, in a
    /// directory likewise. Throws when one isn't: a fleet's rules are never silently skipped.
    public static func dropInFiles(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws(PolicyLoadError) -> [String] {
        var files: [String] = []
        for directory in dropInDirectories(environment) {
            var info = stat()
            guard stat(directory, &info) == 0 else { continue }
            func refuse(_ path: String, _ why: String) -> PolicyLoadError {
                PolicyLoadError(file: path, line: 0, column: 0, message: "policy drop-in not loaded: \(why); fix it or remove it")
            }
            guard info.st_mode & S_IFMT == S_IFDIR else { throw refuse(directory, "it is not a directory") }
            guard info.st_uid == getuid() || info.st_uid == 0 else { throw refuse(directory, "it belongs to another user (uid \(info.st_uid))") }
            guard info.st_mode & 0o022 == 0 else { throw refuse(directory, "others may write to it (mode \(String(info.st_mode & 0o777, radix: 8)))") }
            let names: [String]
            do {
                names = try FileManager.default.contentsOfDirectory(atPath: directory)
            } catch {
                throw refuse(directory, "it can't be listed (\(describe(error)))")
            }
            let realDirectory = FilePaths.resolved(directory)
            for name in PolicyDropIns.ordered(names) {
                let path = directory + "/" + name
                let real = FilePaths.resolved(path)
                guard real.hasPrefix(realDirectory + "/") else { throw refuse(path, "it leads out of \(directory) (to \(real))") }
                var file = stat()
                guard stat(real, &file) == 0 else { throw refuse(path, "it can't be examined") }
                guard file.st_mode & S_IFMT == S_IFREG else { throw refuse(path, "it is not a regular file") }
                guard file.st_uid == getuid() || file.st_uid == 0 else { throw refuse(path, "it belongs to another user (uid \(file.st_uid))") }
                guard file.st_mode & 0o022 == 0 else { throw refuse(path, "others may write to it (mode \(String(file.st_mode & 0o777, radix: 8)))") }
                files.append(path)
            }
        }
        return files
    }

    /// `--policy`, else $AGENTGATE_POLICY, else `$XDG_CONFIG_HOME/agentgate/policy.yaml`, else the
    /// built-in default. A `policy.yaml` in the working directory is never loaded unless named:
    /// the agent of the previous session could have written it.
    public static func resolve(_ explicit: String?, variables: PolicyVariables,
                               environment: [String: String] = ProcessInfo.processInfo.environment) throws(PolicyLoadError) -> LoadedPolicy {
        var loaded = try resolveMain(explicit, variables: variables, environment: environment, dropIns: try dropInFiles(environment))
        loaded.dropIns = loaded.files.filter { file in dropInDirectories(environment).contains { file.hasPrefix($0 + "/") } }
        return loaded
    }

    private static func resolveMain(_ explicit: String?, variables: PolicyVariables, environment: [String: String],
                                    dropIns: [String]) throws(PolicyLoadError) -> LoadedPolicy {
        switch PolicyLookup.locate(named: explicit.flatMap { $0.isEmpty ? nil : $0 }, environment: environment,
                                   implicitFiles: implicitFiles(environment),
                                   exists: { access($0, F_OK) == 0 }) {
        case .named(let file): return try load(file: file, origin: .option, variables: variables, dropIns: dropIns)
        case .environment(let file): return try load(file: file, origin: .environment, variables: variables, dropIns: dropIns)
        case .implicit(let configured):
            let origin: Origin = configured == AgentGatePaths.systemPolicyFile ? .systemConfiguration : .userConfiguration
            let loaded = try load(file: configured, origin: origin, variables: variables, dropIns: dropIns)
            try checkTrusted(loaded, environment: environment)
            return loaded
        case .none: break
        }
        let text = Policy.builtInDefaultYAML
        let policy = try Policy.builtInDefault(variables: variables, dropIns: dropIns, source: "builtin:default.yaml")
        var bytes = Array(text.utf8)
        for file in dropIns { bytes += Array((try? Data(contentsOf: URL(fileURLWithPath: file))) ?? Data()) }
        return LoadedPolicy(policy: policy, source: "builtin:default.yaml", sha256: SHA256Hex.digest(bytes),
                            files: dropIns, origin: .builtIn)
    }

    /// Where a running session reads this policy again (`agentgate-supervise`; nil for the
    /// built-in policy). The file is the one the session started with, resolved then, so
    /// re-pointing a symlink to it changes nothing; it is checked as it was at start (a policy
    /// found without being named must still be trusted), and every file it reads must be one
    /// the session protects from the agent (was part of the policy at start): a newly
    /// included file is refused, since the agent could have written it.
    /// Where rules saved from an ask (Always / Never) go: this policy's file, or the user's own
    /// policy file (`configurationDirectory`/policy.yaml) when this one must not be edited. Files
    /// are read back as this policy was: with the same variables, and checked as trusted when
    /// it is the user's own.
    public func ruleSaver(variables: PolicyVariables, environment: [String: String]) -> PolicyFileAmender {
        let userFile = Self.configurationDirectory(environment) + "/policy.yaml"
        return PolicyFileAmender(policyPath: origin == .builtIn ? nil : source, userPolicyPath: userFile) { path in
            do throws(PolicyLoadError) {
                let isUserFile = FilePaths.resolved(path) == FilePaths.resolved(userFile)
                let loaded = try Self.load(file: path, origin: isUserFile ? .userConfiguration : .option, variables: variables,
                                           dropIns: try Self.dropInFiles(environment))
                if isUserFile { try Self.checkTrusted(loaded, environment: environment) }
                return .success(.init(policy: loaded.policy, sha256: loaded.sha256))
            } catch {
                return .failure(PolicyReloadFailure(error.description))
            }
        }
    }

    public func reloadSource(variables: PolicyVariables, environment: [String: String]) -> PolicyReloadSource? {
        guard origin != .builtIn else { return nil }
        let named = source, origin = origin
        let realFile = FilePaths.resolved(source)
        let protected = Set(files.map(FilePaths.resolved) + [realFile])
        return PolicyReloadSource(path: source, files: Array(protected).sorted()) {
            () -> Result<PolicyReloadSource.Loaded, PolicyReloadFailure> in
            do throws(PolicyLoadError) {
                // policy.d is listed again: a replaced drop-in is read; a new one is refused below.
                let loaded = try Self.load(file: named, readingFrom: realFile, origin: origin, variables: variables,
                                           dropIns: try Self.dropInFiles(environment))
                if origin == .userConfiguration || origin == .systemConfiguration { try Self.checkTrusted(loaded, environment: environment) }
                if let added = loaded.files.first(where: { !protected.contains(FilePaths.resolved($0)) }) {
                    return .failure(PolicyReloadFailure("it reads \(added), which was not part of the policy when the session "
                                                        + "started, so the session does not protect it from the agent; "
                                                        + "start a new session to use it"))
                }
                return .success(.init(policy: loaded.policy, sha256: loaded.sha256))
            } catch {
                return .failure(PolicyReloadFailure(error.description))
            }
        }
    }

    private static func load(file path: String, readingFrom realFile: String? = nil, origin: Origin,
                             variables: PolicyVariables, dropIns: [String]) throws(PolicyLoadError) -> LoadedPolicy {
        let bytes: [UInt8]
        let descriptor = open(realFile ?? path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw PolicyLoadError(file: path, line: 0, column: 0, message: "cannot read the policy file: \(String(cString: strerror(errno)))")
        }
        do {
            bytes = Array(try FileHandle(fileDescriptor: descriptor, closeOnDealloc: true).readToEnd() ?? Data())
        } catch {
            throw PolicyLoadError(file: path, line: 0, column: 0, message: "cannot read the policy file: \(Self.describe(error))")
        }
        let absolute = path.hasPrefix("/") ? path : AgentGatePaths.currentDirectory() + "/" + path
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return LoadedPolicy(policy: try Policy.load(path: absolute, variables: variables), source: absolute, sha256: "",
                                files: [], origin: origin)
        }
        let policy = try Policy.parse(yaml: text, source: absolute, variables: variables, dropIns: dropIns)
        // Included files are read again for the digest; they were just parsed, so they exist.
        var all = bytes
        for file in policy.files.dropFirst() {
            all += Array((try? Data(contentsOf: URL(fileURLWithPath: file))) ?? Data())
        }
        return LoadedPolicy(policy: policy, source: absolute, sha256: SHA256Hex.digest(all), files: policy.files, origin: origin)
    }

    /// A policy found without being named is used only when no supervised agent could have
    /// written any of its files: each lies in the configuration directory (which every session
    /// protects) or a system policy directory, belongs to the user or root, and is writable by
    /// nobody else.
    private static func checkTrusted(_ loaded: LoadedPolicy, environment: [String: String]) throws(PolicyLoadError) {
        let trustedDirectories = [FilePaths.resolved(configurationDirectory(environment))]
            + systemPolicyDirectories.map(FilePaths.resolved)
        for file in loaded.files {
            let real = FilePaths.resolved(file)
            func refuse(_ why: String) -> PolicyLoadError {
                PolicyLoadError(file: file, line: 0, column: 0,
                                message: "not loaded without being named: \(why). Name it with --policy if you trust it")
            }
            guard trustedDirectories.contains(where: { real == $0 || real.hasPrefix($0 + "/") }) else {
                throw refuse("it lies outside \(trustedDirectories.joined(separator: ", ")), where an agent could have written it")
            }
            var info = stat()
            guard stat(real, &info) == 0 else { throw refuse("it can't be examined") }
            guard info.st_uid == getuid() || info.st_uid == 0 else { throw refuse("it belongs to another user (uid \(info.st_uid))") }
            guard info.st_mode & 0o022 == 0 else { throw refuse("others may write to it (mode \(String(info.st_mode & 0o777, radix: 8)))") }
        }
    }

    static func describe(_ error: any Error) -> String {
        let nsError = error as NSError
        if let posix = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, posix.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(posix.code)))
        }
        return nsError.localizedDescription
    }
}


func printError(_ message: String, tool: String = "agentgate-supervise") {
    FileHandle.standardError.write(Data("\(tool): \(message)\n".utf8))
}
