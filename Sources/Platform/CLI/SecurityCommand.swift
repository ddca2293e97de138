import ArgumentParser
import Foundation
import NIOHTTP1

/// `outpost security ...`: peer authentication and authorization policies.
struct SecurityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "security", abstract: "Peer authentication (mTLS) and authorization policies of the gateway.",
        subcommands: [MutualTLS.self, Authz.self])
}

extension SecurityCommand {
    struct MutualTLS: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "mtls", abstract: "Show or set the peer-authentication mode (platform-wide, per namespace or per service; default PERMISSIVE).",
            discussion: "STRICT: only mutual TLS (a client certificate from the platform's CA on the TLS listener; plaintext gets 403). PERMISSIVE: plaintext, TLS or mutual TLS. DISABLE: no client certificates. The most specific scope wins (service, then namespace, then platform); UNSET removes a namespace's or service's mode.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "STRICT, PERMISSIVE or DISABLE (UNSET for a namespace or service); without it the modes are printed.") var mode: String?
        @Option(name: .shortAndLong, help: "Namespace the mode applies to (default: platform-wide; with --service, default 'default').") var namespace: String?
        @Option(help: "Service the mode applies to.") var service: String?

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
            for scope in current.scopes ?? [] {
                print("  \(scope.service.map { "service \(scope.namespace)/\($0)" } ?? "namespace \(scope.namespace)"): \(scope.mode)")
            }
        }
    }
}

extension SecurityCommand {
    /// `outpost security authz set|list|get|delete`: AuthorizationPolicy resources.
    struct Authz: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "authz", abstract: "Manage authorization policies (Istio's AuthorizationPolicy).",
            subcommands: [Set.self, List.self, Get.self, Delete.self])

        static func path(_ namespace: String, _ name: String? = nil) -> String {
            "/api/v1/namespaces/\(namespace)/authorizationpolicies" + (name.map { "/\($0)" } ?? "")
        }
    }
}

extension SecurityCommand.Authz {
    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or replace an authorization policy.",
            discussion: """
                Either -f FILE with the policy's spec (or a whole resource with metadata and spec; "-" reads \
                standard input), or flags that make a one-rule policy: every flag given must match. \
                Evaluation is Istio's: a matching DENY denies; with no ALLOW policy everything is allowed; \
                otherwise an ALLOW policy must match. Principals are <trust-domain>/ns/<ns>/sa/<name>.
                """)
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace of the policy (outpost-system applies to all namespaces).") var namespace = "default"
        @Argument(help: "Policy name.") var name: String
        @Option(name: .shortAndLong, help: "JSON file with the policy (- for standard input).") var file: String?
        @Option(help: "ALLOW (default), DENY or AUDIT.") var action: String?
        @Option(help: "The service the policy applies to (default: every service of the namespace).") var service: String?
        @Option(name: .customLong("principal"), help: "A caller identity (repeat for more), e.g. outpost.local/ns/default/sa/alice.") var principals: [String] = []
        @Option(name: .customLong("from-namespace"), help: "A caller's namespace (repeat for more).") var fromNamespaces: [String] = []
        @Option(name: .customLong("ip-block"), help: "A source address or CIDR block (repeat for more).") var ipBlocks: [String] = []
        @Option(name: .customLong("method"), help: "A request method (repeat for more).") var methods: [String] = []
        @Option(name: .customLong("path"), help: "A path: exact, prefix* or *suffix (repeat for more).") var paths: [String] = []
        @Option(name: .customLong("host"), help: "A Host (repeat for more).") var hosts: [String] = []
        @Option(name: .customLong("header"), help: "NAME=VALUE: a request header must have the value (repeat for more).") var headers: [String] = []
        @Flag(help: "Log what the policy would deny instead of denying (istio.io/dry-run).") var dryRun = false

        func run() async throws {
            var resource: [String: Any]
            if let file {
                let data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: file)
                guard let data, let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                    throw CLIError("\(file) does not hold a JSON object")
                }
                resource = json["spec"] == nil ? ["spec": json] : json
            } else {
                resource = ["spec": try flagSpec()]
            }
            var metadata = resource["metadata"] as? [String: Any] ?? [:]
            metadata["name"] = name
            metadata["namespace"] = namespace
            if dryRun {
                var annotations = metadata["annotations"] as? [String: String] ?? [:]
                annotations["istio.io/dry-run"] = "true"
                metadata["annotations"] = annotations
            }
            resource["metadata"] = metadata
            let client = try global.client()
            let exists = (try? await client.call(.GET, SecurityCommand.Authz.path(namespace, name))) != nil
            let body = try JSONSerialization.data(withJSONObject: resource)
            let answer = exists
                ? try await client.call(.PUT, SecurityCommand.Authz.path(namespace, name), body: body)
                : try await client.call(.POST, SecurityCommand.Authz.path(namespace), body: body)
            if global.output == .json { return printRaw(answer) }
            print("authorization policy \(namespace)/\(name) \(exists ? "replaced" : "created")")
        }

        private func flagSpec() throws -> [String: Any] {
            var spec: [String: Any] = ["action": (action ?? "ALLOW").uppercased()]
            if let service { spec["selector"] = ["matchLabels": ["serving.knative.dev/service": service]] }
            var rule: [String: Any] = [:]
            var source: [String: Any] = [:]
            if !principals.isEmpty { source["principals"] = principals }
            if !fromNamespaces.isEmpty { source["namespaces"] = fromNamespaces }
            if !ipBlocks.isEmpty { source["ipBlocks"] = ipBlocks }
            if !source.isEmpty { rule["from"] = [["source": source]] }
            var operation: [String: Any] = [:]
            if !methods.isEmpty { operation["methods"] = methods }
            if !paths.isEmpty { operation["paths"] = paths }
            if !hosts.isEmpty { operation["hosts"] = hosts }
            if !operation.isEmpty { rule["to"] = [["operation": operation]] }
            var conditions: [[String: Any]] = []
            for header in headers {
                guard let equals = header.firstIndex(of: "="), equals != header.startIndex else {
                    throw CLIError("--header takes NAME=VALUE, got \(header)")
                }
                conditions.append([
                    "key": "request.headers[\(header[..<equals])]", "values": [String(header[header.index(after: equals)...])],
                ])
            }
            if !conditions.isEmpty { rule["when"] = conditions }
            spec["rules"] = [rule]
            return spec
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the authorization policies of a namespace.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"

        func run() async throws {
            let data = try await global.client().call(.GET, SecurityCommand.Authz.path(namespace))
            if global.output == .json { return printRaw(data) }
            let list = try APIJSON.decoder().decode(ListDTO<DocumentDTO<AuthorizationPolicySpec, NoStatus>>.self, from: data)
            printTable(["NAME", "ACTION", "SERVICE", "RULES", "DRY-RUN"], list.items.map { item in
                [
                    item.metadata.name ?? "", item.spec.action ?? "ALLOW",
                    item.spec.selector?.matchLabels?[serviceSelectorLabel] ?? "*", String(item.spec.rules?.count ?? 0),
                    item.metadata.annotations?[AuthorizationPolicySpec.dryRunAnnotation] ?? "false",
                ]
            })
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show an authorization policy (JSON).")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Policy name.") var name: String

        func run() async throws {
            printRaw(try await global.client().call(.GET, SecurityCommand.Authz.path(namespace, name)))
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete an authorization policy.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Policy name.") var name: String

        func run() async throws {
            _ = try await global.client().call(.DELETE, SecurityCommand.Authz.path(namespace, name))
            print("authorization policy \(namespace)/\(name) deleted")
        }
    }
}
