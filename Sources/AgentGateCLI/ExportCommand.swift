import AgentGateReports
import AgentGateStore
import ArgumentParser
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
        let pack = try exitingTwoWhenGone { try EvidencePack.load(id: id, store: store) }
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
