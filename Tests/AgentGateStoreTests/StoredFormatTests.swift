import Foundation
import Testing

@testable import AgentGateStore

/// The stored bytes are a format: existing databases and fallback files must keep verifying.
/// These values were produced by the release that introduced schema v2's chains; a change
/// here means old records no longer verify or import. They are unkeyed chains (chain version
/// 2), as every build before keyed chains wrote them; `pinnedKeyedHashes` pins the keyed ones.
@Suite("Stored format stays byte for byte")
struct StoredFormatTests {
    static let sessionID = "pinned-session"

    static func session() -> SessionRecord {
        let context = SessionContext(
            os: .init(distribution: "Debian GNU/Linux 12 (bookworm)", distributionID: "debian", distributionVersion: "12",
                      kernelName: "Linux", kernelRelease: "6.1.0", kernelVersion: "#1 SMP", machine: "x86_64", hostname: "box"),
            user: .init(uid: 1000, gid: 1000, euid: 1000, egid: 1000, groups: [1000, 27], name: "dev"),
            capabilities: [], cgroup: "/user.slice/agent", program: "/usr/bin/claude",
            environment: ["HOME": "/home/dev", "GITHUB_TOKEN": "ghp_abcdefghijklmnopqrstuvwxyz0123456789"],
            interfaces: [.init(name: "lo", flags: ["up", "loopback"], addresses: ["inet 127.0.0.1/8"])],
            supervisorPID: 77, collectionMicros: 1234)
        return SessionRecord(
            id: sessionID, agent: "claude-code", command: ["claude", "--print", "fix the \"bug\"\n\tnow"],
            cwd: "/work/project", policyPath: "/etc/agentgate/policy.yaml",
            policySHA256: SHA256Hex.digest(Array("rules: []".utf8)), startTimeMicros: 1_700_000_000_000_000,
            mode: "audit", context: context)
    }

    /// One record of every kind, with every optional field both set and unset, through a
    /// writer for the session (which is ended with the writer).
    static func recordSession(in store: AuditStore) -> AuditWriter {
        let writer = AuditWriter(store: store, sessionID: sessionID, warningHandler: { _ in })
        writer.recordProcessStart(ProcessRecord(
            pid: 7, ppid: 1, executable: "/usr/bin/sh", argv: ["sh", "-c", "curl https://user:pw@example.com"],
            uid: 1000, gid: 1001, capabilities: ["CAP_NET_BIND_SERVICE"], cgroup: "/user.slice",
            startTimeMicros: 1_700_000_000_000_100))
        writer.record(DecisionEvent(
            timeMicros: 1_700_000_000_000_200, pid: 7, ppid: 1, executable: "/usr/bin/curl", syscall: "execve",
            action: .exec, target: "/usr/bin/curl", argv: ["curl", "-H", "Authorization: Bearer abc.def.ghi"],
            decision: .log, ruleIndex: 3, reason: "flagged", errno: nil, latencyMicros: 12,
            ruleID: "curl-any", intent: "agent wants to download: example.com", notable: true, enforced: true))
        writer.record(DecisionEvent(
            timeMicros: 1_700_000_000_000_300, pid: 7, ppid: 1, executable: "/usr/bin/cat", syscall: "openat",
            action: .fsRead, target: "/home/dev/.ssh/id_ed25519", argv: nil, decision: .deny, ruleIndex: nil,
            reason: "default", errno: 13, latencyMicros: 3, ruleID: nil, intent: nil, notable: false, enforced: false))
        writer.record(DecisionEvent(
            timeMicros: 1_700_000_000_000_400, pid: 7, ppid: 1, executable: "/usr/bin/cat", syscall: "ptrace",
            action: .syscall, target: "", argv: [], decision: .ask, reason: "ask", errno: 1, latencyMicros: 0))
        writer.recordProcessExit(pid: 7, timeMicros: 1_700_000_000_000_500, exitStatus: 137)
        writer.finishSession(endTimeMicros: 1_700_000_000_000_600, exitStatus: 137)
        return writer
    }

    /// A store that writes as builds before keyed chains did.
    static func unkeyedStore(_ path: String) throws -> AuditStore {
        try AuditStore(path: path, busyTimeoutMilliseconds: 5000, readOnly: false, creatingBelow: "/", keyed: false)
    }

    /// A path for a new database in a directory removed when the caller drops it.
    static func newDatabasePath() throws -> (TemporaryDirectory, String) {
        let directory = try TemporaryDirectory()
        return (directory, directory.file("audit.db"))
    }

