import ArgumentParser
import NIOHTTP1
import Foundation

/// `outpost policy set|get|delete SERVICE`: a service's traffic policy (Istio VirtualService
/// `http` rules, local rate limit and DestinationRule `trafficPolicy`), as JSON.
struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Manage a service's traffic policy: retries, timeouts, faults, mirroring, rate limit, outlier detection.",
        subcommands: [Set.self, Get.self, Delete.self])

    static func path(_ namespace: String, _ name: String) -> String {
        "/api/v1/namespaces/\(namespace)/trafficpolicies/\(name)"
    }

    /// `outpost policy set SERVICE -f policy.json`.
    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or replace the traffic policy of a service.",
            discussion: """
                The file holds the policy's spec ({"http": [...], "rateLimit": {...}, "trafficPolicy": {...}}) \
                or a whole resource ({"metadata": {...}, "spec": {...}}); "-" reads standard input. \
                Field names and defaults are Istio's; see README.md.
                """)
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Service name.") var name: String
        @Option(name: .shortAndLong, help: "JSON file with the policy (- for standard input).") var file: String

        func run() async throws {
            let data: Data
            if file == "-" {
                data = FileHandle.standardInput.readDataToEndOfFile()
            } else {
                guard let contents = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
                data = contents
            }
            guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw CLIError("\(file) does not hold a JSON object")
            }
            let body = json["spec"] == nil ? ["spec": json] : json
            let client = try global.client()
            let answer = try await client.call(
                .PUT, PolicyCommand.path(namespace, name), body: try JSONSerialization.data(withJSONObject: body))
            printRaw(answer)
        }
    }

    /// `outpost policy get SERVICE`.
    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the traffic policy of a service (JSON).")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Service name.") var name: String

        func run() async throws {
            printRaw(try await global.client().call(.GET, PolicyCommand.path(namespace, name)))
        }
    }

    /// `outpost policy delete SERVICE`.
    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove the traffic policy of a service (back to the defaults).")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Service name.") var name: String

        func run() async throws {
            _ = try await global.client().call(.DELETE, PolicyCommand.path(namespace, name))
            print("traffic policy \(namespace)/\(name) deleted")
        }
    }
}
