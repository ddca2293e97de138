import Foundation
import TestSupport
import Testing

/// Traffic policies (retries, outlier detection, faults, mirroring, rate limit) set with
/// `outpost policy set` and measured through the real gateway against outpost-echo workers.
extension EndToEnd {
@Suite struct TrafficPolicyTests {
    /// A started daemon and a scratch folder for policy files and knobs.
    struct Sandbox {
        let directory: TemporaryDirectory
        let daemon: Daemon
        var folder: String { directory.path }

        init(_ prefix: String) throws {
            directory = try TemporaryDirectory(prefix: prefix)
            daemon = Daemon(dataDirectory: "\(directory.path)/data")
            try daemon.start()
        }

        func close() {
            daemon.stop()
            directory.remove()
        }
    }

    /// Creates an echo service and waits until it answers.
    func deploy(_ daemon: Daemon, _ name: String, _ extra: [String] = []) throws {
        let create = try run(Binaries.outpost, ["service", "create", name, "--command", Binaries.echo] + extra,
                             environment: ["OUTPOST_ADMIN_URL": daemon.adminURL, "OUTPOST_DATA_DIR": daemon.dataDirectory])
        #expect(create.status == 0, "\(create.stderr)")
        #expect(eventually(timeout: .seconds(20)) { daemon.gateway(name).status == 200 })
    }

    /// Writes `json` to a file and sets it as `service`'s policy with the CLI; waits for the
    /// control plane to publish it.
    func setPolicy(_ daemon: Daemon, _ service: String, _ json: String, folder: String) throws {
        let path = "\(folder)/\(service)-policy.json"
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try daemon.cli("policy", "set", service, "-f", path)
        #expect(result.status == 0, "\(result.stderr)")
        usleep(1_000_000)
    }

    static func port(_ response: SimpleResponse) -> String? {
        (response.json?["env"] as? [String: Any])?["PORT"] as? String
    }

    @Test func retriesTurnAHalfFailingWorkloadIntoSuccess() async throws {
        try await onThread { try self.retriesTurnAHalfFailingWorkloadIntoSuccessOnThread() }
    }

