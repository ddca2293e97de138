#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Reads model files: only regular files (after symlinks), so a path naming a device
/// (`/dev/zero`) or a FIFO fails at once instead of reading without end or blocking the load.
enum ModelFile {
    /// The file's bytes, or nil (with the reason) when it is missing, not a regular file, or
    /// unreadable.
    static func read(_ path: String) -> (data: Data?, problem: String?) {
        var info = stat()
        guard stat(path, &info) == 0 else { return (nil, "no such file") }
        guard info.st_mode & S_IFMT == S_IFREG else { return (nil, "not a regular file") }
        guard let data = FileManager.default.contents(atPath: path) else { return (nil, "cannot read it") }
        return (data, nil)
    }
}
