import CSupport

/// Capability sets as the kernel reports them (`CapEff:` etc. in /proc/PID/status), named
/// through libcap.
public enum Capabilities {
    /// Names of the capabilities set in `mask` (bit N = capability N), lowest first, e.g.
    /// ["CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"]. Bits libcap doesn't know are named "CAP_N".
    public static func names(ofMask mask: UInt64) -> [String] {
        var result: [String] = []
        var remaining = mask
        while remaining != 0 {
            let bit = remaining.trailingZeroBitCount
            remaining &= remaining - 1
            result.append(name(of: bit))
        }
        return result
    }

    /// The name of capability number `bit` (`cap_to_name`), or "CAP_<bit>" when libcap doesn't know it.
    public static func name(of bit: Int) -> String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { buffer in
            let length = agentgate_cap_name(Int32(bit), buffer.baseAddress, 64)
            guard length > 0 else { return "CAP_\(bit)" }
            return String(decoding: UnsafeRawBufferPointer(start: buffer.baseAddress, count: Int(length)),
                          as: UTF8.self)
        }
    }

    /// The number of a capability name (`cap_from_name`; any case, "cap_" optional), or nil.
    public static func number(of name: String) -> Int? {
        let value = agentgate_cap_from_name(name)
        return value >= 0 ? Int(value) : nil
    }

    /// Capabilities this libcap knows (`cap_max_bits`).
    public static var count: Int { Int(agentgate_cap_max_bits()) }
}
