import AgentGatePolicy
import AgentGateSupervisor
import Foundation
import Glibc
import Synchronization
import Testing

private let amendVariables = PolicyVariables(workingDirectory: "/home/u/proj", home: "/home/u")

/// Loads a policy file the way a session does (fixed variables here).
private let loadPolicy: @Sendable (String) -> Result<PolicyReloadSource.Loaded, PolicyReloadFailure> = { path in
    do throws(PolicyLoadError) {
        return .success(.init(policy: try Policy.load(path: path, variables: amendVariables), sha256: ""))
    } catch {
        return .failure(PolicyReloadFailure(error.description))
    }
}

private func install(_ package: String) -> AskedAction {
    AskedAction(kind: .exec, target: "/usr/bin/npm", argv: ["npm", "install", package])
}

private func decision(_ policy: Policy, _ action: AskedAction) -> Decision {
    let exec = action.kind == .exec ? ExecDetails(argv: action.argv ?? [action.target], programs: [action.target]) : nil
    return policy.decide(action.kind, target: action.target, exec: exec).decision
}

private func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "<missing>" }

private func mode(_ path: String) -> mode_t {
    var status = stat()
    return stat(path, &status) == 0 ? status.st_mode & 0o7777 : 0
}

private let commented = """
    # My policy: comments, blank lines and quoting stay as they are.
    version: 2
    default: {exec: ask, fs_read: allow, fs_write: ask, net_egress: ask}

    rules:
      - id: tools   # plain tools
        match: {action: exec, argv: ["{ls,cat}", "**"]}
        decision: allow
      # installs need a person
      - id: ask-installs
        match: {action: exec, command: "*install*"}
        decision: ask
      - id: no-evil
        match: {action: exec, command: "*npm install evil*"}
        decision: deny
    # the end

    """

