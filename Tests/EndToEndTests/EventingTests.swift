import Foundation
import Glibc
import TestSupport
import Testing

/// The event bus against the real binary: events sent with curl and the CloudEvents Python SDK
/// in every HTTP mode, received by a real subscriber process; filters, retries with backoff,
/// dead letters with Knative's error extensions, replies, redrive, a ping source, and a crash
/// test that kills the daemon with SIGKILL while a producer runs.
extension EndToEnd {
@Suite struct EventingTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// `scripts/interop/ce_subscriber.py` in its own process; every request is a JSON line in `log`.
    final class Subscriber: @unchecked Sendable {
        let port = freePort()
        let log: String
        private let process = Process()

        init(log: String) throws {
            self.log = log
            process.executableURL = URL(fileURLWithPath: InferenceServiceTests.testPython)
            process.arguments = ["\(EventingTests.repository)/scripts/interop/ce_subscriber.py", "--port", String(port), "--log", log]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            // The probe is logged too; it carries no event and matches no test's path.
            guard eventually(timeout: .seconds(15), { SimpleHTTP.request(port: port, method: "POST", path: "/probe").status != 0 }) else {
                throw DaemonHarnessError("the subscriber did not start")
            }
        }

        var url: String { "http://127.0.0.1:\(port)" }

        /// Every request received so far.
        func records() -> [[String: Any]] { Self.records(in: log) }

        /// Every request a subscriber logged to `log`.
        static func records(in log: String) -> [[String: Any]] {
            guard let text = try? String(contentsOfFile: log, encoding: .utf8) else { return [] }
            return text.split(separator: "\n").compactMap { line in
                try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            }
        }

        /// Requests that came to `path` (with its query), oldest first.
        func records(at path: String) -> [[String: Any]] {
            records().filter { $0["path"] as? String == path }
        }

