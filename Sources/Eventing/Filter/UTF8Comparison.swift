import Foundation

/// Byte-level string comparisons shared by CESQL and the Knative dialects.
///
/// Filters compare exact Unicode scalars, without the canonical-equivalence rules `String`'s
/// own `==` and `hasPrefix` apply, so that `=`, `LIKE` and `exact`/`prefix`/`suffix` agree with
/// one another and with other implementations. On valid UTF-8, byte equality is scalar equality,
/// and because UTF-8 is self-synchronising a byte-level prefix, suffix or substring match is
/// also a scalar-level one. Working on the contiguous UTF-8 buffers keeps these hot paths to a
/// tight loop with no allocation.
enum UTF8Comparison {
    static func equal(_ lhs: String, _ rhs: String) -> Bool {
        withBuffers(lhs, rhs) { left, right in
            left.count == right.count && bytesEqual(left, right)
        }
    }

    static func hasPrefix(_ text: String, _ prefix: String) -> Bool {
        withBuffers(text, prefix) { bytes, head in
            bytes.count >= head.count && bytesEqual(UnsafeBufferPointer(rebasing: bytes.prefix(head.count)), head)
        }
    }

    static func hasSuffix(_ text: String, _ suffix: String) -> Bool {
        withBuffers(text, suffix) { bytes, tail in
            bytes.count >= tail.count && bytesEqual(UnsafeBufferPointer(rebasing: bytes.suffix(tail.count)), tail)
        }
    }

    static func contains(_ text: String, _ needle: String) -> Bool {
        withBuffers(text, needle) { bytes, target in
            guard let first = target.first else { return true }
            guard bytes.count >= target.count else { return false }
            for start in 0...(bytes.count - target.count) where bytes[start] == first {
                if bytesEqual(UnsafeBufferPointer(rebasing: bytes[start..<(start + target.count)]), target) {
                    return true
                }
            }
            return false
        }
    }

    /// Compares the first `rhs.count` bytes of `lhs` with `rhs` (callers guarantee the length).
    @inline(__always)
    private static func bytesEqual(_ lhs: UnsafeBufferPointer<UInt8>, _ rhs: UnsafeBufferPointer<UInt8>) -> Bool {
        guard rhs.count > 0, let left = lhs.baseAddress, let right = rhs.baseAddress else { return true }
        return memcmp(left, right, rhs.count) == 0
    }

    /// Native Swift strings are already contiguous UTF-8, so `withUTF8` on the local copies
    /// neither copies bytes nor allocates.
    @inline(__always)
    private static func withBuffers(
        _ first: String, _ second: String, _ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> Bool
    ) -> Bool {
        var first = first
        var second = second
        return first.withUTF8 { a in second.withUTF8 { b in body(a, b) } }
    }
}
