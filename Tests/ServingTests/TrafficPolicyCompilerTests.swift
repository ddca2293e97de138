import Gateway
@testable import Serving
import Store
import Testing

@Suite struct TrafficPolicyCompilerTests {
    @Test func emptyPolicyKeepsIstioDefaults() throws {
        let compiled = try TrafficPolicyCompiler.compile(TrafficPolicySpec(), namespace: "default")
        #expect(compiled.route == .default)
        #expect(compiled.workers == WorkerPolicy())
    }

    @Test func fieldsCompileWithIstioDefaults() throws {
        let spec = TrafficPolicySpec(
            http: [HTTPRouteSpec(
                match: [HTTPMatchSpec(headers: ["X-User": StringMatchSpec(exact: "beta")])],
                redirect: RedirectSpec(uri: "/new"), retries: RetrySpec(attempts: 4),
                fault: FaultSpec(abort: .init(httpStatus: 503)),
                mirror: DestinationSpec(host: "shadow.team"), mirrorPercentage: PercentSpec(value: 25))],
            rateLimit: LocalRateLimitSpec(maxTokens: 10, fillInterval: "500ms"),
            trafficPolicy: DestinationPolicySpec(
                loadBalancer: LoadBalancerSpec(consistentHash: .init(httpCookie: .init(name: "session", path: "/", ttl: "1h"))),
                connectionPool: ConnectionPoolSpec(http: .init(maxRequestsPerConnection: 0)),
                outlierDetection: OutlierDetectionSpec(consecutive5xxErrors: 3)))
        let compiled = try TrafficPolicyCompiler.compile(spec, namespace: "default")
        let rule = try #require(compiled.route.rules.first)
        #expect(rule.matches.first?.headers["x-user"] == .exact("beta"))
        #expect(rule.redirect?.redirectCode == 301)
        #expect(rule.retry.attempts == 4 && rule.retry.retries(status: 503), "retryOn defaults to Istio's")
        #expect(rule.fault?.abort?.percent == 100, "an absent percentage is 100")
        #expect(rule.mirror == MirrorPolicy(namespace: "team", service: "shadow", percent: 25))
        #expect(compiled.route.rateLimit == LocalRateLimit(maxTokens: 10, tokensPerFill: 1, fillInterval: .milliseconds(500)),
                "Envoy's default is one token per fill")
        #expect(compiled.route.connectionPool.maxRequestsPerConnection == nil, "0 means unlimited")
        #expect(compiled.route.hashKey == .cookie("session", issue: IssuedCookie(path: "/", ttl: .seconds(3600))))
        #expect(compiled.workers.loadBalancer == .consistentHash)
        let outlier = try #require(compiled.workers.outlierDetection)
        #expect(outlier.consecutive5xxErrors == 3)
        #expect(outlier.baseEjectionTime == .seconds(30) && outlier.interval == .seconds(10) && outlier.maxEjectionPercent == 10)
    }

    /// Header rules cannot smuggle a header in through CR/LF or use a name that is not a
    /// token; a redirect does not combine with a rewrite; a mirror host is a service name.
    @Test(arguments: [
        (HTTPRouteSpec(headers: HeadersSpec(request: HeaderOperationsSpec(set: ["x-a": "bad\r\nInjected: 1"]))), "http[0].headers.request.set.x-a"),
        (HTTPRouteSpec(headers: HeadersSpec(response: HeaderOperationsSpec(add: ["x-b": "v\nSet-Cookie: evil=1"]))), "http[0].headers.response.add.x-b"),
        (HTTPRouteSpec(headers: HeadersSpec(request: HeaderOperationsSpec(set: ["bad header": "v"]))), "http[0].headers.request.set"),
        (HTTPRouteSpec(headers: HeadersSpec(response: HeaderOperationsSpec(remove: ["x:y"]))), "http[0].headers.response.remove"),
        (HTTPRouteSpec(match: [HTTPMatchSpec(headers: ["bad name": StringMatchSpec(exact: "a")])]), "http[0].match[0].headers"),
        (HTTPRouteSpec(rewrite: RewriteSpec(uri: "/y"), redirect: RedirectSpec(uri: "/x")), "http[0].redirect"),
        (HTTPRouteSpec(rewrite: RewriteSpec(authority: "a\r\nb")), "http[0].rewrite.authority"),
        (HTTPRouteSpec(mirror: DestinationSpec(host: "Bad Host!")), "http[0].mirror.host"),
        (HTTPRouteSpec(redirect: RedirectSpec(scheme: "ftp")), "http[0].redirect.scheme"),
        (HTTPRouteSpec(redirect: RedirectSpec(authority: "fe80::1")), "http[0].redirect.authority"),
        (HTTPRouteSpec(redirect: RedirectSpec(authority: "a.example/x")), "http[0].redirect.authority"),
        (HTTPRouteSpec(redirect: RedirectSpec(authority: "user@a.example")), "http[0].redirect.authority"),
        (HTTPRouteSpec(redirect: RedirectSpec(authority: "a.example:+1")), "http[0].redirect.authority"),
        (HTTPRouteSpec(rewrite: RewriteSpec(authority: "a.example:70000")), "http[0].rewrite.authority"),
        (HTTPRouteSpec(redirect: RedirectSpec(port: 0)), "http[0].redirect.port"),
        (HTTPRouteSpec(redirect: RedirectSpec(port: 65_536)), "http[0].redirect.port"),
        (HTTPRouteSpec(redirect: RedirectSpec(port: 8443, derivePort: "FROM_REQUEST_PORT")), "http[0].redirect.derivePort"),
        (HTTPRouteSpec(redirect: RedirectSpec(derivePort: "FROM_SOMEWHERE")), "http[0].redirect.derivePort"),
        // Headers that frame the message (request smuggling on a pooled worker connection).
        (HTTPRouteSpec(headers: HeadersSpec(request: HeaderOperationsSpec(set: ["Content-Length": "0"]))), "http[0].headers.request.set"),
        (HTTPRouteSpec(headers: HeadersSpec(request: HeaderOperationsSpec(add: ["transfer-encoding": "chunked"]))), "http[0].headers.request.add"),
        (HTTPRouteSpec(headers: HeadersSpec(request: HeaderOperationsSpec(remove: ["Transfer-Encoding"]))), "http[0].headers.request.remove"),
        (HTTPRouteSpec(headers: HeadersSpec(request: HeaderOperationsSpec(set: ["connection": "keep-alive"]))), "http[0].headers.request.set"),
        (HTTPRouteSpec(headers: HeadersSpec(request: HeaderOperationsSpec(set: ["TE": "trailers"]))), "http[0].headers.request.set"),
        (HTTPRouteSpec(headers: HeadersSpec(request: HeaderOperationsSpec(add: ["upgrade": "websocket"]))), "http[0].headers.request.add"),
        (HTTPRouteSpec(headers: HeadersSpec(request: HeaderOperationsSpec(set: ["proxy-connection": "x"]))), "http[0].headers.request.set"),
        (HTTPRouteSpec(headers: HeadersSpec(request: HeaderOperationsSpec(remove: ["Host"]))), "http[0].headers.request.remove"),
        (HTTPRouteSpec(headers: HeadersSpec(response: HeaderOperationsSpec(set: ["content-length": "5"]))), "http[0].headers.response.set"),
        (HTTPRouteSpec(headers: HeadersSpec(response: HeaderOperationsSpec(remove: ["keep-alive"]))), "http[0].headers.response.remove"),
        // Regexes RE2 refuses (Istio specifies RE2): possessive, lookahead, backreference.
        (HTTPRouteSpec(match: [HTTPMatchSpec(uri: StringMatchSpec(regex: "/\\pL(a++)"))]), "http[0].match[0].uri.regex"),
        (HTTPRouteSpec(match: [HTTPMatchSpec(headers: ["x-a": StringMatchSpec(regex: "(a|a)*(?=b)")])]), "http[0].match[0].headers.x-a.regex"),
        (HTTPRouteSpec(match: [HTTPMatchSpec(uri: StringMatchSpec(regex: "/(a)\\1"))]), "http[0].match[0].uri.regex"),
        // Durations beyond Int64 nanoseconds.
        (HTTPRouteSpec(timeout: "10000000000h"), "http[0].timeout"),
    ])
    func unsafeOrContradictoryRulesAreRefused(_ route: HTTPRouteSpec, field: String) {
        do {
            _ = try TrafficPolicyCompiler.compile(TrafficPolicySpec(http: [route]), namespace: "default")
            Issue.record("accepted: \(route)")
        } catch {
            #expect(error.field == field, "\(error.field): \(error.message)")
        }
    }

    @Test("authorities: a host, an IPv6 literal in brackets, each with an optional port", arguments: [
        ("a.example", true), ("a.example:8080", true), ("[::1]", true), ("[fe80::1]:8443", true), ("svc-1.ns", true),
        ("", false), (":80", false), ("a.example:", false), ("a.example:0", false), ("[::1", false), ("[]", false),
        ("[::1]x", false), ("a b", false), ("a:1:2", false),
    ])
    func authorities(value: String, valid: Bool) {
        #expect(TrafficPolicyCompiler.isAuthority(value) == valid, "\(value)")
    }

    @Test func regexErrorsSayWhatRE2Lacks() {
        let spec = TrafficPolicySpec(http: [HTTPRouteSpec(match: [HTTPMatchSpec(uri: StringMatchSpec(regex: "/(\\p{L}*)(?=x)"))])])
        do {
            _ = try TrafficPolicyCompiler.compile(spec, namespace: "default")
            Issue.record("accepted a lookahead")
        } catch {
            #expect(error.message.contains("is not a valid RE2 pattern: lookahead (?=…) is not RE2 syntax"), "\(error.message)")
        }
    }

    /// Envoy's token bucket counts in uint32; an absent tokensPerFill is 1; a fill interval
    /// too long for Int64 nanoseconds is refused rather than trapping.
    @Test(arguments: [
        (LocalRateLimitSpec(maxTokens: 4_294_967_296, fillInterval: "1s"), "rateLimit.maxTokens"),
        (LocalRateLimitSpec(maxTokens: Int.max, fillInterval: "1s"), "rateLimit.maxTokens"),
        (LocalRateLimitSpec(maxTokens: 10, tokensPerFill: 4_294_967_296, fillInterval: "1s"), "rateLimit.tokensPerFill"),
        (LocalRateLimitSpec(maxTokens: 10, tokensPerFill: 0, fillInterval: "1s"), "rateLimit.tokensPerFill"),
        (LocalRateLimitSpec(maxTokens: 10, fillInterval: "10000000000h"), "rateLimit.fillInterval"),
    ])
    func rateLimitBounds(_ limit: LocalRateLimitSpec, field: String) throws {
        do {
            _ = try TrafficPolicyCompiler.compile(TrafficPolicySpec(rateLimit: limit), namespace: "default")
            Issue.record("accepted: \(limit)")
        } catch {
            #expect(error.field == field, "\(error.field): \(error.message)")
        }
        let largest = LocalRateLimitSpec(maxTokens: 4_294_967_295, tokensPerFill: 4_294_967_295, fillInterval: "1s")
        let compiled = try TrafficPolicyCompiler.compile(TrafficPolicySpec(rateLimit: largest), namespace: "default")
        #expect(compiled.route.rateLimit?.maxTokens == 4_294_967_295)
    }

    /// The consistent-hash cookie's name and path go into `Set-Cookie` as written.
    @Test(arguments: [
        (ConsistentHashSpec(httpCookie: .init(name: "a b", ttl: "1h")), "trafficPolicy.loadBalancer.consistentHash.httpCookie.name"),
        (ConsistentHashSpec(httpCookie: .init(name: "a=b", ttl: "1h")), "trafficPolicy.loadBalancer.consistentHash.httpCookie.name"),
        (ConsistentHashSpec(httpCookie: .init(name: "s", path: "/\r\nSet-Cookie: admin=1", ttl: "1h")), "trafficPolicy.loadBalancer.consistentHash.httpCookie.path"),
        (ConsistentHashSpec(httpCookie: .init(name: "s", path: "/; Domain=evil.example", ttl: "1h")), "trafficPolicy.loadBalancer.consistentHash.httpCookie.path"),
    ])
    func cookieNameAndPathAreChecked(_ hash: ConsistentHashSpec, field: String) {
        let spec = TrafficPolicySpec(trafficPolicy: DestinationPolicySpec(loadBalancer: LoadBalancerSpec(consistentHash: hash)))
        do {
            _ = try TrafficPolicyCompiler.compile(spec, namespace: "default")
            Issue.record("accepted: \(hash)")
        } catch {
            #expect(error.field == field, "\(error.field): \(error.message)")
        }
    }

    @Test func errorsNameTheField() {
        let spec = TrafficPolicySpec(http: [HTTPRouteSpec(), HTTPRouteSpec(retries: RetrySpec(attempts: 1, perTryTimeout: "0s"))])
        #expect(throws: TrafficPolicyError.self) { try TrafficPolicyCompiler.compile(spec, namespace: "default") }
        do {
            _ = try TrafficPolicyCompiler.compile(spec, namespace: "default")
        } catch {
            #expect(error.field == "http[1].retries.perTryTimeout")
        }
    }
}
