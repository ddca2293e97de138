import Foundation
import TestSupport
import Testing

/// HTTP/2 and WebSocket through the real binary with real clients: curl over h2c (prior
/// knowledge) and over TLS with ALPN, several streams on one connection (a small h2c client, and
/// curl over TLS), HTTP/1.1 beside them,
/// and a WebSocket echo (Python's socket module) with the tunnel's idle timeout.
extension EndToEnd {
@Suite struct ProtocolTests {
    /// One curl transfer as `-w` reports it.
    struct Transfer {
        var version: String
        var status: Int
        var connects: Int
        var body: String
    }

    /// Runs curl with `arguments` and the given URLs, one `Transfer` per URL. Bodies go to
    /// files so they can be told apart from the `-w` lines.
    func curl(_ arguments: [String], urls: [String], directory: String) throws -> [Transfer] {
        var command = ["-sS", "--max-time", "20"] + arguments
        for (index, url) in urls.enumerated() {
            command += ["-o", "\(directory)/body-\(index)", "-w", "%{http_version} %{http_code} %{num_connects}\n", url]
        }
        let result = try run("/usr/bin/curl", command)
        #expect(result.status == 0, "curl \(command): \(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        return lines.enumerated().map { index, line in
            let fields = line.split(separator: " ")
            let body = (try? String(contentsOfFile: "\(directory)/body-\(index)", encoding: .utf8)) ?? ""
            return Transfer(
                version: fields.first.map(String.init) ?? "", status: fields.count > 1 ? Int(fields[1]) ?? 0 : 0,
                connects: fields.count > 2 ? Int(fields[2]) ?? 0 : 0, body: body)
        }
    }

    func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    @Test func http2CleartextTLSAndHTTP1() async throws {
        try await onThread {
            let directory = try TemporaryDirectory(prefix: "outpost-h2")
            defer { directory.remove() }
            let daemon = Daemon(dataDirectory: directory.path)
            try daemon.start()
            defer { daemon.stop() }
            #expect(try daemon.cli("service", "create", "who", "--command", Binaries.echo).status == 0)
            #expect(eventually(timeout: .seconds(20)) { daemon.gateway("who").status == 200 })
            let host = "who.default.localhost"
            let plain = "http://\(host):\(daemon.gatewayPort)"
            let resolve = ["--resolve", "\(host):\(daemon.gatewayPort):127.0.0.1", "--resolve", "\(host):\(daemon.tlsPort):127.0.0.1"]

            // h2c with prior knowledge: the echo workload's JSON, over HTTP/2.
            let single = try curl(["--http2-prior-knowledge"] + resolve, urls: ["\(plain)/hello?x=1"], directory: directory.path)
            #expect(single.count == 1 && single[0].version == "2" && single[0].status == 200, "\(single)")
            let echoed = json(single.first?.body ?? "")
            #expect(echoed["path"] as? String == "/hello" && echoed["message"] as? String == "hello from Outpost", "\(echoed)")
            let headers = echoed["headers"] as? [String: String] ?? [:]
            #expect(headers["host"] == "\(host):\(daemon.gatewayPort)" && headers["x-forwarded-proto"] == "http", "\(headers)")

            // A request body over h2c, and the gateway's own errors over h2c.
            let posted = try curl(["--http2-prior-knowledge", "--data-binary", "over two"] + resolve, urls: ["\(plain)/?echo=1"], directory: directory.path)
            #expect(posted.first?.body == "over two" && posted.first?.status == 200, "\(posted)")
            // Without Content-Length (curl sends none over HTTP/2 when told the body is chunked).
            let unsized = try curl(["--http2-prior-knowledge", "-X", "DELETE", "-H", "Transfer-Encoding: chunked", "--data-binary", "no length"] + resolve,
                                   urls: ["\(plain)/?echo=1"], directory: directory.path)
            #expect(unsized.first?.body == "no length" && unsized.first?.status == 200, "\(unsized)")
            let missing = try curl(["--http2-prior-knowledge", "--resolve", "nope.default.localhost:\(daemon.gatewayPort):127.0.0.1"],
                                   urls: ["http://nope.default.localhost:\(daemon.gatewayPort)/"], directory: directory.path)
            #expect(missing.first?.status == 404 && missing.first?.version == "2" && missing.first?.body.contains("RouteNotFound") == true, "\(missing)")

            // Ten 300 ms requests as concurrent streams of one h2c connection (curl 7.88 cannot
            // reuse an h2c connection, so a small client does it) take far less than 3 s.
            let streams = try run("/usr/bin/python3", [
                "\(EventingTests.repository)/scripts/interop/h2c_client.py", String(daemon.gatewayPort), host,
            ] + (0..<10).map { "/par/\($0)?delay=300ms" })
            #expect(streams.status == 0, "\(streams.stdout) \(streams.stderr)")
            let answers = streams.stdout.split(separator: "\n").map { json(String($0)) }
            let bodies = answers.compactMap { $0["body"] as? String }.map { json($0) }
            #expect(answers.filter { $0["status"] as? String == "200" }.count == 10, "\(streams.stdout)")
            #expect(Set(bodies.compactMap { $0["path"] as? String }) == Set((0..<10).map { "/par/\($0)" }), "\(streams.stdout)")
            let elapsed = answers.last?["elapsed"] as? Double ?? 99
            #expect(elapsed < 2, "streams ran concurrently: \(elapsed) s")

            // h2 over TLS by ALPN; the client certificate's identity reaches each stream.
            #expect(try daemon.cli("cert", "issue", "--identity", "alice", "--out", "\(directory.path)/alice").status == 0)
            let tls = ["--http2", "--cacert", "\(directory.path)/alice/ca.pem"] + resolve
            let secure = try curl(tls, urls: ["https://\(host):\(daemon.tlsPort)/tls"], directory: directory.path)
            #expect(secure.first?.version == "2" && secure.first?.status == 200, "\(secure)")
            #expect((json(secure.first?.body ?? "")["headers"] as? [String: String])?["x-forwarded-proto"] == "https")
            let mutual = try curl(tls + ["--cert", "\(directory.path)/alice/cert.pem", "--key", "\(directory.path)/alice/key.pem"],
                                  urls: (0..<2).map { "https://\(host):\(daemon.tlsPort)/mtls/\($0)" }, directory: directory.path)
            #expect(mutual.count == 2 && mutual.allSatisfy { $0.version == "2" && $0.status == 200 }, "\(mutual)")
            #expect(mutual.map(\.connects).reduce(0, +) == 1, "one connection: \(mutual)")
            for transfer in mutual {
                let clientCert = (json(transfer.body)["headers"] as? [String: String])?["x-forwarded-client-cert"]
                #expect(clientCert?.contains("URI=spiffe://outpost.local/ns/default/sa/alice") == true, "\(transfer.body)")
            }

            // HTTP/1.1 keeps working on both listeners.
            let http1 = try curl(["--http1.1"] + resolve, urls: ["\(plain)/one", "\(plain)/two"], directory: directory.path)
            #expect(http1.count == 2 && http1.allSatisfy { $0.version == "1.1" && $0.status == 200 }, "\(http1)")
            #expect(http1.map(\.connects).reduce(0, +) == 1, "keep-alive: \(http1)")
            let http1TLS = try curl(tls.filter { $0 != "--http2" } + ["--http1.1"], urls: ["https://\(host):\(daemon.tlsPort)/"], directory: directory.path)
            #expect(http1TLS.first?.version == "1.1" && http1TLS.first?.status == 200, "\(http1TLS)")
            #expect(daemon.gateway("who").status == 200)
        }
    }

