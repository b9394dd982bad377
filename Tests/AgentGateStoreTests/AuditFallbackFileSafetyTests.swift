import Foundation
import Testing
@testable import AgentGateStore

/// The spill file may sit in /tmp/agentgate-UID: a name put in place of the fallback file must
/// never make the supervisor import, or append to, a file that isn't its own.
@Suite struct AuditFallbackFileSafetyTests {
    static func scratch() throws -> String {
        let template = NSTemporaryDirectory() + "agentgate-fallback-safety-XXXXXX"
        var bytes = Array(template.utf8CString)
        guard let made = mkdtemp(&bytes) else { throw CocoaError(.fileWriteUnknown) }
        return String(cString: made)
    }

    @Test("a symlink in the fallback file's place is neither imported nor appended to")
    func symlinkIsRefused() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let elsewhere = dir + "/someone-elses.jsonl"
        #expect(FileManager.default.createFile(atPath: elsewhere, contents: Data("{\"kind\":\"x\"}\n".utf8)))
        let fallback = dir + "/audit.db.fallback.jsonl"
        #expect(symlink(elsewhere, fallback) == 0)
        #expect(throws: StoreError.self) {
            _ = try AuditFallbackFile.withLockedContents(fallback) { (contents: [UInt8]) throws(StoreError) -> (result: Int, remove: Bool) in
                (contents.count, false)
            }
        }
        #expect(try String(contentsOfFile: elsewhere, encoding: .utf8) == "{\"kind\":\"x\"}\n")
    }

    @Test("a FIFO or a hard-linked file in the fallback file's place is refused")
    func nonRegularOrLinkedIsRefused() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/fifo.jsonl"
        #expect(mkfifo(fifo, 0o600) == 0)
        // O_RDWR on a FIFO doesn't block: the refusal comes from its type.
        #expect(throws: StoreError.self) {
            _ = try AuditFallbackFile.withLockedContents(fifo) { (_: [UInt8]) throws(StoreError) -> (result: Int, remove: Bool) in (0, false) }
        }
        let original = dir + "/original.jsonl", linked = dir + "/linked.jsonl"
        #expect(FileManager.default.createFile(atPath: original, contents: Data("x\n".utf8)))
        #expect(link(original, linked) == 0)
        #expect(throws: StoreError.self) {
            _ = try AuditFallbackFile.withLockedContents(linked) { (_: [UInt8]) throws(StoreError) -> (result: Int, remove: Bool) in (0, false) }
        }
    }
}
