import Foundation
import Testing
@testable import Eventing

@Suite("Trigger filter validation and JSON")
struct TriggerFilterSpecTests {
    private func decode(_ json: String) throws(FilterError) -> TriggerFilterSpec {
        try TriggerFilterSpec.decode(from: Data(json.utf8))
    }

    private func decodingError(_ json: String) -> String? {
        do {
            _ = try decode(json)
            return nil
        } catch {
            return error.description
        }
    }

    // MARK: Validation of values built in code

    struct InvalidSpec: Sendable, CustomTestStringConvertible {
        let spec: TriggerFilterSpec
        let expected: String
        var testDescription: String { expected }
    }

    @Test(arguments: [
        InvalidSpec(spec: TriggerFilterSpec(filters: [.exact(["type": ""])]),
                    expected: "filters[0].exact.type: value must not be empty; to accept any value, check the attribute with a cesql EXISTS expression instead"),
        InvalidSpec(spec: TriggerFilterSpec(filters: [.prefix(["": "x"])]),
                    expected: "filters[0].prefix[\"\"]: attribute name must not be empty"),
        InvalidSpec(spec: TriggerFilterSpec(filters: [.suffix(["Type": "x"])]),
                    expected: "filters[0].suffix[\"Type\"]: attribute name \"Type\" must contain only lower-case letters (a-z) and digits (0-9)"),
        InvalidSpec(spec: TriggerFilterSpec(filters: [.exact([:])]),
                    expected: "filters[0].exact: \"exact\" must name at least one attribute"),
        InvalidSpec(spec: TriggerFilterSpec(filters: [.exact(["type": "a"]), .all([])]),
                    expected: "filters[1]: \"all\" must contain at least one filter expression"),
        InvalidSpec(spec: TriggerFilterSpec(filters: [.any([.not(.any([]))])]),
                    expected: "filters[0].any[0].not: \"any\" must contain at least one filter expression"),
        InvalidSpec(spec: TriggerFilterSpec(filters: [.all([.exact(["a": "b"]), .not(.exact(["type": ""]))])]),
                    expected: "filters[0].all[1].not.exact.type: value must not be empty; to accept any value, check the attribute with a cesql EXISTS expression instead"),
        InvalidSpec(spec: TriggerFilterSpec(filters: [.cesql("  ")]),
                    expected: "filters[0].cesql: expression must not be empty"),
        InvalidSpec(spec: TriggerFilterSpec(filters: [.cesql("type = 'a")]),
                    expected: "filters[0].cesql: invalid CESQL expression at offset 7: unterminated string literal; close it with '"),
        InvalidSpec(spec: TriggerFilterSpec(filters: [.cesql("LOWERCASE(type) = 'a'")]),
                    expected: "filters[0].cesql: invalid CESQL expression: cannot call LOWERCASE with 1 argument(s): there is no function named LOWERCASE"),
        InvalidSpec(spec: TriggerFilterSpec(filter: AttributesFilter(attributes: ["my_ext": "x"])),
                    expected: "filter.attributes[\"my_ext\"]: attribute name \"my_ext\" must contain only lower-case letters (a-z) and digits (0-9)"),
        InvalidSpec(spec: TriggerFilterSpec(filter: AttributesFilter(attributes: ["": "x"]), filters: [.exact(["type": "a"])]),
                    expected: "filter.attributes[\"\"]: attribute name must not be empty"),
    ])
    func validationMessagesNameTheField(_ invalid: InvalidSpec) {
        #expect(invalid.spec.validationErrors().first?.description == invalid.expected)
        #expect(throws: FilterError.self) { try invalid.spec.validate() }
        #expect(throws: FilterError.self) { try invalid.spec.compile() }
    }

    @Test func validationReportsEveryProblem() {
        let spec = TriggerFilterSpec(filters: [.exact(["type": "", "": "x"]), .any([])])
        #expect(spec.validationErrors().map(\.path) == ["filters[0].exact[\"\"]", "filters[0].exact.type", "filters[1]"])
    }

    @Test func validSpecsPass() throws {
        let spec = TriggerFilterSpec(
            filter: AttributesFilter(attributes: ["type": "", "source": "a"]),
            filters: [.all([.exact(["type": "a"]), .any([.cesql("EXISTS subject")]), .not(.suffix(["source": "x"]))])]
        )
        try spec.validate()
        try SubscriptionsFilter.cesql("x = 1").validate()
        #expect(throws: FilterError.self) { try SubscriptionsFilter.any([]).validate() }
    }

    // MARK: Decoding errors

