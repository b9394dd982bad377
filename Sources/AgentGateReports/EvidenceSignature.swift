import AgentGateStore
import Crypto

/// HMAC-SHA256 over an exported file's exact bytes, written as `hmac-sha256:<hex>`.
public enum EvidenceSignature {
    /// The signature line for `bytes`.
    public static func sign(_ bytes: [UInt8], key: [UInt8]) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: bytes, using: SymmetricKey(data: key))
        return "hmac-sha256:" + AuditChain.hex(Array(code))
    }

    /// The MAC bytes of a signature file's first line, or nil when it isn't one.
    public static func parse(_ text: String) -> [UInt8]? {
        let line = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        guard line.hasPrefix("hmac-sha256:"), let bytes = AuditChain.bytes(hex: String(line.dropFirst(12))),
              bytes.count == 32
        else { return nil }
        return bytes
    }

    /// Constant-time comparison (CryptoKit's `isValidAuthenticationCode`).
    public static func isValid(_ mac: [UInt8], for bytes: [UInt8], key: [UInt8]) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: bytes, using: SymmetricKey(data: key))
    }
}