    @Test func http2HeaderLimitAndGracefulDrain() async throws {
        try await onThread {
            let directory = try TemporaryDirectory(prefix: "outpost-h2-drain")
            defer { directory.remove() }
            let daemon = Daemon(dataDirectory: directory.path)
            try daemon.start()
            defer { daemon.stop() }
            #expect(try daemon.cli("service", "create", "slow", "--command", Binaries.echo).status == 0)
            #expect(eventually(timeout: .seconds(20)) { daemon.gateway("slow").status == 200 })
            let client = "\(EventingTests.repository)/scripts/interop/h2c_client.py"
            let host = "slow.default.localhost"

            // More than 100 header fields: 431 on that stream, as over HTTP/1.1.
            let crowded = try run("/usr/bin/python3", [client] + (0..<101).flatMap { ["-H", "x-h\($0):v"] } + [String(daemon.gatewayPort), host, "/"])
            #expect(crowded.stdout.contains(#""status": "431""#) && crowded.stdout.contains("RequestHeaderFieldsTooLarge"), "\(crowded.stdout) \(crowded.stderr)")

            // A header block over the 64 KiB limit but under the connection's cap (twice the
            // limit, in HEADERS plus CONTINUATION frames): 431 on that stream, as over HTTP/1.1,
            // and no GOAWAY.
            let large = try run("/usr/bin/python3", [client, "--after-settings", "-H", "x-big:" + String(repeating: "b", count: 70_000),
                                                     String(daemon.gatewayPort), host, "/"])
            let largeLines = large.stdout.split(separator: "\n").map { json(String($0)) }
            #expect(largeLines.first?["status"] as? String == "431" && large.stdout.contains("the request headers exceed 65536 bytes"),
                    "\(large.stdout) \(large.stderr)")
            #expect(largeLines.last?["goaway"] is NSNull, "no GOAWAY: \(large.stdout)")

            // Shutdown while a stream is in flight: the client gets GOAWAY (no error), the stream
            // still completes, and the daemon exits cleanly.
            let output = LockedBox("")
            let group = DispatchGroup()
            group.enter()
            DispatchQueue.global().async {
                let result = try? run("/usr/bin/python3", [client, String(daemon.gatewayPort), host, "/drain?delay=1500ms"])
                output.set((result?.stdout ?? "") + (result?.stderr ?? ""))
                group.leave()
            }
            usleep(500_000)
            #expect(daemon.stop() == 0)
            group.wait()
            let lines = output.get().split(separator: "\n").map { json(String($0)) }
            #expect(lines.first?["status"] as? String == "200", "\(output.get())")
            #expect((lines.last?["goaway"] as? [Int])?.last == 0, "GOAWAY with NO_ERROR: \(output.get())")
        }
    }

    @Test func webSocketEchoAndIdleTimeout() async throws {
        try await onThread {
            let directory = try TemporaryDirectory(prefix: "outpost-ws")
            defer { directory.remove() }
            let accessLog = "\(directory.path)/access.log"
            let daemon = Daemon(dataDirectory: "\(directory.path)/data", extraArguments: ["--websocket-idle-timeout", "2s", "--access-log", accessLog])
            try daemon.start()
            defer { daemon.stop() }
            #expect(try daemon.cli("service", "create", "chat", "--command", Binaries.echo).status == 0)
            #expect(eventually(timeout: .seconds(20)) { daemon.gateway("chat").status == 200 })
            let client = "\(EventingTests.repository)/scripts/interop/websocket_client.py"
            let host = "chat.default.localhost"

            let echo = try run("/usr/bin/python3", [client, String(daemon.gatewayPort), host])
            #expect(echo.status == 0 && echo.stdout.contains("echo ok"), "\(echo.stdout) \(echo.stderr)")
            // A frame the worker sends together with its 101 is not lost in the switch.
            let greeted = try run("/usr/bin/python3", [client, String(daemon.gatewayPort), host, "--greet"])
            #expect(greeted.status == 0 && greeted.stdout.contains("echo ok"), "\(greeted.stdout) \(greeted.stderr)")
            // The gateway still serves ordinary requests.
            #expect(daemon.gateway("chat").status == 200)
            // The same over TLS (wss), with ALPN offering HTTP/1.1.
            #expect(try daemon.cli("cert", "issue", "--identity", "bob", "--out", "\(directory.path)/bob").status == 0)
            let secure = try run("/usr/bin/python3", [client, String(daemon.tlsPort), host, "--tls", "\(directory.path)/bob/ca.pem"])
            #expect(secure.status == 0 && secure.stdout.contains("echo ok"), "\(secure.stdout) \(secure.stderr)")

            // Idle for longer than the 2 s timeout: the gateway closes the tunnel.
            let idle = try run("/usr/bin/python3", [client, String(daemon.gatewayPort), host, "--idle", "10"])
            #expect(idle.status == 0 && idle.stdout.contains("closed after"), "\(idle.stdout) \(idle.stderr)")
            let seconds = idle.stdout.split(separator: " ").last.flatMap { Double($0.dropLast(2)) } ?? 0
            #expect(seconds >= 1.5 && seconds < 6, "\(idle.stdout)")
            // Each WebSocket is logged when its tunnel closes: with the frames it carried, and
            // (the idle one) with the time it stayed open.
            func upgraded() -> [[String: Any]] {
                ((try? String(contentsOfFile: accessLog, encoding: .utf8)) ?? "")
                    .split(separator: "\n").map { json(String($0)) }.filter { $0["response_code"] as? Int == 101 }
            }
            #expect(eventually(timeout: .seconds(5)) { upgraded().contains { ($0["duration"] as? Int ?? 0) >= 1_500 } }, "\(upgraded())")
            #expect(upgraded().contains { ($0["bytes_received"] as? Int ?? 0) > 0 && ($0["bytes_sent"] as? Int ?? 0) > 0 }, "\(upgraded())")

            // A request the worker does not upgrade is an ordinary response.
            let plain = SimpleHTTP.request(port: daemon.gatewayPort, path: "/no", host: host, headers: [("Upgrade", "websocket"), ("Connection", "Upgrade")])
            #expect(plain.status == 200 && plain.text.contains("\"path\":\"/no\""), "\(plain.status) \(plain.text)")

            // The worker stays leased while its WebSocket is open: with one worker taking one
            // request at a time, a request waits until the idle tunnel closes, then is served.
            #expect(try daemon.cli("service", "create", "solo", "--command", Binaries.echo, "--concurrency", "1",
                                   "--annotation", "autoscaling.knative.dev/max-scale=1").status == 0)
            #expect(eventually(timeout: .seconds(20)) { daemon.gateway("solo").status == 200 })
            let held = LockedBox("")
            let group = DispatchGroup()
            group.enter()
            DispatchQueue.global().async {
                let result = try? run("/usr/bin/python3", [client, String(daemon.gatewayPort), "solo.default.localhost", "--idle", "10"])
                held.set((result?.stdout ?? "") + (result?.stderr ?? ""))
                group.leave()
            }
            usleep(700_000)
            let waited = ContinuousClock.now
            let queued = SimpleHTTP.request(port: daemon.gatewayPort, host: "solo.default.localhost", timeout: .seconds(20))
            let wait = ContinuousClock.now - waited
            group.wait()
            #expect(held.get().contains("closed after"), "\(held.get())")
            #expect(queued.status == 200 && wait > .milliseconds(700), "\(queued.status) after \(wait)")

            let metrics = daemon.api("GET", "/metrics").text
            #expect(metrics.contains("response_code=\"101\""), "the handshakes are counted")
        }
    }
}
}
