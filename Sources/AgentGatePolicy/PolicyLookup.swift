/// Where the policy comes from when a command needs one: the file named on the command line,
/// else `$AGENTGATE_POLICY`, else one implicit file if it exists, else none (the caller falls
/// back to the built-in policy or fails). The one lookup order every command follows.
public enum PolicyLookup: Sendable, Equatable {
    /// Named on the command line.
    case named(String)
    /// `$AGENTGATE_POLICY`.
    case environment(String)
    /// The first of the implicit files the caller offered that exists, found without being named.
    case implicit(String)
    /// Nothing named and no implicit file.
    case none

    /// The environment variable that names a policy file.
    public static let environmentVariable = "AGENTGATE_POLICY"

    /// `named` (nil: not given), then `$AGENTGATE_POLICY` when set and non-empty, then the
    /// first of `implicitFiles` that `exists` says exists.
    public static func locate(named: String?, environment: [String: String], implicitFiles: [String],
                              exists: (String) -> Bool) -> PolicyLookup {
        if let named { return .named(named) }
        if let fromEnvironment = environment[environmentVariable], !fromEnvironment.isEmpty {
            return .environment(fromEnvironment)
        }
        return implicitFiles.first(where: exists).map { .implicit($0) } ?? .none
    }
}
