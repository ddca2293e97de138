import NIOCore
import NIOHTTP1

/// The traffic policy of ``ProxyHandler`` before a worker is chosen: rule selection, rate limit,
/// fault abort, redirect, connection-pool admission, header operations, rewrite and mirroring.
/// Everything here is plain Swift over the route-table value, on the connection's event loop.
extension ProxyHandler {
    /// Applies the route's policy to a new request. Returns false when the gateway answered it
    /// itself (redirect, 429, injected abort, overflow); otherwise `upstreamHead` carries the
    /// rule's header changes and rewrite, and the request may go on to a worker.
    func admit(_ head: HTTPRequestHead, route: Route, table: RouteTable, upstreamHead: inout HTTPRequestHead) -> Bool {
        let policy = route.policy
        let path = Self.path(of: head.uri)
        let rule = policy.rules.isEmpty ? RouteRule.default : policy.rule(method: head.method.rawValue, path: path, headers: head.headers)
        exchange.rule = rule
        exchange.retriesLeft = rule.retry.attempts
        let runtime = table.runtime(for: route)
        exchange.runtime = runtime
        if let runtime, let wait = runtime.takeToken(now: .now()) {
            respond(with: .rateLimited(retryAfter: wait))
            return false
        }
        if let abort = rule.fault?.abort, roll(percent: abort.percent) {
            respond(with: .faultAbort(status: abort.status))
            return false
        }
        if let redirect = rule.redirect {
            let host = head.headers.first(name: "host") ?? ""
            let scheme = (peer ?? .plaintext).secure ? "https" : "http"
            respond(with: .redirect(status: redirect.redirectCode, location: redirect.location(scheme: scheme, host: host, target: head.uri)))
            return false
        }
        if let runtime, let context {
            // Beyond `maxConnections` a request queues for a slot (Envoy's pending requests,
            // bounded by `http1MaxPendingRequests`) and its first attempt starts once it has one.
            let generation = self.generation
            let eventLoop = context.eventLoop
            let handler = NIOLoopBound(self, eventLoop: eventLoop)
            switch runtime.requestSlot(grant: { eventLoop.execute { handler.value.slotGranted(generation: generation, runtime: runtime) } }) {
            case .granted:
                exchange.countedInFlight = true
            case .queued(let id):
                exchange.slotWait = (id, generation)
            case .refused:
                respond(with: .overflow("http.http1MaxPendingRequests"))
                return false
            }
        }
        exchange.maxRequestsPerConnection = policy.connectionPool.maxRequestsPerConnection
        if let key = policy.hashKey {
            exchange.hash = key.hash(headers: head.headers)
            if exchange.hash == nil, case .cookie(let name, let issue?) = key {
                // No cookie yet: pick a key now and hand it to the client with the response.
                let value = String(loop.random.next(), radix: 16)
                exchange.hash = HashKeySource.fnv1a(value)
                exchange.setCookie = issue.setCookie(name: name, value: value)
            }
        }
        if let rewrite = rule.rewrite {
            Self.apply(rewrite, prefix: rule.matchedPrefix(method: head.method.rawValue, path: path, headers: head.headers), to: &upstreamHead)
        }
        if !rule.requestHeaders.isEmpty { Self.apply(rule.requestHeaders, to: &upstreamHead.headers) }
        if let mirror = rule.mirror, roll(percent: mirror.percent) {
            startMirror(mirror, head: upstreamHead, table: table)
        }
        return true
    }

    /// Rolls a percentage in `0...100` with this loop's generator.
    func roll(percent: Double) -> Bool {
        if percent >= 100 { return true }
        if percent <= 0 { return false }
        let unit = Double(loop.random.next() >> 11) * 0x1p-53
        return unit * 100 < percent
    }

