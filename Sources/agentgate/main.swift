import AgentGateCLI
import AgentGateServer
import Foundation

// One binary for both commands (the Debian package ships /usr/bin/agentgate-supervise as a
// symlink to /usr/bin/agentgate): the name it was run by picks the command.
let invokedName = CommandLine.arguments.first.map { URL(fileURLWithPath: $0).lastPathComponent }
if invokedName == "agentgate-supervise" {
    SuperviseCommand.mainWithUsageErrorsExitingTwo()
} else {
    HookRunner.runIfPlainHook(Array(CommandLine.arguments.dropFirst()))
    AgentGateServingCommand.mainWithUsageErrorsExitingTwo()
}