@Suite("Saving rules from an ask into policy files")
struct PolicyFileAmenderTests {
    @Test("into the file that holds the ask rule, before it; comments and mode survive")
    func intoTopLevelFile() throws {
        let harness = try Harness()
        let file = try harness.policy(commented)
        chmod(file, 0o640)
        let amender = PolicyFileAmender(policyPath: file, userPolicyPath: harness.path("config/policy.yaml"), load: loadPolicy)
        let policy = try Policy.load(path: file, variables: amendVariables)
        let chalk = install("chalk")
        #expect(decision(policy, chalk) == .ask)
        let preview = amender.preview(chalk, answer: .always(.usual), policy: policy, askRuleIndex: 1)
        #expect(preview.file == file && preview.summary == "exec npm install chalk" && preview.note != nil)
        let amendment = try amender.save(chalk, answer: .always(.usual), policy: policy, askRuleIndex: 1).get()
        #expect(amendment.path == file)
        #expect(amendment.proposal.yaml == preview.yaml)
        let text = read(file)
        // Before the ask rule and the comment that belongs to it.
        #expect(text == commented.replacingOccurrences(
            of: "  # installs need a person\n", with: preview.yaml.map { "  " + $0 + "\n" }.joined() + "  # installs need a person\n"))
        #expect(mode(file) == 0o640)
        let now = amendment.loaded.policy
        #expect(now.rules.map(\.id) == ["tools", "always-npm-install-chalk", "ask-installs", "no-evil"])
        #expect(decision(now, chalk) == .allow)
        #expect(decision(now, install("evil")) == .ask)
        #expect(!FileManager.default.fileExists(atPath: harness.path("config")), "the user's file is not touched")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: harness.dir).filter { $0.hasSuffix(".tmp") }
        #expect(leftovers.isEmpty)
    }

    @Test("an ask from the default goes at the end; Never saves a deny")
    func fromDefault() throws {
        let harness = try Harness()
        let file = try harness.policy(commented)
        let amender = PolicyFileAmender(policyPath: file, userPolicyPath: harness.path("config/policy.yaml"), load: loadPolicy)
        let policy = try Policy.load(path: file, variables: amendVariables)
        let write = AskedAction(kind: .fsWrite, target: "/home/u/proj/build/out.o")
        let amendment = try amender.save(write, answer: .never(.directory), policy: policy, askRuleIndex: nil).get()
        #expect(amendment.proposal.summary == "fs_write /home/u/proj/build/**")
        #expect(read(file).hasSuffix("    decision: deny\n" + amendment.proposal.yaml.map { "  " + $0 + "\n" }.joined() + "# the end\n"))
        #expect(decision(amendment.loaded.policy, AskedAction(kind: .fsWrite, target: "/home/u/proj/build/x/y")) == .deny)
        #expect(decision(amendment.loaded.policy, AskedAction(kind: .fsWrite, target: "/home/u/proj/src/a")) == .ask)
    }

    @Test("an ask rule from an included file: included files are never edited")
    func fromIncludedFile() throws {
        let harness = try Harness()
        try harness.write("base.yaml", "version: 2\nrules:\n  - {id: ask-exec, match: {action: exec}, decision: ask}\n")
        let baseBefore = read(harness.path("base.yaml"))
        let top = try harness.policy("version: 2\ninclude: [base.yaml]\nrules:\n  - {match: {action: fs_read}, decision: allow}\n")
        let policy = try Policy.load(path: top, variables: amendVariables)
        let chalk = install("chalk")

        // The top-level file is the user's own: its own rules come before the included ones.
        let own = PolicyFileAmender(policyPath: top, userPolicyPath: top, load: loadPolicy)
        let saved = try own.save(chalk, answer: .always(.usual), policy: policy, askRuleIndex: 1).get()
        #expect(saved.path == top)
        #expect(read(harness.path("base.yaml")) == baseBefore)
        #expect(saved.loaded.policy.rules.map(\.id) == [nil, "always-npm-install", "ask-exec"])

        // A policy named with --policy: the rule goes into the user's file, created to include it.
        let harness2 = try Harness()
        try harness2.write("base.yaml", "version: 2\nrules:\n  - {id: ask-exec, match: {action: exec}, decision: ask}\n")
        let top2 = try harness2.policy("version: 2\ninclude: [base.yaml]\nrules: []\n")
        let topBefore = read(top2)
        let user = harness2.path("config/agentgate/policy.yaml")
        let named = PolicyFileAmender(policyPath: top2, userPolicyPath: user, load: loadPolicy)
        let policy2 = try Policy.load(path: top2, variables: amendVariables)
        #expect(named.preview(chalk, answer: .always(.usual), policy: policy2, askRuleIndex: 0).file == user)
        let created = try named.save(chalk, answer: .always(.usual), policy: policy2, askRuleIndex: 0).get()
        #expect(created.path == user)
        #expect(read(top2) == topBefore)
        #expect(read(user).contains("include: [\(YAMLScalar.quoted(top2))]"))
        #expect(mode(user) == 0o600 && mode(harness2.path("config/agentgate")) == 0o700)
        #expect(created.loaded.policy.rules.map(\.id) == ["always-npm-install", "ask-exec"])
        #expect(decision(created.loaded.policy, chalk) == .allow)
        #expect(decision(created.loaded.policy, AskedAction(kind: .exec, target: "/usr/bin/ls", argv: ["ls"])) == .ask)

        // A second save lands in the same file, which now includes the policy in force.
        let curl = AskedAction(kind: .exec, target: "/usr/bin/curl", argv: ["curl", "-s", "x"])
        let second = try named.save(curl, answer: .never(.exact), policy: policy2, askRuleIndex: 0).get()
        #expect(second.path == user)
        #expect(second.loaded.policy.rules.map(\.id) == ["always-npm-install", "never-curl-s-x", "ask-exec"])
        #expect(decision(second.loaded.policy, curl) == .deny)

        // An answer the rules before it already decide otherwise is refused: the file stays.
        let userBefore = read(user)
        let lodash = named.save(install("lodash"), answer: .never(.exact), policy: policy2, askRuleIndex: 0)
        guard case .failure(let failure) = lodash else { Issue.record("saved a rule that can't apply"); return }
        #expect(failure.message.contains("would still decide allow"), "\(failure)")
        #expect(read(user) == userBefore)
    }

    @Test("the built-in policy: the user's file includes it by name")
    func fromBuiltIn() throws {
        let harness = try Harness()
        let user = harness.path("config/agentgate/policy.yaml")
        let amender = PolicyFileAmender(policyPath: nil, userPolicyPath: user, load: loadPolicy)
        let builtIn = try Policy.builtInDefault(variables: amendVariables)
        // The built-in policy asks nothing itself; the answer is saved all the same.
        let action = install("left-pad")
        #expect(decision(builtIn, action) == .allow)
        let amendment = try amender.save(action, answer: .never(.usual), policy: builtIn, askRuleIndex: nil).get()
        #expect(amendment.path == user)
        #expect(read(user).contains("include: [\"agentgate:default\"]"))
        let now = amendment.loaded.policy
        #expect(now.files == [user], "the built-in policy is no file to watch or protect")
        #expect(now.rules.count == builtIn.rules.count + 1)
        #expect(decision(now, action) == .deny)
        #expect(decision(now, install("chalk")) == .deny)
        #expect(decision(now, AskedAction(kind: .exec, target: "/usr/bin/ls", argv: ["ls"])) == .allow)
        let key = AskedAction(kind: .fsRead, target: "/home/u/.ssh/id_rsa")
        #expect(decision(now, key) == decision(builtIn, key))
    }

    @Test("a user's file that doesn't build on the policy in force is left alone")
    func unrelatedUserFile() throws {
        let harness = try Harness()
        try harness.write("mine.yaml", "rules: []\n")
        let top = try harness.policy("version: 2\ninclude: [base.yaml]\nrules: []\n")
        try harness.write("base.yaml", "rules:\n  - {match: {action: exec}, decision: ask}\n")
        let amender = PolicyFileAmender(policyPath: top, userPolicyPath: harness.path("mine.yaml"), load: loadPolicy)
        let policy = try Policy.load(path: top, variables: amendVariables)
        let result = amender.save(install("chalk"), answer: .always(.usual), policy: policy, askRuleIndex: 0)
        guard case .failure(let failure) = result else { Issue.record("saved into an unrelated file"); return }
        #expect(failure.message.contains("does not include it"), "\(failure)")
        #expect(read(harness.path("mine.yaml")) == "rules: []\n")
    }

    @Test("a broken file on disk, and a rule that would not decide as answered, are refused untouched")
    func refusals() throws {
        let harness = try Harness()
        let file = try harness.policy(commented)
        let policy = try Policy.load(path: file, variables: amendVariables)
        try harness.write("policy.yaml", "rules:\n  - {decision: maybe}\n")
        let amender = PolicyFileAmender(policyPath: file, userPolicyPath: harness.path("u.yaml"), load: loadPolicy)
        let broken = amender.save(install("chalk"), answer: .always(.usual), policy: policy, askRuleIndex: 1)
        guard case .failure(let failure) = broken else { Issue.record("saved into a broken file"); return }
        #expect(failure.message.contains("does not load") && failure.message.contains("maybe"), "\(failure)")
        #expect(read(file) == "rules:\n  - {decision: maybe}\n")

        // A unix socket is also a write to its path: allowing the connection can't override that deny.
        let socketPolicy = "version: 2\ndefault: ask\nrules:\n  - {match: {action: fs_write, target_glob: \"/run/**\"}, decision: deny}\n"
        try harness.write("policy.yaml", socketPolicy)
        let loaded = try Policy.load(path: file, variables: amendVariables)
        let socket = AskedAction(kind: .netEgress, target: "unix:/run/docker.sock")
        let refused = amender.save(socket, answer: .always(.usual), policy: loaded, askRuleIndex: nil)
        guard case .failure(let why) = refused else { Issue.record("saved a rule that can't work"); return }
        #expect(why.message.contains("would still decide deny"), "\(why)")
        #expect(read(file) == socketPolicy)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: harness.dir).filter { $0.hasSuffix(".tmp") }
        #expect(leftovers.isEmpty)
    }

    @Test("a file the user can't write is not edited")
    func readOnlyFile() throws {
        let harness = try Harness()
        let file = try harness.policy(commented)
        chmod(file, 0o444)
        let user = harness.path("config/policy.yaml")
        let amender = PolicyFileAmender(policyPath: file, userPolicyPath: user, load: loadPolicy)
        let policy = try Policy.load(path: file, variables: amendVariables)
        let amendment = try amender.save(install("chalk"), answer: .always(.exact), policy: policy, askRuleIndex: 1).get()
        if getuid() == 0 {
            // Root may write any file: the file in force is edited (and stays read-only).
            #expect(amendment.path == file && mode(file) == 0o444)
        } else {
            #expect(amendment.path == user)
            #expect(read(file) == commented)
            #expect(read(user).contains("include: [\(YAMLScalar.quoted(file))]"))
        }
        #expect(decision(amendment.loaded.policy, install("chalk")) == .allow)
    }

    @Test("the ask rule is found again in a file that changed since it was loaded")
    func changedFile() throws {
        let harness = try Harness()
        let file = try harness.policy("rules:\n  - match: {action: exec, target_glob: \"*install*\"}\n    decision: ask\n")
        let policy = try Policy.load(path: file, variables: amendVariables)
        try harness.write("policy.yaml", "rules:\n  - {match: {action: fs_read}, decision: allow}\n"
                            + "  - match: {action: exec, target_glob: \"*install*\"}\n    decision: ask\n")
        let amender = PolicyFileAmender(policyPath: file, userPolicyPath: harness.path("u.yaml"), load: loadPolicy)
        let amendment = try amender.save(install("chalk"), answer: .always(.usual), policy: policy, askRuleIndex: 0).get()
        #expect(amendment.remark == nil)
        #expect(amendment.loaded.policy.rules.map { $0.decision } == [.allow, .allow, .ask])
        #expect(amendment.loaded.policy.rules[1].id == "always-npm-install")
    }

    @Test("concurrent saves into one file all land")
    func concurrentSaves() throws {
        let harness = try Harness()
        let file = try harness.policy(commented)
        let policy = try Policy.load(path: file, variables: amendVariables)
        let amender = PolicyFileAmender(policyPath: file, userPolicyPath: harness.path("u.yaml"), load: loadPolicy)
        let packages = (0..<8).map { "pkg\($0)" }
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: packages.count) { index in
            // Each answers Never on its own package (exact), from the same stale policy.
            if case .failure(let failure) = amender.save(install(packages[index]), answer: .never(.exact), policy: policy,
                                                         askRuleIndex: 1) {
                failures.withLock { $0.append(failure.message) }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty)
        let final = try Policy.load(path: file, variables: amendVariables)
        #expect(final.rules.count == 3 + packages.count)
        for package in packages { #expect(decision(final, install(package)) == .deny, "\(package)") }
        #expect(read(file).hasPrefix("# My policy: comments, blank lines and quoting stay as they are.\n"))
    }
}

