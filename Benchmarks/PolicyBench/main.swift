// Policy engine throughput: decisions per second on one core for a generated 200-rule policy.
//
//   swift run -c release agentgate-policy-bench [--rules 200] [--seconds 2] [--v1] [--load-only]
//
// The policy mixes what real policies hold: path rules with literal prefixes and `**`,
// basename exec rules, argv and command rules, host, CIDR and port rules, and a few `when:`
// conditions. Targets are a mix that hits early rules, late rules and the default. Exec
// details and the process context are built once per target, as the supervisor builds them
// once per syscall. Nothing is allocated per decision for path and network targets.
// `--v1` drops `version: 2`, so exec target_globs are also matched against command lines, as in
// agentgate v1 files.
// Load time: the median time to parse and compile the built-in policy and the generated one (what
// `agentgate hook` and the supervisor's start-up pay once); `--load-only` prints only that.
import AgentGatePolicy
import Foundation

var ruleCount = 200
var seconds = 2.0
var version1 = false
var loadOnly = false
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--rules": ruleCount = Int(arguments.popFirst() ?? "") ?? ruleCount
    case "--seconds": seconds = Double(arguments.popFirst() ?? "") ?? seconds
    case "--v1": version1 = true
    case "--load-only": loadOnly = true
    default:
        FileHandle.standardError.write(Data("usage: agentgate-policy-bench [--rules N] [--seconds S] [--v1] [--load-only]\n".utf8))
        exit(2)
    }
}

var yaml = (version1 ? "" : "version: 2\n") + "default: {exec: allow, fs_read: allow, fs_write: deny, net_egress: deny}\nrules:\n"
var index = 0
@MainActor func add(_ rule: String) {
    guard index < ruleCount else { return }
    yaml += rule
    index += 1
}
let tools = ["git", "npm", "cargo", "python3", "make", "gcc", "node", "curl", "wget", "ssh"]
while index < ruleCount {
    let n = index
    switch n % 10 {
    case 0: add("  - match: {action: fs_read, target_glob: \"$HOME/.secret\(n)/**\"}\n    decision: deny\n")
    case 1: add("  - match: {action: fs_write, target_glob: \"/srv/data\(n)/**\"}\n    decision: allow\n")
    case 2: add("  - match: {action: [fs_read, fs_write], target_glob: \"/etc/app\(n)/*.conf\"}\n    decision: deny\n")
    case 3: add("  - match: {action: net_egress, target_glob: \"*.svc\(n).example.com\", ports: 443}\n    decision: allow\n")
    case 4: add("  - match: {action: net_egress, cidr: \"10.\(n % 250).0.0/16\"}\n    decision: deny\n")
    case 5: add("  - match: {action: exec, target_glob: \"/opt/tool\(n)/bin/*\"}\n    decision: deny\n")
    case 6: add("  - match: {action: exec, argv: [\(tools[n / 10 % tools.count]), \"sub\(n)\", \"**\"]}\n    decision: log\n")
    case 7: add("  - match: {action: exec, command: \"\(tools[n / 10 % tools.count]) --flag\(n) *\"}\n    decision: deny\n")
    case 8: add("  - match: {action: fs_read, target_glob: \"/var/lib/app\(n)/**\"}\n    when: {uid: 0}\n    decision: deny\n")
    default: add("  - match: {action: fs_write, target_glob: \"$HOME/.cache/tool\(n)/**\"}\n    decision: allow\n")
    }
}
// The rules real policies end with.
yaml += """
  - match: {action: fs_write, target_glob: "$PWD/**"}
    decision: allow
    scope: $PWD
  - match: {action: net_egress, target_glob: "registry.npmjs.org", ports: 443}
    decision: allow

"""
let variables = PolicyVariables(workingDirectory: "/home/dev/project", home: "/home/dev")
let policy: Policy
do {
    policy = try Policy.parse(yaml: yaml, source: "bench.yaml", variables: variables)
} catch {
    FileHandle.standardError.write(Data("bench policy failed to load: \(error)\n".utf8))
    exit(1)
}