        func stop() {
            // SIGKILL: a child of a test thread may inherit a mask that blocks SIGTERM.
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// POSTs to the broker ingress through the gateway.
    static func ingress(_ daemon: Daemon, _ path: String, method: String = "POST", headers: [(String, String)], body: String) -> SimpleResponse {
        SimpleHTTP.request(
            port: daemon.gatewayPort, method: method, path: path, host: "broker-ingress.localhost:\(daemon.gatewayPort)",
            headers: headers, body: Data(body.utf8))
    }

    static func binaryHeaders(id: String, type: String, extra: [(String, String)] = []) -> [(String, String)] {
        [("ce-specversion", "1.0"), ("ce-id", id), ("ce-source", "/tests/curl"), ("ce-type", type), ("Content-Type", "application/json")] + extra
    }

    static func ids(_ records: [[String: Any]]) -> [String] {
        records.compactMap { ($0["event"] as? [String: Any])?["id"] as? String }
    }

    static func waitReady(_ daemon: Daemon, _ plural: String, _ name: String) -> Bool {
        eventually(timeout: .seconds(15)) {
            let body = daemon.api("GET", "/api/v1/namespaces/default/\(plural)/\(name)").json
            let conditions = (body?["status"] as? [String: Any])?["conditions"] as? [[String: Any]] ?? []
            return conditions.contains { $0["type"] as? String == "Ready" && $0["status"] as? String == "True" }
        }
    }

    @discardableResult
    static func cli(_ daemon: Daemon, _ arguments: [String]) throws -> CommandResult {
        let result = try daemon.cli(arguments)
        #expect(result.status == 0, "outpost \(arguments.joined(separator: " ")): \(result.stdout) \(result.stderr)")
        return result
    }

    @Test func modesFiltersRetriesDeadLettersRepliesAndPing() async throws {
        try await onThread {
            let directory = try TemporaryDirectory(prefix: "outpost-eventing")
            defer { directory.remove() }
            let daemon = Daemon(dataDirectory: "\(directory.path)/data")
            try daemon.start()
            defer { daemon.stop() }
            let subscriber = try Subscriber(log: "\(directory.path)/received.jsonl")
            defer { subscriber.stop() }
            let url = subscriber.url

            // The ping source first: it fires at the next minute boundary, checked at the end.
            try Self.cli(daemon, ["broker", "create", "main"])
            try Self.cli(daemon, ["pingsource", "create", "ping", "--schedule", "* * * * *", "--data", "{\"hello\":\"ping\"}",
                                  "--content-type", "application/json", "--sink", "broker:main"])
            let triggers: [[String]] = [
                ["orders", "--filter", "type=com.example.order", "--subscriber", "\(url)/ok?t=orders"],
                ["orders-json", "--filter", "type=com.example.order", "--subscriber", "\(url)/ok?t=orders-json", "--delivery-format", "json"],
                ["eu", "--filters-json", #"[{"prefix": {"type": "com.example."}}, {"not": {"exact": {"subject": "skip"}}}]"#,
                 "--subscriber", "\(url)/ok?t=eu"],
                ["large", "--cesql", "type = 'com.example.order' AND amount > 100", "--subscriber", "\(url)/ok?t=large"],
                ["failing", "--filter", "type=com.example.fail", "--subscriber", "\(url)/fail", "--retry", "2",
                 "--backoff-policy", "linear", "--backoff-delay", "PT0.3S", "--dead-letter-sink", "\(url)/ok?t=dls"],
                ["asker", "--filter", "type=com.example.ask", "--subscriber", "\(url)/reply"],
                ["answers", "--filter", "type=com.example.ask.reply", "--subscriber", "\(url)/ok?t=answers"],
                ["sdk", "--filter", "type=dev.outpost.test.sdk", "--subscriber", "\(url)/ok?t=sdk"],
                // Answers a reply to an event with no hop left: the reply is dropped, not retried.
                ["last-hop", "--filter", "type=dev.outpost.test.loop", "--subscriber", "\(url)/reply?t=last-hop", "--retry", "2",
                 "--backoff-delay", "PT0.1S", "--dead-letter-sink", "\(url)/ok?t=last-hop-dls"],
                // Nothing listens on the subscriber's port: every attempt is refused at once.
                ["unreachable", "--filter", "type=dev.outpost.test.down", "--subscriber", "http://127.0.0.1:\(freePort())/x",
                 "--retry", "2", "--backoff-policy", "linear", "--backoff-delay", "PT0.1S", "--timeout", "PT10S",
                 "--dead-letter-sink", "\(url)/ok?t=unreachable"],
                ["pings", "--filter", "type=dev.knative.sources.ping", "--subscriber", "\(url)/ok?t=pings"],
                // Answers 200 with a body that is not a CloudEvent: a failed attempt (502).
                ["junk", "--filter", "type=dev.outpost.test.junk", "--subscriber", "\(url)/junk", "--retry", "1",
                 "--backoff-delay", "PT0.1S", "--dead-letter-sink", "\(url)/ok?t=junk-dls"],
            ]
            for trigger in triggers {
                try Self.cli(daemon, ["trigger", "create", trigger[0], "--broker", "main"] + Array(trigger.dropFirst()))
            }
            #expect(Self.waitReady(daemon, "brokers", "main"))
            for trigger in triggers { #expect(Self.waitReady(daemon, "triggers", trigger[0]), "trigger \(trigger[0])") }

            // curl in binary, structured and batched mode.
            let binary = try run("/usr/bin/curl", [
                "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: broker-ingress.localhost",
                "-H", "ce-specversion: 1.0", "-H", "ce-id: order-1", "-H", "ce-source: /tests/curl", "-H", "ce-type: com.example.order",
                "-H", "ce-subject: eu-1", "-H", "ce-amount: 250", "-H", "Content-Type: application/json", "-d", #"{"n":1}"#,
                "http://127.0.0.1:\(daemon.gatewayPort)/default/main",
            ])
            #expect(binary.stdout == "202", "binary: \(binary.stdout) \(binary.stderr)")
            let structured = try run("/usr/bin/curl", [
                "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: broker-ingress.localhost",
                "-H", "Content-Type: application/cloudevents+json; charset=UTF-8",
                "-d", #"{"specversion":"1.0","id":"order-2","source":"/tests/curl","type":"com.example.order","subject":"skip","amount":50,"data":{"n":2}}"#,
                "http://127.0.0.1:\(daemon.gatewayPort)/default/main",
            ])
            #expect(structured.stdout == "202", "structured: \(structured.stdout) \(structured.stderr)")
            let batch = try run("/usr/bin/curl", [
                "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: broker-ingress.localhost",
                "-H", "Content-Type: application/cloudevents-batch+json; charset=UTF-8",
                "-d", #"[{"specversion":"1.0","id":"other-1","source":"/tests/curl","type":"com.example.other"},"# +
                    #"{"specversion":"1.0","id":"order-3","source":"/tests/curl","type":"com.example.order","subject":"us-2","amount":101,"data_base64":"AAEC"}]"#,
                "http://127.0.0.1:\(daemon.gatewayPort)/default/main",
            ])
            #expect(batch.stdout == "202", "batch: \(batch.stdout) \(batch.stderr)")

            // The CloudEvents Python SDK in binary and structured mode.
            let sdk = try run(InferenceServiceTests.testPython, [
                "\(Self.repository)/scripts/interop/ce_producer.py", "sdk", "--port", String(daemon.gatewayPort), "--path", "/default/main",
            ])
            #expect(sdk.stdout.contains("binary 202") && sdk.stdout.contains("structured 202"), "\(sdk.stdout) \(sdk.stderr)")

            // Invalid events are refused with the attribute named; the daemon stays up.
            let missingSource = Self.ingress(daemon, "/default/main", headers: [("ce-specversion", "1.0"), ("ce-id", "x"), ("ce-type", "t")], body: "{}")
            #expect(missingSource.status == 400 && missingSource.text.contains("source"), "\(missingSource.status) \(missingSource.text)")
            let badTime = Self.ingress(daemon, "/default/main", headers: Self.binaryHeaders(id: "x", type: "t", extra: [("ce-time", "yesterday")]), body: "{}")
            #expect(badTime.status == 400 && badTime.text.contains("time"), "\(badTime.status) \(badTime.text)")
            let badVersion = Self.ingress(daemon, "/default/main", headers: [("ce-specversion", "0.3"), ("ce-id", "x"), ("ce-source", "/s"), ("ce-type", "t")], body: "")
            #expect(badVersion.status == 400 && badVersion.text.contains("specversion"), "\(badVersion.status) \(badVersion.text)")
            let badJSON = Self.ingress(daemon, "/default/main", headers: [("Content-Type", "application/cloudevents+json")], body: "{\"id\":")
            #expect(badJSON.status == 400, "\(badJSON.status) \(badJSON.text)")
            let unknown = Self.ingress(daemon, "/default/nope", headers: Self.binaryHeaders(id: "x", type: "t"), body: "{}")
            #expect(unknown.status == 404, "\(unknown.status)")
            let get = Self.ingress(daemon, "/default/main", method: "GET", headers: [], body: "")
            #expect(get.status == 405 && get.headers["allow"] == "POST, OPTIONS", "\(get.status) \(get.headers)")
            let options = Self.ingress(daemon, "/default/main", method: "OPTIONS", headers: [], body: "")
            #expect(options.status == 200 && options.headers["webhook-allowed-origin"] == "*", "\(options.status) \(options.headers)")
            let huge = Self.ingress(daemon, "/default/main", headers: Self.binaryHeaders(id: "big", type: "t"), body: String(repeating: "x", count: 300 << 10))
            #expect(huge.status == 413, "\(huge.status)")

            // A subscriber that refuses connections: three attempts 0.1 s and 0.2 s apart, then the
            // dead-letter sink, long before a single attempt's 10 s timeout.
            #expect(Self.ingress(daemon, "/default/main", headers: Self.binaryHeaders(id: "down-1", type: "dev.outpost.test.down"), body: "{}").status == 202)
            #expect(eventually(timeout: .seconds(6)) { subscriber.records(at: "/ok?t=unreachable").count == 1 },
                    "a refused connection must fail its attempt at once")
            let unreachable = subscriber.records(at: "/ok?t=unreachable").first
            #expect((unreachable?["headers"] as? [String: String])?["ce-knativeerrordest"]?.hasSuffix("/x") == true, "\(String(describing: unreachable))")

            // A 200 whose body is not a CloudEvent: two attempts, then the dead-letter sink gets
            // code 502 and the subscriber's body as `knativeerrordata`.
            #expect(Self.ingress(daemon, "/default/main", headers: Self.binaryHeaders(id: "junk-1", type: "dev.outpost.test.junk"), body: "{}").status == 202)
            #expect(eventually(timeout: .seconds(6)) { subscriber.records(at: "/ok?t=junk-dls").count == 1 })
            #expect(subscriber.records(at: "/junk").count == 2)
            let junkHeaders = subscriber.records(at: "/ok?t=junk-dls").first?["headers"] as? [String: String] ?? [:]
            #expect(junkHeaders["ce-knativeerrorcode"] == "502", "\(junkHeaders)")
            #expect(junkHeaders["ce-knativeerrordata"]?.removingPercentEncoding == "this is not an event", "\(junkHeaders)")

            // An event on its last hop (the ingress takes one, leaving 1): the subscriber's reply
            // is dropped, the delivery is done after one call, and nothing is dead-lettered.
            #expect(Self.ingress(daemon, "/default/main", headers: Self.binaryHeaders(
                id: "loop-1", type: "dev.outpost.test.loop", extra: [("ce-knativebrokerttl", "2")]), body: "{}").status == 202)

