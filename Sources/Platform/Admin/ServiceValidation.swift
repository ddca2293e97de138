import Foundation
import Serving
import Store

/// A checked request to create or replace a service.
struct ServiceInput {
    var namespace: String
    var name: String
    var annotations: [String: String]
    var spec: ServiceSpec
    var resourceVersion: Int64?
}

/// Kubernetes-style name rules.
enum Names {
    /// DNS-1035 label: lowercase letters, digits and '-', starting with a letter, ending with a
    /// letter or digit.
    static func dns1035Problem(_ name: String, maxLength: Int = 63) -> String? {
        if name.isEmpty { return "must not be empty" }
        if name.utf8.count > maxLength { return "must be at most \(maxLength) characters, got \(name.utf8.count)" }
        let bytes = Array(name.utf8)
        guard (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(bytes[0]) else {
            return "\"\(name)\" must start with a lowercase letter (DNS-1035 label: [a-z]([-a-z0-9]*[a-z0-9])?)"
        }
        for byte in bytes where !(UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
            && !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) && byte != UInt8(ascii: "-") {
            return "\"\(name)\" may contain only lowercase letters, digits and '-' (DNS-1035 label)"
        }
        if bytes.last == UInt8(ascii: "-") { return "\"\(name)\" must end with a letter or digit (DNS-1035 label)" }
        return nil
    }

    /// Service names leave room for the `-00001` revision suffix within 63 characters.
    static let maxServiceNameLength = 57
}

enum ServiceValidation {
    static let reservedEnv: Set<String> = ["PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"]

    /// Parses and checks a service body. `pathNamespace` comes from the URL; `pathName` too for PUT.
    static func parse(body: Data, pathNamespace: String, pathName: String?) throws(FieldError) -> ServiceInput {
        guard let json = try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) else {
            throw FieldError(field: "", "the body is not valid JSON", code: "MalformedJSON")
        }
        if let problem = JSONShape.service.problem(in: json, at: "") { throw problem }
        guard var object = json as? [String: Any], object["spec"] != nil else {
            throw FieldError(field: "spec", "spec is required", code: "MissingField")
        }
        if object["metadata"] == nil { object["metadata"] = [String: Any]() }  // the URL may name it
        let dto = try ResourceBody.decode(ServiceDTO.self, from: object, kind: "service")
        let (name, resourceVersion) = try ResourceBody.checkedMetadata(dto.metadata, pathNamespace: pathNamespace, pathName: pathName)

        let templateSpec = dto.spec.template.spec
        guard let command = templateSpec.command, !command.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw FieldError(field: "spec.template.spec.command", "spec.template.spec.command is required: the executable to run", code: "MissingField")
        }
        if let port = templateSpec.port, !(1...65535).contains(port) {
            throw FieldError(field: "spec.template.spec.port", "spec.template.spec.port must be between 1 and 65535, got \(port)")
        }
        let concurrency = templateSpec.containerConcurrency ?? 0
        if !(0...1000).contains(concurrency) {
            throw FieldError(field: "spec.template.spec.containerConcurrency", "spec.template.spec.containerConcurrency must be between 0 (unlimited) and 1000, got \(concurrency)")
        }
        let timeout = templateSpec.timeoutSeconds ?? RevisionTemplate.defaultTimeoutSeconds
        if !(1...600).contains(timeout) {
            throw FieldError(field: "spec.template.spec.timeoutSeconds", "spec.template.spec.timeoutSeconds must be between 1 and 600, got \(timeout)")
        }
        for (index, variable) in (templateSpec.env ?? []).enumerated() {
            let field = "spec.template.spec.env[\(index)].name"
            if variable.name.isEmpty || variable.name.contains("=") || variable.name.contains("\0") {
                throw FieldError(field: field, "\(field) must be a non-empty name without '='")
            }
            if reservedEnv.contains(variable.name) {
                throw FieldError(field: field, "\(field) \"\(variable.name)\" is set by Outpost (runtime contract) and cannot be overridden")
            }
        }
        if let probe = templateSpec.readinessProbe {
            if (probe.httpGet == nil) == (probe.tcpSocket == nil) {
                throw FieldError(field: "spec.template.spec.readinessProbe", "spec.template.spec.readinessProbe needs exactly one of httpGet or tcpSocket")
            }
            if let path = probe.httpGet?.path, !path.hasPrefix("/") {
                throw FieldError(field: "spec.template.spec.readinessProbe.httpGet.path", "spec.template.spec.readinessProbe.httpGet.path must start with '/'")
            }
        }
        let templateAnnotations = dto.spec.template.metadata?.annotations ?? [:]
        if let problem = ServingAnnotations.problem(templateAnnotations) {
            throw FieldError(field: "spec.template.metadata.annotations[\(problem.key)]", problem.message)
        }
        let traffic = dto.spec.traffic ?? TrafficTarget.allToLatest
        try checkTraffic(traffic, service: name)
        if let text = dto.metadata.annotations?[ServiceReconciler.rolloutDurationAnnotation] {
            guard let duration = DurationText.parse(text), duration >= .zero, duration <= .seconds(86_400) else {
                throw FieldError(
                    field: "metadata.annotations[\(ServiceReconciler.rolloutDurationAnnotation)]",
                    "\(ServiceReconciler.rolloutDurationAnnotation) must be a duration from 0s to 24h (e.g. 380s), got \"\(text)\"")
            }
        }

        let template = RevisionTemplate(
            annotations: templateAnnotations, command: command, args: templateSpec.args ?? [], env: templateSpec.env ?? [],
            workingDir: templateSpec.workingDir, port: templateSpec.port, readinessProbe: templateSpec.readinessProbe,
            containerConcurrency: concurrency, timeoutSeconds: timeout)
        return ServiceInput(
            namespace: pathNamespace, name: name, annotations: dto.metadata.annotations ?? [:],
            spec: ServiceSpec(template: template, traffic: traffic), resourceVersion: resourceVersion)
    }

    static func checkTraffic(_ traffic: [TrafficTarget], service: String) throws(FieldError) {
        if traffic.isEmpty { throw FieldError(field: "spec.traffic", "spec.traffic must have at least one target") }
        var total = 0
        var tags: Set<String> = []
        for (index, target) in traffic.enumerated() {
            let field = "spec.traffic[\(index)]"
            let latest = target.latestRevision ?? (target.revisionName == nil)
            if latest == (target.revisionName != nil) {
                throw FieldError(field: field, "\(field) needs either revisionName or latestRevision: true, not both")
            }
            if let tag = target.tag {
                let hostLabel = "\(tag)-\(service)"
                if let problem = Names.dns1035Problem(tag) ?? Names.dns1035Problem(hostLabel) {
                    throw FieldError(field: "\(field).tag", "\(field).tag \(problem) (it names the host \(hostLabel).<namespace>.<domain>)")
                }
                if !tags.insert(tag).inserted {
                    throw FieldError(field: "\(field).tag", "tag \"\(tag)\" is used twice in spec.traffic")
                }
            }
            if let name = target.revisionName, let problem = Names.dns1035Problem(name) {
                throw FieldError(field: "\(field).revisionName", "\(field).revisionName \(problem)")
            }
            let percent = target.percent ?? 0
            if !(0...100).contains(percent) {
                throw FieldError(field: "\(field).percent", "\(field).percent must be between 0 and 100, got \(percent)")
            }
            total += percent
        }
        if total != 100 {
            throw FieldError(field: "spec.traffic", "the percents of spec.traffic must sum to 100, got \(total)")
        }
    }
}
