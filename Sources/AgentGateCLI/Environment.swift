import AgentGatePolicy
import AgentGateStore
import Foundation
import Glibc

/// Where things live, resolved the same way by every command.
public enum AgentGatePaths {
    /// `--db`, else $AGENTGATE_DB, else $XDG_DATA_HOME/agentgate/agentgate.db, else
    /// ~/.local/share/agentgate/agentgate.db.
    public static func database(_ explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let fromEnv = environment["AGENTGATE_DB"], !fromEnv.isEmpty { return fromEnv }
        if let xdg = environment["XDG_DATA_HOME"], xdg.hasPrefix("/") { return xdg + "/agentgate/agentgate.db" }
        return home(environment) + "/.local/share/agentgate/agentgate.db"
    }

    public static func home(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let home = environment["HOME"], home.hasPrefix("/") { return home }
        if let entry = getpwuid(getuid()), let dir = entry.pointee.pw_dir { return String(cString: dir) }
        return "/"
    }

    /// `path` with every symlink resolved (realpath), or unchanged when it doesn't exist.
    public static func resolved(_ path: String) -> String {
        guard let real = realpath(path, nil) else { return path }
        defer { free(real) }
        return String(decoding: UnsafeRawBufferPointer(start: real, count: strlen(real)), as: UTF8.self)
    }

    public static func currentDirectory() -> String {
        FileManager.default.currentDirectoryPath
    }
}

extension PolicyVariables {
    /// The variables a policy sees when run from here: `$PWD`, `$HOME` and `$TMPDIR` resolved
    /// (decisions are made on paths as the kernel resolved them, so a symlinked home would
    /// otherwise match no rule), `$AGENT`, and the environment for `${env:NAME}`.
    static func current(agent: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> PolicyVariables {
        let temporary = environment["TMPDIR"].flatMap { $0.hasPrefix("/") ? $0 : nil } ?? "/tmp"
        return PolicyVariables(workingDirectory: AgentGatePaths.resolved(AgentGatePaths.currentDirectory()),
                               home: AgentGatePaths.resolved(AgentGatePaths.home(environment)),
                               temporaryDirectory: AgentGatePaths.resolved(temporary),
                               agent: agent, environment: environment)
    }
}

/// The policy a session runs under, and where it came from.
public struct LoadedPolicy: Sendable {
    public let policy: Policy
    /// The file, or "builtin:default.yaml".
    public let source: String
    /// SHA-256 over the bytes of every policy file, in load order (the policy, then its includes).
    public let sha256: String
    /// Every file the policy was read from, as absolute paths (empty for the built-in policy).
    public let files: [String]

    /// `--policy`, else $AGENTGATE_POLICY, else ./policy.yaml, else the built-in default.
    public static func resolve(_ explicit: String?, variables: PolicyVariables,
                               environment: [String: String] = ProcessInfo.processInfo.environment) throws(PolicyLoadError) -> LoadedPolicy {
        var path = explicit
        if path == nil, let fromEnv = environment["AGENTGATE_POLICY"], !fromEnv.isEmpty { path = fromEnv }
        if path == nil, access("policy.yaml", F_OK) == 0 { path = "policy.yaml" }
        guard let path else {
            let text = Policy.builtInDefaultYAML
            let policy = try Policy.parse(yaml: text, source: "builtin:default.yaml", variables: variables)
            return LoadedPolicy(policy: policy, source: "builtin:default.yaml", sha256: SHA256Hex.digest(Array(text.utf8)),
                                files: [])
        }
        let bytes: [UInt8]
        do {
            bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw PolicyLoadError(file: path, line: 0, column: 0, message: "cannot read the policy file: \(Self.describe(error))")
        }
        let absolute = path.hasPrefix("/") ? path : AgentGatePaths.currentDirectory() + "/" + path
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return LoadedPolicy(policy: try Policy.load(path: absolute, variables: variables), source: absolute, sha256: "", files: [])
        }
        let policy = try Policy.parse(yaml: text, source: absolute, variables: variables)
        // Included files are read again for the digest; they were just parsed, so they exist.
        var all = bytes
        for file in policy.files.dropFirst() {
            all += Array((try? Data(contentsOf: URL(fileURLWithPath: file))) ?? Data())
        }
        return LoadedPolicy(policy: policy, source: absolute, sha256: SHA256Hex.digest(all), files: policy.files)
    }

    static func describe(_ error: any Error) -> String {
        let nsError = error as NSError
        if let posix = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, posix.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(posix.code)))
        }
        return nsError.localizedDescription
    }
}

/// Finds a program the way execvp would: names with a slash are used as given.
enum ProgramLookup {
    static func resolve(_ name: String, path: String?) -> String? {
        if name.contains("/") { return name }
        let searchPath = path ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in searchPath.split(separator: ":", omittingEmptySubsequences: false) {
            let dir = directory.isEmpty ? "." : String(directory)
            let candidate = dir + "/" + name
            var info = stat()
            if stat(candidate, &info) == 0, info.st_mode & S_IFMT == S_IFREG, access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        return nil
    }
}

func printError(_ message: String, tool: String = "agentgate-supervise") {
    FileHandle.standardError.write(Data("\(tool): \(message)\n".utf8))
}
