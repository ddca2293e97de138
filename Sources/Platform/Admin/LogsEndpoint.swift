import Foundation
import Hummingbird
import ServiceLifecycle
import Store

/// `GET .../services/{name}/logs[?revision=R][&follow=true]`: a revision's captured stdout and
/// stderr (the newest revision by default). With `follow`, new output is streamed as it is
/// written, until the client goes away or the daemon shuts down.
struct LogsEndpoint: Sendable {
    let store: Store
    let logDirectory: String

    @Sendable func logs(_ request: Request, context: some RequestContext) async throws -> Response {
        let (namespace, name) = try nameParameters(context)
        guard let service = try storeCall({ try store.service(namespace: namespace, name: name) }) else {
            throw APIError(.notFound, code: "NotFound", "service \(namespace)/\(name) not found")
        }
        let query = request.uri.queryParameters
        let revision = query.get("revision") ?? service.status.latestCreatedRevisionName
            ?? Store.revisionName(service: name, generation: 1)
        guard let stored = try storeCall({ try store.revision(namespace: namespace, name: revision) }), stored.serviceName == name else {
            throw APIError(.notFound, code: "NotFound", "revision \(namespace)/\(revision) of service \(name) not found")
        }
        let follow = query.get("follow").map { $0 == "true" || $0 == "1" } ?? false
        let path = "\(logDirectory)/\(namespace)/\(revision).log"
        let body = ResponseBody { writer in
            var offset: UInt64 = 0
            var idlePolls = 0
            while true {
                let chunk = Self.read(path: path, from: offset)
                if !chunk.isEmpty {
                    offset += UInt64(chunk.count)
                    try await writer.write(ByteBuffer(bytes: chunk))
                    idlePolls = 0
                    continue
                }
                guard follow, !Task.isCancelled, !Task.isShuttingDownGracefully else { break }
                // The file was cut at its size limit (see the revision manager): start over.
                if let size = Self.size(path: path), size < offset { offset = 0 }
                idlePolls += 1
                // Every ~10 s of silence, check that the revision still exists.
                if idlePolls % 40 == 0, (try? store.revision(namespace: namespace, name: revision)) == nil { break }
                try await Task.sleep(for: .milliseconds(250))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: body)
    }

    static func size(path: String) -> UInt64? {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.uint64Value
    }

    /// Up to 64 KiB of the file from `offset`; empty when there is nothing new (or no file yet).
    static func read(path: String, from offset: UInt64) -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? handle.close() }
        guard (try? handle.seek(toOffset: offset)) != nil, let data = try? handle.read(upToCount: 64 * 1024) else { return [] }
        return [UInt8](data)
    }
}
