@testable import Gateway
import Testing

@Suite("Route table")
struct RouteTableTests {
    static let revision1 = RevisionID(namespace: "shop", name: "cart-00001")
    static let revision2 = RevisionID(namespace: "shop", name: "cart-00002")

    static let cart = Route(namespace: "shop", service: "cart", targets: [
        RouteTarget(revision: revision1, percent: 90, timeout: .seconds(30)),
        RouteTarget(revision: revision2, percent: 10, timeout: .seconds(30)),
    ])

    @Test("a model version in the path picks its revision")
    func modelVersionsInThePath() {
        var model = Self.cart
        model.modelVersions = ["cart-00001": Self.cart.targets[0], "cart-00002": Self.cart.targets[1]]
        #expect(model.modelVersionTarget(path: "/v2/models/cart/versions/cart-00002/infer")?.revision == Self.revision2)
        #expect(model.modelVersionTarget(path: "/v2/models/cart/versions/cart-00001")?.revision == Self.revision1)
        #expect(model.modelVersionTarget(path: "/v2/models/cart/versions/cart-00001?x=1")?.revision == Self.revision1)
        #expect(model.modelVersionTarget(path: "/v2/models/cart/versions/cart-00009/infer") == nil, "unknown: the split decides")
        #expect(model.modelVersionTarget(path: "/v2/models/cart/infer") == nil)
        #expect(model.modelVersionTarget(path: "/v1/models/cart:predict") == nil)
        #expect(Self.cart.modelVersionTarget(path: "/v2/models/cart/versions/cart-00002/infer") == nil, "not a model service")
    }

    @Test("compiles routes to <service>.<namespace>.<domain> with a lowercased domain")
    func compilesHosts() {
        let table = RouteTable(domain: "Example.COM", routes: [Self.cart])
        #expect(table.domain == "example.com")
        #expect(table.route(forHost: "cart.shop.example.com") == Self.cart)
        #expect(table.route(forHost: "cart.shop.localhost") == nil)
        #expect(table.route(forHost: "other.shop.example.com") == nil)
        #expect(table.routes == [Self.cart])
    }

    @Test(
        "normalises Host values",
        arguments: [
            "cart.shop.example.com", "CART.Shop.Example.Com", "cart.shop.example.com:8080",
            "cart.shop.example.com.", "Cart.Shop.Example.Com.:80",
        ])
    func normalisesHosts(host: String) {
        let table = RouteTable(domain: "example.com", routes: [Self.cart])
        #expect(table.route(forHost: host) == Self.cart)
    }

    @Test("keeps bracketed IPv6 literals intact")
    func ipv6Hosts() {
        #expect(RouteTable.normalize(host: "[::1]:8080") == "[::1]")
        #expect(RouteTable.normalize(host: "[::1]") == "[::1]")
        #expect(RouteTable.normalize(host: "Name.Example:1") == "name.example")
    }

    @Test("a later route for the same host replaces an earlier one")
    func laterRouteWins() {
        let replacement = Route(namespace: "shop", service: "cart", targets: [])
        let table = RouteTable(domain: "example.com", routes: [Self.cart, replacement])
        #expect(table.route(forHost: "cart.shop.example.com") == replacement)
        #expect(table.routes.count == 1)
    }

    @Test("weighted pick: rolls 0..<90 go to the first target, 90..<100 to the second")
    func weightedPick() {
        var counts: [RevisionID: Int] = [:]
        for roll in 0..<100 {
            let target = Self.cart.pick(roll: roll)
            counts[target!.revision, default: 0] += 1
        }
        #expect(counts == [Self.revision1: 90, Self.revision2: 10])
        #expect(Self.cart.pick(roll: 89)?.revision == Self.revision1)
        #expect(Self.cart.pick(roll: 90)?.revision == Self.revision2)
    }

    @Test("a route without targets picks nothing")
    func emptyRoute() {
        #expect(Route(namespace: "a", service: "b", targets: []).pick(roll: 0) == nil)
    }

    @Test("seeded rolls are reproducible, in range and spread out")
    func seededRolls() {
        let first = TrafficRoll.seeded(7)
        let second = TrafficRoll.seeded(7)
        let a = (0..<1000).map { _ in first.next() }
        let b = (0..<1000).map { _ in second.next() }
        #expect(a == b)
        #expect(a.allSatisfy { (0..<100).contains($0) })
        let toFirst = a.filter { Self.cart.pick(roll: $0)?.revision == Self.revision1 }.count
        #expect((850...950).contains(toFirst))
        #expect(TrafficRoll.seeded(8).next() != a[0] || TrafficRoll.seeded(9).next() != a[0])
    }

    @Test("the per-loop cache sees a published table on the next read")
    func storeAndCache() {
        let store = RouteTableStore(initial: .empty(domain: "localhost"))
        let cache = RouteTableCache(store: store)
        #expect(cache.current.route(forHost: "cart.shop.example.com") == nil)
        store.publish(RouteTable(domain: "example.com", routes: [Self.cart]))
        #expect(cache.current.route(forHost: "cart.shop.example.com") == Self.cart)
        #expect(store.current.domain == "example.com")
        #expect(store.currentVersion == 1)
    }

    @Test("a tag gets its own host that sends everything to its revision")
    func tagHosts() {
        var tagged = Self.cart
        tagged.tags = ["stable": RouteTarget(revision: Self.revision1, percent: 100, timeout: .seconds(5))]
        let table = RouteTable(domain: "example.com", routes: [tagged])
        let route = table.route(forHost: "STABLE-cart.shop.example.com:8080")
        #expect(route?.targets.map(\.revision) == [Self.revision1])
        #expect(route?.targets.first?.percent == 100)
        #expect(table.route(forHost: "cart.shop.example.com")?.tags["stable"]?.revision == Self.revision1)
        #expect(table.route(forHost: "other-cart.shop.example.com") == nil)
    }
}