    /// Runs `body` after `delay` on this loop, unless the exchange ended meanwhile. Request
    /// parts arriving in between are held (the phase stays `.acquiring`).
    func delayAttempt(by delay: Duration, _ body: @escaping () -> Void) {
        guard let context else { return }
        let generation = self.generation
        attemptTimer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(delay)) { [self] in
            guard generation == self.generation, phase == .acquiring else { return }
            attemptTimer = nil
            body()
        }
    }

    /// A `maxConnections` slot passed to this connection: to the exchange that queued for it,
    /// else (that exchange ended meanwhile) back to the route.
    func slotGranted(generation: UInt64, runtime: RouteRuntime) {
        guard let wait = exchange.slotWait, wait.generation == generation else {
            runtime.leaveInFlight()
            return
        }
        exchange.slotWait = nil
        exchange.countedInFlight = true
        if exchange.attemptAwaitsSlot {
            exchange.attemptAwaitsSlot = false
            startAttempt()
        }
    }

    /// Gives back the exchange's connection-pool slots (once).
    func releaseRouteSlots() {
        if let wait = exchange.slotWait {
            exchange.slotWait = nil
            // A slot already on its way is given back by `slotGranted`, which finds no wait.
            _ = exchange.runtime?.cancelSlotRequest(wait.id)
        }
        if exchange.countedInFlight {
            exchange.countedInFlight = false
            exchange.runtime?.leaveInFlight()
        }
        if exchange.countedPending {
            exchange.countedPending = false
            exchange.runtime?.leavePending()
        }
    }

    /// Starts copying the request to the mirror service (best effort: skipped when that service
    /// is unknown or has no worker free right now).
    func startMirror(_ mirror: MirrorPolicy, head: HTTPRequestHead, table: RouteTable) {
        guard let context, let route = table.route(forHost: "\(mirror.service).\(mirror.namespace).\(table.domain)"),
              let target = route.pick(roll: environment.roll.next(using: &loop.random)) else { return }
        var copy = head
        // Envoy marks shadowed requests by suffixing the authority with `-shadow`.
        if let host = copy.headers.first(name: "host") {
            copy.headers.replaceOrAdd(name: "host", value: Self.shadowHost(host))
        }
        exchange.mirror = MirrorExchange.start(
            head: copy, revision: target.revision, timeout: target.timeout, resolver: environment.resolver, pool: loop.pool,
            eventLoop: context.eventLoop, holdsHead: exchange.holdsHeadForFirstPart)
    }

    /// `name-shadow[:port]`.
    static func shadowHost(_ host: String) -> String {
        if let colon = host.lastIndex(of: ":"), !host[colon...].contains("]") {
            return "\(host[..<colon])-shadow\(host[colon...])"
        }
        return host + "-shadow"
    }

    // MARK: Head changes

    /// The path of a request target, without the query.
    static func path(of uri: String) -> Substring {
        uri.firstIndex(of: "?").map { uri[..<$0] } ?? uri[...]
    }

    /// Istio's rewrite: the matched prefix (or the whole path) replaced, the query kept; the
    /// authority replaced in `Host`.
    static func apply(_ rewrite: RouteRewrite, prefix: String?, to head: inout HTTPRequestHead) {
        if let uri = rewrite.uri {
            let path = Self.path(of: head.uri)
            let query = head.uri[path.endIndex...]
            if let prefix, path.hasPrefix(prefix) {
                head.uri = uri + path.dropFirst(prefix.count) + query
            } else {
                head.uri = uri + query
            }
        }
        if let authority = rewrite.authority {
            head.headers.replaceOrAdd(name: "host", value: authority)
        }
    }

    /// Istio's header operations, in the order remove, set, add.
    static func apply(_ operations: HeaderOperations, to headers: inout HTTPHeaders) {
        for name in operations.remove { headers.remove(name: name) }
        for (name, value) in operations.set { headers.replaceOrAdd(name: name, value: value) }
        for (name, value) in operations.add { headers.add(name: name, value: value) }
    }
}