            // A failing subscriber, an event that gets a reply.
            #expect(Self.ingress(daemon, "/default/main", headers: Self.binaryHeaders(id: "fail-1", type: "com.example.fail"), body: "{}").status == 202)
            #expect(Self.ingress(daemon, "/default/main", headers: Self.binaryHeaders(id: "ask-1", type: "com.example.ask"), body: #"{"q":1}"#).status == 202)

            // Filters select exactly the matching events.
            #expect(eventually(timeout: .seconds(20)) { subscriber.records(at: "/ok?t=dls").count == 1 && subscriber.records(at: "/ok?t=answers").count == 1 })
            #expect(Set(Self.ids(subscriber.records(at: "/ok?t=orders"))) == ["order-1", "order-2", "order-3"])
            // The reply (type com.example.ask.reply) has the prefix too.
            let replyIDs = Set(Self.ids(subscriber.records(at: "/ok?t=answers")))
            #expect(Set(Self.ids(subscriber.records(at: "/ok?t=eu"))).subtracting(replyIDs) == ["order-1", "other-1", "order-3", "fail-1", "ask-1"])
            #expect(Set(Self.ids(subscriber.records(at: "/ok?t=large"))) == ["order-1", "order-3"])
            #expect(Set(Self.ids(subscriber.records(at: "/ok?t=sdk"))) == ["sdk-binary", "sdk-structured"])
            let orders = subscriber.records(at: "/ok?t=orders")
            #expect(orders.count == 3, "each matching trigger gets one delivery per event")
            // `format: json`: the same events in structured mode.
            let ordersJSON = subscriber.records(at: "/ok?t=orders-json")
            #expect(Set(Self.ids(ordersJSON)) == ["order-1", "order-2", "order-3"])
            for record in ordersJSON {
                let headers = record["headers"] as? [String: String] ?? [:]
                #expect(headers["content-type"]?.hasPrefix("application/cloudevents+json") == true && headers["ce-id"] == nil, "\(headers)")
            }
            #expect(orders.allSatisfy { ($0["headers"] as? [String: String])?["ce-id"] != nil }, "binary mode by default")

