import Foundation
import Glibc
import Testing

/// `agentgate-supervise --unit`: its refusals where no unit can be made (here, on any machine),
/// and everything else against a real systemd booted as PID 1 in a Debian root of its own
/// (scripts/systemd-test.sh; skipped with its reason where that can't be done).
@Suite struct SystemdIntegrationTests {
    /// The environment the refusals run in: this process's, with changes.
    static func environment(_ changes: [String: String?]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        for (key, value) in changes { environment[key] = value }
        return environment
    }

    /// Runs `agentgate-supervise OPTIONS -- touch ran`: it must refuse with status 2 and
    /// `message`, and never run the command.
    static func expectRefusal(_ options: [String], environment: [String: String]? = nil, _ message: String,
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let h = try Harness()
        let result = h.run([Harness.supervisor, "--db", h.db] + options + ["--", "/usr/bin/touch", h.path("ran")],
                           environment: environment)
        #expect(result.status == 2, "\(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stderr.contains(message), "\(result.stderr)", sourceLocation: sourceLocation)
        #expect(!h.exists("ran"), "the command ran", sourceLocation: sourceLocation)
    }

    @Test func refusesWithoutASystemManager() throws {
        if FileManager.default.fileExists(atPath: "/run/systemd/system") {
            try Test.cancel("systemd runs as init on this machine")
        }
        try Self.expectRefusal(["--unit", "ag-test", "--system"], "systemd is not running as the init system here")
    }

    @Test func refusesWithoutSystemdRun() throws {
        try Self.expectRefusal(["--unit", "ag-test"], environment: Self.environment(["PATH": "/nonexistent"]),
                               "--unit needs systemd-run, which is not on PATH")
    }

    @Test func refusesWithoutAUserManager() throws {
        try Self.expectRefusal(["--unit", "ag-test", "--user"], environment: Self.environment(["XDG_RUNTIME_DIR": nil]),
                               "no user manager reachable (XDG_RUNTIME_DIR is not set")
        let h = try Harness()
        try FileManager.default.createDirectory(atPath: h.path("runtime"), withIntermediateDirectories: true)
        try Self.expectRefusal(["--unit", "ag-test", "--user", "--service"],
                               environment: Self.environment(["XDG_RUNTIME_DIR": h.path("runtime"), "DBUS_SESSION_BUS_ADDRESS": nil]),
                               "no user manager reachable (no \(h.path("runtime"))/bus and no DBUS_SESSION_BUS_ADDRESS)")
    }

    @Test func refusesInsideAUnitAlready() throws {
        try Self.expectRefusal(["--unit", "ag-test"], environment: Self.environment(["AGENTGATE_UNIT": "outer.scope"]),
                               "already running in unit outer.scope")
    }

    @Test func refusesBadUnitOptions() throws {
        try Self.expectRefusal(["--property", "MemoryMax=1G"], "go with --unit NAME")
        try Self.expectRefusal(["--service"], "go with --unit NAME")
        try Self.expectRefusal(["--unit", "ag-test", "--property", "MemoryMax"], "expected NAME=VALUE")
        try Self.expectRefusal(["--unit", "two words"], "not a valid unit name")
        try Self.expectRefusal(["--unit", "ag-test.service"], "names a service, but the session would run in a scope")
        try Self.expectRefusal(["--unit", "ag-test.scope", "--service"], "names a scope, but the session would run in a service")
    }

    /// The supervisor re-executed for a unit checks that it is in it before anything runs.
    @Test func refusesToRunOutsideItsUnit() throws {
        let h = try Harness()
        try h.write("handoff", "agentgate-unit-handoff-v1\nscope\n", mode: 0o600)
        try Self.expectRefusal(["--in-unit", "ag-test.scope", "--unit-handoff", h.path("handoff")],
                               "expected to run in unit ag-test.scope, but this process is in cgroup")
        #expect(!h.exists("handoff"))
    }

    @Test func unitsUnderARealSystemd() throws {
        try TestUser.requireRoot("boots systemd in a root of its own (namespaces, pivot_root, a delegated cgroup)")
        let h = try Harness()
        let build = URL(fileURLWithPath: Harness.supervisor).deletingLastPathComponent().path
        let result = h.run([TestRepository.root + "/scripts/systemd-test.sh", build], timeout: 280)
        let output = result.stdout + result.stderr
        print(output.split(separator: "\n").filter { $0.hasPrefix("systemd-test:") }.joined(separator: "\n"))
        if result.status == 77 {
            let reason = output.split(separator: "\n").last { $0.contains("skipped") }.map(String.init) ?? output
            try Test.cancel("\(reason)")
        }
        #expect(result.status == 0, "\(output.suffix(6000))")
    }
}
