/// Byte-level helpers for header names, so the hot path compares without lowercasing copies.
extension StringProtocol {
    /// `true` when `self` equals `lowercase` ignoring ASCII case. `lowercase` must already be
    /// lowercase ASCII.
    @inline(__always)
    func equalsIgnoringASCIICase(_ lowercase: StaticString) -> Bool {
        lowercase.withUTF8Buffer { other in
            let utf8 = self.utf8
            guard utf8.count == other.count else { return false }
            var index = other.startIndex
            for byte in utf8 {
                guard byte.asciiLowercased == other[index] else { return false }
                index += 1
            }
            return true
        }
    }

    /// `true` when `self` equals `lowercase` ignoring ASCII case (`lowercase` is lowercase).
    @inline(__always)
    func equalsIgnoringASCIICase(_ lowercase: String) -> Bool {
        let utf8 = self.utf8
        guard utf8.count == lowercase.utf8.count else { return false }
        // Native strings compare on their contiguous bytes; others byte by byte.
        let contiguous = utf8.withContiguousStorageIfAvailable { mine in
            lowercase.utf8.withContiguousStorageIfAvailable { other in
                for index in 0..<mine.count where mine[index].asciiLowercased != other[index] { return false }
                return true
            }
        }
        if let contiguous, let result = contiguous { return result }
        return zip(utf8, lowercase.utf8).allSatisfy { $0.asciiLowercased == $1 }
    }
}

extension UInt8 {
    /// The byte with ASCII `A`–`Z` mapped to `a`–`z`.
    @inline(__always)
    var asciiLowercased: UInt8 {
        (self >= 0x41 && self <= 0x5A) ? self | 0x20 : self
    }

    /// An RFC 9110 `tchar`: may appear unquoted in a token.
    var isTokenCharacter: Bool {
        switch self {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "A")...UInt8(ascii: "Z"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}
