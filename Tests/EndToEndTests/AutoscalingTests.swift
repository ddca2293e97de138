import Foundation
import TestSupport
import Testing

/// Autoscaling with the real binary: the KPA formula under load, scale-down without failed
/// requests, back to zero, stop/resume, the warm tier and the metrics endpoint.
extension EndToEnd {
@Suite struct AutoscalingTests {
    func revisionStatus(_ daemon: Daemon, _ name: String) -> [String: Any] {
        daemon.api("GET", "/api/v1/namespaces/default/revisions/\(name)").json?["status"] as? [String: Any] ?? [:]
    }

    @Test func reachesTheFormulaCountUnderLoadDrainsWithoutErrorsAndReturnsToZero() async throws {
        try await onThread {
            let directory = try TemporaryDirectory(prefix: "outpost-scale")
            defer { directory.remove() }
            let daemon = Daemon(dataDirectory: directory.path, extraArguments: ["--scale-to-zero-grace-period", "500ms"])
            try daemon.start()
            defer { daemon.stop() }
            // target 10 at 100 % utilisation: one worker per 10 concurrent requests.
            let created = try daemon.cli(
                "service", "create", "busy", "--command", Binaries.echo,
                "--annotation", "autoscaling.knative.dev/target=10",
                "--annotation", "autoscaling.knative.dev/target-utilization-percentage=100",
                "--annotation", "autoscaling.knative.dev/window=6s")
            #expect(created.status == 0, "\(created.stderr)")
            #expect(eventually(timeout: .seconds(20)) { daemon.gateway("busy").status == 200 })

            // 4 × target: 40 concurrent requests of 200 ms → ceil(40 / 10) = 4 workers.
            let host = "busy.default.localhost:\(daemon.gatewayPort)"
            let heavy = LoadGenerator(concurrency: 40, port: daemon.gatewayPort, host: host, path: "/?delay=200ms")
            let reached = eventually(timeout: .seconds(30)) {
                let status = revisionStatus(daemon, "busy-00001")
                return status["desiredReplicas"] as? Int == 4 && status["actualReplicas"] as? Int == 4
            }
            let heavyCounts = heavy.stop()
            #expect(reached, "status: \(revisionStatus(daemon, "busy-00001"))")
            #expect(heavyCounts.keys.allSatisfy { $0 == 200 }, "\(heavyCounts)")

            // Light load (well under one worker's target) while workers drain from 4 toward 1:
            // every request must still succeed.
            let light = LoadGenerator(concurrency: 6, port: daemon.gatewayPort, host: host, path: "/")
            let drained = eventually(timeout: .seconds(40)) {
                revisionStatus(daemon, "busy-00001")["actualReplicas"] as? Int == 1
            }
            let duringDrain = light.counts.values.reduce(0, +)
            // Keep going past the last drain until a few thousand requests have been answered.
            _ = eventually(timeout: .seconds(30)) { light.counts.values.reduce(0, +) >= 3000 }
            let lightCounts = light.stop()
            let total = lightCounts.values.reduce(0, +)
            #expect(drained, "status: \(revisionStatus(daemon, "busy-00001"))")
            #expect(lightCounts.keys.allSatisfy { $0 == 200 }, "non-200 answers across scale-down: \(lightCounts)")
            #expect(duringDrain >= 500, "only \(duringDrain) requests were sent while workers drained")
            #expect(total >= 2000, "only \(total) requests in the light phase")

            // No load: back to zero after the stable window (6 s) and the grace period.
            #expect(eventually(timeout: .seconds(30)) {
                let status = revisionStatus(daemon, "busy-00001")
                return status["actualReplicas"] as? Int == 0 && status["desiredReplicas"] as? Int == 0
            }, "status: \(revisionStatus(daemon, "busy-00001"))")
            let reason = revisionStatus(daemon, "busy-00001")["lastScaleReason"] as? String
            #expect(reason?.contains("to 0") == true, "\(reason ?? "no reason")")

