import AgentGateCLI

SuperviseCommand.main()
