@testable import Gateway
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

@Suite("Traffic policy rules")
struct RoutePolicyTests {
    @Test("Istio's default retry policy: 2 retries on connect failures and 503 only")
    func defaultRetries() {
        let policy = RetryPolicy.istioDefault
        #expect(policy.attempts == 2)
        #expect(policy.retries(status: 503))
        #expect(!policy.retries(status: 500))
        #expect(!policy.retries(status: 502))
        #expect(policy.retriesConnectFailure)
        #expect(!policy.retriesReset(requestSent: true) && !policy.retriesReset(requestSent: false))
        #expect(!policy.retriesPerTryTimeout)
    }

    @Test("retryOn parses Envoy conditions; integers become retriable status codes")
    func retryOn() throws {
        let fiveXX = try RetryPolicy(attempts: 3, retryOn: "5xx")
        #expect(fiveXX.retries(status: 500) && fiveXX.retries(status: 599) && !fiveXX.retries(status: 499))
        #expect(fiveXX.retriesReset(requestSent: true) && fiveXX.retriesPerTryTimeout && fiveXX.retriesConnectFailure)
        let gateway = try RetryPolicy(attempts: 1, retryOn: "gateway-error")
        #expect(gateway.retries(status: 502) && gateway.retries(status: 504) && !gateway.retries(status: 500))
        #expect(gateway.retriesReset(requestSent: true), "as in Envoy, gateway-error covers a reset")
        let codes = try RetryPolicy(attempts: 1, retryOn: "retriable-4xx, 429")
        #expect(codes.retries(status: 409) && codes.retries(status: 429) && !codes.retries(status: 503))
        #expect(!codes.retriesConnectFailure)
        let explicit = try RetryPolicy(attempts: 1, retryOn: "retriable-status-codes")
        #expect(!explicit.retries(status: 503), "an explicit retryOn does not inherit the default 503")
        #expect(throws: RetryOnError(token: "sometimes")) { try RetryPolicy(attempts: 1, retryOn: "5xx,sometimes") }
        #expect(throws: RetryOnError(token: "99")) { try RetryPolicy(attempts: 1, retryOn: "99") }
    }

    @Test("reset-before-request retries a reset only while nothing of the request was written")
    func resetBeforeRequest() throws {
        let policy = try RetryPolicy(attempts: 1, retryOn: "reset-before-request")
        #expect(policy.retriesReset(requestSent: false))
        #expect(!policy.retriesReset(requestSent: true))
        #expect(policy.retriesConnectFailure, "a failed connect sent nothing")
        #expect(!policy.retriesPerTryTimeout)
        let reset = try RetryPolicy(attempts: 1, retryOn: "reset")
        #expect(reset.retriesReset(requestSent: true) && reset.retriesReset(requestSent: false))
    }

    @Test("Envoy's backoff: below 25 ms × (2^n − 1), never beyond 250 ms", arguments: [1, 2, 3, 4, 10])
    func backoff(retry: Int) {
        let ceiling = min(25 * ((1 << retry) - 1), 250)
        var generator = TelemetryRandom(seed: (1, 2, 3, UInt64(retry)))
        let samples = (0..<2_000).map { _ in RetryPolicy.backoff(retry: retry, random: generator.next()) }
        #expect(samples.allSatisfy { $0 >= .zero && $0 < .milliseconds(ceiling) })
        // Jittered, not fixed: the samples spread over the range.
        #expect(samples.max()! > .milliseconds(ceiling * 3 / 4))
        #expect(samples.min()! < .milliseconds(ceiling / 4))
    }

    @Test("string matches: exact, prefix and whole-string regex")
    func stringMatches() throws {
        #expect(StringMatch.exact("/a").matches("/a") && !StringMatch.exact("/a").matches("/ab"))
        #expect(StringMatch.prefix("/api").matches("/api/v1") && !StringMatch.prefix("/api").matches("/ap"))
        let regex = StringMatch.regex(try MatchPattern("/users/[0-9]+"))
        #expect(regex.matches("/users/42"))
        #expect(!regex.matches("/users/42/x"), "the expression must match the whole value")
        #expect(throws: (any Error).self) { try MatchPattern("(unclosed") }
    }