            // Metrics of what happened.
            let metrics = SimpleHTTP.request(port: daemon.adminPort, path: "/metrics").text
            #expect(metrics.contains("outpost_revision_desired_workers{namespace=\"default\",revision=\"busy-00001\"} 0"), "\(metrics)")
            #expect(metrics.contains("outpost_revision_cold_start_duration_seconds_count{namespace=\"default\",revision=\"busy-00001\",kind=\"started\"}"), "\(metrics)")
        }
    }

    @Test func stopHoldsAtZeroAndResumeServesAgain() async throws {
        try await onThread {
            let directory = try TemporaryDirectory(prefix: "outpost-stop")
            defer { directory.remove() }
            let daemon = Daemon(dataDirectory: directory.path)
            try daemon.start()
            defer { daemon.stop() }
            #expect(try daemon.cli("service", "create", "nightly", "--command", Binaries.echo).status == 0)
            var pid: Int32 = 0
            #expect(eventually(timeout: .seconds(20)) {
                pid = Int32(daemon.gateway("nightly").json?["pid"] as? Int ?? 0)
                return pid > 0
            })
            let waitsBefore = activationWaits(daemon, "nightly-00001")
            #expect(try daemon.cli("service", "stop", "nightly").status == 0)
            #expect(eventually(timeout: .seconds(10)) { !processIsAlive(pid) }, "stop did not stop the worker")
            let refused = daemon.gateway("nightly")
            #expect(refused.status == 503)
            #expect(refused.text.contains("ServiceStopped"), "\(refused.text)")
            #expect(try daemon.cli("service", "resume", "nightly").status == 0)
            #expect(eventually(timeout: .seconds(10)) { daemon.gateway("nightly").status == 200 })
            // That request waited for a cold start in the activator queue.
            #expect(activationWaits(daemon, "nightly-00001") == waitsBefore + 1)
        }
    }

    @Test func warmTierThawsAFrozenWorkerInsteadOfStartingOne() async throws {
        try await onThread {
            let directory = try TemporaryDirectory(prefix: "outpost-warm")
            defer { directory.remove() }
            let daemon = Daemon(dataDirectory: directory.path, extraArguments: ["--scale-to-zero-grace-period", "200ms"])
            try daemon.start()
            defer { daemon.stop() }
            #expect(try daemon.cli(
                "service", "create", "warm", "--command", Binaries.echo,
                "--annotation", "autoscaling.knative.dev/window=6s",
                "--annotation", "outpost.dev/frozen-retention-period=5m").status == 0)
            var pid: Int32 = 0
            #expect(eventually(timeout: .seconds(20)) {
                pid = Int32(daemon.gateway("warm").json?["pid"] as? Int ?? 0)
                return pid > 0
            })
            // Idle: the worker is frozen (state T), not stopped.
            #expect(eventually(timeout: .seconds(30)) { processState(pid) == "T" }, "state \(processState(pid) ?? "gone")")
            let thawed = daemon.gateway("warm")
            #expect(thawed.status == 200)
            #expect(thawed.json?["pid"] as? Int == Int(pid), "the frozen worker answered")
            #expect(processState(pid) != "T")
        }
    }

    /// How many requests of a revision waited for a worker, from `/metrics`.
    func activationWaits(_ daemon: Daemon, _ revision: String) -> Int {
        let prefix = "outpost_revision_activation_wait_duration_seconds_count{namespace=\"default\",revision=\"\(revision)\"} "
        let metrics = SimpleHTTP.request(port: daemon.adminPort, path: "/metrics").text
        guard let line = metrics.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return 0 }
        return Int(line.dropFirst(prefix.count)) ?? -1
    }

    /// The one-letter state of a process from /proc (R, S, T, Z…), or nil when it is gone.
    func processState(_ pid: Int32) -> String? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
        return String(stat[stat.index(close, offsetBy: 2)])
    }
}
}
