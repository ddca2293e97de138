import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Store

/// `outpost revision ...`: revisions are read-only.
struct RevisionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revision", abstract: "Inspect revisions.", subcommands: [List.self, Get.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List revisions.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Option(name: .shortAndLong, help: "Only the revisions of this service.") var service: String?

        func run() async throws {
            var path = "/api/v1/namespaces/\(namespace)/revisions"
            if let service { path += "?service=\(service)" }
            let data = try await global.client().call(.GET, path)
            if global.output == .json { return printRaw(data) }
            let list = try APIJSON.decoder().decode(ListDTO<RevisionDTO>.self, from: data)
            printTable(
                ["NAME", "SERVICE", "GENERATION", "READY", "ACTUAL", "DESIRED", "REASON"],
                list.items.map { revision in
                    let labels = revision.metadata.labels ?? [:]
                    let ready = revision.status.conditions["Ready"]
                    return [
                        revision.metadata.name ?? "", labels["serving.knative.dev/service"] ?? "",
                        labels["serving.knative.dev/configurationGeneration"] ?? "", ready?.status ?? "Unknown",
                        String(revision.status.actualReplicas), String(revision.status.desiredReplicas), ready?.reason ?? "",
                    ]
                })
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one revision.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Revision name, e.g. hello-00001.") var name: String

        func run() async throws {
            let data = try await global.client().call(.GET, "/api/v1/namespaces/\(namespace)/revisions/\(name)")
            if global.output == .json { return printRaw(data) }
            let revision = try APIJSON.decoder().decode(RevisionDTO.self, from: data)
            var lines: [(String, String)] = [
                ("Name", revision.metadata.name ?? ""),
                ("Service", revision.metadata.labels?["serving.knative.dev/service"] ?? ""),
                ("Command", ([revision.spec.command ?? ""] + (revision.spec.args ?? [])).joined(separator: " ")),
                ("Workers", "\(revision.status.actualReplicas) ready, \(revision.status.desiredReplicas) desired"),
                ("Panic mode", revision.status.panicMode == true ? "yes" : "no"),
                ("Last scale", revision.status.lastScaleReason ?? "-"),
                ("Created", revision.metadata.creationTimestamp.map { $0.formatted(.iso8601) } ?? ""),
            ]
            lines += revision.status.conditions.map { condition in
                (condition.type, [condition.status, condition.reason, condition.message].compactMap { $0 }.joined(separator: "  "))
            }
            printFields(lines)
        }
    }
}
