import Foundation
import Synchronization
import Glibc
import TestSupport
import Testing

/// Drives the real `outpost` binary only through its CLI, REST API and gateway.
extension EndToEnd {
@Suite struct ServiceLifecycleTests {
    /// Reads the echo workload's JSON answer.
    struct Echo {
        var revision: String
        var port: String
        var pid: Int32
        var message: String
        init?(_ response: SimpleResponse) {
            guard response.status == 200, let json = response.json, let env = json["env"] as? [String: Any] else { return nil }
            revision = env["K_REVISION"] as? String ?? ""
            port = env["PORT"] as? String ?? ""
            pid = Int32(json["pid"] as? Int ?? 0)
            message = json["message"] as? String ?? ""
        }
    }

    @Test func createUpdateRestartIdleDeleteAndCrash() async throws {
        try await onThread {
            let directory = try TemporaryDirectory(prefix: "outpost-e2e")
            defer { directory.remove() }
            let daemon = Daemon(dataDirectory: directory.path, extraArguments: ["--scale-to-zero-grace-period", "500ms"])
            try daemon.start()
            defer { daemon.stop() }

            // The admin token is created on first start, readable by the owner only.
            let attributes = try FileManager.default.attributesOfItem(atPath: "\(directory.path)/admin.token")
            #expect((attributes[.posixPermissions] as? Int) == 0o600)

            // Create through the CLI; the first response comes through the gateway.
            let created = try daemon.cli(
                "service", "create", "hello", "--command", Binaries.echo, "--env", "MESSAGE=first",
                "--annotation", "autoscaling.knative.dev/window=6s")
            #expect(created.status == 0, "\(created.stderr)")
            #expect(created.stdout.contains("hello"))
            var echo: Echo?
            #expect(eventually(timeout: .seconds(20)) { echo = Echo(daemon.gateway("hello")); return echo != nil }, "\(daemon.log())")
            #expect(echo?.revision == "hello-00001")
            #expect(Int(echo?.port ?? "") != nil, "PORT is set")
            #expect(echo?.message == "first")

            // Update: the next revision serves.
            let updated = try daemon.cli("service", "update", "hello", "--env", "MESSAGE=second")
            #expect(updated.status == 0, "\(updated.stderr)")
            #expect(eventually(timeout: .seconds(20)) { Echo(daemon.gateway("hello"))?.revision == "hello-00002" })
            #expect(Echo(daemon.gateway("hello"))?.message == "second")
            let revisions = try daemon.cli("revision", "list", "--service", "hello")
            #expect(revisions.stdout.contains("hello-00001") && revisions.stdout.contains("hello-00002"), "\(revisions.stdout)")

            // Authentication and validation.
            #expect(daemon.api("GET", "/api/v1/namespaces/default/services", token: "").status == 401)
            #expect(daemon.api("GET", "/api/v1/namespaces/default/services", token: "wrong").status == 403)
            let badName = daemon.api("POST", "/api/v1/namespaces/default/services", body: #"{"metadata":{"name":"Bad_Name"},"spec":{"template":{"spec":{"command":"/bin/true"}}}}"#)
            #expect(badName.status == 400)
            #expect(((badName.json?["error"] as? [String: Any])?["field"] as? String) == "metadata.name", "\(badName.text)")
            let cliBadName = try daemon.cli("service", "create", "Bad_Name", "--command", "/bin/true")
            #expect(cliBadName.status != 0)
            #expect(cliBadName.stderr.contains("metadata.name"), "\(cliBadName.stderr)")

            // A restarted daemon serves again from what it stored; SIGTERM leaves no worker behind.
            let beforeRestart = try #require(Echo(daemon.gateway("hello")))
            #expect(daemon.stop() == 0)
            #expect(eventually(timeout: .seconds(5)) { !processIsAlive(beforeRestart.pid) }, "worker outlived a clean daemon stop")
            try daemon.start()
            let afterRestart = Echo(daemon.gateway("hello"))
            #expect(afterRestart?.revision == "hello-00002")

            // Idle: the worker stops after window (6 s) + grace (0.5 s); the next request starts one.
            let idlePID = try #require(afterRestart?.pid)
            #expect(eventually(timeout: .seconds(20)) { !processIsAlive(idlePID) }, "worker did not scale to zero")
            let cold = Echo(daemon.gateway("hello"))
            #expect(cold?.revision == "hello-00002")
            #expect(cold.map { $0.pid != idlePID } == true)

            // Delete: the host is unknown again.
            let deleted = try daemon.cli("service", "delete", "hello")
            #expect(deleted.status == 0, "\(deleted.stderr)")
            #expect(eventually(timeout: .seconds(10)) { daemon.gateway("hello").status == 404 })
            if let pid = cold?.pid { #expect(eventually(timeout: .seconds(10)) { !processIsAlive(pid) }) }

            // SIGKILL of the daemon takes its workers with it.
            #expect(try daemon.cli("service", "create", "survivor", "--command", Binaries.echo).status == 0)
            var survivor: Echo?
            #expect(eventually(timeout: .seconds(20)) { survivor = Echo(daemon.gateway("survivor")); return survivor != nil })
            let orphanPID = try #require(survivor?.pid)
            daemon.kill9()
            #expect(eventually(timeout: .seconds(5)) { !processIsAlive(orphanPID) }, "worker outlived a SIGKILLed daemon")
        }
    }

    @Test func aRequestThatOutlivesItsRevisionReturnsItsOwnWorker() async throws {
        try await onThread {
            let directory = try TemporaryDirectory(prefix: "outpost-e2e")
            defer { directory.remove() }
            let daemon = Daemon(dataDirectory: directory.path)
            try daemon.start()
            defer { daemon.stop() }
            #expect(try daemon.cli("service", "create", "again", "--command", Binaries.echo).status == 0)
            let first = try #require(Echo(daemon.gateway("again")))

            // A slow request to the first revision runs while the service is deleted and created
            // again: the new revision has the same name (again-00001) and its own first worker.
            let slow = Mutex<SimpleResponse?>(nil)
            let finished = DispatchSemaphore(value: 0)
            Thread {
                slow.withLock { $0 = daemon.gateway("again", path: "/?delay=3s") }
                finished.signal()
            }.start()
            // Delete only once the request runs on the worker.
            #expect(eventually(timeout: .seconds(10)) {
                daemon.api("GET", "/metrics").text.split(separator: "\n").contains {
                    $0.hasPrefix("outpost_revision_in_flight_requests{") && $0.contains("revision=\"again-00001\"")
                        && ($0.hasSuffix(" 1") || $0.hasSuffix(" 1.0"))
                }
            }, "\(daemon.api("GET", "/metrics").text)")
            #expect(try daemon.cli("service", "delete", "again").status == 0)
            #expect(eventually(timeout: .seconds(10)) { daemon.gateway("again").status == 404 })
            #expect(try daemon.cli("service", "create", "again", "--command", Binaries.echo).status == 0)
            let second = try #require(Echo(daemon.gateway("again")))
            #expect(second.revision == "again-00001" && second.pid != first.pid)

            // The slow request ends and returns its lease to the pool that issued it: the old
            // worker stops, the new one keeps serving (and the daemon keeps running).
            #expect(finished.wait(timeout: .now() + 20) == .success)
            #expect(slow.withLock { $0?.status } == 200)
            #expect(eventually(timeout: .seconds(10)) { !processIsAlive(first.pid) }, "the old revision's worker outlived its last request")
            #expect(Echo(daemon.gateway("again"))?.pid == second.pid, "\(daemon.log())")
        }
    }