    @Test("what RE2 refuses is refused, saying what", arguments: [
        ("(a|a)*(?=b)", "lookahead"), ("(?:a+){2,}(?=x)", "lookahead"), ("(?<n>[a-z]+)+(?!x)", "negative lookahead"),
        ("a(?<=b)", "lookbehind"), ("(?>a+)b", "atomic group"), ("a++b", "possessive"),
        ("(a)\\1", "backreference"), ("(?<n>a)\\k<n>", "backreference"), ("(?P<n>a)(?P=n)", "backreference"),
        ("(a)\\g1", "backreference"), ("\\p{Greek}+", "script classes are not supported"),
    ])
    func refusedPatterns(pattern: String, reason: String) {
        #expect {
            try MatchPattern(pattern)
        } throws: { error in
            (error as? PatternError)?.message.contains(reason) == true
        }
    }

    /// These once went to Swift's backtracking `Regex` (or were refused for its sake): a value
    /// of 8,000 characters that almost matches is answered at once now.
    @Test("patterns that explode a backtracking engine compile and answer", arguments: [
        "\\pL(a+)+b", "(\\p{L}*)*b", "/x/(\\d+)*\\pN", "((\\pL)+)+b", "\\pL(ab?)+c", "(?i)(\\p{Ll}+)+b", "\\Qa\\E(a|a)*b",
        "/users/[0-9]+", "/(a+)+b", "(a*)*b", "(a|a)*b", "(x+x+)+y",
    ])
    func exponentialPatternsAnswer(pattern: String) throws {
        let compiled = try MatchPattern(pattern)
        #expect(!compiled.matchesWhole(Substring(String(repeating: "a", count: 8_000) + "!")))
        #expect(!compiled.matchesWhole(Substring("/x/" + String(repeating: "1", count: 8_000) + "!")))
    }

    @Test("a value longer than 8 KiB never matches a regex")
    func longValuesDoNotMatch() throws {
        let pattern = try MatchPattern("/a.*")
        let limit = MatchPattern.maxMatchedBytes
        #expect(pattern.matchesWhole(Substring("/a" + String(repeating: "b", count: limit - 2))))
        #expect(!pattern.matchesWhole(Substring("/a" + String(repeating: "b", count: limit - 1))))
    }

    @Test("rules: AND within a match, OR across matches, first rule wins, else the default")
    func ruleSelection() {
        let beta = RouteRule(name: "beta", matches: [
            RequestMatch(uri: .prefix("/api"), method: .exact("GET"), headers: ["x-user": .exact("beta")]),
            RequestMatch(uri: .exact("/beta")),
        ], timeout: .seconds(1))
        let api = RouteRule(name: "api", matches: [RequestMatch(uri: .prefix("/api"))], timeout: .seconds(2))
        let policy = RoutePolicy(rules: [beta, api])
        let betaHeaders: [(name: String, value: String)] = [("X-User", "beta")]
        #expect(policy.rule(method: "GET", path: "/api/x", headers: betaHeaders).name == "beta")
        #expect(policy.rule(method: "POST", path: "/api/x", headers: betaHeaders).name == "api")
        #expect(policy.rule(method: "GET", path: "/api/x", headers: []).name == "api")
        #expect(policy.rule(method: "DELETE", path: "/beta", headers: []).name == "beta")
        #expect(policy.rule(method: "GET", path: "/other", headers: []) == .default)
    }

    @Test("redirect Location: uri replaces the path and keeps the query unless it brings one")
    func redirectLocation() {
        #expect(RouteRedirect(uri: "/new").location(scheme: "http", host: "a.b", target: "/old?q=1") == "http://a.b/new?q=1")
        #expect(RouteRedirect(uri: "/new?x=2").location(scheme: "http", host: "a.b", target: "/old?q=1") == "http://a.b/new?x=2")
        #expect(RouteRedirect(authority: "c.d").location(scheme: "http", host: "a.b", target: "/p") == "http://c.d/p")
        #expect(RouteRedirect(uri: "/new").location(scheme: "https", host: "a.b", target: "/old") == "https://a.b/new")
    }

    @Test("rewrite replaces the matched prefix (or the whole path) and the authority; header operations")
    func rewriteAndHeaders() {
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/api/users?id=1", headers: ["host": "a", "x-old": "1"])
        ProxyHandler.apply(RouteRewrite(uri: "/v2", authority: "b"), prefix: "/api", to: &head)
        #expect(head.uri == "/v2/users?id=1")
        #expect(head.headers["host"] == ["b"])
        ProxyHandler.apply(RouteRewrite(uri: "/only"), prefix: nil, to: &head)
        #expect(head.uri == "/only?id=1")
        ProxyHandler.apply(HeaderOperations(set: ["x-set": "s", "host": "c"], add: ["x-add": "a"], remove: ["X-Old"]), to: &head.headers)
        #expect(head.headers["x-old"].isEmpty)
        #expect(head.headers["x-set"] == ["s"] && head.headers["host"] == ["c"] && head.headers["x-add"] == ["a"])
    }

    @Test("token bucket: starts full, refills per whole interval up to the maximum, tells the wait")
    func tokenBucket() {
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        var bucket = TokenBucket(limit: LocalRateLimit(maxTokens: 2, tokensPerFill: 1, fillInterval: .seconds(1)), now: start)
        #expect(bucket.take(now: start) == nil)
        #expect(bucket.take(now: start) == nil)
        #expect(bucket.take(now: start + .milliseconds(400)) == .milliseconds(600))
        #expect(bucket.take(now: start + .milliseconds(1_000)) == nil, "one token after one interval")
        #expect(bucket.take(now: start + .milliseconds(1_500)) == .milliseconds(500))
        #expect(bucket.take(now: start + .seconds(60)) == nil)
        #expect(bucket.take(now: start + .seconds(60)) == nil, "refills stop at maxTokens")
        #expect(bucket.take(now: start + .seconds(60)) != nil)
    }

    @Test("token bucket: refills saturate at maxTokens instead of overflowing")
    func tokenBucketSaturates() {
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        var huge = TokenBucket(limit: LocalRateLimit(maxTokens: .max, tokensPerFill: .max, fillInterval: .seconds(1)), now: start)
        #expect(huge.take(now: start) == nil)
        #expect(huge.take(now: start + .seconds(3)) == nil, "3 × Int.max tokens per fill")
        #expect(huge.tokens == .max - 1)
        var full = TokenBucket(limit: LocalRateLimit(maxTokens: .max, tokensPerFill: 1, fillInterval: .nanoseconds(1)), now: start)
        #expect(full.take(now: start) == nil)
        #expect(full.take(now: start + .seconds(10)) == nil, "Int.max − 1 tokens plus ten billion fills")
        #expect(full.tokens == .max - 1)
    }

    @Test("a republished table keeps the bucket of a service whose limits did not change")
    func runtimeSurvivesPublish() {
        let limited = RoutePolicy(rateLimit: LocalRateLimit(maxTokens: 1, tokensPerFill: 1, fillInterval: .seconds(3600)))
        func table(_ policy: RoutePolicy) -> RouteTable {
            RouteTable(domain: "d", routes: [Route(namespace: "n", service: "s", targets: [], policy: policy)])
        }
        let store = RouteTableStore(initial: table(limited))
        let route = store.current.route(forHost: "s.n.d")!
        #expect(store.current.runtime(for: route)?.takeToken(now: .now()) == nil)
        store.publish(table(limited))
        #expect(store.current.runtime(for: route)?.takeToken(now: .now()) != nil, "the same bucket, still empty")
        var changed = limited
        changed.rateLimit?.maxTokens = 2
        store.publish(table(changed))
        #expect(store.current.runtime(for: route)?.takeToken(now: .now()) == nil, "new limits start full")
    }

    @Test("connection-pool counters refuse beyond the limit and free on leave")
    func poolCounters() {
        let runtime = RouteRuntime(rateLimit: nil, limits: ConnectionPoolLimits(maxConnections: 2, maxPendingRequests: 1))
        #expect(runtime.requestSlot {} == .granted && runtime.requestSlot {} == .granted)
        guard case .queued(let waiting) = runtime.requestSlot(grant: {}) else {
            Issue.record("expected the third request to wait")
            return
        }
        #expect(runtime.requestSlot {} == .refused, "one waits already")
        #expect(runtime.cancelSlotRequest(waiting))
        runtime.leaveInFlight()
        #expect(runtime.requestSlot {} == .granted)
        #expect(runtime.enterPending() && !runtime.enterPending())
    }

    @Test("maxConnections slots: beyond the limit requests queue, slots pass in order, the pending limit refuses")
    func slotQueue() {
        let runtime = RouteRuntime(rateLimit: nil, limits: ConnectionPoolLimits(maxConnections: 1, maxPendingRequests: 2))
        let granted = Mutex<[Int]>([])
        #expect(runtime.requestSlot { granted.withLock { $0.append(0) } } == .granted)
        guard case .queued(let first) = runtime.requestSlot(grant: { granted.withLock { $0.append(1) } }),
              case .queued(let second) = runtime.requestSlot(grant: { granted.withLock { $0.append(2) } }) else {
            Issue.record("expected two queued requests")
            return
        }
        #expect(runtime.requestSlot { granted.withLock { $0.append(3) } } == .refused, "two wait already")
        runtime.leaveInFlight()
        #expect(granted.withLock { $0 } == [1], "the oldest waiter gets the slot")
        #expect(!runtime.cancelSlotRequest(first), "already granted")
        #expect(runtime.cancelSlotRequest(second))
        runtime.leaveInFlight()
        #expect(granted.withLock { $0 } == [1], "nobody waits: the slot is free")
        #expect(runtime.requestSlot {} == .granted)
        if case .queued(let id) = runtime.requestSlot(grant: {}) {
            #expect(runtime.cancelSlotRequest(id))
        } else {
            Issue.record("the one slot is taken: the next request waits")
        }

        // New limits retire the runtime: whoever still waits goes on at once.
        guard case .queued = runtime.requestSlot(grant: { granted.withLock { $0.append(4) } }) else {
            Issue.record("expected a queued request")
            return
        }
        runtime.retire()
        #expect(granted.withLock { $0 } == [1, 4])
    }

    @Test("consistent-hash keys from a header or a cookie; absent keys give nil")
    func hashKeys() {
        let headers: [(name: String, value: String)] = [("X-User", "ann"), ("Cookie", "a=1; session=xyz; b=2")]
        #expect(HashKeySource.header("x-user").hash(headers: headers) == HashKeySource.fnv1a("ann"))
        #expect(HashKeySource.cookie("session").hash(headers: headers) == HashKeySource.fnv1a("xyz"))
        #expect(HashKeySource.cookie("missing").hash(headers: headers) == nil)
        #expect(HashKeySource.header("x-none").hash(headers: headers) == nil)
    }
}
