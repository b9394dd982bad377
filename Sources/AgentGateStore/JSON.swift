import Foundation

/// The small amount of JSON the store writes: argv arrays in columns and JSONL fallback lines
/// (`AuditFallback.swift`).
/// Hand-written because it runs per event on the writer thread and the shapes are fixed.
public enum AuditJSON {
    /// Encodes `strings` as a JSON array, e.g. `["ls","-l"]`.
    static func encode(_ strings: [String]) -> String {
        var output = "["
        for (index, string) in strings.enumerated() {
            if index > 0 { output += "," }
            appendQuoted(string, to: &output)
        }
        output += "]"
        return output
    }

    /// Decodes a JSON array of strings.
    static func decodeStringArray(_ text: String) -> [String]? {
        try? JSONDecoder().decode([String].self, from: Data(text.utf8))
    }

    /// Appends `string` as a JSON string literal (RFC 8259 escaping).
    public static func appendQuoted(_ string: String, to output: inout String) {
        // Most strings (paths, argv words, capability names) need no escape: appended whole.
        if !string.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            output += "\""
            output += string
            output += "\""
            return
        }
        output.unicodeScalars.append("\"")
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case _ where scalar.value < 0x20:
                output += "\\u00"
                output.unicodeScalars.append(hexDigit(scalar.value >> 4))
                output.unicodeScalars.append(hexDigit(scalar.value & 0xf))
            default:
                output.unicodeScalars.append(scalar)
            }
        }
        output.unicodeScalars.append("\"")
    }

    private static func hexDigit(_ value: UInt32) -> Unicode.Scalar {
        let digits: [Unicode.Scalar] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]
        return digits[Int(value & 0xf)]
    }
}
