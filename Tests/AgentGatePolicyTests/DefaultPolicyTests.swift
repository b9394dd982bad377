import Foundation
import Testing
import AgentGatePolicy

@Suite("Built-in default policy")
struct DefaultPolicyTests {
    let policy: Policy

    init() throws {
        policy = try Policy.builtInDefault(variables: testVariables)
    }

    @Test("the embedded YAML is policies/default.yaml")
    func embeddedMatchesFile() throws {
        // Resolve symlinks: the test directory may be linked into a scratch package.
        let file = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("policies/default.yaml")
        let onDisk = try String(contentsOf: file, encoding: .utf8)
        #expect(Policy.builtInDefaultYAML == onDisk)
    }

    @Test("default is deny and every action kind is covered by a catch-all rule")
    func shape() {
        #expect(ActionKind.allCases.allSatisfy { policy.defaultDecision(for: $0) == .deny })
        for kind in ActionKind.allCases {
            #expect(policy.rules.contains { $0.action == kind && $0.targetGlob == nil }, "\(kind.name)")
        }
    }

    @Test("the one route it reopens is stacking a seccomp filter, which can only refuse more")
    func unsupervisedRoutes() {
        #expect(policy.allowedUnsupervised == [.seccomp])
    }

    @Test("representative decisions", arguments: [
        (ActionKind.fsRead, "/home/u/.ssh/id_rsa", Decision.deny),
        (.fsRead, "/home/u/.ssh", .deny),
        (.fsWrite, "/home/u/.ssh/authorized_keys", .deny),
        (.fsRead, "/home/u/.aws/credentials", .deny),
        (.fsRead, "/home/u/.docker/config.json", .deny),
        (.fsRead, "/home/u/.bash_history", .deny),
        (.fsRead, "/home/u/.mozilla/firefox/x.default/cookies.sqlite", .deny),
        (.fsRead, "/home/u/.config/google-chrome/Default/Login Data", .deny),
        (.fsWrite, "/home/u/proj/a.c", .allow),
        (.fsWrite, "/home/u/proj/src/deep/b.swift", .allow),
        (.fsWrite, "/home/u/proj", .allow),
        (.fsWrite, "/home/u/project2/a.c", .deny),
        (.fsWrite, "/home/u/.bashrc", .deny),
        (.fsWrite, "/home/u/.ssh/config", .deny),
        (.fsWrite, "/etc/passwd", .deny),
        (.fsWrite, "/usr/local/bin/evil", .deny),
        (.fsWrite, "/tmp/x", .allow),
        (.fsWrite, "/var/tmp/build/y", .allow),
        (.fsWrite, "/home/u/.cache/pip/wheels/z", .allow),
        (.fsWrite, "/home/u/.cargo/registry/index/x", .allow),
        (.fsWrite, "/home/u/.cargo/bin/cargo", .deny),
        (.fsWrite, "/home/u/go/pkg/mod/github.com/x@v1/y.go", .allow),
        (.fsWrite, "/home/u/.m2/repository/org/x/1.0/x-1.0.jar", .allow),
        (.fsWrite, "/home/u/.m2/wrapper/dists/apache-maven-3.9.6/x/maven.zip", .allow),
        (.fsWrite, "/home/u/.m2/settings.xml", .deny),
        (.fsWrite, "/home/u/.gradle/daemon/8.5/registry.bin", .allow),
        (.fsWrite, "/home/u/.gradle/native/jansi/libjansi.so", .allow),
        (.fsWrite, "/home/u/.gradle/init.d/evil.gradle", .deny),
        (.fsWrite, "/home/u/.gradle/gradle.properties", .deny),
        (.fsWrite, "/home/u/.nuget/packages/newtonsoft.json/13.0.1/x.nupkg", .allow),
        (.fsWrite, "/home/u/.nuget/NuGet/NuGet.Config", .deny),
        (.fsWrite, "/home/u/.pub-cache/hosted/pub.dev/x-1.0/lib/x.dart", .allow),
        (.fsWrite, "/home/u/.cabal/packages/hackage.haskell.org/x.tar.gz", .allow),
        (.fsWrite, "/home/u/.cabal/config", .deny),
        (.fsWrite, "/dev/null", .allow),
        (.fsWrite, "/dev/pts/3", .allow),
        (.fsWrite, "/dev/urandom", .allow),
        (.fsWrite, "/dev/sda", .deny),
        // A process's own thread names and core dump filter; nothing else in /proc (its OOM
        // score would undo the supervisor's floor).
        (.fsWrite, "/proc/4242/comm", .allow),
        (.fsWrite, "/proc/4242/task/4243/comm", .allow),
        (.fsWrite, "/proc/4242/oom_score_adj", .deny),
        (.fsWrite, "/proc/4242/coredump_filter", .allow),
        (.fsWrite, "/proc/4242/oom_adj", .deny),
        (.fsWrite, "/proc/4242/uid_map", .deny),
        (.fsWrite, "/proc/4242/mem", .deny),
        (.fsWrite, "/proc/4242/task/4243/mem", .deny),
        (.fsWrite, "/proc/4242/comm/x", .deny),
        (.fsRead, "/etc/passwd", .allow),
        (.fsRead, "/home/u/proj/README.md", .allow),
        (.exec, "/usr/bin/git", .allow),
        (.exec, "/home/u/.ssh/x", .deny),
        (.netEgress, "169.254.169.254:80", .deny),
        (.netEgress, "[::ffff:169.254.169.254]:80", .deny),
        (.netEgress, "[fd00:ec2::254]:80", .deny),
        (.netEgress, "169.254.170.2:80", .deny),
        (.netEgress, "metadata.google.internal:80", .deny),
        (.netEgress, "140.82.112.3:443", .allow),
        (.netEgress, "[2606:4700::1111]:443", .allow),
        (.netEgress, "unix:/run/user/1000/bus", .allow),
        // Shell start-up: rc files and readline's are read, never written; histories neither.
        (.fsRead, "/home/u/.bashrc", .allow),
        (.fsRead, "/home/u/.profile", .allow),
        (.fsRead, "/home/u/.inputrc", .allow),
        (.fsWrite, "/home/u/.profile", .deny),
        (.fsWrite, "/home/u/.zshrc", .deny),
        (.fsWrite, "/home/u/.config/fish/config.fish", .deny),
        (.fsWrite, "/home/u/.config/systemd/user/x.service", .deny),
        (.fsWrite, "/home/u/.bash_history", .deny),
        (.fsWrite, "/home/u/.python_history", .deny),
        // Version managers: state is readable, shims and the rehash lock aren't writable.
        (.fsRead, "/home/u/.pyenv/version", .allow),
        (.exec, "/home/u/.pyenv/shims/python", .allow),
        (.fsWrite, "/home/u/.pyenv/shims/python", .deny),
        (.fsWrite, "/home/u/.pyenv/shims/.pyenv-shim", .deny),
        (.fsWrite, "/home/u/.nvm/nvm.sh", .deny),
        (.fsWrite, "/tmp/tmp.AbCdEf1234", .allow),
        (.fsWrite, "/var/run/nscd/socket", .allow),
        // Sockets of the user's programs outside the session (connecting is a write).
        (.fsWrite, "/tmp/tmux-1000/default", .deny),
        (.fsWrite, "/tmp/ssh-XXXXabcd1234/agent.4321", .deny),
        (.fsWrite, "/tmp/.X11-unix/X0", .deny),
        (.fsWrite, "/var/tmp/vscode-ipc-0a1b.sock", .deny),
        (.fsWrite, "/tmp/zellij-1000/0.40.1/session", .deny),
        (.fsWrite, "/run/user/1000/bus", .deny),
        (.fsWrite, "/tmp/tmux.conf", .allow),
        (.fsWrite, "/tmp/pytest-of-u/pytest-3/test0/app.sock", .allow),
        (.fsWrite, "/tmp/.s.PGSQL.5432", .allow),
        // less's key files set LESSOPEN; bat's and lazygit's configs name pagers and commands.
        (.fsWrite, "/home/u/.lesskey", .deny),
        (.fsWrite, "/home/u/.config/lesskey", .deny),
        (.fsWrite, "/home/u/.config/bat/config", .deny),
        (.fsWrite, "/home/u/.config/lazygit/config.yml", .deny),
        (.fsWrite, "/home/u/.config/configstore/update-notifier-npm.json", .allow),
    ])
    func decisions(kind: ActionKind, target: String, expected: Decision) {
        let verdict = policy.evaluate(kind, target: target)
        #expect(verdict.decision == expected, "\(kind.name) \(target): \(verdict)")
        #expect(verdict.ruleIndex != nil, "\(kind.name) \(target) fell through to the default")
    }

