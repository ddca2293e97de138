#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Reads model files: only regular files (after symlinks) of at most ``maxBytes``, so a path
/// naming a device (`/dev/zero`) or a FIFO fails at once instead of reading without end or
/// blocking the load.
public enum ModelFile {
    /// The largest model file (or external data file) taken.
    public static let maxBytes = 2 << 30

    /// What is wrong with `path` as a model file, or nil.
    public static func problem(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return "no such file" }
        guard info.st_mode & S_IFMT == S_IFREG else { return "not a regular file" }
        guard Int(info.st_size) <= maxBytes else { return "larger than \(maxBytes) bytes, the most a model may be" }
        return nil
    }

    /// The file's bytes, or nil with the reason (see ``problem(_:)``).
    static func read(_ path: String) -> (data: Data?, problem: String?) {
        if let problem = problem(path) { return (nil, problem) }
        guard let data = FileManager.default.contents(atPath: path) else { return (nil, "cannot read it") }
        return (data, nil)
    }
}
