import Testing
@testable import Eventing

@Suite struct PingSourceSpecTests {
    private func spec(contentType: String? = nil, overrides: [String: String]? = nil) -> PingSourceSpec {
        PingSourceSpec(
            contentType: contentType, data: "{}", sink: Destination(uri: "http://127.0.0.1:9/"),
            ceOverrides: overrides.map { CloudEventOverrides(extensions: $0) })
    }

    private func problem(_ spec: PingSourceSpec) -> String? {
        do { try spec.validate() } catch { return "\(error)" }
        return nil
    }

    @Test func aValidSpecPasses() {
        #expect(problem(spec(contentType: "application/json", overrides: ["team": "edge", "comexampletenantidentifier": "a"])) == nil)
    }

    @Test(arguments: ["type", "id", "source", "specversion", "time", "data"])
    func anOverrideCannotReplaceAContextAttribute(_ name: String) {
        let text = problem(spec(overrides: [name: "x"]))
        #expect(text?.contains("spec.ceOverrides.extensions: \"\(name)\"") == true)
    }

    @Test func theContentTypeMustBeAMediaType() {
        #expect(problem(spec(contentType: "json"))?.contains("spec.contentType") == true)
    }
}