    /// Every chain hash in the database, in a fixed order.
    static func storedHashes(_ path: String) throws -> [String] {
        try rawQuery(path, "SELECT hash FROM events ORDER BY seq")
            + rawQuery(path, "SELECT start_hash || ' ' || coalesce(exit_hash, '-') FROM processes ORDER BY start_seq")
            + rawQuery(path, "SELECT kind || ' ' || digest || ' ' || hash FROM session_chain ORDER BY seq")
            + rawQuery(path, "SELECT link_count || ' ' || last_hash FROM sessions")
    }

    static let expectedHashes: [String] = [
        "c4e0b29b459994c38cde9976176a343d8187b9b549fdadb9481c1af89bb3cafb",
        "f273864480d4994be29d89121510a69ad714db47d5e02bf4ebfb8a1c19c86466",
        "a1cf5c03a03bae7459ce9dfbe84e41167df801de723ee07e97244685aa46b6aa",
        "8426ab7cd1cd99bb04a834cbb8ffcca8d9ebae97aad2e515257df0dc4f11b66a 991dcf57fe5945155b462f3ca4c94cb4d779f39ed1a03f1ed6e3bb22d1d95c31",
        "start 180751385b5b607036f73f984663aa7d4bd968ac50a988cc02f7a635545db0da 5be614588f8fefe04377fb4113d8ec1e22928f91f8b6fdc3c9ff28b206ee6178",
        "end 6e0cd71c0f9e9e0e47af51ecad3b9cb957f854192cea49f0d774e94feebd6369 e6514a27e39df48000e59e7a83d3637683f48abf32b3385fa970c118ad66452c",
        "5 991dcf57fe5945155b462f3ca4c94cb4d779f39ed1a03f1ed6e3bb22d1d95c31",
    ]

    static let expectedFallback = #"""
        {"type":"session_start","id":"pinned-session","agent":"claude-code","command":["claude","--print","fix the \"bug\"\n\tnow"],"cwd":"/work/project","policy_path":"/etc/agentgate/policy.yaml","policy_sha256":"00eb8a0ecfecb77c25d7e28890b0a2d479966fd1b88274af09fd5c70b7fc0f71","start_time":1700000000000000,"mode":"audit","context":"{\"capabilities\":[],\"cgroup\":\"/user.slice/agent\",\"collectionMicros\":1234,\"environment\":{\"HOME\":\"/home/dev\"},\"interfaces\":[{\"addresses\":[\"inet 127.0.0.1/8\"],\"flags\":[\"up\",\"loopback\"],\"name\":\"lo\"}],\"os\":{\"distribution\":\"Debian GNU/Linux 12 (bookworm)\",\"distributionID\":\"debian\",\"distributionVersion\":\"12\",\"hostname\":\"box\",\"kernelName\":\"Linux\",\"kernelRelease\":\"6.1.0\",\"kernelVersion\":\"#1 SMP\",\"machine\":\"x86_64\"},\"program\":\"/usr/bin/claude\",\"supervisorPID\":77,\"user\":{\"egid\":1000,\"euid\":1000,\"gid\":1000,\"groups\":[1000,27],\"name\":\"dev\",\"uid\":1000}}"}
        {"type":"process_start","session_id":"pinned-session","seq":1,"pid":7,"ppid":1,"executable":"/usr/bin/sh","argv":["sh","-c","curl https://user:[REDACTED]@example.com"],"uid":1000,"gid":1001,"capabilities":["CAP_NET_BIND_SERVICE"],"cgroup":"/user.slice","start_time":1700000000000100,"hash":"8426ab7cd1cd99bb04a834cbb8ffcca8d9ebae97aad2e515257df0dc4f11b66a"}
        {"type":"event","session_id":"pinned-session","seq":2,"time":1700000000000200,"pid":7,"ppid":1,"executable":"/usr/bin/curl","syscall":"execve","action":"exec","target":"/usr/bin/curl","argv":["curl","-H","Authorization: [REDACTED]"],"decision":"log","rule_index":3,"rule_id":"curl-any","reason":"flagged","intent":"agent wants to download: example.com","notable":1,"enforced":1,"errno":null,"latency_us":12,"hash":"c4e0b29b459994c38cde9976176a343d8187b9b549fdadb9481c1af89bb3cafb"}
        {"type":"event","session_id":"pinned-session","seq":3,"time":1700000000000300,"pid":7,"ppid":1,"executable":"/usr/bin/cat","syscall":"openat","action":"fs_read","target":"/home/dev/.ssh/id_ed25519","argv":null,"decision":"deny","rule_index":null,"rule_id":null,"reason":"default","intent":null,"notable":0,"enforced":0,"errno":13,"latency_us":3,"hash":"f273864480d4994be29d89121510a69ad714db47d5e02bf4ebfb8a1c19c86466"}
        {"type":"event","session_id":"pinned-session","seq":4,"time":1700000000000400,"pid":7,"ppid":1,"executable":"/usr/bin/cat","syscall":"ptrace","action":"syscall","target":"","argv":[],"decision":"ask","rule_index":null,"rule_id":null,"reason":"ask","intent":null,"notable":0,"enforced":1,"errno":1,"latency_us":0,"hash":"a1cf5c03a03bae7459ce9dfbe84e41167df801de723ee07e97244685aa46b6aa"}
        {"type":"process_exit","session_id":"pinned-session","seq":5,"start_seq":1,"start_hash":"8426ab7cd1cd99bb04a834cbb8ffcca8d9ebae97aad2e515257df0dc4f11b66a","pid":7,"exit_time":1700000000000500,"exit_status":137,"hash":"991dcf57fe5945155b462f3ca4c94cb4d779f39ed1a03f1ed6e3bb22d1d95c31"}
        {"type":"session_end","id":"pinned-session","end_time":1700000000000600,"exit_status":137,"link_count":5,"last_hash":"991dcf57fe5945155b462f3ca4c94cb4d779f39ed1a03f1ed6e3bb22d1d95c31"}

