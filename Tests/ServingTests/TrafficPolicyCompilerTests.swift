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
        #expect(compiled.route.rateLimit == LocalRateLimit(maxTokens: 10, tokensPerFill: 10, fillInterval: .milliseconds(500)))
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
    ])
    func unsafeOrContradictoryRulesAreRefused(_ route: HTTPRouteSpec, field: String) {
        do {
            _ = try TrafficPolicyCompiler.compile(TrafficPolicySpec(http: [route]), namespace: "default")
            Issue.record("accepted: \(route)")
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
