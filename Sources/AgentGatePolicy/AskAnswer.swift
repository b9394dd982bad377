/// A person's answer to an `ask`.
public enum AskAnswer: Sendable, Equatable {
    /// This call only.
    case allowOnce
    /// This call only.
    case deny
    /// This call, and a rule saved in the policy that allows the same action from now on.
    case always(AskBreadth)
    /// This call, and a rule saved in the policy that denies the same action from now on.
    case never(AskBreadth)

    /// Whether the call the ask paused goes ahead.
    public var allows: Bool {
        switch self {
        case .allowOnce, .always: true
        case .deny, .never: false
        }
    }

    /// The decision a saved rule carries, or nil for a one-off answer.
    public var savedDecision: Decision? {
        switch self {
        case .always: .allow
        case .never: .deny
        case .allowOnce, .deny: nil
        }
    }
}

/// How much a rule saved from an ask covers.
public enum AskBreadth: String, Sendable, Equatable, CaseIterable {
    /// The usual breadth: for an exec the program and its subcommand with any further
    /// arguments (`npm install *`); for a path the file; for a connection the host and port.
    case usual
    /// Exactly the action that was asked about (every argument of an exec).
    case exact
    /// For a path: its directory and everything below it.
    case directory
}

/// The action an ask paused, as the policy saw it.
public struct AskedAction: Sendable, Equatable {
    public var kind: ActionKind
    /// The resolved path, network target (as `Policy.evaluateEgress` is given it) or program.
    public var target: String
    /// An exec's arguments, argv[0] first.
    public var argv: [String]?

    public init(kind: ActionKind, target: String, argv: [String]? = nil) {
        self.kind = kind
        self.target = target
        self.argv = argv
    }
}

/// A rule an Always or Never answer would save, shown before it is saved.
public struct RuleProposal: Sendable, Equatable {
    /// The rule as it is written into the file: one YAML block sequence item, `- ` first, one
    /// line per element, without the indentation of the list it goes into.
    public var yaml: [String]
    /// What it covers in a few words: `exec npm install *`, `fs_write /home/me/proj/out/**`.
    public var summary: String
    /// Why the rule is narrower than the usual breadth (a deny rule overlaps it), or nil.
    public var note: String?
    /// Why no rule can be saved (a deny rule covers this very action; no policy file can be
    /// written), or nil. The answer then applies to this call only.
    public var refusal: String?
    /// The file it is written into.
    public var file: String

    public init(yaml: [String], summary: String, note: String? = nil, refusal: String? = nil, file: String) {
        self.yaml = yaml
        self.summary = summary
        self.note = note
        self.refusal = refusal
        self.file = file
    }
}
