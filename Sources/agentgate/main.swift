import AgentGateCLI

AgentGateCommand.main()
