import NIOCore
import NIOHTTP1

/// What the access log needs beyond the metrics; gathered only when the access log is on.
struct AccessLogFacts {
    /// The client's request head (`nil` when it could not be parsed).
    var head: HTTPRequestHead?
    /// Wall-clock start, nanoseconds since the epoch.
    var wallClockStart: Int64
    /// `NIODeadline` uptime when the request head went to the worker.
    var upstreamSentNanoseconds: UInt64?
    /// `NIODeadline` uptime when the worker's response head arrived.
    var upstreamHeadNanoseconds: UInt64?
}

/// Telemetry of ``ProxyHandler``: ids when a head arrives, one count (and one access-log line)
/// when the exchange ends, whichever way it ends. Runs on the connection's event loop and
/// touches only this loop's ``LoopContext``.
extension ProxyHandler {
    /// Starts counting the exchange. With a head, keeps or creates its `x-request-id` and
    /// `traceparent`; without one (unparseable request) only the clock starts.
    func beginTelemetry(head: HTTPRequestHead?, info: RequestHeadInfo?) {
        exchange.awaitingCount = true
        exchange.startNanoseconds = NIODeadline.now().uptimeNanoseconds
        if let info {
            exchange.telemetry = RequestTelemetry(
                clientRequestID: info.requestID, clientTraceparent: info.traceparent, random: &loop.random)
        }
        if environment.accessLog != nil {
            exchange.log = AccessLogFacts(head: head, wallClockStart: AccessLogEntry.wallClockNanoseconds())
        }
    }

    /// Counts the exchange once, with the response code already recorded (0 if none was sent)
    /// and `flags`, and writes its access-log line. Later calls for the same exchange do nothing.
    func finishTelemetry(_ flags: ResponseFlags) {
        if let ended = endCount() { record(ended, flags: flags) }
    }

    /// Ends the exchange for the head timer and the route's slots, and returns it to be
    /// recorded; nil when it was counted already.
    func endCount() -> Exchange? {
        guard exchange.awaitingCount else { return nil }
        exchange.awaitingCount = false
        headTimer?.exchangeEnded()
        releaseRouteSlots()
        return exchange
    }

    /// Counts `ended` in this loop's metrics and writes its access-log line, with the time from
    /// its start until now. An exchange that became a tunnel is recorded when the tunnel closes.
    func record(_ ended: Exchange, flags: ResponseFlags) {
        let now = NIODeadline.now().uptimeNanoseconds
        let duration = Int64(truncatingIfNeeded: now &- ended.startNanoseconds)
        let unknown = RequestMetricsTable.unknown
        loop.metrics.record(
            namespace: ended.namespace ?? unknown,
            service: ended.service ?? unknown,
            revision: ended.target?.revision.name ?? unknown,
            code: ended.responseCode, flags: flags,
            durationNanoseconds: duration,
            requestBytes: ended.requestBytes, responseBytes: ended.responseBytes)
        if let sink = environment.accessLog, let facts = ended.log {
            sink(accessLogEntry(ended, facts, flags: flags, durationNanoseconds: duration).jsonLine())
        }
    }

    /// The access-log record of `exchange`.
    func accessLogEntry(_ exchange: Exchange, _ facts: AccessLogFacts, flags: ResponseFlags, durationNanoseconds: Int64) -> AccessLogEntry {
        let head = facts.head
        var upstreamTime: Int64?
        if let sent = facts.upstreamSentNanoseconds, let answered = facts.upstreamHeadNanoseconds {
            upstreamTime = Int64(truncatingIfNeeded: answered &- sent) / 1_000_000
        }
        var userAgent: String?
        var authority: String?
        var clientForwardedFor: String?
        if let headers = head?.headers {
            for (name, value) in headers {
                switch name.utf8.count {
                case 4 where authority == nil && name.equalsIgnoringASCIICase("host"): authority = value
                case 10 where userAgent == nil && name.equalsIgnoringASCIICase("user-agent"): userAgent = value
                case 15 where name.equalsIgnoringASCIICase("x-forwarded-for"):
                    clientForwardedFor = clientForwardedFor.map { "\($0), \(value)" } ?? value
                default: continue
                }
            }
        }
        let routeName = exchange.service.map { "\(exchange.namespace ?? "")/\($0)" }
        return AccessLogEntry(
            startTimeNanoseconds: facts.wallClockStart,
            method: head.map { $0.method.rawValue },
            path: head?.uri,
            httpProtocol: head.map { "HTTP/\($0.version.major).\($0.version.minor)" },
            responseCode: exchange.responseCode,
            responseFlags: flags,
            bytesReceived: exchange.requestBytes,
            bytesSent: exchange.responseBytes,
            durationMilliseconds: durationNanoseconds / 1_000_000,
            upstreamServiceTimeMilliseconds: upstreamTime,
            xForwardedFor: clientForwardedFor.map { "\($0), \(client.ip)" } ?? client.ip,
            userAgent: userAgent,
            requestID: exchange.telemetry?.requestID,
            authority: authority,
            upstreamHost: exchange.upstreamPort.map { "127.0.0.1:\($0)" },
            upstreamCluster: exchange.target?.revision.name,
            routeName: routeName,
            traceID: exchange.telemetry?.trace.traceIDHex)
    }
}