    func retriesTurnAHalfFailingWorkloadIntoSuccessOnThread() throws {
        let sandbox = try Sandbox("outpost-retries")
        defer { sandbox.close() }
        let (daemon, folder) = (sandbox.daemon, sandbox.folder)
        try deploy(daemon, "flaky")
        // Without retries the workload fails about half the time: the measurement can fail.
        try setPolicy(daemon, "flaky", #"{"http":[{"retries":{"attempts":0}}]}"#, folder: folder)
        let plain = (0..<200).map { _ in daemon.gateway("flaky", path: "/?fail=0.5").status }
        let plainShare = Double(plain.count { $0 == 200 }) / 200
        #expect(plainShare > 0.38 && plainShare < 0.62, "\(plainShare)")
        #expect(plain.allSatisfy { $0 == 200 || $0 == 503 })

        // Ten retries on 503 (Istio's default retryOn): ≥ 99 % success.
        try setPolicy(daemon, "flaky", #"{"http":[{"retries":{"attempts":10}}]}"#, folder: folder)
        let retried = (0..<300).map { _ in daemon.gateway("flaky", path: "/?fail=0.5").status }
        let retriedShare = Double(retried.count { $0 == 200 }) / 300
        #expect(retriedShare >= 0.99, "\(retriedShare)")
    }

    @Test func retriesGoToAnotherWorkerAndOutlierDetectionEjectsAFailingOne() async throws {
        try await onThread { try self.retriesGoToAnotherWorkerAndOutlierDetectionEjectsAFailingOneOnThread() }
    }

    func retriesGoToAnotherWorkerAndOutlierDetectionEjectsAFailingOneOnThread() throws {
        let sandbox = try Sandbox("outpost-outlier")
        defer { sandbox.close() }
        let (daemon, folder) = (sandbox.daemon, sandbox.folder)
        let failFile = "\(folder)/fail"
        try deploy(daemon, "pair", ["--env", "ECHO_FAIL_FILE=\(failFile)", "--annotation", "autoscaling.knative.dev/min-scale=2"])
        try setPolicy(daemon, "pair", #"{"trafficPolicy":{"loadBalancer":{"simple":"ROUND_ROBIN"}}}"#, folder: folder)
        var ports = Set<String>()
        #expect(eventually(timeout: .seconds(20)) {
            if let port = Self.port(daemon.gateway("pair")) { ports.insert(port) }
            return ports.count == 2
        }, "two workers answer in turn: \(ports)")
        let failing = try #require(ports.sorted().first)
        let healthy = try #require(ports.sorted().last)
        try "\(failing)\n".write(toFile: failFile, atomically: true, encoding: .utf8)

        // Istio's default retry (2 retries on 503) lands on the other worker: no failures.
        let retried = (0..<40).map { _ in daemon.gateway("pair") }
        #expect(retried.allSatisfy { $0.status == 200 && Self.port($0) == healthy })

        // Without retries, outlier detection ejects the failing worker after 3 errors.
        try setPolicy(daemon, "pair", """
            {"http":[{"retries":{"attempts":0}}],
             "trafficPolicy":{"loadBalancer":{"simple":"ROUND_ROBIN"},
               "outlierDetection":{"consecutive5xxErrors":3,"interval":"1s","baseEjectionTime":"4s","maxEjectionPercent":50}}}
            """, folder: folder)
        let ejecting = (0..<40).map { _ in daemon.gateway("pair") }
        let failures = ejecting.count { $0.status == 503 }
        #expect(failures == 3, "three 503s, then the worker is out: \(ejecting.map(\.status))")
        #expect(ejecting.suffix(30).allSatisfy { $0.status == 200 && Self.port($0) == healthy })

        // It recovers; after the ejection time it takes requests again.
        try FileManager.default.removeItem(atPath: failFile)
        let stillOut = (0..<10).compactMap { _ in Self.port(daemon.gateway("pair")) }
        #expect(!stillOut.contains(failing), "still ejected right after recovering")
        usleep(4_500_000)
        let back = (0..<10).map { _ in daemon.gateway("pair") }
        #expect(back.allSatisfy { $0.status == 200 })
        #expect(back.contains { Self.port($0) == failing }, "the worker is back in rotation")
    }

    @Test func consistentHashKeepsEachUserOnOneWorker() async throws {
        try await onThread { try self.consistentHashKeepsEachUserOnOneWorkerOnThread() }
    }

    func consistentHashKeepsEachUserOnOneWorkerOnThread() throws {
        let sandbox = try Sandbox("outpost-sticky")
        defer { sandbox.close() }
        let (daemon, folder) = (sandbox.daemon, sandbox.folder)
        try deploy(daemon, "sticky", ["--annotation", "autoscaling.knative.dev/min-scale=2"])
        try setPolicy(daemon, "sticky", #"{"trafficPolicy":{"loadBalancer":{"simple":"ROUND_ROBIN"}}}"#, folder: folder)
        var ports = Set<String>()
        #expect(eventually(timeout: .seconds(20)) {
            if let port = Self.port(daemon.gateway("sticky")) { ports.insert(port) }
            return ports.count == 2
        })
        try setPolicy(daemon, "sticky", #"{"trafficPolicy":{"loadBalancer":{"consistentHash":{"httpHeaderName":"x-user"}}}}"#, folder: folder)
        var owners: [String: Set<String>] = [:]
        for round in 0..<5 {
            for user in 0..<20 {
                let response = SimpleHTTP.request(
                    port: daemon.gatewayPort, path: "/\(round)", host: "sticky.default.localhost", headers: [("x-user", "user-\(user)")])
                owners["user-\(user)", default: []].insert(Self.port(response) ?? "error")
            }
        }
        #expect(owners.values.allSatisfy { $0.count == 1 && !$0.contains("error") }, "\(owners)")
        #expect(Set(owners.values.flatMap { $0 }) == ports, "users spread over both workers")
    }

    @Test func delayAndAbortFaultsHitTheirPercentages() async throws {
        try await onThread { try self.delayAndAbortFaultsHitTheirPercentagesOnThread() }
    }

    func delayAndAbortFaultsHitTheirPercentagesOnThread() throws {
        let sandbox = try Sandbox("outpost-faults")
        defer { sandbox.close() }
        let (daemon, folder) = (sandbox.daemon, sandbox.folder)
        try deploy(daemon, "faulty")
        try setPolicy(daemon, "faulty", """
            {"http":[
              {"match":[{"uri":{"prefix":"/abort"}}],"fault":{"abort":{"percentage":{"value":30},"httpStatus":500}},"retries":{"attempts":0}},
              {"match":[{"uri":{"prefix":"/delay"}}],"fault":{"delay":{"percentage":{"value":50},"fixedDelay":"300ms"}}}]}
            """, folder: folder)
        let aborts = (0..<300).map { _ in daemon.gateway("faulty", path: "/abort").status }
        let abortShare = Double(aborts.count { $0 == 500 }) / 300
        #expect(abortShare > 0.2 && abortShare < 0.4, "\(abortShare)")
        #expect(aborts.allSatisfy { $0 == 200 || $0 == 500 })

        let lock = NSLock()
        nonisolated(unsafe) var delays: [Duration] = []
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<15 {
                let start = ContinuousClock.now
                let status = daemon.gateway("faulty", path: "/delay").status
                let elapsed = ContinuousClock.now - start
                lock.lock()
                if status == 200 { delays.append(elapsed) }
                lock.unlock()
            }
        }
        #expect(delays.count == 120)
        let delayedShare = Double(delays.count { $0 >= .milliseconds(300) }) / Double(delays.count)
        #expect(delayedShare > 0.35 && delayedShare < 0.65, "\(delayedShare)")
    }

