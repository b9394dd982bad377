extension Policy {
    /// The verdict for a connect to an IP address the agent may have got from a DNS answer the
    /// supervisor saw (`resolvedName`). `addressTarget` is the connect as the supervisor names it
    /// (`1.2.3.4:443`, `[2001:db8::1]:443`).
    ///
    /// - Without a name (or with one that is not a host name: empty, an IP literal, or bytes a
    ///   DNS host name doesn't have), this is `evaluateEgress(target: addressTarget)`: first
    ///   match wins, so only IP literal, `cidr:` and catch-all rules can decide it.
    /// - With a name, two verdicts are made. The *name verdict* is the first match over every
    ///   net_egress rule for `NAME:PORT`, except that `cidr:` constraints and patterns that name
    ///   addresses (IP literals, `localhost`, globs starting with a digit or `[`) test the real
    ///   address. The *address verdict* is the first match over only the address-specific rules
    ///   (such a pattern, or any rule with `cidr:`) for `ADDRESS:PORT`. When both came from a
    ///   rule the stricter wins (the name verdict on a tie); when one did, that one; else the
    ///   default. So a name allowed by name can't reach an address a rule denies (DNS
    ///   rebinding to the metadata service is judged by the address), and an explicit IP allow
    ///   still works for a name no rule mentions.
    ///
    /// The verdict carries the policy's mode (`enforced`) and the deciding rule, as
    /// `evaluateEgress`'s does; rate limits are applied by the caller afterwards
    /// (`limit(_:countsConnection:resolvedName:verdict:)`). Without a name nothing is allocated;
    /// with one, only the `NAME:PORT` string is built.
    public func evaluateConnection<Source: ProcessContextSource>(
        addressTarget: String, resolvedName: String?, contextSource: inout Source
    ) -> Verdict {
        guard let resolvedName, !addressTarget.hasPrefix("unix:"),
              var nameTarget = Self.attributedTarget(name: resolvedName, addressTarget: addressTarget)
        else {
            return evaluateEgress(target: addressTarget, contextSource: &contextSource)
        }
        var address = addressTarget
        return address.withUTF8 { addressBytes in
            nameTarget.withUTF8 { nameBytes in
                evaluateAttributed(name: nameBytes, address: addressBytes, contextSource: &contextSource)
            }
        }
    }

    /// The same with a context known up front (`agentgate check`, tests).
    public func evaluateConnection(addressTarget: String, resolvedName: String?,
                                   context: ProcessContext? = nil) -> Verdict {
        var source = KnownProcessContext(context)
        return evaluateConnection(addressTarget: addressTarget, resolvedName: resolvedName, contextSource: &source)
    }

    /// `NAME:PORT` for a connect to `addressTarget` attributed to `name` (a trailing dot dropped;
    /// case kept, since host patterns match without case; no port when the address has none),
    /// or nil when `name` is not a host name a rule could name: empty, longer than 253 bytes,
    /// ending in a numeric label (an IP literal), or holding anything but letters, digits, `-`,
    /// `_` and `.`. Such a connect is decided as unresolved. Builds one string.
    public static func attributedTarget(name: String, addressTarget: String) -> String? {
        let address = addressTarget.utf8
        var portStart = address.endIndex
        if let colon = address.lastIndex(of: UInt8(ascii: ":")) {
            let before = address[..<colon]
            let bracketed = address.first == UInt8(ascii: "[")
            if bracketed ? before.last == UInt8(ascii: "]") : !before.contains(UInt8(ascii: ":")) { portStart = colon }
        }
        let port = address[portStart...]
        var name = name
        return name.withUTF8 { bytes -> String? in
            var host = bytes
            if host.last == UInt8(ascii: "."), host.count > 1 { host = UnsafeBufferPointer(rebasing: host.dropLast()) }
            guard DNSName.isHostName(host), !DNSName.endsInNumericLabel(host) else { return nil }
            return String(unsafeUninitializedCapacity: host.count + port.count) { buffer in
                var count = 0
                for byte in host { buffer[count] = byte; count += 1 }
                for byte in port { buffer[count] = byte; count += 1 }
                return count
            }
        }
    }

    /// `name` lowercased without a trailing dot when it is a host name rules can name (letters,
    /// digits, `-`, `_`, dots; at most 253 bytes; not ending in a numeric label), else nil.
    public static func hostName(_ name: String) -> String? {
        attributedTarget(name: name, addressTarget: "")?.lowercased()
    }

    /// Whether limit `index` counts a connect decided by `evaluateConnection`: as
    /// `limit(_:counts:target:exec:verdict:)`, with a limit's `match:` tried against the address
    /// and, when the connect has a name, against `NAME:PORT` (either counts it).
    public func limit(_ index: Int, countsConnection addressTarget: String, resolvedName: String?,
                      verdict: Verdict) -> Bool {
        if limit(index, counts: .netEgress, target: addressTarget, exec: nil, verdict: verdict) { return true }
        guard let resolvedName, !addressTarget.hasPrefix("unix:"),
              let nameTarget = Self.attributedTarget(name: resolvedName, addressTarget: addressTarget) else { return false }
        return limit(index, counts: .netEgress, target: nameTarget, exec: nil, verdict: verdict)
    }

    /// Both verdicts of an attributed connect, in one pass over the net_egress rules.
    private func evaluateAttributed<Source: ProcessContextSource>(
        name: UnsafeBufferPointer<UInt8>, address: UnsafeBufferPointer<UInt8>, contextSource: inout Source
    ) -> Verdict {
        let kindIndex = Int(ActionKind.netEgress.rawValue)
        let end = kindStart[kindIndex + 1]
        let nameParts = HostTarget(name)
        let addressParts = HostTarget(address)
        var context: ProcessContext?? = .none
        var facts = NetworkTargetFacts()
        var nameVerdict: Verdict?
        var addressVerdict: Verdict?
        compiled.withUnsafeBufferPointer { rules in
            arena.withPointers { arena in
                var i = kindStart[kindIndex]
                while i < end, nameVerdict == nil || addressVerdict == nil {
                    let rule = rules[i]
                    let namesAddress = rule.matcher == .host && rule.host.isAddress
                    if nameVerdict == nil {
                        // Constraints (ports, cidr, when) always test the real address; the port is the same.
                        let matched = namesAddress ? rule.matches(.netEgress, address, addressParts, arena)
                            : rule.matches(.netEgress, name, nameParts, arena)
                        if matched, constraintsHold(rule, address, addressParts, &facts, nil, &context, &contextSource) {
                            nameVerdict = rule.verdict(.netEgress, name, arena)
                        }
                    }
                    if addressVerdict == nil, namesAddress || rule.networkCount > 0,
                       rule.matches(.netEgress, address, addressParts, arena),
                       constraintsHold(rule, address, addressParts, &facts, nil, &context, &contextSource) {
                        addressVerdict = rule.verdict(.netEgress, address, arena)
                    }
                    i += 1
                }
            }
        }
        var verdict: Verdict
        switch (nameVerdict, addressVerdict) {
        case (let byName?, let byAddress?): verdict = byAddress.strictness > byName.strictness ? byAddress : byName
        case (let byName?, nil): verdict = byName
        case (nil, let byAddress?): verdict = byAddress
        case (nil, nil):
            let decision = defaults[kindIndex]
            verdict = Verdict(decision: decision, ruleIndex: nil, reason: decision == .ask ? .noApprover : .defaultDecision)
        }
        verdict.enforced = mode == .enforce
        return verdict
    }
}

