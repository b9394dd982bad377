import AgentGatePolicy
import AgentGateStore
import AgentGateSupervisor
import CSupport
import Foundation
import Glibc
import Testing

/// Decisions into the journal, an OTLP collector and webhooks: the fields arrive, and a
/// destination that stops reading never slows the agent (its events are dropped and counted).
@Suite("Event sinks: journal, OTLP, webhooks", .serialized)
struct EventSinkTests {
    /// A C agent: `loop N PATH` opens PATH N times and prints how long that took in µs, then
    /// tries `denied` once (refused by the tests' policy).
    static func loopAgent(_ h: Harness) throws -> String {
        try h.compile("loop", """
            #include <fcntl.h>
            #include <stdio.h>
            #include <stdlib.h>
            #include <time.h>
            #include <unistd.h>
            int main(int argc, char **argv) {
                int n = atoi(argv[1]);
                struct timespec a, b;
                clock_gettime(CLOCK_MONOTONIC, &a);
                for (int i = 0; i < n; i++) { int fd = open(argv[2], O_RDONLY); if (fd >= 0) close(fd); }
                clock_gettime(CLOCK_MONOTONIC, &b);
                printf("%ld\\n", (long)((b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000));
                if (argc > 3 && open(argv[3], O_RDONLY) < 0) printf("denied\\n");
                return 0;
            }
            """)
    }

    static func policy(_ h: Harness, extra: String = "") throws -> String {
        try h.write("secret\ntarget", "x\n")
        try h.write("secret.txt", "s3cret\n")
        return try h.policy("""
            default: allow
            rules:
              - id: no-secret
                match: {action: fs_read, target_glob: "\(h.dir)/secret*"}
                decision: deny
                reason: secrets stay
            \(extra)
            """)
    }

    /// The agent's own timing line (µs for its opens).
    static func agentMicros(_ result: Harness.Result) -> Int {
        Int(result.stdout.split(separator: "\n").first ?? "") ?? -1
    }

    // MARK: journald

    /// Datagrams received by the test's reader thread.
    final class Collected: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: [[String: String]] = []
        private var stopping = false
        private let done = DispatchSemaphore(value: 0)