    @Test("a write escaping $PWD through .. is judged as the cleaned path")
    func dotDotInDefault() throws {
        for (target, rule) in [("/home/u/proj/../.bashrc", "shell-startup"), ("/home/u/proj/../notes.txt", "other-writes")] {
            let verdict = policy.evaluate(.fsWrite, target: target)
            #expect(verdict.decision == .deny, "\(target)")
            let index = try #require(verdict.ruleIndex)
            #expect(policy.rules[index].id == rule, "\(target)")
        }
        let index = try #require(policy.evaluate(.fsWrite, target: "/home/u/proj/../notes.txt").ruleIndex)
        #expect(policy.rules[index].action == .fsWrite && policy.rules[index].targetGlob == nil)
    }

    @Test("start-up files and credentials stay protected when PWD is HOME or HOME is under /tmp")
    func homeInsideWritableTrees() throws {
        for (pwd, home) in [("/home/u", "/home/u"), ("/tmp/h/proj", "/tmp/h"), ("/tmp/h", "/tmp/h")] {
            let p = try Policy.builtInDefault(variables: PolicyVariables(workingDirectory: pwd, home: home))
            for name in [".bashrc", ".profile", ".inputrc", ".bash_history", ".ssh/authorized_keys", ".pyenv/shims/python",
                         ".config/autostart/x.desktop"] {
                #expect(p.evaluate(.fsWrite, target: home + "/" + name).decision == .deny, "\(pwd) \(home) \(name)")
            }
            #expect(p.evaluate(.fsWrite, target: home + "/notes.txt").decision == .allow, "\(pwd) \(home)")
        }
    }

