import AgentGateCLI
import AgentGateSupervisor

// First, while there is one thread: later the session's hook fd would cost an RCU grace period.
DescriptorTable.growWhileSingleThreaded()
SuperviseCommand.mainWithUsageErrorsExitingTwo()
