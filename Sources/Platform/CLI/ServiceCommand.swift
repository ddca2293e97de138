import ArgumentParser
import AsyncHTTPClient
import Eventing
import Foundation
import NIOCore
import NIOHTTP1
import Store

/// `outpost service ...`.
struct ServiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "service", abstract: "Create, change, inspect and delete services.",
        subcommands: [Create.self, Update.self, List.self, Get.self, Delete.self, Logs.self, Stop.self, Resume.self, Traffic.self])
}

/// The flags that describe a revision template, shared by `create` and `update`.
struct TemplateOptions: ParsableArguments {
    @Option(help: "Executable to run (an absolute path, a path relative to here, or a name on PATH).")
    var command: String?

    @Option(name: .customLong("arg"), help: "An argument (repeat for more; on update, replaces all arguments).")
    var args: [String] = []

    @Option(name: .customLong("env"), help: "An environment variable K=V (repeat for more).")
    var env: [String] = []

    @Option(help: "A fixed port the workload listens on (default: Outpost picks one and passes it in PORT).")
    var port: Int?

    @Option(help: "Hard limit of concurrent requests per worker (containerConcurrency; 0 = unlimited).")
    var concurrency: Int?

    @Option(name: .customLong("annotation"), help: "A revision annotation K=V, e.g. autoscaling.knative.dev/window=6s (K- removes it on update).")
    var annotations: [String] = []

    @Option(name: .customLong("service-annotation"), help: "A service annotation K=V, e.g. serving.knative.dev/rollout-duration=60s (K- removes it on update).")
    var serviceAnnotations: [String] = []

    @Option(help: "Working directory of the workload.")
    var workingDir: String?

    @Option(help: "HTTP path of the readiness probe (default: a TCP connect to the port).")
    var readinessPath: String?

    @Option(help: "Request timeout in seconds (timeoutSeconds, 1-600).")
    var timeout: Int?

    @Option(help: "Where the workload sends events (SinkBinding): broker:NAME, service:NAME or a URL; passed in K_SINK.")
    var sink: String?

    @Option(name: .customLong("ce-override"), help: "NAME=VALUE: an extension the workload adds to the events it sends (repeatable; passed in K_CE_OVERRIDES).")
    var ceOverrides: [String] = []

    /// Applies the given flags to a template spec, leaving everything else as it is.
    func apply(to spec: inout TemplateSpecDTO, annotations current: inout [String: String]) throws {
        if let command { spec.command = Self.resolve(command: command) }
        if !args.isEmpty { spec.args = args }
        if !env.isEmpty {
            var variables = spec.env ?? []
            for pair in env {
                let (name, value) = try Self.split(pair, option: "--env")
                variables.removeAll { $0.name == name }
                variables.append(EnvVar(name: name, value: value))
            }
            spec.env = variables
        }
        if let port { spec.port = port }
        if let concurrency { spec.containerConcurrency = concurrency }
        if let workingDir { spec.workingDir = workingDir.hasPrefix("/") ? workingDir : FileManager.default.currentDirectoryPath + "/" + workingDir }
        if let readinessPath { spec.readinessProbe = ReadinessProbe(httpGet: .init(path: readinessPath)) }
        if let timeout { spec.timeoutSeconds = timeout }
        if let sink { current[SinkBinding.annotation] = sink }
        if !ceOverrides.isEmpty {
            var extensions: [String: String] = [:]
            for pair in ceOverrides {
                let (name, value) = try Self.split(pair, option: "--ce-override")
                extensions[name] = value
            }
            current[SinkBinding.overridesAnnotation] = CloudEventOverrides(extensions: extensions).environmentValue
        }
        for entry in annotations {
            if entry.hasSuffix("-"), !entry.contains("=") {
                current.removeValue(forKey: String(entry.dropLast()))
            } else {
                let (key, value) = try Self.split(entry, option: "--annotation")
                current[key] = value
            }
        }
    }

    /// Applies `--service-annotation` flags to a service's own annotations.
    func applyServiceAnnotations(to current: inout [String: String]) throws {
        for entry in serviceAnnotations {
            if entry.hasSuffix("-"), !entry.contains("=") {
                current.removeValue(forKey: String(entry.dropLast()))
            } else {
                let (key, value) = try Self.split(entry, option: "--service-annotation")
                current[key] = value
            }
        }
    }

