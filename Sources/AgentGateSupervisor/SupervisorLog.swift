import Logging

/// Where the supervisor's own diagnostics go (a kernel feature missing, a listener that failed):
/// not decisions, which go to the recorder. By default they are written whole to stderr as
/// `agentgate: …` lines; a service can hand in any other swift-log `Logger` (the journal, OTLP).
public struct StandardErrorLogHandler: LogHandler {
    public var logLevel: Logger.Level = .notice
    public var metadata: Logger.Metadata = [:]

    public init(label: String) {}

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        writeStandardError("agentgate: \(event.message)\n")
    }
}

extension Logger {
    /// The supervisor's default: `agentgate: …` lines on stderr, notices and worse.
    public static func supervisorStandardError() -> Logger {
        Logger(label: "agentgate.supervisor", factory: StandardErrorLogHandler.init)
    }
}
