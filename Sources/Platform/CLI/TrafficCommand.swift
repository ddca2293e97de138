import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Store

extension ServiceCommand {
    /// `outpost service traffic NAME --split REV=PCT[,REV=PCT...] [--tag REV=TAG]...`.
    struct Traffic: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Split traffic between revisions and tag them (Knative's traffic block).",
            discussion: "REV is a revision name or @latest (the latest ready revision). Percents sum to 100. A tag gives its revision the host <tag>-<service>.<namespace>.<domain> and answers to the Knative-Serving-Tag header.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Service name.") var name: String
        @Option(help: "REV=PCT[,REV=PCT...], e.g. hello-00001=90,@latest=10.") var split: String?
        @Option(name: .customLong("tag"), help: "REV=TAG (repeatable).") var tags: [String] = []
        @OptionGroup var wait: WaitOptions

        func validate() throws {
            if split == nil && tags.isEmpty { throw ValidationError("give --split and/or --tag") }
        }

        func run() async throws {
            let client = try global.client()
            let path = "/api/v1/namespaces/\(namespace)/services/\(name)"
            let current = try APIJSON.decoder().decode(ServiceDTO.self, from: try await client.call(.GET, path))
            var traffic = current.spec.traffic ?? TrafficTarget.allToLatest
            if let split { traffic = try Self.parse(split: split) }
            for entry in tags {
                let (revision, tag) = try TemplateOptions.split(entry, option: "--tag")
                if let index = traffic.firstIndex(where: { Self.key($0) == revision }) {
                    traffic[index].tag = tag
                } else {
                    var target = Self.target(revision)
                    target.percent = 0
                    target.tag = tag
                    traffic.append(target)
                }
            }
            let body = ServiceBody(
                metadata: MetadataDTO(
                    name: name, namespace: namespace, resourceVersion: current.metadata.resourceVersion,
                    annotations: current.metadata.annotations),
                spec: ServiceSpecDTO(template: current.spec.template, traffic: traffic))
            let data = try await client.call(.PUT, path, body: try APIJSON.encoder().encode(body))
            // Like create and update: print the service once its status shows the new traffic.
            try await wait.untilReady(data, client: client, format: global.output)
        }

        static func parse(split: String) throws -> [TrafficTarget] {
            try split.split(separator: ",").map { part in
                let (revision, percentText) = try TemplateOptions.split(String(part), option: "--split")
                guard let percent = Int(percentText.trimmingCharacters(in: CharacterSet(charactersIn: "% "))) else {
                    throw CLIError("--split: \"\(percentText)\" is not a whole percent (in \(part))")
                }
                var target = target(revision)
                target.percent = percent
                return target
            }
        }

        static func target(_ revision: String) -> TrafficTarget {
            revision == "@latest" ? TrafficTarget(latestRevision: true) : TrafficTarget(revisionName: revision, latestRevision: false)
        }

        static func key(_ target: TrafficTarget) -> String {
            target.latestRevision == true ? "@latest" : (target.revisionName ?? "")
        }
    }
}