    @Test func theMirrorReceivesCopiesWhileResponsesComeFromThePrimary() async throws {
        try await onThread { try self.theMirrorReceivesCopiesWhileResponsesComeFromThePrimaryOnThread() }
    }

    func theMirrorReceivesCopiesWhileResponsesComeFromThePrimaryOnThread() throws {
        let sandbox = try Sandbox("outpost-mirror")
        defer { sandbox.close() }
        let (daemon, folder) = (sandbox.daemon, sandbox.folder)
        let record = "\(folder)/shadow.log"
        try deploy(daemon, "shadow", ["--env", "MESSAGE=shadow", "--env", "ECHO_RECORD_FILE=\(record)"])
        try deploy(daemon, "primary", ["--env", "MESSAGE=primary"])
        try? FileManager.default.removeItem(atPath: record)
        try setPolicy(daemon, "primary", #"{"http":[{"mirror":{"host":"shadow"}}]}"#, folder: folder)
        let answers = (0..<50).map { index in daemon.gateway("primary", path: "/copy/\(index)").json?["message"] as? String }
        #expect(answers.allSatisfy { $0 == "primary" })
        func recorded() -> [String] {
            ((try? String(contentsOfFile: record, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        #expect(eventually(timeout: .seconds(5)) { recorded().count >= 48 }, "best effort, but a warm mirror gets nearly all: \(recorded().count)")
        #expect(recorded().allSatisfy { $0.hasPrefix("GET /copy/") && $0.hasSuffix("-shadow:\(daemon.gatewayPort)") }, "\(recorded().prefix(3))")

        // mirrorPercentage: about half of the requests are copied.
        try setPolicy(daemon, "primary", #"{"http":[{"mirror":{"host":"shadow"},"mirrorPercentage":{"value":50}}]}"#, folder: folder)
        try? FileManager.default.removeItem(atPath: record)
        for index in 0..<300 { _ = daemon.gateway("primary", path: "/half/\(index)") }
        usleep(500_000)
        let share = Double(recorded().count) / 300
        #expect(share > 0.38 && share < 0.62, "\(share)")
    }

    @Test func requestsBeyondTheRateLimitGet429WithRetryAfter() async throws {
        try await onThread { try self.requestsBeyondTheRateLimitGet429WithRetryAfterOnThread() }
    }

    func requestsBeyondTheRateLimitGet429WithRetryAfterOnThread() throws {
        let sandbox = try Sandbox("outpost-ratelimit")
        defer { sandbox.close() }
        let (daemon, folder) = (sandbox.daemon, sandbox.folder)
        try deploy(daemon, "limited")
        try setPolicy(daemon, "limited", #"{"rateLimit":{"maxTokens":5,"tokensPerFill":5,"fillInterval":"3s"}}"#, folder: folder)
        let burst = (0..<20).map { _ in daemon.gateway("limited") }
        let passed = burst.count { $0.status == 200 }
        // 5 tokens, plus 5 more if a fill happens to fall inside the burst.
        #expect(passed == 5 || passed == 10, "\(burst.map(\.status))")
        let limited = burst.filter { $0.status == 429 }
        #expect(limited.count == 20 - passed)
        #expect(limited.allSatisfy { ($0.headers["retry-after"].flatMap(Int.init) ?? 0) >= 1 && ($0.headers["retry-after"].flatMap(Int.init) ?? 99) <= 3 })
        usleep(3_100_000)
        #expect(daemon.gateway("limited").status == 200, "the bucket refills")
        // The policy's removal lifts the limit.
        #expect(try daemon.cli("policy", "delete", "limited").status == 0)
        #expect(eventually(timeout: .seconds(5)) { (0..<10).allSatisfy { _ in daemon.gateway("limited").status == 200 } })
    }
}
}
