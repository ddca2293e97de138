import NIOCore
import NIOHTTP1
import NIOPosix

/// Keep-alive connections to workers, owned by one event loop (no locks): the downstream
/// connections of that loop check connections out and back in. Idle connections are bounded per
/// port and closed after `idleTimeout`; closed ones leave the pool at once.
final class UpstreamConnectionPool {
    private let eventLoop: any EventLoop
    private let connectTimeout: TimeAmount
    private let maxIdlePerPort: Int
    private let idleTimeout: TimeAmount
    private var idle: [Int: [UpstreamHandler]] = [:]
    private var sweep: Scheduled<Void>?
    private var isShutDown = false

    init(eventLoop: any EventLoop, connectTimeout: TimeAmount, maxIdlePerPort: Int, idleTimeout: TimeAmount) {
        self.eventLoop = eventLoop
        self.connectTimeout = connectTimeout
        self.maxIdlePerPort = maxIdlePerPort
        self.idleTimeout = idleTimeout
    }

    /// How many idle connections the pool holds (for tests).
    var idleCount: Int { idle.values.reduce(0) { $0 + $1.count } }

    /// Takes the most recently used idle connection to `port`, if one is still open.
    func checkout(port: Int) -> UpstreamHandler? {
        // The list is taken out and put back: changing it in place (`idle[port]?.popLast()`)
        // goes through the dictionary's `_modify` accessor, whose coroutine frame is allocated
        // on the heap, three allocations per request.
        guard var list = idle.removeValue(forKey: port) else { return nil }
        defer { idle[port] = list }
        while let connection = list.popLast() {
            connection.isPooled = false
            if connection.isActive { return connection }
        }
        return nil
    }

    /// Returns a connection that finished an exchange cleanly; closes it if the pool is full,
    /// shut down, or the connection is no longer open.
    ///
    /// Checked in during one of its own read passes (a response's end), the connection joins the
    /// pool only when that pass ends: bytes the worker sent behind its response in the same read
    /// would otherwise reach whichever exchange took it meanwhile (the client's next pipelined
    /// request, delivered while the response's end is written). Such bytes close it instead.
    func checkin(_ connection: UpstreamHandler) {
        connection.delegate = nil
        if connection.isReading {
            connection.pool = self
            connection.checkInAfterRead = true
            return
        }
        guard !isShutDown, connection.isActive, idle[connection.port, default: []].count < maxIdlePerPort else {
            connection.close()
            return
        }
        connection.isPooled = true
        connection.idleSince = .now()
        connection.pool = self
        connection.setReadsPaused(false)
        var list = idle.removeValue(forKey: connection.port) ?? []  // not in place: see `checkout(port:)`
        list.append(connection)
        idle[connection.port] = list
        scheduleSweepIfNeeded()
    }

    /// Called by a pooled connection when it closes.
    func connectionClosed(_ connection: UpstreamHandler) {
        connection.isPooled = false
        guard var list = idle[connection.port] else { return }
        list.removeAll { $0 === connection }
        idle[connection.port] = list.isEmpty ? nil : list
    }

    /// Opens a new connection to `127.0.0.1:port` on this loop; `completion` runs on the loop.
    func connect(port: Int, _ completion: @escaping (Result<UpstreamHandler, any Error>) -> Void) {
        let address: SocketAddress
        do {
            address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        } catch {
            completion(.failure(error))
            return
        }
        ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    // NIO's client handlers without outbound validation, which would re-check
                    // every header the gateway forwards: the request head was parsed (and so
                    // validated) by llhttp, and the gateway's own headers are built from checked
                    // values. Left-over bytes matter only after a 101 (see
                    // `UpstreamHandler.replace(with:)`).
                    let decoder = WorkerResponseDecoder(leftOverBytesStrategy: .forwardBytes)
                    try pipeline.addHandler(HTTPRequestEncoder())
                    try pipeline.addHandler(ByteToMessageHandler(decoder))
                    try pipeline.addHandler(UpstreamHandler(port: port, decoder: decoder))
                }
            }
            .connect(to: address)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    do {
                        let handler = try channel.pipeline.syncOperations.handler(type: UpstreamHandler.self)
                        handler.pool = self
                        completion(.success(handler))
                    } catch {
                        channel.close(promise: nil)
                        completion(.failure(error))
                    }
                case .failure(let error):
                    completion(.failure(error))
                }
            }
    }

    /// Closes every idle connection and refuses check-ins from now on.
    func shutdown() {
        isShutDown = true
        sweep?.cancel()
        sweep = nil
        let all = idle.values.flatMap { $0 }
        idle.removeAll()
        for connection in all {
            connection.isPooled = false
            connection.close()
        }
    }

    private func scheduleSweepIfNeeded() {
        guard sweep == nil else { return }
        sweep = eventLoop.assumeIsolated().scheduleTask(in: idleTimeout) { [self] in
            sweep = nil
            sweepIdle()
        }
    }

    /// Closes connections idle for longer than `idleTimeout`.
    private func sweepIdle() {
        let cutoff = NIODeadline.now() - idleTimeout
        var expired: [UpstreamHandler] = []
        for (port, list) in idle {
            let (old, fresh) = (list.filter { $0.idleSince <= cutoff }, list.filter { $0.idleSince > cutoff })
            expired += old
            idle[port] = fresh.isEmpty ? nil : fresh
        }
        for connection in expired {
            connection.isPooled = false
            connection.close()
        }
        if !idle.isEmpty { scheduleSweepIfNeeded() }
    }
}
