import Foundation

/// A fresh folder under the system's temp directory, removed by `remove()`.
public struct TemporaryDirectory: Sendable {
    /// Absolute path of the folder.
    public let path: String

    /// Creates the folder.
    public init(prefix: String = "outpost-test") throws {
        let base = FileManager.default.temporaryDirectory.path
        path = "\(base)/\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Deletes the folder and everything in it.
    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
