import ArgumentParser

/// `outpost`: the daemon (`outpost serve`) and the CLI that talks to it.
@main
struct Outpost: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outpost",
        abstract: "Serverless revisions, an ingress gateway and scale to zero in one binary.",
        subcommands: [ServeCommand.self, ServiceCommand.self, RevisionCommand.self, PolicyCommand.self, ModelCommand.self, CertCommand.self, SecurityCommand.self, TokenCommand.self,
                      BrokerCommand.self, TriggerCommand.self, PingSourceCommand.self, EventCommand.self, DeadLetterCommand.self])
}