    @Test func revisionThatNeverBecomesReadyIsMarkedFailed() async throws {
        try await onThread {
            let directory = try TemporaryDirectory(prefix: "outpost-e2e")
            defer { directory.remove() }
            let daemon = Daemon(dataDirectory: directory.path, extraArguments: ["--progress-deadline", "2s"])
            try daemon.start()
            defer { daemon.stop() }

            // Like kn, create waits for readiness and reports the failure with a non-zero exit.
            let crashy = try daemon.cli("service", "create", "crashy", "--command", Binaries.echo, "--env", "ECHO_EXIT_ON_START=1")
            #expect(crashy.status != 0)
            #expect(crashy.stderr.contains("exited with code 1"), "\(crashy.stderr)")
            #expect(try daemon.cli("service", "create", "silent", "--command", Binaries.echo, "--env", "ECHO_NEVER_LISTEN=1", "--no-wait").status == 0)
            func readyCondition(_ revision: String) -> [String: Any]? {
                let response = daemon.api("GET", "/api/v1/namespaces/default/revisions/\(revision)")
                let conditions = (response.json?["status"] as? [String: Any])?["conditions"] as? [[String: Any]]
                return conditions?.first { $0["type"] as? String == "Ready" }
            }
            #expect(eventually(timeout: .seconds(20)) { readyCondition("crashy-00001")?["status"] as? String == "False" })
            #expect(readyCondition("crashy-00001")?["reason"] as? String == "ExitCode")
            #expect((readyCondition("crashy-00001")?["message"] as? String)?.contains("exited with code 1") == true)
            #expect(eventually(timeout: .seconds(20)) { readyCondition("silent-00001")?["status"] as? String == "False" })
            #expect(readyCondition("silent-00001")?["reason"] as? String == "ProgressDeadlineExceeded")

            // The service says why it is not ready, and the gateway answers 503 instead of hanging.
            let service = try daemon.cli("service", "get", "crashy")
            #expect(service.stdout.contains("RevisionFailed"), "\(service.stdout)")
            let response = daemon.gateway("crashy", timeout: .seconds(10))
            #expect(response.status == 503, "\(response.text)")
        }
    }

