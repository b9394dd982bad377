// swift-tools-version:6.1
import PackageDescription

// Module arrows point one way: executables -> CLI -> (Supervisor, Reports) -> (Policy, Store) -> nothing of ours.

// AGENTGATE_FUZZ=LIBFUZZER_NO_MAIN_ARCHIVE (scripts/fuzz.sh) builds agentgate-fuzz as a libFuzzer
// binary: only the modules it fuzzes are instrumented, so the build reuses every dependency's
// objects. It links libFuzzer without its main (the executable's own main runs the driver).
let fuzzLibrary = Context.environment["AGENTGATE_FUZZ"] ?? ""
let fuzzing = !fuzzLibrary.isEmpty
// Optimized unless AGENTGATE_FUZZ_OPTIMIZE=0 (CI's short run, where compile time dominates):
// unoptimized Swift under ASan runs only a few hundred inputs a second.
let fuzzOptimize = Context.environment["AGENTGATE_FUZZ_OPTIMIZE"] != "0"
let fuzzFlags: [SwiftSetting] = fuzzing ? [.unsafeFlags(["-sanitize=fuzzer,address"] + (fuzzOptimize ? ["-O"] : []))] : []

let package = Package(
    name: "AgentGate",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "agentgate-supervise", targets: ["agentgate-supervise"]),
        .executable(name: "agentgate", targets: ["agentgate"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0"),
        // agentgate serve only: keep them out of every other module (build time).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0", traits: []),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.0.0"),
    ],
    targets: [
        // Syscall-level work: spawn under the filter, notification ioctls, target memory, emulation.
        .target(
            name: "CSupport",
            path: "CSupport",
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.linkedLibrary("seccomp"), .linkedLibrary("cap")]
        ),
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite"),
        // Pure: no Linux calls. Policy language, globs, host patterns, evaluation.
        .target(
            name: "AgentGatePolicy",
            dependencies: [.product(name: "Yams", package: "Yams")],
            resources: [
                .embedInCode("default.yaml"), .embedInCode("starter.yaml"), .embedInCode("egress-coding-agents.yaml"),
                .embedInCode("deny-private-networks.yaml"), .embedInCode("deny-loopback.yaml"),
            ],
            swiftSettings: fuzzFlags
        ),
        // SQLite audit store and its batched writer.
        .target(
            name: "AgentGateStore",
            dependencies: ["CSQLite", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: fuzzFlags
        ),
        // Linux: the notification loop and one handler per syscall family.
        .target(
            name: "AgentGateSupervisor",
            dependencies: [
                "CSupport", "AgentGatePolicy", "AgentGateStore",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: fuzzFlags
        ),
        // What the audit store says, for people: session reports, evidence packs (JSON, HTML,
        // signatures) and event lines. No argument parsing, so a server can use it too.
        .target(
            name: "AgentGateReports",
            dependencies: ["AgentGateStore", "AgentGatePolicy", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // The two command lines: argument parsing and printing.
        .target(
            name: "AgentGateCLI",
            dependencies: [
                "AgentGateSupervisor", "AgentGateReports", "AgentGatePolicy", "AgentGateStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // `agentgate serve`: the HTTP API, dashboard and metrics over the audit database and the
        // running supervisors' control sockets. Never on the decision path.
        .target(
            name: "AgentGateServer",
            dependencies: [
                "AgentGateCLI", "AgentGateReports", "AgentGateStore", "AgentGatePolicy", "AgentGateSupervisor",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            resources: [.embedInCode("Resources/dashboard.html"), .embedInCode("Resources/openapi.json")]
        ),
        .executableTarget(name: "agentgate-supervise", dependencies: ["AgentGateCLI", "AgentGateSupervisor"]),
        .executableTarget(name: "agentgate", dependencies: ["AgentGateCLI", "AgentGateServer", "AgentGateSupervisor"]),
        // `swift run -c release agentgate-policy-bench`: policy decisions per second.
        .executableTarget(name: "agentgate-policy-bench", dependencies: ["AgentGatePolicy"], path: "Benchmarks/PolicyBench"),
        // `swift run -c release agentgate-store-bench`: events/s through AuditWriter (README).
        .executableTarget(name: "agentgate-store-bench", dependencies: ["AgentGateStore"], path: "Benchmarks/StoreBench"),
        // Fuzz targets for every parser of untrusted input (`make fuzz`, scripts/fuzz.sh builds it
        // with -sanitize=fuzzer,address); the ordinary build replays saved inputs.
        .executableTarget(
            name: "agentgate-fuzz", dependencies: ["AgentGatePolicy", "AgentGateStore", "AgentGateSupervisor"],
            swiftSettings: fuzzFlags + (fuzzing ? [.define("AGENTGATE_LIBFUZZER")] : []),
            linkerSettings: fuzzing ? [.unsafeFlags(["-sanitize=address", "-Xlinker", fuzzLibrary])] : []
        ),
        .testTarget(name: "AgentGatePolicyTests", dependencies: ["AgentGatePolicy"]),
        .testTarget(name: "AgentGateStoreTests", dependencies: ["AgentGateStore"]),
        .testTarget(
            name: "AgentGateCLITests",
            dependencies: [
                "AgentGateCLI", "AgentGateReports", "AgentGateStore", "AgentGateSupervisor",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "AgentGateServerTests",
            dependencies: ["AgentGateServer", "AgentGateStore", "AgentGateSupervisor", "AgentGateCLI"]
        ),
        .testTarget(
            name: "AgentGateSupervisorTests",
            dependencies: ["AgentGateSupervisor", "AgentGateStore", "CSupport"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