extension Policy {
    /// The verdict on a DNS query for `name` (any case, a trailing dot ignored): decided by the
    /// net_egress rules as a connect to that name on some port, so a name no connect could be
    /// allowed to is not even resolved.
    ///
    /// - A host pattern matches the name on any port: `registry.example:443` matches a query
    ///   for `registry.example`. A rule limited to some ports (`host:port`, `ports:`) decides
    ///   the query only when it allows (it doesn't deny the other ports).
    /// - Rules that test addresses (`cidr:`, IP literals, `localhost`, globs starting with a
    ///   digit or `[`) and `unix:` patterns never match a name; catch-alls do, unless limited to
    ///   ports (`{action: net_egress, ports: 53}` is about resolvers, not names).
    /// - A well-formed reverse-lookup name (`4.3.2.1.in-addr.arpa`, 32 nibbles under
    ///   `ip6.arpa`: what glibc asks for an address) is decided only by rules whose pattern
    ///   matches it, and allowed otherwise (`ruleIndex` nil), so a default-deny profile doesn't
    ///   break `getnameinfo` (the DNS forwarder then lets one out, under a default-deny policy,
    ///   only for an address the session resolved or a local one). Any other name under `.arpa` is an ordinary name: free-form
    ///   labels there could carry data to whoever holds the reverse zone. (Well-formed names
    ///   carry at most an address's worth per query; `DNSQueryMonitor` counts them like any.)
    /// - A name with bytes no host name has (`:`, `/`, spaces, …) is decided by catch-alls alone.
    public func evaluateDNSQuery<Source: ProcessContextSource>(name: String, contextSource: inout Source) -> Verdict {
        var query = name
        return query.withUTF8 { bytes in
            var name = bytes
            if name.last == UInt8(ascii: "."), name.count > 1 { name = UnsafeBufferPointer(rebasing: name.dropLast()) }
            return evaluateQuery(name, contextSource: &contextSource)
        }
    }

    /// The same with a context known up front (`agentgate check`, tests).
    public func evaluateDNSQuery(name: String, context: ProcessContext? = nil) -> Verdict {
        var source = KnownProcessContext(context)
        return evaluateDNSQuery(name: name, contextSource: &source)
    }

