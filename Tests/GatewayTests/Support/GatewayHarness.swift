@testable import Gateway
import Logging
import NIOCore
import NIOPosix

/// The service every integration test routes to.
enum TestRoutes {
    static let domain = "example.test"
    static let revision = RevisionID(namespace: "default", name: "hello-00001")
    static let host = "hello.default.example.test"

    static func table(timeout: Duration = .seconds(5)) -> RouteTable {
        RouteTable(domain: domain, routes: [
            Route(namespace: "default", service: "hello", targets: [
                RouteTarget(revision: revision, percent: 100, timeout: timeout)
            ]),
            Route(namespace: "default", service: "empty", targets: []),
        ])
    }
}

/// A running gateway on an ephemeral port of 127.0.0.1, served by a task that `stop()` cancels.
struct GatewayHarness {
    let gateway: Gateway
    let port: Int
    private let task: Task<Void, any Error>

    static func start(
        resolver: any UpstreamResolver,
        table: RouteTable = TestRoutes.table(),
        configure: (inout GatewayConfiguration) -> Void = { _ in }
    ) async throws -> GatewayHarness {
        var configuration = GatewayConfiguration(host: "127.0.0.1", port: 0)
        configure(&configuration)
        var logger = Logger(label: "gateway-test")
        logger.logLevel = .error
        let gateway = Gateway(
            configuration: configuration, resolver: resolver,
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger,
            trafficRoll: .seeded(42))
        gateway.publish(table)
        let task = Task { try await gateway.run() }
        let port = try await gateway.waitUntilListening()
        return GatewayHarness(gateway: gateway, port: port, task: task)
    }

    /// Triggers shutdown (cancellation) and waits for `run()` to return.
    func stop() async throws {
        task.cancel()
        try await task.value
    }

    /// The result of `run()` once it has been stopped some other way.
    var finished: Task<Void, any Error> { task }

    func client() async throws -> TestHTTPClient {
        try await TestHTTPClient.connect(port: port)
    }
}

/// Reads a port nothing listens on (bound, then closed).
func closedPort() async throws -> Int {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .bind(host: "127.0.0.1", port: 0).get()
    let port = channel.localAddress!.port!
    try await channel.close()
    return port
}

/// A deterministic body of `size` bytes (a 4099-byte block repeated, so parts do not line up
/// with chunk boundaries).
func patternBody(_ size: Int) -> ByteBuffer {
    let block = (0..<4099).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
    var buffer = ByteBuffer()
    buffer.reserveCapacity(size)
    while buffer.readableBytes < size {
        buffer.writeBytes(block.prefix(size - buffer.readableBytes))
    }
    return buffer
}
