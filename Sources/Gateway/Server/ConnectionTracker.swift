import NIOCore
import Synchronization

/// Knows every open downstream connection so graceful shutdown can ask each one to finish
/// (`ChannelShouldQuiesceEvent`, handled by NIO's `HTTPServerPipelineHandler` for HTTP/1.1:
/// idle connections close at once, busy ones after their current response; by NIO's HTTP/2
/// connection manager: GOAWAY, then close once the open streams are done; a connection that
/// has not picked its protocol yet and a WebSocket tunnel close at once) and, at the drain
/// deadline, close what is left.
final class ConnectionTracker: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var isDraining = false
        var drained: EventLoopPromise<Void>?
    }

    private let state = Mutex(State())

    /// Registers a new connection. Returns `false` when draining has begun (close it).
    func track(_ channel: any Channel) -> Bool {
        let accepted = state.withLock { state -> Bool in
            guard !state.isDraining else { return false }
            state.channels[ObjectIdentifier(channel)] = channel
            return true
        }
        if accepted {
            let id = ObjectIdentifier(channel)
            channel.closeFuture.whenComplete { _ in self.untrack(id) }
        }
        return accepted
    }

    /// Open connections right now.
    var count: Int { state.withLock { $0.channels.count } }

    private func untrack(_ id: ObjectIdentifier) {
        let drained = state.withLock { state -> EventLoopPromise<Void>? in
            state.channels[id] = nil
            guard state.isDraining, state.channels.isEmpty, let drained = state.drained else { return nil }
            state.drained = nil
            return drained
        }
        drained?.succeed(())
    }

    /// Stops accepting new connections, asks every open one to quiesce and returns a future that
    /// completes once all are closed.
    func beginDraining(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        let channels = state.withLock { state -> [any Channel]? in
            state.isDraining = true
            guard !state.channels.isEmpty else { return nil }
            state.drained = promise
            return Array(state.channels.values)
        }
        guard let channels else {
            promise.succeed(())
            return promise.futureResult
        }
        for channel in channels {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        return promise.futureResult
    }

    /// Closes every connection still open (the drain deadline passed).
    func closeAll() {
        let channels = state.withLock { Array($0.channels.values) }
        for channel in channels {
            channel.close(promise: nil)
        }
    }
}