    private func evaluateQuery<Source: ProcessContextSource>(
        _ name: UnsafeBufferPointer<UInt8>, contextSource: inout Source
    ) -> Verdict {
        let kindIndex = Int(ActionKind.netEgress.rawValue)
        let enforced = mode == .enforce
        let namable = DNSName.isHostName(name)
        let reverse = namable && DNSName.isReverseLookup(name)
        let parts = HostTarget(name)
        var context: ProcessContext?? = .none
        let decided: Verdict? = compiled.withUnsafeBufferPointer { rules in
            arena.withPointers { arena in
                for i in kindStart[kindIndex]..<kindStart[kindIndex + 1] {
                    let rule = rules[i]
                    guard rule.networkCount == 0 else { continue }
                    var portLimited = rule.portCount > 0
                    switch rule.matcher {
                    case .any:
                        // A catch-all limited to ports (`ports: 53`) is about services, not names.
                        if reverse || rule.portCount > 0 { continue }
                    case .host:
                        var host = rule.host
                        guard namable, host.form != .unixSocket, !host.isAddress else { continue }
                        portLimited = portLimited || host.portCount >= 0
                        host.portCount = -1
                        guard host.matches(name, parts, arena) else { continue }
                    case .path, .exec, .execOrBasename:
                        continue
                    }
                    if portLimited && !rule.decision.allows { continue }
                    guard conditionHolds(rule, &context, &contextSource) else { continue }
                    var verdict = rule.verdict(.netEgress, name, arena)
                    verdict.enforced = enforced
                    return verdict
                }
                return nil
            }
        }
        if let decided { return decided }
        if reverse { return Verdict(decision: .allow, ruleIndex: nil, reason: .defaultDecision, enforced: enforced) }
        let decision = defaults[kindIndex]
        return Verdict(decision: decision, ruleIndex: nil, reason: decision == .ask ? .noApprover : .defaultDecision,
                       enforced: enforced)
    }

    /// A rule's `when:` as `constraintsHold` tests it: an unknown context lets only rules that
    /// restrict apply.
    private func conditionHolds<Source: ProcessContextSource>(
        _ rule: RuleCode, _ context: inout ProcessContext??, _ contextSource: inout Source
    ) -> Bool {
        guard rule.conditionIndex >= 0 else { return true }
        if case .none = context { context = .some(contextSource.processContext()) }
        guard case .some(let known) = context, let known else { return !rule.decision.allows }
        return conditions[Int(rule.conditionIndex)].matches(known)
    }
}

/// Byte-level facts about DNS names, without allocating.
enum DNSName {
    /// Letters, digits, `-`, `_` and dots, 1 to 253 bytes, no empty label.
    static func isHostName(_ name: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !name.isEmpty, name.count <= 253, name.first != UInt8(ascii: "."), name.last != UInt8(ascii: ".") else {
            return false
        }
        var previous: UInt8 = 0
        for byte in name {
            let isLetter = (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z")
            let isDigit = byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
            guard isLetter || isDigit || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
            else { return false }
            if byte == UInt8(ascii: "."), previous == UInt8(ascii: ".") { return false }
            previous = byte
        }
        return true
    }

    /// Whether the last label is all digits: no top-level domain is, and resolvers read such a
    /// name (`1.2.3.4`, `10.1`) as an address.
    static func endsInNumericLabel(_ name: UnsafeBufferPointer<UInt8>) -> Bool {
        var index = name.count
        while index > 0, name[index - 1] != UInt8(ascii: ".") {
            guard name[index - 1] >= UInt8(ascii: "0"), name[index - 1] <= UInt8(ascii: "9") else { return false }
            index -= 1
        }
        return index < name.count
    }

    /// `d.c.b.a.in-addr.arpa` (four decimal octets) or 32 single hex nibbles then `ip6.arpa`,
    /// in any case.
    static func isReverseLookup(_ name: UnsafeBufferPointer<UInt8>) -> Bool {
        if hasSuffix(name, ".in-addr.arpa") {
            let labels = UnsafeBufferPointer(rebasing: name.dropLast(13))
            var count = 0
            var digits = 0
            var value = 0
            for byte in labels {
                if byte == UInt8(ascii: ".") {
                    guard digits > 0 else { return false }
                    count += 1
                    digits = 0
                    value = 0
                    continue
                }
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), !(digits == 1 && value == 0) else { return false }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
                digits += 1
                guard value <= 255 else { return false }
            }
            return digits > 0 && count == 3
        }
        if hasSuffix(name, ".ip6.arpa") {
            let labels = UnsafeBufferPointer(rebasing: name.dropLast(9))
            guard labels.count == 63 else { return false }
            for (offset, byte) in labels.enumerated() {
                if offset % 2 == 1 {
                    guard byte == UInt8(ascii: ".") else { return false }
                } else {
                    let lower = byte | 0x20
                    guard (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                            || (lower >= UInt8(ascii: "a") && lower <= UInt8(ascii: "f")) else { return false }
                }
            }
            return true
        }
        return false
    }

    private static func hasSuffix(_ name: UnsafeBufferPointer<UInt8>, _ suffix: StaticString) -> Bool {
        let count = suffix.utf8CodeUnitCount
        guard name.count > count else { return false }
        let start = suffix.utf8Start
        for i in 0..<count where name[name.count - count + i] | 0x20 != start[i] | 0x20 { return false }
        return true
    }
}
