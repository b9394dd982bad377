import AgentGateSupervisor
import ArgumentParser

/// `agentgate syscalls`: what the supervisor does with each syscall, and why.
struct SyscallsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "syscalls",
        abstract: "List every syscall with its route under supervision (passes, decided, emulated, denied) and why.")

    @Flag(help: "Print the table as Markdown (docs/syscalls.md).") var markdown = false
    @Option(help: "Only syscalls on this route.") var route: String?
    @Argument(help: "Only these syscalls, by name.") var names: [String] = []

    func validate() throws {
        if let route, SyscallCatalog.Route(rawValue: route) == nil {
            throw ValidationError("--route must be one of: \(SyscallCatalog.Route.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() throws {
        if markdown {
            print(SyscallCatalog.markdown(), terminator: "")
            return
        }
        var entries = SyscallCatalog.entries()
        if let route { entries = entries.filter { $0.route.rawValue == route } }
        if !names.isEmpty {
            let unknown = names.filter { name in !entries.contains { $0.name == name } }
            if !unknown.isEmpty {
                printError("no such syscall on x86_64: \(unknown.joined(separator: ", "))", tool: "agentgate")
                throw ExitCode(2)
            }
            entries = entries.filter { names.contains($0.name) }
        }
        for entry in entries {
            let when = entry.condition.map { " (\($0))" } ?? ""
            print("\(entry.number)\t\(entry.name)\t\(entry.route.rawValue)\(when)\t\(entry.why)")
        }
    }
}