    @Test func requestIDTraceparentAccessLogAndIstioMetrics() async throws {
        try await onThread {
            let directory = try TemporaryDirectory(prefix: "outpost-e2e")
            defer { directory.remove() }
            let accessLog = "\(directory.path)/access.log"
            let daemon = Daemon(dataDirectory: "\(directory.path)/data", extraArguments: ["--access-log", accessLog])
            try daemon.start()
            defer { daemon.stop() }
            #expect(try daemon.cli("service", "create", "traced", "--command", Binaries.echo).status == 0)
            var response = SimpleResponse(status: 0, headers: [:], body: Data())
            #expect(eventually(timeout: .seconds(20)) {
                response = SimpleHTTP.request(port: daemon.gatewayPort, host: "traced.default.localhost", headers: [("x-request-id", "req-42")])
                return response.status == 200
            })
            // The workload sees the request id and a traceparent the gateway created.
            let seen = response.json?["headers"] as? [String: String] ?? [:]
            #expect(seen["x-request-id"] == "req-42")
            #expect(response.headers["x-request-id"] == "req-42")
            let traceparent = seen["traceparent"] ?? ""
            #expect(traceparent.split(separator: "-").map(\.count) == [2, 32, 16, 2], "\(traceparent)")

            let metrics = SimpleHTTP.request(port: daemon.adminPort, path: "/metrics").text
            let line = metrics.split(separator: "\n").first { $0.hasPrefix("istio_requests_total{") && $0.contains("destination_service_name=\"traced\"") && $0.contains("response_code=\"200\"") }
            #expect(line != nil, "\(metrics)")
            #expect(metrics.contains("istio_request_duration_milliseconds_bucket{"))

            #expect(eventually(timeout: .seconds(5)) {
                ((try? String(contentsOfFile: accessLog, encoding: .utf8)) ?? "").contains("req-42")
            })
            let entry = ((try? String(contentsOfFile: accessLog, encoding: .utf8)) ?? "")
                .split(separator: "\n").last { $0.contains("req-42") }
                .flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            #expect(entry?["response_code"] as? Int == 200, "\(String(describing: entry))")

            // logrotate: the file is renamed, SIGHUP makes the daemon write a new one (and
            // does not stop it).
            try FileManager.default.moveItem(atPath: accessLog, toPath: accessLog + ".1")
            kill(try #require(daemon.pid), SIGHUP)
            #expect(eventually(timeout: .seconds(10)) {
                _ = daemon.gateway("traced")
                return ((try? String(contentsOfFile: accessLog, encoding: .utf8)) ?? "").contains("\"response_code\":200")
            }, "\(daemon.log())")
            #expect(processIsAlive(try #require(daemon.pid)))
        }
    }

    @Test func cliReportsErrorsInOneLineWithNonZeroExit() async throws {
        try await onThread {
            let directory = try TemporaryDirectory(prefix: "outpost-e2e")
            defer { directory.remove() }
            let unreachable = try run(Binaries.outpost, ["service", "list", "--admin-url", "http://127.0.0.1:\(freePort())", "--token", "x"])
            #expect(unreachable.status != 0)
            #expect(unreachable.stderr.contains("cannot reach the Outpost daemon"), "\(unreachable.stderr)")

            let daemon = Daemon(dataDirectory: directory.path)
            try daemon.start()
            defer { daemon.stop() }
            let missing = try daemon.cli("service", "get", "nope")
            #expect(missing.status != 0)
            #expect(missing.stderr.contains("not found"), "\(missing.stderr)")
            let noCommand = try daemon.cli("service", "create", "x")
            #expect(noCommand.status != 0)
            #expect(noCommand.stderr.contains("--command"), "\(noCommand.stderr)")
            let list = try daemon.cli("service", "list", "--output", "json")
            #expect(list.status == 0)
            #expect(list.stdout.contains("\"items\""))
        }
    }
}
}