@Suite("Saving rules from an ask: symlinked policy files")
struct PolicyFileAmenderLinkTests {
    @Test("a symlinked policy file is edited where it lives; the link stays")
    func symlinked() throws {
        let harness = try Harness()
        try FileManager.default.createDirectory(atPath: harness.path("real"), withIntermediateDirectories: true)
        try harness.write("real/policy.yaml", "rules:\n  - {match: {action: exec}, decision: ask}\n")
        symlink(harness.path("real/policy.yaml"), harness.path("link.yaml"))
        let link = harness.path("link.yaml")
        let policy = try Policy.load(path: link, variables: amendVariables)
        let amender = PolicyFileAmender(policyPath: link, userPolicyPath: harness.path("u.yaml"), load: loadPolicy)
        let amendment = try amender.save(install("chalk"), answer: .always(.usual), policy: policy, askRuleIndex: 0).get()
        #expect(amendment.path == link)
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: link)) == harness.path("real/policy.yaml"))
        #expect(read(harness.path("real/policy.yaml")).contains("always-npm-install"))
        #expect(decision(amendment.loaded.policy, install("chalk")) == .allow)
    }
}

@Suite("Saving rules from an ask: edits made meanwhile")
struct PolicyFileAmenderRaceTests {
    @Test("a file edited between reading and renaming is read again; both edits land")
    func editedMeanwhile() throws {
        let harness = try Harness()
        let file = try harness.policy(commented)
        let edits = Mutex(0)
        // Stands in for a person saving the file in an editor while the rule is being checked.
        let racingLoad: @Sendable (String) -> Result<PolicyReloadSource.Loaded, PolicyReloadFailure> = { path in
            if path.hasSuffix(".tmp"), edits.withLock({ count in count += 1; return count == 1 }) {
                try? (commented + "# edited meanwhile\n").write(toFile: file, atomically: false, encoding: .utf8)
            }
            return loadPolicy(path)
        }
        let amender = PolicyFileAmender(policyPath: file, userPolicyPath: harness.path("u.yaml"), load: racingLoad)
        let policy = try Policy.load(path: file, variables: amendVariables)
        let amendment = try amender.save(install("chalk"), answer: .always(.exact), policy: policy, askRuleIndex: 1).get()
        #expect(edits.withLock { $0 } == 2, "checked twice: once before the edit was seen, once after")
        let text = read(file)
        #expect(text.hasSuffix("# the end\n# edited meanwhile\n"))
        #expect(text.contains("always-npm-install-chalk"))
        #expect(decision(amendment.loaded.policy, install("chalk")) == .allow)
    }
}

