import Eventing
import Foundation
import HTTPTypes
@testable import Platform
import Store
import Testing

/// A service's sink annotations become `K_SINK` and `K_CE_OVERRIDES` in its template.
@Suite struct SinkBindingTests {
    static let resolve: @Sendable (Destination, String) -> String? = { destination, namespace in
        "http://127.0.0.1:8080/\(namespace)/\(destination)"
    }

    static func template(_ annotations: [String: String], env: [EnvVar] = []) -> RevisionTemplate {
        RevisionTemplate(annotations: annotations, command: "/bin/true", env: env)
    }

    @Test func overridesGoToKCEOverridesBesideKSink() throws {
        var template = Self.template([
            SinkBinding.annotation: "broker:main",
            SinkBinding.overridesAnnotation: #"{"extensions": {"team": "billing", "region": "eu"}}"#,
        ], env: [EnvVar(name: "K_CE_OVERRIDES", value: "stale"), EnvVar(name: "KEEP", value: "1")])
        try SinkBinding.bind(&template, namespace: "default", resolve: Self.resolve)
        let env = Dictionary(template.env.map { ($0.name, $0.value) }, uniquingKeysWith: { _, last in last })
        #expect(template.env.filter { $0.name == "K_CE_OVERRIDES" }.count == 1)
        #expect(env["K_CE_OVERRIDES"] == #"{"extensions":{"region":"eu","team":"billing"}}"#)
        #expect(env["K_SINK"]?.hasPrefix("http://127.0.0.1:8080/default/") == true)
        #expect(env["KEEP"] == "1")
        // Knative's sources read the variable as ceOverrides JSON.
        let decoded = try JSONDecoder().decode(CloudEventOverrides.self, from: Data((env["K_CE_OVERRIDES"] ?? "").utf8))
        #expect(decoded.extensions == ["team": "billing", "region": "eu"])
    }

    @Test(arguments: [
        ([SinkBinding.overridesAnnotation: #"{"extensions": {"team": "x"}}"#], "needs a sink"),
        ([SinkBinding.annotation: "broker:main", SinkBinding.overridesAnnotation: #"{"extensions": {"Team": "x"}}"#], "not a valid attribute name"),
        ([SinkBinding.annotation: "broker:main", SinkBinding.overridesAnnotation: "team=x"], "not {\"extensions\""),
    ])
    func badOverridesAre400(annotations: [String: String], message: String) {
        var template = Self.template(annotations)
        do {
            try SinkBinding.bind(&template, namespace: "default", resolve: Self.resolve)
            Issue.record("accepted \(annotations)")
        } catch let error as APIError {
            #expect(error.status == .badRequest)
            #expect(error.field == "spec.template.metadata.annotations[\(SinkBinding.overridesAnnotation)]")
            #expect(error.message.contains(message), "\(error.message)")
        } catch {
            Issue.record("\(error)")
        }
    }
}