    /// A relative path becomes absolute (the daemon runs elsewhere); a bare name found on this
    /// shell's PATH becomes that file's path; anything else is passed on for the daemon to find.
    static func resolve(command: String) -> String {
        if command.hasPrefix("/") { return command }
        let manager = FileManager.default
        if command.contains("/") { return URL(fileURLWithPath: command).standardizedFileURL.path }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(directory)/\(command)"
            if manager.isExecutableFile(atPath: candidate) { return candidate.hasPrefix("/") ? candidate : URL(fileURLWithPath: candidate).standardizedFileURL.path }
        }
        return command
    }

    static func split(_ pair: String, option: String) throws -> (String, String) {
        guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
            throw CLIError("\(option) takes KEY=VALUE, got \"\(pair)\"")
        }
        return (String(pair[..<equals]), String(pair[pair.index(after: equals)...]))
    }
}

extension ServiceCommand {
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a service; its first revision is NAME-00001.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Service name (DNS-1035: lowercase letters, digits, '-').") var name: String
        @OptionGroup var template: TemplateOptions
        @OptionGroup var wait: WaitOptions

        func validate() throws {
            if template.command == nil { throw ValidationError("--command is required: the executable the service runs") }
        }

        func run() async throws {
            var spec = TemplateSpecDTO(RevisionTemplate(command: ""))
            spec.timeoutSeconds = nil
            spec.containerConcurrency = nil
            spec.args = nil
            spec.env = nil
            var annotations: [String: String] = [:]
            try template.apply(to: &spec, annotations: &annotations)
            var serviceAnnotations: [String: String] = [:]
            try template.applyServiceAnnotations(to: &serviceAnnotations)
            let body = ServiceBody(
                metadata: MetadataDTO(name: name, namespace: namespace, annotations: serviceAnnotations.isEmpty ? nil : serviceAnnotations),
                spec: ServiceSpecDTO(
                    template: TemplateDTO(metadata: annotations.isEmpty ? nil : .init(annotations: annotations), spec: spec),
                    traffic: nil))
            let data = try await global.client().call(.POST, "/api/v1/namespaces/\(namespace)/services", body: try APIJSON.encoder().encode(body))
            try await wait.untilReady(data, client: try global.client(), format: global.output)
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a service; a changed template creates the next revision.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Service name.") var name: String
        @OptionGroup var template: TemplateOptions
        @OptionGroup var wait: WaitOptions

        func run() async throws {
            let client = try global.client()
            let path = "/api/v1/namespaces/\(namespace)/services/\(name)"
            let current = try APIJSON.decoder().decode(ServiceDTO.self, from: try await client.call(.GET, path))
            var spec = current.spec.template.spec
            var annotations = current.spec.template.metadata?.annotations ?? [:]
            try template.apply(to: &spec, annotations: &annotations)
            var serviceAnnotations = current.metadata.annotations ?? [:]
            try template.applyServiceAnnotations(to: &serviceAnnotations)
            let body = ServiceBody(
                metadata: MetadataDTO(
                    name: name, namespace: namespace, resourceVersion: current.metadata.resourceVersion,
                    annotations: serviceAnnotations.isEmpty ? nil : serviceAnnotations),
                spec: ServiceSpecDTO(
                    template: TemplateDTO(metadata: annotations.isEmpty ? nil : .init(annotations: annotations), spec: spec),
                    traffic: current.spec.traffic))
            let data = try await client.call(.PUT, path, body: try APIJSON.encoder().encode(body))
            try await wait.untilReady(data, client: try global.client(), format: global.output)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List services.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"

        func run() async throws {
            let data = try await global.client().call(.GET, "/api/v1/namespaces/\(namespace)/services")
            if global.output == .json { return printRaw(data) }
            let list = try APIJSON.decoder().decode(ListDTO<ServiceDTO>.self, from: data)
            printTable(
                ["NAME", "URL", "LATESTCREATED", "LATESTREADY", "READY", "REASON"],
                list.items.map { service in
                    let ready = service.status?.conditions["Ready"]
                    return [
                        service.metadata.name ?? "", service.status?.url ?? "",
                        service.status?.latestCreatedRevisionName ?? "", service.status?.latestReadyRevisionName ?? "",
                        ready?.status ?? "Unknown", ready?.reason ?? "",
                    ]
                })
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one service.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Service name.") var name: String

        func run() async throws {
            let data = try await global.client().call(.GET, "/api/v1/namespaces/\(namespace)/services/\(name)")
            try printService(data, format: global.output)
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a service with its revisions; its workers stop.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Service name.") var name: String

        func run() async throws {
            let data = try await global.client().call(.DELETE, "/api/v1/namespaces/\(namespace)/services/\(name)")
            if global.output == .json { return printRaw(data) }
            print("service \(namespace)/\(name) deleted")
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Scale a service to zero and hold it there; requests get 503 until resumed.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Service name.") var name: String

        func run() async throws {
            try await postAction("stop", service: name, namespace: namespace, global: global, done: "stopped")
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Let a stopped service serve again; the next request starts a worker.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Service name.") var name: String

        func run() async throws {
            try await postAction("resume", service: name, namespace: namespace, global: global, done: "resumed")
        }
    }

    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a revision's stdout and stderr (the newest revision by default).")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Service name.") var name: String
        @Option(help: "Revision to read (default: the newest).") var revision: String?
        @Flag(name: .shortAndLong, help: "Keep printing new output.") var follow = false

        func run() async throws {
            var path = "/api/v1/namespaces/\(namespace)/services/\(name)/logs?follow=\(follow)"
            if let revision { path += "&revision=\(revision)" }
            let response = try await global.client().stream(path)
            for try await chunk in response.body {
                writeStandardOutput(Data(chunk.readableBytesView))
            }
        }
    }
}

/// `--no-wait` / `--wait-timeout`: like `kn`, create and update wait until the service is ready
/// (or its new revision failed) before they print it.
struct WaitOptions: ParsableArguments {
    @Flag(help: "Return at once instead of waiting for the new revision to be ready.")
    var noWait = false

    @Option(help: "Seconds to wait for readiness before giving up.")
    var waitTimeout = 60

    /// Polls the service until its status covers this generation and is not Unknown; prints it.
    /// A failed revision or a timeout is an error (non-zero exit).
    func untilReady(_ data: Data, client: AdminClient, format: OutputFormat) async throws {
        let first = try APIJSON.decoder().decode(ServiceDTO.self, from: data)
        let path = "/api/v1/namespaces/\(first.metadata.namespace ?? "default")/services/\(first.metadata.name ?? "")"
        let latest = try await settle(data, path: path, client: client, kind: "service", format: format, print: printService) { data in
            let service = try APIJSON.decoder().decode(ServiceDTO.self, from: data)
            let current = service.status.map { $0.observedGeneration >= (service.metadata.generation ?? 0) } ?? false
            return (service.metadata.name ?? "", current, service.status?.conditions["Ready"])
        }
        try printService(latest, format: format)
    }

    /// Polls `path` until `observe` reports the current generation with a Ready condition that
    /// is not Unknown; returns the last body. Ready=False or the deadline is an error, after
    /// printing what was read.
    func settle(
        _ data: Data, path: String, client: AdminClient, kind: String, format: OutputFormat,
        print: (Data, OutputFormat) throws -> Void,
        observe: (Data) throws -> (name: String, current: Bool, ready: Condition?)
    ) async throws -> Data {
        guard !noWait else { return data }
        var latest = data
        let deadline = ContinuousClock.now + .seconds(waitTimeout)
        while true {
            let (name, current, ready) = try observe(latest)
            if current, let ready, ready.status != "Unknown" {
                if ready.status == "False" {
                    try print(latest, format)
                    throw CLIError("\(kind) \(name) is not ready: \(ready.message ?? ready.reason ?? "unknown reason")")
                }
                return latest
            }
            guard ContinuousClock.now < deadline else {
                throw CLIError("\(kind) \(name) was not ready within \(waitTimeout) s (\(ready?.reason ?? "no status yet")); see `outpost \(kind == "service" ? "service" : "model") get` and `outpost service logs`")
            }
            try await Task.sleep(for: .milliseconds(50))
            latest = try await client.call(.GET, path)
        }
    }
}

/// POSTs `/services/{name}/{action}` and reports the outcome.
private func postAction(_ action: String, service name: String, namespace: String, global: GlobalOptions, done: String) async throws {
    let data = try await global.client().call(.POST, "/api/v1/namespaces/\(namespace)/services/\(name)/\(action)")
    if global.output == .json { return printRaw(data) }
    print("service \(namespace)/\(name) \(done)")
}

/// What `create`/`update` send: no status.
struct ServiceBody: Encodable {
    var metadata: MetadataDTO
    var spec: ServiceSpecDTO
}