            // retry 2 → exactly 3 attempts, 0.3 s then 0.6 s apart (linear), then the dead-letter sink.
            let attempts = subscriber.records(at: "/fail")
            #expect(attempts.count == 3, "attempts: \(attempts.count)")
            if attempts.count == 3 {
                let times = attempts.compactMap { $0["t"] as? Double }
                let first = times[1] - times[0], second = times[2] - times[1]
                #expect(first >= 0.28 && first < 0.9, "first backoff \(first)")
                #expect(second >= 0.58 && second < 1.3, "second backoff \(second)")
            }
            let dead = subscriber.records(at: "/ok?t=dls").first
            let deadHeaders = dead?["headers"] as? [String: String] ?? [:]
            #expect((dead?["event"] as? [String: Any])?["id"] as? String == "fail-1")
            #expect(deadHeaders["ce-knativeerrorcode"] == "500", "\(deadHeaders)")
            #expect(deadHeaders["ce-knativeerrordest"] == "\(url)/fail", "\(deadHeaders)")
            #expect(deadHeaders["ce-knativeerrordata"]?.removingPercentEncoding == "subscriber failure", "\(deadHeaders)")
            #expect(deadHeaders["ce-knativebrokerttl"] == nil, "the hop counter stays inside the broker")

            let lastHop = subscriber.records(at: "/reply?t=last-hop")
            #expect(lastHop.count == 1, "the subscriber is called once: \(lastHop.count)")
            #expect(lastHop.first.flatMap { ($0["headers"] as? [String: String])?["ce-knativebrokerttl"] } == nil)
            #expect(subscriber.records(at: "/ok?t=last-hop-dls").isEmpty, "a dropped reply is not a failed delivery")
            let lastHopRows = try Self.cli(daemon, ["event", "list", "--broker", "main", "--type", "dev.outpost.test.loop", "-o", "json"])
            #expect(lastHopRows.stdout.contains("Delivered"), "\(lastHopRows.stdout)")

