import ArgumentParser
import Foundation
import NIOHTTP1
import Store

/// `outpost token ...`: admin API tokens.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Create, list and revoke admin API tokens.", subcommands: [Create.self, List.self, Revoke.self])
}

extension TokenCommand {
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token; it is printed once (only its hash is kept).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Who the token is for (DNS-1035); it names the caller in the audit log.") var name: String

        func run() async throws {
            let body = try JSONEncoder().encode(["name": name])
            let data = try await global.client().call(.POST, "/api/v1/tokens", body: body)
            if global.output == .json { return printRaw(data) }
            let created = try APIJSON.decoder().decode(NewTokenDTO.self, from: data)
            print(created.token)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens (names and dates, never secrets).")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let data = try await global.client().call(.GET, "/api/v1/tokens")
            if global.output == .json { return printRaw(data) }
            let list = try APIJSON.decoder().decode(ListDTO<AdminToken>.self, from: data)
            printTable(["NAME", "CREATED", "REVOKED"], list.items.map { token in
                [token.name, token.createdAt.formatted(Date.ISO8601FormatStyle()),
                 token.revokedAt.map { $0.formatted(Date.ISO8601FormatStyle()) } ?? ""]
            })
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token; calls with it get 403 from now on.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The token's name.") var name: String

        func run() async throws {
            let data = try await global.client().call(.DELETE, "/api/v1/tokens/\(name)")
            if global.output == .json { return printRaw(data) }
            print("token \(name) revoked")
        }
    }
}
