import Foundation
import Store
@testable import Platform
import Testing

@Suite struct NameValidationTests {
    @Test(arguments: ["hello", "a", "a-b-c", "web2", String(repeating: "a", count: 63)])
    func acceptsDNS1035Labels(name: String) {
        #expect(Names.dns1035Problem(name) == nil)
    }

    @Test(arguments: ["", "Hello", "1abc", "a_b", "a.b", "abc-", "-abc", String(repeating: "a", count: 64)])
    func rejectsOthers(name: String) {
        #expect(Names.dns1035Problem(name) != nil)
    }
}

@Suite struct ServiceValidationTests {
    func parse(_ json: String, name: String? = nil) throws(FieldError) -> ServiceInput {
        try ServiceValidation.parse(body: Data(json.utf8), pathNamespace: "default", pathName: name)
    }

    func problem(_ json: String) -> FieldError? {
        do { _ = try parse(json); return nil } catch { return error }
    }

    @Test func minimalServiceGetsKnativeDefaults() throws {
        let input = try parse(#"{"metadata":{"name":"hello"},"spec":{"template":{"spec":{"command":"/bin/echo","args":["hi"]}}}}"#)
        #expect(input.name == "hello")
        #expect(input.spec.template.command == "/bin/echo")
        #expect(input.spec.template.args == ["hi"])
        #expect(input.spec.template.timeoutSeconds == 300)
        #expect(input.spec.template.containerConcurrency == 0)
        #expect(input.spec.traffic.count == 1 && input.spec.traffic[0].latestRevision == true && input.spec.traffic[0].percent == 100)
    }

    @Test(arguments: [
        (#"{"metadata":{"name":"hello"},"spec":{"template":{"spec":{"comand":"/bin/echo"}}}}"#, "spec.template.spec.comand", "UnknownField"),
        (#"{"metadata":{"name":"hello"},"extra":1,"spec":{"template":{"spec":{"command":"/bin/echo"}}}}"#, "extra", "UnknownField"),
        (#"{"metadata":{"name":"Bad_Name"},"spec":{"template":{"spec":{"command":"/bin/echo"}}}}"#, "metadata.name", "InvalidField"),
        (#"{"metadata":{"name":"hello"},"spec":{"template":{"spec":{}}}}"#, "spec.template.spec.command", "MissingField"),
        (#"{"metadata":{"name":"hello"},"spec":{"template":{"spec":{"command":"/x","port":70000}}}}"#, "spec.template.spec.port", "InvalidField"),
        (#"{"metadata":{"name":"hello"},"spec":{"template":{"spec":{"command":"/x","port":"80"}}}}"#, "spec.template.spec.port", "InvalidField"),
        (#"{"metadata":{"name":"hello"},"spec":{"template":{"spec":{"command":"/x","containerConcurrency":-1}}}}"#, "spec.template.spec.containerConcurrency", "InvalidField"),
        (#"{"metadata":{"name":"hello"},"spec":{"template":{"spec":{"command":"/x","timeoutSeconds":601}}}}"#, "spec.template.spec.timeoutSeconds", "InvalidField"),
        (#"{"metadata":{"name":"hello"},"spec":{"template":{"spec":{"command":"/x","env":[{"name":"PORT","value":"1"}]}}}}"#, "spec.template.spec.env[0].name", "InvalidField"),
        (#"{"metadata":{"name":"hello"},"spec":{"template":{"metadata":{"annotations":{"autoscaling.knative.dev/window":"2s"}},"spec":{"command":"/x"}}}}"#, "spec.template.metadata.annotations[autoscaling.knative.dev/window]", "InvalidField"),
        (#"{"metadata":{"name":"hello"},"spec":{"template":{"spec":{"command":"/x"}},"traffic":[{"latestRevision":true,"percent":90}]}}"#, "spec.traffic", "InvalidField"),
        (#"{"metadata":{"name":"hello","namespace":"other"},"spec":{"template":{"spec":{"command":"/x"}}}}"#, "metadata.namespace", "InvalidField"),
        (#"{"metadata":{"name":"hello"}}"#, "spec", "MissingField"),
        (#"{"metadata":{"name":"hello"},"spec":{"template":{"spec":{"command":"/x"}},"traffic":[{"latestRevision":true,"percent":100,"tag":"Bad"}]}}"#, "spec.traffic[0].tag", "InvalidField"),
        (#"{"metadata":{"name":"hello"},"spec":{"template":{"spec":{"command":"/x"}},"traffic":[{"latestRevision":true,"percent":50,"tag":"a"},{"revisionName":"hello-00001","percent":50,"tag":"a"}]}}"#, "spec.traffic[1].tag", "InvalidField"),
        (#"{"metadata":{"name":"hello","annotations":{"serving.knative.dev/rollout-duration":"soon"}},"spec":{"template":{"spec":{"command":"/x"}}}}"#, "metadata.annotations[serving.knative.dev/rollout-duration]", "InvalidField"),
        (#"not json"#, "", "MalformedJSON"),
    ])
    func rejectsWithTheFieldToFix(json: String, field: String, code: String) {
        let error = problem(json)
        #expect(error?.field == field, "\(String(describing: error))")
        #expect(error?.code == code)
        #expect(error?.message.isEmpty == false)
    }

    @Test func nameInPathMustMatchBody() {
        #expect(throws: FieldError.self) { try parse(#"{"metadata":{"name":"a"},"spec":{"template":{"spec":{"command":"/x"}}}}"#, name: "b") }
        #expect((try? parse(#"{"spec":{"template":{"spec":{"command":"/x"}}}}"#, name: "b"))?.name == "b")
    }

    @Test func resourceVersionIsParsed() throws {
        let input = try parse(#"{"metadata":{"name":"a","resourceVersion":"17"},"spec":{"template":{"spec":{"command":"/x"}}}}"#)
        #expect(input.resourceVersion == 17)
    }
}