            // The reply re-entered the broker and reached the second trigger.
            let answer = subscriber.records(at: "/ok?t=answers").first
            #expect((answer?["event"] as? [String: Any])?["source"] as? String == "/subscriber/reply")
            #expect(subscriber.records(at: "/reply").first.flatMap { ($0["headers"] as? [String: String])?["prefer"] } == "reply")

            // The log, the dead letters and a redrive over the CLI.
            let listed = try Self.cli(daemon, ["event", "list", "--broker", "main", "--type", "com.example.fail", "-o", "json"])
            let items = (try? JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [String: Any])?["items"] as? [[String: Any]] ?? []
            let delivery = (items.first?["deliveries"] as? [[String: Any]])?.first { $0["trigger"] as? String == "failing" }
            #expect(items.count == 1 && delivery?["state"] as? String == "DeadLettered" && delivery?["attempts"] as? Int == 3, "\(listed.stdout)")
            let dlq = try Self.cli(daemon, ["dlq", "list", "--trigger", "failing"])
            #expect(dlq.stdout.contains("fail-1") && dlq.stdout.contains("DeadLettered"), "\(dlq.stdout)")
            let redrive = try Self.cli(daemon, ["dlq", "redrive", "--trigger", "failing"])
            #expect(redrive.stdout.contains("1 deliveries"), "\(redrive.stdout)")
            #expect(eventually(timeout: .seconds(20)) { subscriber.records(at: "/fail").count == 6 && subscriber.records(at: "/ok?t=dls").count == 2 })

