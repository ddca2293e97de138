/// A fast pseudo-random generator (xoshiro256**) for request ids, trace ids and span ids.
///
/// One instance per event loop (in ``LoopContext``), seeded from the system generator, so a
/// request pays no system call and no lock for its ids. The ids must be unique, not secret:
/// W3C Trace Context asks for random trace ids, which 256 bits of seeded state give.
/// Not thread-safe.
struct TelemetryRandom: RandomNumberGenerator {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    /// Seeds from the system's generator.
    init() {
        var system = SystemRandomNumberGenerator()
        self.init(seed: (system.next(), system.next(), system.next(), system.next()))
    }

    /// A fixed seed, for tests. An all-zero seed is replaced (xoshiro needs a non-zero state).
    init(seed: (UInt64, UInt64, UInt64, UInt64)) {
        (s0, s1, s2, s3) = seed
        if s0 | s1 | s2 | s3 == 0 { s0 = 0x9E37_79B9_7F4A_7C15 }
    }

    mutating func next() -> UInt64 {
        let result = (s1 &* 5).rotatedLeft(7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = s3.rotatedLeft(45)
        return result
    }

    /// A random value that is not zero (trace and span ids must not be all zero).
    mutating func nextNonZero() -> UInt64 {
        while true {
            let value = next()
            if value != 0 { return value }
        }
    }
}

extension UInt64 {
    @inline(__always)
    fileprivate func rotatedLeft(_ count: UInt64) -> UInt64 {
        (self << count) | (self >> (64 - count))
    }
}

/// Lowercase hex digits, for ids rendered without Foundation.
enum HexDigits {
    /// `0`–`9`, `a`–`f` as ASCII.
    static let lowercase: [UInt8] = Array("0123456789abcdef".utf8)

    /// Writes `value` as `digits` lowercase hex characters (most significant first) at `index`.
    @inline(__always)
    static func write(_ value: UInt64, digits: Int, into buffer: UnsafeMutableBufferPointer<UInt8>, at index: Int) {
        var value = value
        var position = index + digits - 1
        while position >= index {
            buffer[position] = lowercase[Int(value & 0xF)]
            value >>= 4
            position -= 1
        }
    }

    /// The value of a lowercase hex digit, or `nil`.
    @inline(__always)
    static func value(of byte: UInt8) -> UInt64? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt64(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt64(byte - UInt8(ascii: "a") + 10)
        default: return nil
        }
    }
}
