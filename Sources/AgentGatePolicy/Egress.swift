extension Policy {
    /// The verdict for reaching a network target: the one entry point `agentgate check` and the
    /// supervisor both decide connects and addressed sends with. A pathname unix socket
    /// (`unix:/path`) is also a write to that path (the kernel asks for write permission on
    /// it), so a socket anywhere writes are denied (docker.sock, the system bus) can't be used
    /// to act through: its fs_write verdict applies when it doesn't allow.
    ///
    /// A socket path that doesn't exist is no decision at all: the supervisor answers the
    /// kernel's ENOENT without asking (as mkdir of an existing name gets EEXIST).
    public func evaluateEgress<Source: ProcessContextSource>(target: String, contextSource: inout Source) -> Verdict {
        let egress = evaluate(.netEgress, target: target, exec: nil, contextSource: &contextSource)
        guard egress.letsCallProceed, target.hasPrefix("unix:/") else { return egress }
        let write = evaluate(.fsWrite, target: String(target.dropFirst(5)), exec: nil, contextSource: &contextSource)
        return write.decision.allows ? egress : write
    }

    /// The same with a context known up front (`agentgate check`, tests).
    public func evaluateEgress(target: String, context: ProcessContext? = nil) -> Verdict {
        var source = KnownProcessContext(context)
        return evaluateEgress(target: target, contextSource: &source)
    }
}