    @Test("every rule has a unique kebab-case id and a reason")
    func idsAndReasons() {
        var seen: Set<String> = []
        for rule in policy.rules {
            let id = rule.id ?? ""
            #expect(!id.isEmpty && id.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "-" }, "rule \(rule.displayID) at \(rule.location)")
            #expect(seen.insert(id).inserted, "duplicate id \(id)")
            #expect(!(rule.reason ?? "").isEmpty, "rule \(rule.displayID) has no reason")
        }
    }

    @Test("abstract sockets of programs outside the session are refused; others are the agent's own")
    func abstractSockets() {
        for target in ["unix:@/tmp/.X11-unix/X0", "unix:@/tmp/dbus-AbCd1234", "unix:@/tmp/.ICE-unix/1234"] {
            let verdict = policy.evaluateEgress(target: target)
            #expect(verdict.decision == .deny, "\(target)")
            #expect(verdict.ruleIndex.map { policy.rules[$0].id } == "outside-abstract-sockets", "\(target)")
        }
        #expect(policy.evaluateEgress(target: "unix:@my-test-server").decision == .allow)
        #expect(policy.evaluateEgress(target: "unix:/tmp/tmux-1000/default").decision == .deny)
        #expect(policy.evaluateEgress(target: "unix:/tmp/lsp.sock").decision == .allow)
    }
}