            // `event send` builds and stores an event; JSON data must be JSON.
            try Self.cli(daemon, ["event", "send", "--broker", "main", "--type", "dev.outpost.test.cli", "--data", #"{"a":1}"#])
            let notJSON = try daemon.cli(["event", "send", "--broker", "main", "--type", "dev.outpost.test.cli", "--data", "not json"])
            #expect(notJSON.status != 0 && notJSON.stderr.contains("not valid JSON"), "\(notJSON.status) \(notJSON.stderr)")
            let textData = try daemon.cli(["event", "send", "--broker", "main", "--type", "dev.outpost.test.cli", "--data", "plain", "--content-type", "text/plain"])
            #expect(textData.status == 0, "\(textData.stderr)")

            // Names that do not exist are errors, not empty answers.
            for arguments in [["event", "list", "--broker", "nosuch"], ["dlq", "list", "--trigger", "nosuch"], ["dlq", "redrive", "--trigger", "nosuch"]] {
                let missing = try daemon.cli(arguments)
                #expect(missing.status != 0 && missing.stderr.contains("not found"), "\(arguments): \(missing.status) \(missing.stdout) \(missing.stderr)")
            }

            // The bus's counters are on /metrics.
            let metrics = SimpleHTTP.request(port: daemon.adminPort, path: "/metrics").text
            #expect(metrics.contains(#"outpost_eventing_deliveries_total{namespace="default",trigger="failing",outcome="DeadLettered"} 2"#), "\(metrics.suffix(1500))")
            #expect(metrics.contains(#"outpost_eventing_events_stored_total{namespace="default",broker="main"}"#))

            // A service as the subscriber: delivered through the gateway (traffic split, activation).
            // The same service declares a sink, so its workers get K_SINK (the broker at the
            // gateway's own address, reachable without DNS).
            try Self.cli(daemon, ["broker", "create", "platform", "--platform-events"])
            try Self.cli(daemon, ["trigger", "create", "platform-all", "--broker", "platform", "--subscriber", "\(url)/ok?t=platform"])
            #expect(Self.waitReady(daemon, "triggers", "platform-all"))
            let serviceLog = "\(directory.path)/service.jsonl"
            try Self.cli(daemon, [
                "service", "create", "sub", "--command", InferenceServiceTests.testPython,
                "--arg", "\(Self.repository)/scripts/interop/ce_subscriber.py", "--arg=--log", "--arg", serviceLog, "--sink", "broker:main",
                "--ce-override", "team=billing",
            ])
            try Self.cli(daemon, ["trigger", "create", "to-service", "--broker", "main", "--filter", "type=com.example.svc", "--subscriber", "service:sub"])
            #expect(Self.waitReady(daemon, "triggers", "to-service"))
            #expect(Self.ingress(daemon, "/default/main", headers: Self.binaryHeaders(id: "svc-1", type: "com.example.svc"), body: "{}").status == 202)
            #expect(eventually(timeout: .seconds(30)) { Self.ids(Subscriber.records(in: serviceLog)).contains("svc-1") }, "the service did not receive the event")
            let service = daemon.api("GET", "/api/v1/namespaces/default/services/sub").json
            let env = (((service?["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])?["env"] as? [[String: Any]] ?? []
            let sink = env.first { $0["name"] as? String == "K_SINK" }?["value"] as? String
            #expect(sink == "http://127.0.0.1:\(daemon.gatewayPort)/default/main", "K_SINK: \(String(describing: sink))")
            let overrides = env.first { $0["name"] as? String == "K_CE_OVERRIDES" }?["value"] as? String
            #expect(overrides == #"{"extensions":{"team":"billing"}}"#, "K_CE_OVERRIDES: \(String(describing: overrides))")
            let viaSink = try run("/usr/bin/curl", [
                "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "ce-specversion: 1.0", "-H", "ce-id: sink-1", "-H", "ce-source: /workload",
                "-H", "ce-type: com.example.order", "-d", "{}", sink ?? "http://127.0.0.1:1/",
            ])
            #expect(viaSink.stdout == "202", "POST to K_SINK: \(viaSink.stdout)")
            // The platform's own events reached the broker that asked for them.
            let platformTypes: Set<String> = ["dev.outpost.service.created", "dev.outpost.revision.created", "dev.outpost.revision.ready"]
            #expect(eventually(timeout: .seconds(10)) {
                let types = subscriber.records(at: "/ok?t=platform").compactMap { ($0["event"] as? [String: Any])?["type"] as? String }
                return platformTypes.isSubset(of: Set(types))
            }, "platform events: \(subscriber.records(at: "/ok?t=platform").count)")

            // The ping source fired at the minute boundary (at most a minute after it was made).
            #expect(eventually(timeout: .seconds(75)) { !subscriber.records(at: "/ok?t=pings").isEmpty }, "no ping arrived")
            let ping = subscriber.records(at: "/ok?t=pings").first?["event"] as? [String: Any]
            #expect(ping?["source"] as? String == "/apis/v1/namespaces/default/pingsources/ping")
            let pingList = try Self.cli(daemon, ["pingsource", "list"])
            #expect(pingList.stdout.contains("ping") && pingList.stdout.contains("True"), "\(pingList.stdout)")
            #expect(kill(daemon.pid ?? 0, 0) == 0, "the daemon is still running")
        }
    }

    @Test func everyAcknowledgedEventSurvivesSIGKILL() async throws {
        try await onThread {
            let directory = try TemporaryDirectory(prefix: "outpost-eventing-crash")
            defer { directory.remove() }
            let daemon = Daemon(dataDirectory: "\(directory.path)/data")
            try daemon.start()
            defer { daemon.stop() }
            let subscriber = try Subscriber(log: "\(directory.path)/received.jsonl")
            defer { subscriber.stop() }
            for mode in ["grouped", "fsync"] {
                try Self.cli(daemon, ["broker", "create", mode, "--durability", mode])
                try Self.cli(daemon, ["trigger", "create", "to-\(mode)", "--broker", mode, "--subscriber", "\(subscriber.url)/ok?m=\(mode)"])
                #expect(Self.waitReady(daemon, "triggers", "to-\(mode)"))
            }
            let acked = "\(directory.path)/acked.txt"
            var producers: [Process] = []
            for mode in ["grouped", "fsync"] {
                let producer = Process()
                producer.executableURL = URL(fileURLWithPath: InferenceServiceTests.testPython)
                producer.arguments = [
                    "\(Self.repository)/scripts/interop/ce_producer.py", "numbered", "--port", String(daemon.gatewayPort),
                    "--path", "/default/\(mode)", "--acked", acked, "--prefix", mode, "--threads", "3", "--seconds", "14",
                ]
                producer.standardOutput = FileHandle.nullDevice
                producer.standardError = FileHandle.nullDevice
                try producer.run()
                producers.append(producer)
            }
            // Three SIGKILLs while the producers run; each restart recovers the open deliveries.
            for _ in 0..<3 {
                Thread.sleep(forTimeInterval: 3)
                daemon.kill9()
                Thread.sleep(forTimeInterval: 0.3)
                try daemon.start()
            }
            for producer in producers { producer.waitUntilExit() }
            let ackedIDs = Set(((try? String(contentsOfFile: acked, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init))
            #expect(ackedIDs.count > 100, "only \(ackedIDs.count) events were acknowledged")
            var received: [String] = []
            let complete = eventually(timeout: .seconds(60)) {
                received = Self.ids(subscriber.records())
                return ackedIDs.isSubset(of: Set(received))
            }
            let missing = ackedIDs.subtracting(received)
            let duplicates = received.count - Set(received).count
            print("crash test: \(ackedIDs.count) acknowledged, \(Set(received).count) distinct delivered, \(duplicates) duplicates, \(missing.count) lost")
            #expect(complete && missing.isEmpty, "lost \(missing.count) acknowledged events, e.g. \(missing.prefix(5))")
        }
    }
}
}
