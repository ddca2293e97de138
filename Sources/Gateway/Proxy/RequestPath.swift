/// The path normalization of Istio's default `pathNormalization: BASE` (Envoy's
/// `normalize_path`, RFC 3986 §6.2.2), with repeated slashes merged as the gateway always did:
/// percent-encoded unreserved characters decoded (once: `%2E` is a dot, `%252E` stays), `\` as
/// `/`, dot segments resolved (`%2E` forms too), empty segments dropped. Other escapes stay as
/// sent (`%2F` is not a separator); a `%` that starts no escape is written `%25`, so decoding
/// cannot make a new escape (`%%32%65` would otherwise become `%2e`) and normalizing twice
/// changes nothing. Applied to every request before routing and authorization,
/// and the worker gets the normalized path: a policy decides on the path the worker sees.
enum RequestPath {
    /// `uri` with its path normalized and its query (and any fragment) as sent; nil when the path
    /// is already normal or `uri` is not origin-form. A normal path costs one scan of its bytes
    /// and no allocation.
    static func normalized(_ uri: String) -> String? {
        var text = uri
        return text.withUTF8 { bytes in
            guard bytes.first == UInt8(ascii: "/"), let end = firstChange(in: bytes) else { return nil }
            return normalize(bytes, pathEnd: end)
        }
    }

    /// Whether the path of `uri` (before its query or fragment) holds `%00`.
    static func hasEncodedNul(_ uri: String) -> Bool {
        var text = uri
        return text.withUTF8 { bytes in
            var index = 0
            while index + 2 < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "?"), UInt8(ascii: "#"): return false
                case UInt8(ascii: "%") where bytes[index + 1] == UInt8(ascii: "0") && bytes[index + 2] == UInt8(ascii: "0"): return true
                default: index += 1
                }
            }
            return false
        }
    }

    /// Where the path ends, if normalizing it changes it; nil for a normal path.
    private static func firstChange(in bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        var segmentStart = 1
        var changes = false
        var index = 1
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "?"), UInt8(ascii: "#"):
                if !changes && !isDotSegment(bytes, segmentStart, index) { return nil }
                return index
            case UInt8(ascii: "/"):
                if isDotSegment(bytes, segmentStart, index) || index == segmentStart { changes = true }
                segmentStart = index + 1
            case UInt8(ascii: "\\"):
                changes = true
            case UInt8(ascii: "%"):
                if !isEscape(bytes, at: index, end: bytes.count) || decodedUnreserved(bytes, at: index) != nil { changes = true }
            default:
                break
            }
            index += 1
        }
        return changes || isDotSegment(bytes, segmentStart, bytes.count) ? bytes.count : nil
    }

    /// The normalized path of `bytes[..<pathEnd]`, followed by the rest of `bytes` unchanged.
    private static func normalize(_ bytes: UnsafeBufferPointer<UInt8>, pathEnd: Int) -> String {
        // Decode first, so `%2E%2E` is a dot segment; `\` becomes a separator.
        var path: [UInt8] = []
        path.reserveCapacity(pathEnd)
        var index = 0
        while index < pathEnd {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%"), index + 2 < pathEnd, let decoded = decodedUnreserved(bytes, at: index) {
                path.append(decoded)
                index += 3
                continue
            }
            if byte == UInt8(ascii: "%"), !isEscape(bytes, at: index, end: pathEnd) {
                path.append(contentsOf: [UInt8(ascii: "%"), UInt8(ascii: "2"), UInt8(ascii: "5")])
                index += 1
                continue
            }
            path.append(byte == UInt8(ascii: "\\") ? UInt8(ascii: "/") : byte)
            index += 1
        }
        // Resolve `.` and `..`, drop empty segments (merged slashes).
        var segments: [Range<Int>] = []
        var endsInDirectory = false
        var start = 1
        for position in 1...path.count where position == path.count || path[position] == UInt8(ascii: "/") {
            let length = position - start
            let isDot = length == 1 && path[start] == UInt8(ascii: ".")
            let isDotDot = length == 2 && path[start] == UInt8(ascii: ".") && path[start + 1] == UInt8(ascii: ".")
            if isDotDot {
                _ = segments.popLast()
            } else if length > 0 && !isDot {
                segments.append(start..<position)
            }
            // RFC 3986 §5.2.4: `/a/.` and `/a/b/..` name the directory (`/a/`).
            endsInDirectory = length == 0 || isDot || isDotDot
            start = position + 1
        }
        var result: [UInt8] = []
        result.reserveCapacity(path.count + bytes.count - pathEnd + 1)
        for segment in segments {
            result.append(UInt8(ascii: "/"))
            result.append(contentsOf: path[segment])
        }
        if segments.isEmpty || endsInDirectory { result.append(UInt8(ascii: "/")) }
        result.append(contentsOf: bytes[pathEnd...])
        return String(decoding: result, as: UTF8.self)
    }

    /// Whether `bytes[start..<end]` is `.` or `..`, as sent or percent-encoded.
    private static func isDotSegment(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        var dots = 0
        var index = start
        while index < end {
            if bytes[index] == UInt8(ascii: ".") {
                index += 1
            } else if decodedUnreserved(bytes, at: index) == UInt8(ascii: ".") {
                index += 3
            } else {
                return false
            }
            dots += 1
        }
        return dots == 1 || dots == 2
    }

    /// The unreserved character (RFC 3986 §2.3) a `%HH` at `index` encodes, if it is one.
    private static func decodedUnreserved(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> UInt8? {
        guard index + 2 < bytes.count, bytes[index] == UInt8(ascii: "%"),
              let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2])
        else { return nil }
        let byte = high << 4 | low
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            return byte
        default:
            return nil
        }
    }

    /// Whether a `%` at `index` is followed by two hex digits before `end`.
    private static func isEscape(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int, end: Int) -> Bool {
        index + 2 < end && hexValue(bytes[index + 1]) != nil && hexValue(bytes[index + 2]) != nil
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
