import ArgumentParser
import Foundation
import NIOHTTP1

/// `outpost security ...`: peer authentication.
struct SecurityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "security", abstract: "Peer authentication (mTLS) of the gateway.", subcommands: [MutualTLS.self])
}

extension SecurityCommand {
    struct MutualTLS: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "mtls", abstract: "Show or set the peer-authentication mode (platform-wide; default PERMISSIVE).",
            discussion: "STRICT: only mutual TLS (a client certificate from the platform's CA on the TLS listener; plaintext gets 403). PERMISSIVE: plaintext, TLS or mutual TLS. DISABLE: no client certificates.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "STRICT, PERMISSIVE or DISABLE; without it the current mode is printed.") var mode: String?
        @Option(name: .shortAndLong, help: "Namespace the mode applies to (not supported yet).") var namespace: String?
        @Option(help: "Service the mode applies to (not supported yet).") var service: String?

        func run() async throws {
            let client = try global.client()
            let data: Data
            if let mode {
                let body = MutualTLSDTO(mode: mode, namespace: namespace, service: service)
                data = try await client.call(.PUT, "/api/v1/security/mtls", body: try APIJSON.encoder().encode(body))
            } else {
                data = try await client.call(.GET, "/api/v1/security/mtls")
            }
            if global.output == .json { return printRaw(data) }
            let current = try APIJSON.decoder().decode(MutualTLSDTO.self, from: data)
            print("peer authentication: \(current.mode)")
        }
    }
}
