import Testing
@testable import Eventing

@Suite("Knative filter semantics")
struct SubscriptionsFilterTests {
    private let order = TestEvent.minimal.with([
        "type": .string("com.example.order.created"),
        "source": .string("shop/eu/orders"),
        "priority": .integer(5),
        "urgent": .boolean(true),
    ])

    private func compile(_ filters: [SubscriptionsFilter]) throws -> CompiledFilter {
        try TriggerFilterSpec(filters: filters).compile()
    }

    private func compile(legacy attributes: [String: String]) throws -> CompiledFilter {
        try TriggerFilterSpec(filter: AttributesFilter(attributes: attributes)).compile()
    }

    // MARK: Dialects

    @Test func exactIsCaseSensitiveAndRequiresEveryAttribute() throws {
        #expect(try compile([.exact(["type": "com.example.order.created"])]).matches(order))
        #expect(try !compile([.exact(["type": "com.example.ORDER.created"])]).matches(order))
        #expect(try compile([.exact(["type": "com.example.order.created", "source": "shop/eu/orders"])]).matches(order))
        #expect(try !compile([.exact(["type": "com.example.order.created", "source": "shop/us/orders"])]).matches(order))
    }

    @Test func prefixAndSuffix() throws {
        #expect(try compile([.prefix(["type": "com.example."])]).matches(order))
        #expect(try !compile([.prefix(["type": "com.other."])]).matches(order))
        #expect(try compile([.suffix(["type": ".created", "source": "/orders"])]).matches(order))
        #expect(try !compile([.suffix(["type": ".created", "source": "/returns"])]).matches(order))
        #expect(try compile([.prefix(["type": "com.example.order.created"])]).matches(order), "a prefix may be the whole value")
        #expect(try !compile([.suffix(["type": "x.com.example.order.created"])]).matches(order))
    }

    @Test func nonStringAttributesCompareByCanonicalString() throws {
        #expect(try compile([.exact(["priority": "5", "urgent": "true"])]).matches(order))
        #expect(try !compile([.exact(["priority": "05"])]).matches(order))
        #expect(try compile([.prefix(["urgent": "tr"])]).matches(order))
        #expect(try compile(legacy: ["priority": "5"]).matches(order))
    }

    @Test func missingAttributesNeverMatch() throws {
        #expect(try !compile([.exact(["subject": "x"])]).matches(order))
        #expect(try !compile([.prefix(["subject": "x"])]).matches(order))
        #expect(try !compile([.suffix(["subject": "x"])]).matches(order))
        #expect(try compile([.not(.exact(["subject": "x"]))]).matches(order), "NOT of a non-match matches")
        #expect(try !compile([.cesql("subject = 'x' OR TRUE")]).matches(order), "CESQL errors never match")
    }

    @Test func cesqlDialect() throws {
        #expect(try compile([.cesql("priority > 3 AND urgent")]).matches(order))
        #expect(try !compile([.cesql("priority > 7")]).matches(order))
        #expect(try !compile([.cesql("CONCAT(type)")]).matches(order), "non-boolean results do not match")
    }

    @Test func nestingAllAnyNot() throws {
        let filter = try compile([
            .all([
                .prefix(["type": "com.example."]),
                .any([.exact(["source": "shop/us/orders"]), .suffix(["source": "/orders"])]),
                .not(.cesql("priority < 3")),
            ]),
        ])
        #expect(filter.matches(order))
        #expect(!filter.matches(order.with(["priority": .integer(1)])))
        #expect(!filter.matches(order.with(["source": .string("shop/eu/returns")])))
        #expect(try !compile([.any([.exact(["type": "a"]), .exact(["type": "b"])])]).matches(order))
    }

    @Test func filtersListIsANDed() throws {
        #expect(try compile([.prefix(["type": "com."]), .exact(["urgent": "true"])]).matches(order))
        #expect(try !compile([.prefix(["type": "com."]), .exact(["urgent": "false"])]).matches(order))
    }

    // MARK: Legacy filter and precedence

    @Test func legacyEmptyValueRequiresPresenceOnly() throws {
        #expect(try compile(legacy: ["source": ""]).matches(order))
        #expect(try !compile(legacy: ["subject": ""]).matches(order))
        #expect(try compile(legacy: ["type": "com.example.order.created", "source": ""]).matches(order))
        #expect(try !compile(legacy: ["type": "com.example.order.CREATED"]).matches(order))
    }

    @Test func noFilterMatchesEverything() throws {
        #expect(try TriggerFilterSpec().compile().matches(order))
        #expect(try compile(legacy: [:]).matches(TestEvent()))
    }

    @Test func filtersOverrideTheLegacyFilter() throws {
        let spec = TriggerFilterSpec(
            filter: AttributesFilter(attributes: ["type": "something.else"]),
            filters: [.prefix(["type": "com.example."])]
        )
        #expect(try spec.compile().matches(order))
        let legacyOnly = TriggerFilterSpec(filter: AttributesFilter(attributes: ["type": "something.else"]), filters: [])
        #expect(try !legacyOnly.compile().matches(order), "an empty filters list leaves the legacy filter in charge")
    }

    // MARK: exactType

    @Test func exactTypeIndexesTriggers() throws {
        #expect(try compile(legacy: ["type": "a", "source": ""]).exactType == "a")
        #expect(try compile(legacy: ["type": ""]).exactType == nil)
        #expect(try compile([.exact(["type": "a"])]).exactType == "a")
        #expect(try compile([.prefix(["source": "x"]), .exact(["type": "a"])]).exactType == "a")
        #expect(try compile([.all([.cesql("TRUE"), .exact(["type": "a", "source": "s"])])]).exactType == "a")
        #expect(try compile([.any([.exact(["type": "a"]), .exact(["type": "a"])])]).exactType == "a")
        #expect(try compile([.any([.exact(["type": "a"]), .exact(["type": "b"])])]).exactType == nil)
        #expect(try compile([.any([.exact(["type": "a"]), .prefix(["type": "a"])])]).exactType == nil)
        #expect(try compile([.not(.exact(["type": "a"]))]).exactType == nil)
        #expect(try compile([.prefix(["type": "a"])]).exactType == nil)
        #expect(try compile([.cesql("type = 'a'")]).exactType == nil)
        #expect(try TriggerFilterSpec(filter: AttributesFilter(attributes: ["type": "legacy"]), filters: [.exact(["source": "s"])]).compile().exactType == nil)
        #expect(try TriggerFilterSpec().compile().exactType == nil)
    }
}
