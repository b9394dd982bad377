import Crypto

/// Lowercase hexadecimal SHA-256, as stored in `sessions.policy_sha256`.
public enum SHA256Hex {
    /// The SHA-256 of `bytes` as 64 lowercase hex digits.
    public static func digest(_ bytes: some Sequence<UInt8>) -> String {
        let digest = SHA256.hash(data: Array(bytes))
        let hexDigits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(SHA256.byteCount * 2)
        for byte in digest {
            hex.append(hexDigits[Int(byte >> 4)])
            hex.append(hexDigits[Int(byte & 0x0f)])
        }
        return String(decoding: hex, as: UTF8.self)
    }
}