        var stopped: Bool { lock.withLock { stopping } }
        var items: [[String: String]] { lock.withLock { stored } }
        func append(_ fields: [String: String]) { lock.withLock { stored.append(fields) } }
        func finish() { done.signal() }
        /// Stops the reader and waits for it.
        func stop() {
            lock.withLock { stopping = true }
            done.wait()
        }
    }

    /// Runs `command` with /run/systemd/journal replaced, in a private mount namespace, by
    /// `directory` (where the test's own datagram socket is bound).
    static func inJournalNamespace(_ h: Harness, directory: String, _ command: [String], timeout: Double = 120) -> Harness.Result {
        let script = "mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/journal && mount --bind \"$0\" /run/systemd/journal && exec \"$@\""
        return h.run(["/usr/bin/unshare", "-m", "--propagation", "private", "/bin/sh", "-c", script, directory] + command,
                     timeout: timeout)
    }

    /// A datagram socket bound at `directory/socket`: what journald listens on.
    static func journalSocket(_ directory: String, receiveBuffer: Int32? = nil) throws -> Int32 {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HarnessError(message: "socket: \(errno)") }
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = directory + "/socket"
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = byte }
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { close(fd); throw HarnessError(message: "bind \(path): \(errno)") }
        chmod(path, 0o666)
        return fd
    }

    /// Parses one datagram of the journal's native protocol: `NAME=value\n`, or
    /// `NAME\n<le64 length><bytes>\n` for values with newlines.
    static func journalFields(_ bytes: [UInt8]) -> [String: String] {
        var fields: [String: String] = [:]
        var i = 0
        while i < bytes.count {
            guard let end = bytes[i...].firstIndex(where: { $0 == 10 || $0 == 61 }) else { break }
            let name = String(decoding: bytes[i..<end], as: UTF8.self)
            if bytes[end] == 61 {
                let valueEnd = bytes[(end + 1)...].firstIndex(of: 10) ?? bytes.count
                fields[name] = String(decoding: bytes[(end + 1)..<valueEnd], as: UTF8.self)
                i = valueEnd + 1
            } else {
                guard end + 9 <= bytes.count else { break }
                var length = 0
                for k in 0..<8 { length |= Int(bytes[end + 1 + k]) << (8 * k) }
                let start = end + 9
                guard start + length <= bytes.count else { break }
                fields[name] = String(decoding: bytes[start..<(start + length)], as: UTF8.self)
                i = start + length + 1
            }
        }
        return fields
    }

    @Test("--journal: each decision arrives with its AGENTGATE_* fields, denials at PRIORITY=4")
    func journalFieldsArrive() throws {
        try TestUser.requireRoot("a private mount namespace puts the test's socket where sd_journal_sendv sends")
        let h = try Harness()
        let agent = try Self.loopAgent(h)
        let policy = try Self.policy(h)
        let socketDirectory = h.path("journal")
        let fd = try Self.journalSocket(socketDirectory)
        defer { close(fd) }
        // Read as they come: the kernel holds only a few datagrams for a socket nobody reads.
        let collected = Collected()
        let reader = Thread {
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            while !collected.stopped {
                let n = recv(fd, &buffer, buffer.count, 0)
                if n > 0 { collected.append(Self.journalFields(Array(buffer[..<n]))) }
            }
            collected.finish()
        }
        reader.start()
        let result = Self.inJournalNamespace(h, directory: socketDirectory, [
            Harness.supervisor, "--policy", policy, "--db", h.db, "--session", "journal-test", "--journal", "--",
            agent, "3", "/etc/hostname", h.path("secret\ntarget"),
        ])
        usleep(300_000)
        collected.stop()
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("denied"))
        let events = collected.items
        #expect(events.allSatisfy { $0["SYSLOG_IDENTIFIER"] == "agentgate" && $0["AGENTGATE_SESSION"] == "journal-test" })
        let opens = events.filter { $0["AGENTGATE_TARGET"] == "/etc/hostname" }
        #expect(opens.count == 3, "\(events.count) datagrams")
        #expect(opens.first?["AGENTGATE_ACTION"] == "fs_read")
        #expect(opens.first?["AGENTGATE_DECISION"] == "allow")
        #expect(opens.first?["PRIORITY"] == "6")
        #expect(opens.first.flatMap { Int($0["AGENTGATE_PID"] ?? "") } != nil)
        // The target holds a newline: sent in the binary form, received whole.
        let denial = events.first { $0["AGENTGATE_DECISION"] == "deny" }
        #expect(denial?["AGENTGATE_TARGET"] == h.path("secret\ntarget"))
        #expect(denial?["AGENTGATE_RULE"] == "no-secret")
        #expect(denial?["PRIORITY"] == "4")
        #expect(denial?["MESSAGE"]?.hasPrefix("agentgate: deny fs_read ") == true)
    }

    @Test("a datagram too big for the socket reaches the journal as a sealed memfd, as journald reads it")
    func journalMemfdFallback() throws {
        let h = try Harness()
        let directory = h.path("journal")
        let fd = try Self.journalSocket(directory)
        defer { close(fd) }
        let sender = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(sender) }
        var datagram: [UInt8] = []
        AuditJournal.appendField("MESSAGE", String(repeating: "x", count: 4 << 20), to: &datagram)
        AuditJournal.appendField("AGENTGATE_TARGET", "a\nb", to: &datagram)
        // Bare: the kernel refuses a datagram this size.
        var plain = sockaddr_un()
        plain.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &plain.sun_path) { raw in
            for (i, byte) in (directory + "/socket").utf8.enumerated() where i < raw.count - 1 { raw[i] = byte }
        }
        let bare = datagram.withUnsafeBytes { bytes in
            withUnsafePointer(to: &plain) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(sender, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
        }
        let bareErrno = errno
        #expect(bare == -1 && (bareErrno == EMSGSIZE || bareErrno == ENOBUFS), "sendto: \(bare), errno \(bareErrno)")
        let sent = datagram.withUnsafeBytes { agentgate_journal_send(sender, directory + "/socket", $0.baseAddress, $0.count) }
        #expect(sent == 0)
        // One datagram with no payload and one fd: a memfd holding the datagram, sealed.
        var payload = [UInt8](repeating: 0, count: 16)
        var control = [UInt8](repeating: 0, count: 64)
        var received: Int32 = -1
        let count = payload.withUnsafeMutableBytes { payloadBytes in
            control.withUnsafeMutableBytes { controlBytes in
                var vector = iovec(iov_base: payloadBytes.baseAddress, iov_len: payloadBytes.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    var message = msghdr()
                    message.msg_iov = vectorPointer
                    message.msg_iovlen = 1
                    message.msg_control = controlBytes.baseAddress
                    message.msg_controllen = controlBytes.count
                    let n = recvmsg(fd, &message, Int32(MSG_DONTWAIT))
                    if n >= 0, message.msg_controllen >= MemoryLayout<cmsghdr>.size {
                        let header = controlBytes.baseAddress!.assumingMemoryBound(to: cmsghdr.self)
                        if header.pointee.cmsg_level == SOL_SOCKET, header.pointee.cmsg_type == Int32(SCM_RIGHTS) {
                            received = controlBytes.load(fromByteOffset: MemoryLayout<cmsghdr>.size, as: Int32.self)
                        }
                    }
                    return n
                }
            }
        }
        #expect(count == 0)
        try #require(received >= 0)
        defer { close(received) }
        let seals = fcntl(received, 1034 /* F_GET_SEALS */)
        #expect(seals & 0x0f == 0x0f, "seals \(seals)") // SEAL, SHRINK, GROW, WRITE
        var back = [UInt8](repeating: 0, count: datagram.count + 1)
        let read = pread(received, &back, back.count, 0)
        #expect(read == datagram.count && Array(back[..<datagram.count]) == datagram)
        #expect(Self.journalFields(datagram)["AGENTGATE_TARGET"] == "a\nb")
    }

    @Test("a journal that stops reading never slows the agent; the drops are counted at the end")
    func journalBackPressure() throws {
        try TestUser.requireRoot("a private mount namespace puts the test's socket where sd_journal_sendv sends")
        let h = try Harness()
        let agent = try Self.loopAgent(h)
        let policy = try Self.policy(h)
        let socketDirectory = h.path("journal")
        let fd = try Self.journalSocket(socketDirectory, receiveBuffer: 1024) // never read
        defer { close(fd) }
        let opens = "20000"
        let without = h.supervised([agent, opens, "/etc/hostname"], policy: policy)
        let started = Date()
        let with = Self.inJournalNamespace(h, directory: socketDirectory, [
            Harness.supervisor, "--policy", policy, "--db", h.db, "--journal", "--", agent, opens, "/etc/hostname",
        ])
        let session = Date().timeIntervalSince(started)
        #expect(without.status == 0 && with.status == 0, "\(with.stderr)")
        let bare = Self.agentMicros(without), stuck = Self.agentMicros(with)
        print("journal back-pressure: agent \(bare) µs without the journal, \(stuck) µs with a stuck one; session \(session) s")
        #expect(stuck > 0 && stuck < bare * 3 + 2_000_000, "the stuck journal slowed the agent: \(bare) → \(stuck) µs")
        #expect(with.stderr.contains("journal: the queue is full"), "\(with.stderr)")
        #expect(with.stderr.contains("journal: ") && with.stderr.contains("events dropped (its queue was full)"), "\(with.stderr)")
        #expect(session < 30)
    }

    @Test("--journal without a journal: one warning, and the session runs")
    func journalMissing() throws {
        try TestUser.requireRoot("a private mount namespace hides the journal's socket")
        let h = try Harness()
        let policy = try Self.policy(h)
        let empty = h.path("nojournal")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let result = Self.inJournalNamespace(h, directory: empty, [
            Harness.supervisor, "--policy", policy, "--db", h.db, "--journal", "--", "/bin/true",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let warnings = result.stderr.components(separatedBy: "/run/systemd/journal/socket is missing").count - 1
        #expect(warnings == 1, "\(result.stderr)")
    }

    // MARK: OTLP and webhooks

    /// scripts/otlp-receiver.py on a free loopback port; killed with SIGKILL by `stop`.
    final class Receiver {
        let run: BackgroundRun
        let port: Int
        let out: String

        init(_ h: Harness, name: String, stall: Bool = false) throws {
            out = h.path(name + ".jsonl")
            let portFile = h.path(name + ".port")
            run = try BackgroundRun(["/usr/bin/python3", TestRepository.root + "/scripts/otlp-receiver.py", "--port", "0",
                                     "--port-file", portFile, "--out", out] + (stall ? ["--stall"] : []),
                                    directory: h.dir, name: name)
            let deadline = Date().addingTimeInterval(20)
            var found: Int?
            while found == nil && Date() < deadline {
                found = (try? String(contentsOfFile: portFile, encoding: .utf8)).flatMap { Int($0) }
                if found == nil { usleep(20_000) }
            }
            guard let found else { kill(run.pid, SIGKILL); throw HarnessError(message: "the receiver did not start: \(run.stderr)") }
            port = found
        }

        var requests: [[String: Any]] {
            let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }

        func stop() {
            kill(run.pid, SIGKILL)
            _ = run.wait(timeout: 5)
        }
    }

    /// `{"key": k, "value": {"stringValue": v}}` lists as a dictionary of strings.
    static func attributes(_ value: Any?) -> [String: String] {
        var result: [String: String] = [:]
        for item in value as? [[String: Any]] ?? [] {
            guard let key = item["key"] as? String, let value = item["value"] as? [String: Any] else { continue }
            result[key] = (value["stringValue"] as? String) ?? (value["intValue"] as? String) ?? (value["boolValue"].map { "\($0)" })
        }
        return result
    }

    @Test("--otlp: decisions arrive as OTLP log records, the supervisor's metrics as OTLP metrics")
    func otlpLogsAndMetrics() throws {
        let h = try Harness()
        let agent = try Self.loopAgent(h)
        let policy = try Self.policy(h)
        let receiver = try Receiver(h, name: "collector")
        defer { receiver.stop() }
        let result = h.run([Harness.supervisor, "--policy", policy, "--db", h.db, "--session", "otlp-test",
                            "--otlp", "http://127.0.0.1:\(receiver.port)", "--", agent, "3", "/etc/hostname", h.path("secret.txt")],
                           environment: ProcessInfo.processInfo.environment.merging(
                               ["OTEL_EXPORTER_OTLP_HEADERS": "x-team=agents%2Cci", "OTEL_SERVICE_NAME": "agentgate-ci"]) { $1 })
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("denied"))
        let requests = receiver.requests
        let logs = requests.filter { $0["path"] as? String == "/v1/logs" }
        #expect(!logs.isEmpty, "\(requests.count) requests; \(result.stderr)")
        #expect((logs.first?["headers"] as? [String: String])?["content-type"] == "application/json")
        #expect((logs.first?["headers"] as? [String: String])?["x-team"] == "agents,ci")
        var records: [[String: Any]] = []
        var resource: [String: String] = [:]
        for request in logs {
            let body = request["body"] as? [String: Any]
            for resourceLogs in body?["resourceLogs"] as? [[String: Any]] ?? [] {
                resource = Self.attributes((resourceLogs["resource"] as? [String: Any])?["attributes"])
                for scope in resourceLogs["scopeLogs"] as? [[String: Any]] ?? [] {
                    records += scope["logRecords"] as? [[String: Any]] ?? []
                }
            }
        }
        #expect(resource["service.name"] == "agentgate-ci")
        #expect(resource["agentgate.session"] == "otlp-test")
        #expect(resource["host.name"]?.isEmpty == false)
        #expect(resource["user.id"] == "\(getuid())")
        let denial = records.first { Self.attributes($0["attributes"])["agentgate.decision"] == "deny" }
        let attributes = Self.attributes(denial?["attributes"])
        #expect(attributes["agentgate.target"] == h.path("secret.txt"))
        #expect(attributes["agentgate.rule"] == "no-secret")
        #expect(attributes["agentgate.action"] == "fs_read")
        #expect(attributes["process.executable.path"] == agent)
        #expect(Int(attributes["process.pid"] ?? "") != nil)
        #expect(denial?["severityText"] as? String == "WARN")
        #expect(denial?["severityNumber"] as? Int == 13)
        #expect(UInt64(denial?["timeUnixNano"] as? String ?? "") ?? 0 > 1_700_000_000_000_000_000)
        // Metrics: at least the final export, after the session's end: the supervisor's own
        // counters, so the decisions counted are the decisions recorded (one log record each).
        let metrics = requests.filter { $0["path"] as? String == "/v1/metrics" }
        #expect(!metrics.isEmpty)
        let final = Self.otlpMetrics(metrics.last?["body"])
        #expect(Set(final.keys) == ["agentgate.decisions", "agentgate.decision.latency", "agentgate.sessions.active",
                                    "agentgate.asks.pending", "agentgate.audit.queue.depth", "agentgate.audit.write_errors",
                                    "agentgate.otlp.dropped"], "\(final.keys.sorted())")
        var recorded: [String: Int] = [:]
        for record in records {
            let attributes = Self.attributes(record["attributes"])
            if let action = attributes["agentgate.action"], let decision = attributes["agentgate.decision"] {
                recorded["\(action) \(decision)", default: 0] += 1
            }
        }
        let decisions = final["agentgate.decisions"]?["sum"] as? [String: Any]
        #expect(decisions?["isMonotonic"] as? Bool == true && decisions?["aggregationTemporality"] as? Int == 2)
        var counted: [String: Int] = [:]
        for point in decisions?["dataPoints"] as? [[String: Any]] ?? [] {
            let attributes = Self.attributes(point["attributes"])
            counted["\(attributes["agentgate.action"] ?? "?") \(attributes["agentgate.decision"] ?? "?")"] = Int(point["asInt"] as? String ?? "")
        }
        #expect(counted == recorded)
        #expect(counted["fs_read deny"] == 1 && counted["fs_read allow"] ?? 0 >= 3, "\(counted)")
        let total = counted.values.reduce(0, +)
        let histogram = final["agentgate.decision.latency"]
        let latency = ((histogram?["histogram"] as? [String: Any])?["dataPoints"] as? [[String: Any]])?.first
        let buckets = (latency?["bucketCounts"] as? [String] ?? []).compactMap { Int($0) }
        let bounds = latency?["explicitBounds"] as? [Double] ?? []
        #expect(histogram?["unit"] as? String == "s")
        #expect(!bounds.isEmpty && buckets.count == bounds.count + 1 && bounds == bounds.sorted() && bounds.allSatisfy { $0 > 0 && $0 < 3600 },
                "\(bounds) \(buckets)")
        #expect(Int(latency?["count"] as? String ?? "") == total && buckets.reduce(0, +) == total, "\(buckets) vs \(total)")
        let sumSeconds = latency?["sum"] as? Double ?? -1
        #expect(sumSeconds > 0 && sumSeconds < Double(total) * 10, "\(sumSeconds)")
        func value(_ name: String, _ kind: String) -> Int? {
            (((final[name]?[kind] as? [String: Any])?["dataPoints"] as? [[String: Any]])?.first?["asInt"] as? String).flatMap { Int($0) }
        }
        #expect(value("agentgate.sessions.active", "gauge") == 0)  // the last export is after the session's end
        #expect(value("agentgate.asks.pending", "gauge") == 0)
        // The writer's queue holds process records too, so its depth isn't bounded by the decisions.
        #expect(value("agentgate.audit.queue.depth", "gauge").map { $0 >= 0 } == true)
        #expect(value("agentgate.audit.write_errors", "sum") == 0)
        #expect(value("agentgate.otlp.dropped", "sum") == 0)
        // Any export during the session (one is due at its first second) says it is active.
        for export in metrics.dropLast() {
            let active = ((Self.otlpMetrics(export["body"])["agentgate.sessions.active"]?["gauge"] as? [String: Any])?["dataPoints"]
                          as? [[String: Any]])?.first?["asInt"] as? String
            #expect(active == nil || active == "1")
        }
        let resourceMetrics = ((metrics.last?["body"] as? [String: Any])?["resourceMetrics"] as? [[String: Any]])?.first
        let metricsResource = Self.attributes((resourceMetrics?["resource"] as? [String: Any])?["attributes"])
        #expect(metricsResource["service.name"] == "agentgate-ci" && metricsResource["agentgate.session"] == "otlp-test"
                && metricsResource["host.name"]?.isEmpty == false)
    }

    /// An OTLP metrics export's metrics by name.
    static func otlpMetrics(_ body: Any?) -> [String: [String: Any]] {
        var result: [String: [String: Any]] = [:]
        for resource in (body as? [String: Any])?["resourceMetrics"] as? [[String: Any]] ?? [] {
            for scope in resource["scopeMetrics"] as? [[String: Any]] ?? [] {
                for metric in scope["metrics"] as? [[String: Any]] ?? [] {
                    if let name = metric["name"] as? String { result[name] = metric }
                }
            }
        }
        return result
    }

    @Test("https is refused at start with the reason")
    func otlpHTTPSRefused() throws {
        let h = try Harness()
        let policy = try Self.policy(h)
        let result = h.supervised(["/bin/true"], policy: policy, extra: ["--otlp", "https://collector:4318"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("https is not supported"), "\(result.stderr)")
    }

    @Test("a collector that accepts and never reads never slows the agent; the drops are counted")
    func otlpBackPressure() throws {
        let h = try Harness()
        let agent = try Self.loopAgent(h)
        let policy = try Self.policy(h)
        let stalled = try Receiver(h, name: "stalled", stall: true)
        defer { stalled.stop() }
        let opens = "20000"
        let without = h.supervised([agent, opens, "/etc/hostname"], policy: policy)
        let started = Date()
        let with = h.supervised([agent, opens, "/etc/hostname"], policy: policy,
                                extra: ["--otlp", "http://127.0.0.1:\(stalled.port)"])
        let session = Date().timeIntervalSince(started)
        #expect(without.status == 0 && with.status == 0, "\(with.stderr)")
        let bare = Self.agentMicros(without), stuck = Self.agentMicros(with)
        print("otlp back-pressure: agent \(bare) µs without a collector, \(stuck) µs with a stuck one; session \(session) s")
        #expect(stuck > 0 && stuck < bare * 3 + 2_000_000, "the stuck collector slowed the agent: \(bare) → \(stuck) µs")
        #expect(with.stderr.contains("the queue is full"), "\(with.stderr)")
        #expect(with.stderr.contains("events dropped (its queue was full)"), "\(with.stderr)")
        #expect(session < 30)
    }

    @Test("webhooks: a denial is POSTed as JSON with a signature that verifies")
    func webhookSigned() throws {
        let h = try Harness()
        let agent = try Self.loopAgent(h)
        let receiver = try Receiver(h, name: "hook")
        defer { receiver.stop() }
        try h.write("hook.key", "correct horse battery staple\n", mode: 0o600)
        let policy = try Self.policy(h, extra: """
            webhooks:
              - url: http://127.0.0.1:\(receiver.port)/agentgate
                events: [deny, kill]
                secret_file: hook.key
            """)
        let result = h.supervised([agent, "2", "/etc/hostname", h.path("secret.txt")], policy: policy,
                                  extra: ["--session", "hook-test"])
        #expect(result.status == 0, "\(result.stderr)")
        let requests = receiver.requests
        // Only the denial: allows are not webhook events.
        #expect(requests.count == 1, "\(requests)")
        guard let request = requests.first, let headers = request["headers"] as? [String: String],
              let raw = request["raw"] as? String, let body = request["body"] as? [String: Any] else { return }
        #expect(request["path"] as? String == "/agentgate")
        #expect(body["event"] as? String == "deny")
        #expect(body["session"] as? String == "hook-test")
        #expect(body["target"] as? String == h.path("secret.txt"))
        #expect(body["rule"] as? String == "no-secret")
        #expect(headers["x-agentgate-event"] == "deny")
        let timestamp = headers["x-agentgate-timestamp"] ?? ""
        #expect(abs((Double(timestamp) ?? 0) - Date().timeIntervalSince1970) < 120)
        // Verified independently of the supervisor's code: Python's hmac.
        try h.write("signed.txt", timestamp + "." + raw)
        let expected = h.run(["python3", "-c",
                              "import hmac,hashlib,sys; print(hmac.new(b'correct horse battery staple', open(sys.argv[1],'rb').read(), hashlib.sha256).hexdigest())",
                              h.path("signed.txt")]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(headers["x-agentgate-signature"] == "sha256=" + expected)
        // The agent can't read the key.
        let peek = h.supervised(["/bin/cat", h.path("hook.key")], policy: policy)
        #expect(peek.status != 0 && !peek.stdout.contains("horse"))
    }

    @Test("webhooks: a policy reload is an event, put in force or rejected")
    func webhookReload() throws {
        let h = try Harness()
        let receiver = try Receiver(h, name: "hook")
        defer { receiver.stop() }
        let webhooks = """
            webhooks:
              - url: http://127.0.0.1:\(receiver.port)/agentgate
                events: [reload]
                secret_env: AGENTGATE_TEST_HOOK_SECRET
            """
        let policy = try Self.policy(h, extra: webhooks)
        var environment = ProcessInfo.processInfo.environment
        environment["AGENTGATE_TEST_HOOK_SECRET"] = "s3cret"
        // The secret's variable is the supervisor's: the agent's environment doesn't have it.
        let agentSees = h.run([Harness.supervisor, "--policy", policy, "--db", h.db, "--", "/bin/sh", "-c",
                               "echo \"[${AGENTGATE_TEST_HOOK_SECRET-unset}]\""], environment: environment)
        #expect(agentSees.stdout == "[unset]\n", "\(agentSees.stderr)")
        let session = try BackgroundRun([Harness.supervisor, "--policy", policy, "--db", h.db, "--",
                                         "/bin/sh", "-c", ": > ready; while [ ! -e stop ]; do sleep 0.05; done"],
                                        directory: h.dir, name: "supervisor", environment: environment)
        func waitForRequests(_ count: Int) -> [[String: Any]] {
            let deadline = Date().addingTimeInterval(20)
            while receiver.requests.count < count && Date() < deadline { usleep(50_000) }
            return receiver.requests
        }
        // The supervisor watches the policy files before its agent's first call is answered.
        let readyBy = Date().addingTimeInterval(30)
        while !h.exists("ready") && Date() < readyBy { usleep(20_000) }
        // A new rule: put in force. Then a broken file: rejected.
        try h.write("policy.yaml.new", try String(contentsOfFile: policy, encoding: .utf8)
                        .replacingOccurrences(of: "reason: secrets stay", with: "reason: secrets stay here"))
        rename(h.path("policy.yaml.new"), policy)
        let first = waitForRequests(1)
        try h.write("policy.yaml.new", "default: allow\nrules: [\n")
        rename(h.path("policy.yaml.new"), policy)
        let both = waitForRequests(2)
        try h.write("stop", "")
        #expect(session.wait(timeout: 30) == 0, "\(session.stderr)")
        #expect(first.count >= 1 && both.count == 2, "\(both); \(session.stderr)")
        let bodies = both.compactMap { $0["body"] as? [String: Any] }
        #expect(bodies.map { $0["event"] as? String } == ["reload", "reload"])
        #expect(bodies.map { $0["accepted"] as? Bool } == [true, false])
        #expect((bodies.last?["message"] as? String)?.contains("rejected") == true)
    }

    @Test("webhooks: agentgate kill is a kill event, with who killed")
    func webhookKill() throws {
        let c = try ControlHarness()
        let receiver = try Receiver(c.h, name: "hook")
        defer { receiver.stop() }
        let policy = try c.h.policy("""
            default: allow
            rules: []
            webhooks:
              - url: http://127.0.0.1:\(receiver.port)/agentgate
                events: [kill]
                secret_env: AGENTGATE_TEST_HOOK_SECRET
            """)
        var environment = c.environment
        environment["AGENTGATE_TEST_HOOK_SECRET"] = "s3cret"
        let run = try BackgroundRun([Harness.supervisor, "--policy", policy, "--db", c.h.db, "--session", "hook-kill", "--",
                                     "sh", "-c", "touch ready; sleep 300"],
                                    directory: c.h.dir, name: "hook-kill", environment: environment)
        #expect(waitUntil { c.h.exists("ready") && FileManager.default.fileExists(atPath: c.socket("hook-kill")) })
        let result = c.control(["kill", "hook-kill"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(run.wait(timeout: 30) == 137)
        let requests = receiver.requests
        #expect(requests.count == 1, "\(requests); \(run.stderr)")
        let body = requests.first?["body"] as? [String: Any]
        #expect(body?["event"] as? String == "kill")
        #expect(body?["session"] as? String == "hook-kill")
        #expect((body?["killed_by"] as? String)?.contains("uid \(getuid())") == true, "\(String(describing: body))")
    }

    @Test("webhooks: a secret that can't be read stops the session before the agent runs")
    func webhookSecretMissing() throws {
        let h = try Harness()
        let policy = try Self.policy(h, extra: """
            webhooks:
              - url: http://127.0.0.1:9/hook
                secret_env: AGENTGATE_TEST_UNSET_SECRET
            """)
        let result = h.supervised(["/bin/sh", "-c", "touch ran"], policy: policy)
        #expect(result.status == 2)
        #expect(result.stderr.contains("$AGENTGATE_TEST_UNSET_SECRET is not set"), "\(result.stderr)")
        #expect(!h.exists("ran"))
    }
}

@Suite("OTLP configuration from options and OTEL_* variables")
struct OTLPConfigurationTests {
    @Test("--otlp or OTEL_EXPORTER_OTLP_ENDPOINT is a base URL; the signal endpoints are used as given")
    func endpoints() throws {
        #expect(try OTLPConfiguration.resolve(option: nil, environment: [:]) == nil)
        let option = try #require(try OTLPConfiguration.resolve(option: "http://collector:4318/", environment: [:]))
        #expect(option.logs.description == "http://collector:4318/v1/logs")
        #expect(option.metrics.description == "http://collector:4318/v1/metrics")
        let environment = try #require(try OTLPConfiguration.resolve(option: nil, environment: [
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1",
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://127.0.0.1:9999/custom/logs",
            "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20abc, x-tenant = t1",
            "OTEL_SERVICE_NAME": "agents-ci",
        ]))
        #expect(environment.logs.description == "http://127.0.0.1:9999/custom/logs")
        #expect(environment.metrics.description == "http://127.0.0.1:4318/v1/metrics")
        #expect(environment.headers == ["authorization": "Bearer abc", "x-tenant": "t1"])
        #expect(environment.serviceName == "agents-ci")
    }

    @Test("https and malformed headers are refused with the reason")
    func refused() {
        #expect(throws: OTLPConfiguration.Invalid.self) { try OTLPConfiguration.resolve(option: "https://c:4318", environment: [:]) }
        #expect(throws: OTLPConfiguration.Invalid.self) {
            try OTLPConfiguration.resolve(option: nil, environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": "https://c"])
        }
        #expect(throws: OTLPConfiguration.Invalid.self) {
            try OTLPConfiguration.resolve(option: "http://c", environment: ["OTEL_EXPORTER_OTLP_HEADERS": "novalue"])
        }
        #expect(throws: OTLPConfiguration.Invalid.self) {
            try OTLPConfiguration.resolve(option: "http://c", environment: ["OTEL_EXPORTER_OTLP_HEADERS": "x=a%0D%0AInjected: 1"])
        }
    }
}
