/// The release, as `agentgate --version` and `agentgate-supervise --version` print it. One
/// constant here, in the module both executables link, so the two can't disagree.
public enum AgentGateVersion {
    public static let string = "0.9.0"
}
