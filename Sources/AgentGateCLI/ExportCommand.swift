import AgentGateStore
import ArgumentParser
import Crypto
import Foundation

/// `agentgate export SESSION --format json|html [--output FILE] [--sign-key KEY]` and
/// `agentgate export --verify FILE --sign-key KEY [--signature SIG]`.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a session's evidence pack (JSON or self-contained HTML), optionally signed.",
        discussion: """
        The pack holds the session record with its context, the verification of its hash chains, the counts, \
        the process records and every event. HTML is one self-contained file (inline CSS, no scripts, no \
        external assets; every recorded string is HTML-escaped).

        With --sign-key FILE (the file's raw bytes are the key; it must not be empty), an HMAC-SHA256 over \
        the exact bytes written goes to OUTPUT.sig as "hmac-sha256:<hex>"; --output is then required. \
        `agentgate export --verify OUTPUT --sign-key FILE` checks it: exit status 0 when it matches, 1 when \
        it doesn't, 2 on usage errors.
        """)

    enum Format: String, ExpressibleByArgument { case json, html }

    @OptionGroup var database: DatabaseOption
    @Argument(help: "The session: an id or a unique prefix.") var session: String?
    @Option(help: "json or html.") var format: Format = .json
    @Option(name: [.short, .long], help: "Write here instead of standard output.") var output: String?
    @Option(help: "Sign with this key file (HMAC-SHA256; raw bytes).") var signKey: String?
    @Option(help: "Check the signature of this exported file instead of exporting.") var verify: String?
    @Option(help: "The signature file to check (default: FILE.sig).") var signature: String?

    func validate() throws {
        if verify != nil {
            guard signKey != nil else { throw ValidationError("--verify needs --sign-key") }
            guard session == nil else { throw ValidationError("--verify takes no session") }
        } else {
            guard session != nil else { throw ValidationError("missing the session to export") }
            if signKey != nil && output == nil {
                throw ValidationError("--sign-key needs --output: the signature goes to OUTPUT.sig")
            }
        }
    }

    func run() throws {
        if let verify {
            let key = try Self.readKey(signKey!)
            let file = try Self.read(verify)
            let signaturePath = signature ?? verify + ".sig"
            let signatureText = String(decoding: try Self.read(signaturePath), as: UTF8.self)
            guard let expected = EvidenceSignature.parse(signatureText) else {
                printError("\(signaturePath) is not an agentgate signature (hmac-sha256:<64 hex digits>)", tool: "agentgate")
                throw ExitCode(1)
            }
            if EvidenceSignature.isValid(expected, for: file, key: key) {
                print("✓ signature OK: \(verify) is exactly what was signed")
                return
            }
            print("✗ signature MISMATCH: \(verify) was changed after signing, or the key is not the one it was signed with")
            throw ExitCode(1)
        }

        let key = try signKey.map { try Self.readKey($0) }
        let store = try database.open()
        defer { store.close() }
        let id = try DatabaseOption.resolveSession(session!, in: store)
        let pack = try EvidencePack.load(id: id, store: store)
        let bytes = Array((format == .json ? pack.json() : pack.html()).utf8)
        guard let output else {
            FileHandle.standardOutput.write(Data(bytes))
            return
        }
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: output))
            if let key {
                try Data((EvidenceSignature.sign(bytes, key: key) + "\n").utf8).write(to: URL(fileURLWithPath: output + ".sig"))
            }
        } catch {
            printError("cannot write \(output): \(LoadedPolicy.describe(error))", tool: "agentgate")
            throw ExitCode(2)
        }
        var note = "wrote \(output) (\(bytes.count) bytes, \(pack.events.count) events"
        note += pack.verification.isValid ? ", chain verified)" : ", CHAIN BROKEN: \(pack.verification.firstBrokenLink!))"
        if key != nil { note += "; signature in \(output).sig" }
        printError(note, tool: "agentgate")
    }

    static func read(_ path: String) throws -> [UInt8] {
        do { return Array(try Data(contentsOf: URL(fileURLWithPath: path))) } catch {
            printError("cannot read \(path): \(LoadedPolicy.describe(error))", tool: "agentgate")
            throw ExitCode(2)
        }
    }

    /// The key file's raw bytes; an empty key is refused (it would sign nothing).
    static func readKey(_ path: String) throws -> [UInt8] {
        let key = try read(path)
        guard !key.isEmpty else {
            printError("the key file \(path) is empty; refusing to sign or verify with an empty key", tool: "agentgate")
            throw ExitCode(2)
        }
        return key
    }
}