    @Test(arguments: [
        (#"{"filters": [{"exact": {"type": "a"}}, {"all": []}]}"#,
         #"filters[1]: "all" must contain at least one filter expression"#),
        (#"{"filters": [{"exact": {"type": "a"}, "prefix": {"type": "b"}}]}"#,
         #"filters[0]: a filter expression takes exactly one dialect but has "exact" and "prefix"; put each in its own entry of an "all" list"#),
        (#"{"filters": [{"regex": {"type": "a.*"}}]}"#,
         #"filters[0]: unknown filter dialect "regex"; use one of "exact", "prefix", "suffix", "all", "any", "not", "cesql""#),
        (#"{"filters": [{}]}"#,
         #"filters[0]: empty filter expression; set exactly one of "exact", "prefix", "suffix", "all", "any", "not", "cesql""#),
        (#"{"filters": ["type = 'a'"]}"#,
         #"filters[0]: a filter expression must be a JSON object with exactly one of "exact", "prefix", "suffix", "all", "any", "not", "cesql""#),
        (#"{"filters": [{"exact": {"type": 1}}]}"#,
         #"filters[0].exact: "exact" must be an object mapping attribute names to string values"#),
        (#"{"filters": [{"any": {"exact": {"type": "a"}}}]}"#,
         #"filters[0].any: "any" must be an array of filter expressions"#),
        (#"{"filters": [{"not": [{"exact": {"type": "a"}}]}]}"#,
         #"filters[0].not: a filter expression must be a JSON object with exactly one of "exact", "prefix", "suffix", "all", "any", "not", "cesql""#),
        (#"{"filters": [{"not": null}]}"#,
         #"filters[0].not: a filter expression must be a JSON object with exactly one of "exact", "prefix", "suffix", "all", "any", "not", "cesql""#),
        (#"{"filters": [{"cesql": 42}]}"#,
         #"filters[0].cesql: "cesql" must be a string holding a CESQL expression"#),
        (#"{"filters": [{"all": [{"any": [{"exact": {"source": ""}}]}]}]}"#,
         #"filters[0].all[0].any[0].exact.source: value must not be empty; to accept any value, check the attribute with a cesql EXISTS expression instead"#),
        (#"{"filters": [{"not": {"cesql": "type ="}}]}"#,
         #"filters[0].not.cesql: invalid CESQL expression at offset 6: expected a value, attribute, function call or '(' but found end of expression"#),
        (#"{"filters": {"exact": {"type": "a"}}}"#,
         #"filters: "filters" must be an array of filter expressions"#),
        (#"{"filter": {"attributes": {"Type": "a"}}}"#,
         #"filter.attributes["Type"]: attribute name "Type" must contain only lower-case letters (a-z) and digits (0-9)"#),
        (#"{"filter": {"attributes": ["type"]}}"#,
         #"filter: "filter" must be an object whose "attributes" maps attribute names to string values"#),
    ])
    func decodingErrorsSayWhatToFix(_ json: String, _ expected: String) {
        #expect(decodingError(json) == expected)
    }

    @Test func malformedJSONIsAFilterError() {
        #expect(decodingError("{\"filters\": [")?.hasPrefix("the trigger filter is not valid JSON") == true)
        #expect(decodingError("[]")?.hasPrefix("the trigger filter must be a JSON object") == true)
    }

    // MARK: JSON shape

    @Test func decodesTheKnativeShape() throws {
        let spec = try decode("""
        {
          "broker": "default",
          "filter": {"attributes": {"type": "dev.knative.legacy", "source": ""}},
          "filters": [
            {"exact": {"type": "com.example.order"}},
            {"any": [{"prefix": {"source": "shop/"}}, {"suffix": {"subject": ".pdf"}}]},
            {"not": {"cesql": "priority < 3"}}
          ]
        }
        """)
        #expect(spec.filter == AttributesFilter(attributes: ["type": "dev.knative.legacy", "source": ""]))
        #expect(spec.filters == [
            .exact(["type": "com.example.order"]),
            .any([.prefix(["source": "shop/"]), .suffix(["subject": ".pdf"])]),
            .not(.cesql("priority < 3")),
        ])
        #expect(try spec.compile().exactType == "com.example.order")
    }

    @Test func encodesOmittingEmptyFields() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let spec = TriggerFilterSpec(filters: [.all([.exact(["type": "a"]), .not(.cesql("x = 'y'"))])])
        let json = String(decoding: try encoder.encode(spec), as: UTF8.self)
        #expect(json == #"{"filters":[{"all":[{"exact":{"type":"a"}},{"not":{"cesql":"x = 'y'"}}]}]}"#)
        #expect(String(decoding: try encoder.encode(TriggerFilterSpec()), as: UTF8.self) == "{}")
        #expect(String(decoding: try encoder.encode(TriggerFilterSpec(filter: AttributesFilter())), as: UTF8.self) == #"{"filter":{}}"#)
    }

    @Test(arguments: [
        TriggerFilterSpec(),
        TriggerFilterSpec(filter: AttributesFilter(attributes: ["type": "a", "source": ""])),
        TriggerFilterSpec(
            filter: AttributesFilter(attributes: ["type": "ignored"]),
            filters: [
                .exact(["type": "a", "source": "b"]),
                .prefix(["subject": "x"]),
                .suffix(["dataschema": ".json"]),
                .all([.any([.not(.cesql("EXISTS subject AND subject LIKE 'a\\\\_%'"))]), .exact(["id": "1"])]),
            ]
        ),
    ])
    func roundTripsThroughJSON(_ spec: TriggerFilterSpec) throws {
        let data = try JSONEncoder().encode(spec)
        #expect(try TriggerFilterSpec.decode(from: data) == spec)
    }
}
