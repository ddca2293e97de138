import Crypto
import Foundation
import Glibc
import Hummingbird
import Inference

/// `/api/v1/models`: model files uploaded to the daemon, stored content-addressed
/// (`<data-dir>/models/sha256-<hex>.onnx`) so that the same bytes are kept once and a
/// `storageUri` always names exactly the bytes that were checked.
struct ModelUploadController<Context: RequestContext>: Sendable {
    let directory: String

    func addRoutes(to group: RouterGroup<Context>) {
        group.post("models", use: upload)
        group.get("models", use: list)
    }

    /// Streams the body to a temporary file while hashing it, then moves it to its final name.
    @Sendable func upload(_ request: Request, context: Context) async throws -> Response {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let temporary = "\(directory)/.upload-\(UUID().uuidString)"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            throw APIError(.internalServerError, code: "StorageError", "cannot create \(temporary): \(String(cString: strerror(errno)))")
        }
        var closed = false
        defer {
            if !closed { close(fd) }
            unlink(temporary)
        }
        var hasher = SHA256()
        var size = 0
        for try await chunk in request.body {
            size += chunk.readableBytes
            guard size <= ModelFile.maxBytes else {
                throw APIError(.contentTooLarge, code: "TooLarge", "a model may be at most \(ModelFile.maxBytes) bytes")
            }
            try chunk.withUnsafeReadableBytes { bytes in
                hasher.update(bufferPointer: bytes)
                var offset = 0
                while offset < bytes.count {
                    let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw APIError(.internalServerError, code: "StorageError", "cannot write the model: \(String(cString: strerror(errno)))")
                    }
                    offset += written
                }
            }
        }
        guard size > 0 else {
            throw APIError(.badRequest, code: "EmptyBody", "send the model file as the request body (curl --data-binary @model.onnx)")
        }
        guard fsync(fd) == 0 else {
            throw APIError(.internalServerError, code: "StorageError", "cannot sync the model: \(String(cString: strerror(errno)))")
        }
        close(fd)
        closed = true
        let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        let final = "\(directory)/sha256-\(digest).onnx"
        guard rename(temporary, final) == 0 else {
            throw APIError(.internalServerError, code: "StorageError", "cannot store the model: \(String(cString: strerror(errno)))")
        }
        return try jsonResponse(UploadedModelDTO(storageUri: "file://\(final)", sha256: digest, size: size), status: .created)
    }

    @Sendable func list(_ request: Request, context: Context) async throws -> Response {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let items = names.sorted().compactMap { name -> UploadedModelDTO? in
            guard name.hasPrefix("sha256-"), name.hasSuffix(".onnx") else { return nil }
            let path = "\(directory)/\(name)"
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            return UploadedModelDTO(storageUri: "file://\(path)", sha256: String(name.dropFirst(7).dropLast(5)), size: size)
        }
        return try jsonResponse(ListDTO(items: items))
    }
}

/// A stored model file: the URI to deploy it with, its SHA-256 and its size.
struct UploadedModelDTO: Codable, Sendable {
    var storageUri: String
    var sha256: String
    var size: Int
}