        """#

    @Test("the chain hashes of a fixed record of every kind are today's")
    func pinnedHashes() throws {
        let (directory, path) = try Self.newDatabasePath()
        defer { withExtendedLifetime(directory) {} }
        let store = try Self.unkeyedStore(path)
        try store.createSession(Self.session())
        let writer = Self.recordSession(in: store)
        #expect(writer.writeErrors == 0 && writer.lostEventCount == 0)
        store.close()
        #expect(try Self.storedHashes(path) == Self.expectedHashes)
        #expect(try verify(path).isValid)
    }

    @Test("the retention link's digest is today's")
    func pinnedRetentionDigest() {
        let columns = RetentionColumns(
            id: 4, time: 1_700_000_000_000_000, cutoff: 1_600_000_000_000_000, sessions: "[\"a\",\"b\"]",
            eventsRemoved: 10, processesRemoved: 2)
        let digest = AuditChain.hex(AuditChain.digest(columns))
        #expect(digest == "6cf74ea4b0caabd874a10174498875b2ab540859be063b68052e56838921f4f9")
    }

    @Test("the fallback file written for an unwritable database is today's, line for line")
    func pinnedFallbackLines() throws {
        let (directory, path) = try Self.newDatabasePath()
        defer { withExtendedLifetime(directory) {} }
        let store = try Self.unkeyedStore(path)
        try store.recordSessionStartInFallback(Self.session())
        store.close()  // every write fails: everything goes to the fallback file
        #expect(Self.recordSession(in: store).lostEventCount == 0)
        let text = try String(contentsOfFile: path + ".fallback.jsonl", encoding: .utf8)
        #expect(text == Self.expectedFallback)
    }

    @Test("a fallback file written by an earlier release imports, and its records verify with today's hashes")
    func earlierFallbackImports() throws {
        let (directory, path) = try Self.newDatabasePath()
        defer { withExtendedLifetime(directory) {} }
        try Self.expectedFallback.write(toFile: path + ".fallback.jsonl", atomically: false, encoding: .utf8)
        let store = try Self.unkeyedStore(path)
        let report = try store.importFallback()
        #expect(report?.imported == 7 && report?.rejected == 0)
        store.close()
        #expect(try Self.storedHashes(path) == Self.expectedHashes)
        #expect(try verify(path).isValid)

        // Into a database with a key (an upgrade with a fallback file pending): the session
        // stays unkeyed, its rows keep their hashes, and its global links are keyed.
        let keyedPath = directory.file("keyed.db")
        try Self.expectedFallback.write(toFile: keyedPath + ".fallback.jsonl", atomically: false, encoding: .utf8)
        let keyed = try AuditStore(path: keyedPath)
        defer { keyed.close() }
        #expect(try keyed.importFallback()?.imported == 7)
        #expect(try Self.storedHashes(keyedPath).prefix(4) == Self.expectedHashes.prefix(4))
        #expect(try rawQuery(keyedPath, "SELECT ifnull(chain_version, '-') || ' ' || ifnull(key_id, '-') FROM sessions") == ["2 -"])
        #expect(try rawQuery(keyedPath, "SELECT count(*) FROM session_chain WHERE key_id IS NULL") == ["0"])
        let verification = try keyed.verify()
        #expect(verification.isValid, "\(verification.problems)")
        #expect(verification.unkeyedSessions == 1 && verification.keyedLinks == 2)
    }

    @Test("keyed chains under a fixed key hash as pinned, and a keyed session's fallback lines say so")
    func pinnedKeyedHashes() throws {
        let (directory, path) = try Self.newDatabasePath()
        defer { withExtendedLifetime(directory) {} }
        let key = AuditKey(bytes: Array(1...32), createdMicros: 0)
        let descriptor = open(path + ".key", O_WRONLY | O_CREAT | O_EXCL, 0o600)
        #expect(descriptor >= 0)
        _ = key.fileText.withCString { write(descriptor, $0, strlen($0)) }
        close(descriptor)
        #expect(key.id.count == 16)
        let store = try AuditStore(path: path)
        #expect(store.chainKey == key)
        try store.createSession(Self.session())
        _ = Self.recordSession(in: store)
        store.close()
        #expect(try Self.storedHashes(path) == Self.expectedKeyedHashes)
        #expect(try verify(path).isValid)
        // Unwritable: the session start line names the key, and the import keys the session.
        let (otherDirectory, other) = try Self.newDatabasePath()
        defer { withExtendedLifetime(otherDirectory) {} }
        try key.fileText.write(toFile: other + ".key", atomically: false, encoding: .utf8)
        chmod(other + ".key", 0o600)
        let unwritable = try AuditStore(path: other)
        try unwritable.recordSessionStartInFallback(Self.session())
        unwritable.close()
        _ = Self.recordSession(in: unwritable)
        let lines = try String(contentsOfFile: other + ".fallback.jsonl", encoding: .utf8)
        #expect(lines.hasPrefix(#"{"type":"session_start""#) && lines.contains(#""key_id":"\#(key.id)"}"#))
        let importer = try AuditStore(path: other)
        defer { importer.close() }
        #expect(try importer.importFallback()?.imported == 7)
        #expect(try Self.storedHashes(other) == Self.expectedKeyedHashes)
        #expect(try importer.verify().isValid)
    }

    static let expectedKeyedHashes: [String] = [
        "717cbac5e18684a2c6ed64bdbb2b82552d224eb963b77a2b8633e5cb64b579c0",
        "dbe94859210780ac69b9c47c8ab9993841b27050c95776f30d4d23e89f265fd3",
        "faeca608f5962f9cc3dac76b91aba6a2ac525e328edb1e7341ef47daa4f02168",
        "f326056ce3126e293b7a5411018fbcd58985adaea3f9ecc64a371b444ff3481b 4ba1df4a513ff44d659376bf6e47c2157cf1c9daeb433d9f6a23980404f6e449",
        "start 180751385b5b607036f73f984663aa7d4bd968ac50a988cc02f7a635545db0da c42eee44fa36b695ce3bf8bec214ff183bd5c2e502eab152b1cbd80b08ad9449",
        "end c37c9b34576f3ddfe6083a49c78fe740046a71eef3f1e240c37593f856b68aeb 2f27b75692d56af951c25b0b9cd42c960873f63b39dfa7f8e6fd1f7e0ee7ecd4",
        "5 4ba1df4a513ff44d659376bf6e47c2157cf1c9daeb433d9f6a23980404f6e449",
    ]

    @Test("decisions and actions read back as they were recorded, text this build doesn't know included")
    func unknownSpellingsStayReadable() throws {
        let (directory, path) = try Self.newDatabasePath()
        defer { withExtendedLifetime(directory) {} }
        let store = try AuditStore(path: path)
        try store.createSession(Self.session())
        let known: [(RecordedDecision, RecordedAction)] = [
            (.allow, .exec), (.deny, .fsRead), (.ask, .fsWrite), (.log, .netEgress), (.deny, .syscall),
        ]
        var events = known.enumerated().map { index, pair in
            DecisionEvent(timeMicros: Int64(index), pid: 1, ppid: 0, executable: "/bin/x", syscall: "openat",
                          action: pair.1, target: "t", decision: pair.0, reason: "r", latencyMicros: 0)
        }
        var future = events[0]
        future.decision = RecordedDecision(text: "approve-later")
        future.action = RecordedAction(text: "dns_query")
        events.append(future)
        try store.insert(events: events, sessionID: Self.sessionID)
        let stored = try store.events(sessionID: Self.sessionID).map(\.event)
        #expect(stored == events)
        #expect(stored.last?.decision == .unrecognized("approve-later") && stored.last?.action.text == "dns_query")
        #expect(try rawQuery(path, "SELECT decision || ' ' || action FROM events ORDER BY id")
            == ["allow exec", "deny fs_read", "ask fs_write", "log net_egress", "deny syscall", "approve-later dns_query"])
        store.close()
        #expect(try verify(path).isValid)
    }
}
