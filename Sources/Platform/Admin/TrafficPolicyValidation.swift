import Foundation
import Serving
import Store

/// A traffic policy as the API shows and accepts it.
struct TrafficPolicyDTO: Codable, Sendable {
    var apiVersion: String? = "outpost.dev/v1"
    var kind: String? = "TrafficPolicy"
    var metadata: MetadataDTO
    var spec: TrafficPolicySpec

    init(metadata: MetadataDTO, spec: TrafficPolicySpec) {
        self.metadata = metadata
        self.spec = spec
    }

    init(_ resource: TrafficPolicyResource) {
        self.init(metadata: MetadataDTO(resource.meta), spec: resource.spec)
    }
}

/// A checked request to set a traffic policy.
struct TrafficPolicyInput {
    var spec: TrafficPolicySpec
    var resourceVersion: Int64?
}

enum TrafficPolicyValidation {
    /// Parses and checks a policy body for service `pathName` in `pathNamespace`: the JSON
    /// shape first (unknown fields, wrong types), then everything the compiler checks
    /// (durations, percentages, expressions, retry conditions), each naming its field.
    static func parse(body: Data, pathNamespace: String, pathName: String) throws(FieldError) -> TrafficPolicyInput {
        guard let json = try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) else {
            throw FieldError(field: "", "the body is not valid JSON", code: "MalformedJSON")
        }
        if let problem = JSONShape.trafficPolicy.problem(in: json, at: "") { throw problem }
        guard var object = json as? [String: Any], object["spec"] != nil else {
            throw FieldError(field: "spec", "spec is required", code: "MissingField")
        }
        if object["metadata"] == nil { object["metadata"] = [String: Any]() }
        let dto = try ResourceBody.decode(TrafficPolicyDTO.self, from: object, kind: "traffic policy")
        if let namespace = dto.metadata.namespace, namespace != pathNamespace {
            throw FieldError(field: "metadata.namespace", "metadata.namespace \"\(namespace)\" does not match the namespace in the URL (\"\(pathNamespace)\")")
        }
        if let name = dto.metadata.name, name != pathName {
            throw FieldError(field: "metadata.name", "metadata.name \"\(name)\" does not match the name in the URL (\"\(pathName)\")")
        }
        if let problem = Names.dns1035Problem(pathName, maxLength: Names.maxServiceNameLength) {
            throw FieldError(field: "metadata.name", "metadata.name \(problem)")
        }
        let resourceVersion = try ResourceBody.resourceVersion(dto.metadata)
        do {
            _ = try TrafficPolicyCompiler.compile(dto.spec, namespace: pathNamespace)
        } catch {
            throw FieldError(field: "spec.\(error.field)", "spec.\(error.field) \(error.message)")
        }
        return TrafficPolicyInput(spec: dto.spec, resourceVersion: resourceVersion)
    }
}

extension JSONShape {
    /// The accepted shape of a traffic policy body (Istio field names).
    static let trafficPolicy: JSONShape = {
        let metadata: JSONShape = .object([
            "name": .string, "namespace": .string, "annotations": .map(.string), "labels": .map(.string),
            "resourceVersion": .string, "uid": .string, "generation": .integer, "creationTimestamp": .string,
        ])
        let stringMatch: JSONShape = .object(["exact": .string, "prefix": .string, "regex": .string])
        let percent: JSONShape = .object(["value": .number])
        let operations: JSONShape = .object(["set": .map(.string), "add": .map(.string), "remove": .array(.string)])
        let http: JSONShape = .object([
            "name": .string,
            "match": .array(.object(["uri": stringMatch, "method": stringMatch, "headers": .map(stringMatch)])),
            "headers": .object(["request": operations, "response": operations]),
            "rewrite": .object(["uri": .string, "authority": .string]),
            "redirect": .object([
                "uri": .string, "authority": .string, "redirectCode": .integer,
                "scheme": .string, "port": .integer, "derivePort": .string,
            ]),
            "timeout": .string,
            "retries": .object(["attempts": .integer, "perTryTimeout": .string, "retryOn": .string]),
            "fault": .object([
                "delay": .object(["percentage": percent, "fixedDelay": .string]),
                "abort": .object(["percentage": percent, "httpStatus": .integer]),
            ]),
            "mirror": .object(["host": .string]),
            "mirrorPercentage": percent,
        ])
        let destination: JSONShape = .object([
            "loadBalancer": .object([
                "simple": .string,
                "consistentHash": .object([
                    "httpHeaderName": .string,
                    "httpCookie": .object(["name": .string, "path": .string, "ttl": .string]),
                ]),
            ]),
            "connectionPool": .object([
                "tcp": .object(["maxConnections": .integer]),
                "http": .object(["http1MaxPendingRequests": .integer, "maxRequestsPerConnection": .integer]),
            ]),
            "outlierDetection": .object([
                "consecutive5xxErrors": .integer, "consecutiveGatewayErrors": .integer, "interval": .string,
                "baseEjectionTime": .string, "maxEjectionPercent": .integer,
            ]),
        ])
        return .object([
            "apiVersion": .string, "kind": .string, "metadata": metadata,
            "spec": .object([
                "http": .array(http),
                "rateLimit": .object(["maxTokens": .integer, "tokensPerFill": .integer, "fillInterval": .string]),
                "trafficPolicy": destination,
            ]),
        ])
    }()
}
