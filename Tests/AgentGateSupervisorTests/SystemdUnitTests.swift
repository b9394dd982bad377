import Foundation
import Glibc
import Testing

/// packaging/systemd/ as systemd reads it: `systemd-analyze verify` on every unit, and the
/// exposure `systemd-analyze security` gives the session service, which README states. Both run
/// offline against a root of the test's own (the machine's unit tree, our units in
/// etc/systemd/system, stand-ins for the programs they run): nothing is installed or started.
@Suite struct SystemdUnitTests {
    static let units = ["agentgate.slice", "agentgate-session@.service", "agentgate-clean.service", "agentgate-clean.timer"]
    static let analyze = "/usr/bin/systemd-analyze"

    /// A root with the machine's unit tree and ours; the programs the units run exist there.
    static func unitRoot(_ h: Harness) throws -> String {
        let root = h.path("root")
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/usr/lib/systemd", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/etc/systemd/system", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/usr/bin", withIntermediateDirectories: true)
        let copied = h.run(["cp", "-a", "/usr/lib/systemd/system", root + "/usr/lib/systemd/"])
        guard copied.status == 0 else { throw HarnessError(message: "cp: \(copied.stderr)") }
        for unit in units {
            try fm.copyItem(atPath: TestRepository.root + "/packaging/systemd/" + unit, toPath: root + "/etc/systemd/system/" + unit)
        }
        for program in ["agentgate", "agentgate-supervise", "setpriv", "env", "install", "rm"] {
            try fm.copyItem(atPath: "/bin/true", toPath: root + "/usr/bin/" + program)
        }
        return root
    }

    @Test func everyUnitVerifies() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.analyze),
              FileManager.default.fileExists(atPath: "/usr/lib/systemd/system/sysinit.target") else {
            try Test.cancel("systemd-analyze and systemd's unit tree are not installed")
        }
        let h = try Harness()
        let root = try Self.unitRoot(h)
        let verified = h.run([Self.analyze, "verify", "--man=no", "--root=\(root)", "agentgate.slice",
                              "agentgate-session@nightly.service", "agentgate-clean.service", "agentgate-clean.timer"])
        #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
        #expect(verified.stderr.isEmpty && verified.stdout.isEmpty, "\(verified.stdout)\(verified.stderr)")
    }

    @Test func securityExposureIsWhatReadmeStates() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.analyze),
              FileManager.default.fileExists(atPath: "/usr/lib/systemd/system/sysinit.target") else {
            try Test.cancel("systemd-analyze and systemd's unit tree are not installed")
        }
        let h = try Harness()
        let root = try Self.unitRoot(h)
        let readme = try String(contentsOfFile: TestRepository.root + "/README.md", encoding: .utf8)
        for (unit, shown) in [("agentgate-session@nightly.service", "agentgate-session@.service"), ("agentgate-clean.service", "agentgate-clean.service")] {
            let report = h.run([Self.analyze, "security", "--offline=true", "--root=\(root)", unit])
            let line = report.stdout.split(separator: "\n").first { $0.contains("Overall exposure level") } ?? ""
            let words = line.split(separator: " ")
            guard let index = words.firstIndex(where: { $0.hasSuffix(":") && $0.contains(unit) }), index + 2 < words.count else {
                Issue.record("no exposure level for \(unit): \(report.stdout.suffix(500))\(report.stderr)")
                continue
            }
            let level = "\(words[index + 1]) \(words[index + 2])"
            #expect(readme.contains("`\(shown)`: \(level)"), "README should state `\(shown)`: \(level)")
        }
    }
}
