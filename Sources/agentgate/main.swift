import AgentGateCLI
import AgentGateServer
import AgentGateSupervisor
import Foundation

// One binary for both commands (the Debian package ships /usr/bin/agentgate-supervise as a
// symlink to /usr/bin/agentgate): the name it was run by picks the command. The last path
// component without Foundation's URL, whose first use costs a hook run about 0.2 ms.
let invokedName = CommandLine.arguments.first.map { $0.split(separator: "/", omittingEmptySubsequences: true).last.map(String.init) ?? $0 }
if invokedName == "agentgate-supervise" {
    // First, while there is one thread: later the session's hook fd would cost an RCU grace period.
    DescriptorTable.growWhileSingleThreaded()
    SuperviseCommand.mainWithUsageErrorsExitingTwo()
} else {
    HookRunner.runIfPlainHook(Array(CommandLine.arguments.dropFirst()))
    AgentGateServingCommand.mainWithUsageErrorsExitingTwo()
}
