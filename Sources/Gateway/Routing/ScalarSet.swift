/// Ranges of Unicode scalars, possibly negated.
struct ScalarSet: Sendable {
    var ranges: [ClosedRange<UInt32>] = []
    var negated = false

    /// ASCII members, one bit each (filled by ``finish()``).
    private var ascii: (UInt64, UInt64) = (0, 0)

    init() {}

    /// A finished set of `ranges` (in any order), negated or not.
    init(ranges: [ClosedRange<UInt32>], negated: Bool = false) {
        self.ranges = ranges
        self.negated = negated
        finish()
    }

    /// RE2's ASCII classes by POSIX name (`digit` is also `\d`, `word` is `\w`), or nil.
    static func asciiClass(_ name: String) -> [ClosedRange<UInt32>]? {
        switch name {
        case "alpha": [65...90, 97...122]
        case "digit": [48...57]
        case "alnum": [48...57, 65...90, 97...122]
        case "upper": [65...90]
        case "lower": [97...122]
        case "xdigit": [48...57, 65...70, 97...102]
        case "word": [48...57, 65...90, 95...95, 97...122]
        case "space": [9...13, 32...32]
        case "blank": [9...9, 32...32]
        case "punct": [33...47, 58...64, 91...96, 123...126]
        case "ascii": [0...127]
        case "cntrl": [0...31, 127...127]
        case "graph": [33...126]
        case "print": [32...126]
        default: nil
        }
    }

    /// `\s`: `[\t\n\f\r ]`, without the `\v` of `[:space:]` (as in RE2).
    static let perlSpace: [ClosedRange<UInt32>] = [9...10, 12...13, 32...32]

    mutating func add(_ low: Unicode.Scalar, _ high: Unicode.Scalar) {
        ranges.append(low.value...high.value)
    }

    /// Adds every case of the scalars the set holds (their simple case-folding orbits, as RE2's
    /// `(?i)` does), and finishes it. Needs a finished set.
    mutating func foldCase() {
        var added: [ClosedRange<UInt32>] = []
        for (scalar, orbit) in UnicodeTables.orbits where rangesContain(scalar) {
            for member in orbit { added.append(member...member) }
        }
        ranges += added
        finish()
    }

    /// The ranges of the scalars the set matches: the complement of `ranges` when negated.
    /// Needs a finished set.
    var members: [ClosedRange<UInt32>] {
        guard negated else { return ranges }
        var complement: [ClosedRange<UInt32>] = []
        var next: UInt32 = 0
        for range in ranges {
            if range.lowerBound > next { complement.append(next...(range.lowerBound - 1)) }
            next = range.upperBound + 1
        }
        if next <= 0x10FFFF { complement.append(next...0x10FFFF) }
        return complement
    }

    /// Sorts and merges the ranges and fills the ASCII bits: a lookup then costs a bit test, or
    /// a binary search beyond ASCII, however the class was written.
    mutating func finish() {
        ranges.sort { $0.lowerBound < $1.lowerBound }
        var merged: [ClosedRange<UInt32>] = []
        for range in ranges {
            if let last = merged.last, range.lowerBound <= last.upperBound &+ 1 {
                merged[merged.count - 1] = last.lowerBound...max(last.upperBound, range.upperBound)
            } else {
                merged.append(range)
            }
        }
        ranges = merged
        ascii = (0, 0)
        for range in ranges where range.lowerBound < 128 {
            for value in range.lowerBound...min(range.upperBound, 127) {
                if value < 64 { ascii.0 |= 1 << UInt64(value) } else { ascii.1 |= 1 << UInt64(value - 64) }
            }
        }
    }

    func contains(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        let found: Bool
        if value < 64 {
            found = ascii.0 & (1 << UInt64(value)) != 0
        } else if value < 128 {
            found = ascii.1 & (1 << UInt64(value - 64)) != 0
        } else {
            found = rangesContain(value)
        }
        return found != negated
    }

    /// Whether `ranges` (sorted and merged) hold `value`: a binary search.
    private func rangesContain(_ value: UInt32) -> Bool {
        var low = 0, high = ranges.count
        while low < high {
            let middle = (low + high) / 2
            if ranges[middle].upperBound < value { low = middle + 1 } else { high = middle }
        }
        return low < ranges.count && ranges[low].contains(value)
    }
}