/// HMAC-SHA256 over an exported file's exact bytes, written as `hmac-sha256:<hex>`.
enum EvidenceSignature {
    static func sign(_ bytes: [UInt8], key: [UInt8]) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: bytes, using: SymmetricKey(data: key))
        return "hmac-sha256:" + AuditChain.hex(Array(code))
    }

    /// The MAC bytes of a signature file's first line, or nil when it isn't one.
    static func parse(_ text: String) -> [UInt8]? {
        let line = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        guard line.hasPrefix("hmac-sha256:"), let bytes = AuditChain.bytes(hex: String(line.dropFirst(12))),
              bytes.count == 32
        else { return nil }
        return bytes
    }

    /// Constant-time comparison (CryptoKit's `isValidAuthenticationCode`).
    static func isValid(_ mac: [UInt8], for bytes: [UInt8], key: [UInt8]) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: bytes, using: SymmetricKey(data: key))
    }
}

/// Everything an evidence pack holds.
struct EvidencePack {
    var databasePath: String
    var report: SessionReport
    var events: [StoredEvent]
    var verification: VerificationReport
    var generatedAt: Int64

    static func load(id: String, store: AuditStore) throws -> EvidencePack {
        EvidencePack(
            databasePath: store.path, report: try SessionReport.load(id: id, store: store, deniedLimit: nil),
            events: try store.events(sessionID: id), verification: try store.verify(sessionID: id),
            generatedAt: AuditClock.nowMicros())
    }

    var record: SessionRecord { report.record }

    func verificationObject() -> [String: Any] {
        var object: [String: Any] = [
            "valid": verification.isValid, "events_verified": verification.eventsVerified,
            "process_links_verified": verification.processLinksVerified, "session_chain_links": verification.globalLinks,
            "problems": verification.problems.map(\.description),
            "session_has_end_record": !verification.openSessions.contains(record.id),
            "pre_v2_unchained": verification.unchainedSessions.contains(record.id),
        ]
        if let head = verification.headHash { object["session_chain_head"] = head }
        if let anchor = verification.anchorSeq { object["retention_anchor_seq"] = anchor }
        return object
    }

    func json() -> String {
        var session = AuditFormat.sessionObject(record)
        session["events"] = report.eventTotal
        session["denied"] = report.deniedTotal
        let counts = report.storedCounts.map { count -> [String: Any] in
            ["action": count.action, "decision": count.decision, "enforced": count.enforced, "count": count.count]
        }
        // Events are written one per line inside the array, so a large pack stays streamable.
        let head: [String: Any] = [
            "format": "agentgate-evidence", "version": 1, "generated_at": AuditTime.iso8601(generatedAt),
            "database": databasePath, "session": session, "verification": verificationObject(), "counts": counts,
            "processes": report.processes.map(AuditFormat.processObject),
        ]
        var text = AuditFormat.json(head, pretty: true)
        // Splice the events array in before the closing brace.
        if let close = text.lastIndex(of: "}") { text = String(text[..<close]) }
        while let last = text.last, last.isWhitespace { text.removeLast() }
        text += ",\n  \"events\" : ["
        for (index, stored) in events.enumerated() {
            text += (index == 0 ? "\n    " : ",\n    ") + AuditFormat.json(AuditFormat.jsonObject(stored))
        }
        text += events.isEmpty ? "]\n}\n" : "\n  ]\n}\n"
        return text
    }
}