/// Median microseconds of `body` over `runs` runs (after one untimed run).
func medianMicros(runs: Int, _ body: () throws -> Void) rethrows -> Double {
    try body()
    var times: [UInt64] = []
    for _ in 0..<runs {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        times.append(DispatchTime.now().uptimeNanoseconds - t0)
    }
    times.sort()
    return Double(times[times.count / 2]) / 1000
}
do {
    let builtIn = try Policy.builtInDefault(variables: variables)
    let builtInMicros = try medianMicros(runs: 50) { _ = try Policy.builtInDefault(variables: variables) }
    let generatedMicros = try medianMicros(runs: 50) { _ = try Policy.parse(yaml: yaml, source: "bench.yaml", variables: variables) }
    print(String(format: "load: built-in policy (%d rules) %.0f µs, generated policy (%d rules) %.0f µs (medians of 50 loads)",
                 builtIn.rules.count, builtInMicros, policy.rules.count, generatedMicros))
} catch {
    FileHandle.standardError.write(Data("the built-in policy failed to load: \(error)\n".utf8))
    exit(1)
}
if loadOnly { exit(0) }

struct Input {
    var kind: ActionKind
    var target: [UInt8]
    var exec: ExecDetails?
}
let context = ProcessContext(uid: 1000, gid: 1000, cgroup: "/user.slice", executable: "/usr/bin/bash")
let inputs: [Input] = [
    Input(kind: .fsRead, target: Array("/usr/lib/x86_64-linux-gnu/libc.so.6".utf8)),
    Input(kind: .fsRead, target: Array("/home/dev/project/src/main.swift".utf8)),
    Input(kind: .fsRead, target: Array("/home/dev/.secret150/key".utf8)),
    Input(kind: .fsRead, target: Array("/var/lib/app188/state".utf8)),
    Input(kind: .fsWrite, target: Array("/home/dev/project/.build/debug/x.o".utf8)),
    Input(kind: .fsWrite, target: Array("/home/dev/.cache/tool199/blob".utf8)),
    Input(kind: .fsWrite, target: Array("/etc/passwd".utf8)),
    Input(kind: .netEgress, target: Array("registry.npmjs.org:443".utf8)),
    Input(kind: .netEgress, target: Array("10.12.3.4:5432".utf8)),
    Input(kind: .netEgress, target: Array("api.svc183.example.com:443".utf8)),
    Input(kind: .exec, target: Array("/usr/bin/git".utf8), exec: ExecDetails(argv: ["git", "status"])),
    Input(kind: .exec, target: Array("/usr/bin/npm".utf8), exec: ExecDetails(argv: ["npm", "install", "left-pad"])),
]

if ProcessInfo.processInfo.environment["DEBUG_DETAILS"] != nil {
    for input in inputs { if let e = input.exec { print(e.analysis.commands, e.analysis.pipelines) } }
}
var contextSource = KnownProcessContext(context)
var checksum = 0
// Warm up, then time whole passes over the inputs.
for input in inputs {
    checksum &+= Int(input.target.withUnsafeBufferPointer {
        policy.evaluate(input.kind, utf8: $0, exec: input.exec, contextSource: &contextSource)
    }.decision.rawValue)
}
var decisions = 0
let start = DispatchTime.now().uptimeNanoseconds
let deadline = start + UInt64(seconds * 1e9)
var now = start
while now < deadline {
    for _ in 0..<1000 {
        for input in inputs {
            let verdict = input.target.withUnsafeBufferPointer {
                policy.evaluate(input.kind, utf8: $0, exec: input.exec, contextSource: &contextSource)
            }
            checksum &+= Int(verdict.decision.rawValue)
        }
    }
    decisions += 1000 * inputs.count
    now = DispatchTime.now().uptimeNanoseconds
}
let elapsed = Double(now - start) / 1e9
let rate = Double(decisions) / elapsed
print("policy: \(policy.rules.count) rules\(version1 ? " (v1: exec globs also match command lines)" : ""); targets: \(inputs.count) (fs_read, fs_write, net_egress, exec with argv)")
print(String(format: "decisions: %d in %.2f s on one thread = %.2f M decisions/s (%.0f ns each)",
             decisions, elapsed, rate / 1e6, 1e9 / rate))
// Per-target cost, to see where time goes.
if CommandLine.arguments.contains("--per-target") || ProcessInfo.processInfo.environment["PER_TARGET"] != nil {
    for input in inputs {
        let t0 = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<100_000 {
            checksum &+= Int(input.target.withUnsafeBufferPointer {
                policy.evaluate(input.kind, utf8: $0, exec: input.exec, contextSource: &contextSource)
            }.decision.rawValue)
        }
        let ns = Double(DispatchTime.now().uptimeNanoseconds - t0) / 100_000
        print(String(format: "  %-10@ %-45@ %6.0f ns", input.kind.name as NSString,
                     String(decoding: input.target, as: UTF8.self) as NSString, ns))
    }
}
print("checksum \(checksum)")