extension PolicyFileAmenderRaceTests {
    @Test("another process holding the lock is waited for")
    func lockHeldByAnotherProcess() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/flock") else { return }
        let harness = try Harness()
        let file = try harness.policy(commented)
        let lockFile = harness.path(".policy.yaml.lock")
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        holder.arguments = ["-x", lockFile, "-c", "echo held; read line"]
        let input = Pipe(), output = Pipe()
        holder.standardInput = input
        holder.standardOutput = output
        try holder.run()
        // "held" is printed once the other process has the lock.
        let announced = output.fileHandleForReading.availableData
        #expect(String(decoding: announced, as: UTF8.self).hasPrefix("held"))

        let amender = PolicyFileAmender(policyPath: file, userPolicyPath: harness.path("u.yaml"), load: loadPolicy)
        let policy = try Policy.load(path: file, variables: amendVariables)
        let finished = DispatchSemaphore(value: 0)
        let outcome = Mutex<Result<PolicyAmendment, PolicyAmendFailure>?>(nil)
        Thread.detachNewThread {
            let result = amender.save(install("chalk"), answer: .always(.exact), policy: policy, askRuleIndex: 1)
            outcome.withLock { $0 = result }
            finished.signal()
        }
        #expect(read(file) == commented, "nothing is written while the other process holds the lock")
        try input.fileHandleForWriting.close()
        holder.waitUntilExit()
        #expect(finished.wait(timeout: .now() + 30) == .success)
        let result = try #require(outcome.withLock { $0 })
        #expect(throws: Never.self) { try result.get() }
        #expect(read(file).contains("always-npm-install-chalk"))
    }
}
