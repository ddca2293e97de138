import Foundation
import TestSupport
import Testing

/// Traffic splitting, tags and gradual rollout through the real binary's CLI and gateway.
extension EndToEnd {
@Suite struct TrafficTests {
    /// Deploys two revisions of `name` that answer with MESSAGE one and two.
    func twoRevisions(_ daemon: Daemon, _ name: String, serviceAnnotations: [String] = []) throws {
        var create = ["service", "create", name, "--command", Binaries.echo, "--env", "MESSAGE=one"]
        for annotation in serviceAnnotations { create += ["--service-annotation", annotation] }
        #expect(try run(Binaries.outpost, create, environment: ["OUTPOST_ADMIN_URL": daemon.adminURL, "OUTPOST_DATA_DIR": daemon.dataDirectory]).status == 0)
        #expect(eventually(timeout: .seconds(20)) { message(daemon.gateway(name)) == "one" })
        #expect(try daemon.cli("service", "update", name, "--env", "MESSAGE=two").status == 0)
        #expect(eventually(timeout: .seconds(20)) { message(daemon.gateway(name)) == "two" })
    }

    func message(_ response: SimpleResponse) -> String? { response.json?["message"] as? String }

    @Test func ninetyTenSplitTagHostAndTagHeader() async throws {
        try await onThread {
            let directory = try TemporaryDirectory(prefix: "outpost-traffic")
            defer { directory.remove() }
            let daemon = Daemon(dataDirectory: directory.path)
            try daemon.start()
            defer { daemon.stop() }
            try twoRevisions(daemon, "shop")
            let traffic = try daemon.cli("service", "traffic", "shop", "--split", "shop-00001=90,@latest=10", "--tag", "shop-00001=stable", "-o", "json")
            #expect(traffic.status == 0, "\(traffic.stderr)")
            #expect(traffic.stdout.contains("\"tag\" : \"stable\""), "\(traffic.stdout)")
            #expect(traffic.stdout.contains("\"url\" : \"http://stable-shop.default.localhost"), "status.traffic carries the tag URL: \(traffic.stdout)")
            #expect(eventually(timeout: .seconds(10)) { daemon.gateway("stable-shop").status == 200 })

            // 10,000 requests: the split holds within ±2 %.
            let counts = RequestSampler.count(daemon: daemon, host: "shop.default.localhost", total: 10_000, threads: 8) { message($0) }
            let first = Double(counts["one", default: 0]) / 10_000
            #expect(abs(first - 0.90) <= 0.02, "\(counts)")
            #expect(counts["one", default: 0] + counts["two", default: 0] == 10_000, "\(counts)")

            // The tag host and the Knative-Serving-Tag header reach the tagged revision; an
            // unknown tag falls back to the split.
            #expect((0..<20).allSatisfy { _ in message(daemon.gateway("stable-shop")) == "one" })
            let header = (0..<20).map { _ in
                message(SimpleHTTP.request(port: daemon.gatewayPort, host: "shop.default.localhost", headers: [("Knative-Serving-Tag", "stable")]))
            }
            #expect(header.allSatisfy { $0 == "one" })
            let unknown = (0..<200).compactMap { _ in
                message(SimpleHTTP.request(port: daemon.gatewayPort, host: "shop.default.localhost", headers: [("Knative-Serving-Tag", "nope")]))
            }
            #expect(unknown.count == 200 && unknown.contains("two"), "falls back to the 90/10 split")

            // A revision the service does not have is refused, and the split stays as it was.
            let typo = try daemon.cli("service", "traffic", "shop", "--split", "shop-00009=90,@latest=10")
            #expect(typo.status != 0 && typo.stderr.contains("shop-00009"), "\(typo.status) \(typo.stderr)")
            #expect(daemon.gateway("stable-shop").status == 200, "the tag is still routed")
            let after = RequestSampler.count(daemon: daemon, host: "shop.default.localhost", total: 400, threads: 4) { message($0) }
            #expect(after["one", default: 0] > 300, "still 90/10: \(after)")
        }
    }

    @Test func gradualRolloutMovesTrafficInSteps() async throws {
        try await onThread {
            let directory = try TemporaryDirectory(prefix: "outpost-rollout")
            defer { directory.remove() }
            let daemon = Daemon(dataDirectory: directory.path)
            try daemon.start()
            defer { daemon.stop() }
            #expect(try daemon.cli("service", "create", "roll", "--command", Binaries.echo, "--env", "MESSAGE=one",
                                   "--service-annotation", "serving.knative.dev/rollout-duration=12s").status == 0)
            #expect(eventually(timeout: .seconds(20)) { message(daemon.gateway("roll")) == "one" })
            #expect(try daemon.cli("service", "update", "roll", "--env", "MESSAGE=two").status == 0)
            // Sample the share of the new revision over the rollout.
            var shares: [Double] = []
            let deadline = ContinuousClock.now + .seconds(18)
            while ContinuousClock.now < deadline {
                let answers = (0..<100).compactMap { _ in message(daemon.gateway("roll")) }
                shares.append(Double(answers.filter { $0 == "two" }.count) / Double(max(answers.count, 1)))
                usleep(500_000)
            }
            // It starts small, passes through the middle, and ends with everything.
            #expect(shares.contains { $0 < 0.25 }, "\(shares)")
            #expect(shares.contains { $0 > 0.3 && $0 < 0.8 }, "\(shares)")
            #expect(shares.last == 1.0, "\(shares)")
            #expect(zip(shares, shares.dropFirst()).filter { $1 + 0.2 < $0 }.isEmpty, "no large step back: \(shares)")
        }
    }
}
}

/// Sends `total` requests from `threads` threads and counts the answers by a key.
enum RequestSampler {
    static func count(daemon: Daemon, host: String, total: Int, threads: Int, key: @escaping @Sendable (SimpleResponse) -> String?) -> [String: Int] {
        let lock = NSLock()
        nonisolated(unsafe) var counts: [String: Int] = [:]
        let group = DispatchGroup()
        for index in 0..<threads {
            group.enter()
            let share = total / threads + (index < total % threads ? 1 : 0)
            Thread {
                var local: [String: Int] = [:]
                for _ in 0..<share {
                    let answer = key(SimpleHTTP.request(port: daemon.gatewayPort, host: host)) ?? "error"
                    local[answer, default: 0] += 1
                }
                lock.lock()
                for (answer, count) in local { counts[answer, default: 0] += count }
                lock.unlock()
                group.leave()
            }.start()
        }
        group.wait()
        return counts
    }
}
