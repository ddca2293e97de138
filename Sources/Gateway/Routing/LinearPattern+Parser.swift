/// The syntax side of ``LinearPattern``: the parser from pattern text to ``LinearPattern/Node``,
/// and the character classes it builds.
extension LinearPattern {
    struct Flags {
        var caseInsensitive = false
        var dotAll = false
    }

    struct Parser {
        let chars: [Unicode.Scalar]
        var index = 0
        /// Open groups around `index`: the parser and the compiler recurse per group.
        var depth = 0
        /// Deepest group nesting taken (deeper patterns go to `Regex`, which refuses them).
        static let maxDepth = 100

        init(_ chars: [Unicode.Scalar]) { self.chars = chars }

        var atEnd: Bool { index >= chars.count }
        func peek(_ offset: Int = 0) -> Unicode.Scalar? { index + offset < chars.count ? chars[index + offset] : nil }

        mutating func parseWhole() throws(Unsupported) -> Node {
            var flags = Flags()
            let node = try parseAlternation(&flags)
            guard atEnd else { throw Unsupported() }  // a `)` without its `(`
            return node
        }

        mutating func parseAlternation(_ flags: inout Flags) throws(Unsupported) -> Node {
            var branches = [try parseConcatenation(&flags)]
            while peek() == "|" {
                index += 1
                branches.append(try parseConcatenation(&flags))
            }
            return branches.count == 1 ? branches[0] : .alternate(branches)
        }

        mutating func parseConcatenation(_ flags: inout Flags) throws(Unsupported) -> Node {
            var items: [Node] = []
            while let c = peek(), c != "|", c != ")" {
                guard let atom = try parseAtom(&flags) else { continue }  // a flag group
                items.append(try parseQuantifiers(on: atom))
            }
            return items.isEmpty ? .empty : items.count == 1 ? items[0] : .concat(items)
        }

        /// The atom at `index`, or nil for a flag group such as `(?i)` (which changes `flags`).
        mutating func parseAtom(_ flags: inout Flags) throws(Unsupported) -> Node? {
            let c = chars[index]
            index += 1
            switch c {
            case "(":
                depth += 1
                defer { depth -= 1 }
                guard depth <= Self.maxDepth else { throw Unsupported() }
                var inner = flags
                if peek() == "?" {
                    index += 1
                    if peek() == "P", peek(1) == "<" {
                        index += 2
                        try skipGroupName()
                    } else if peek() == "<", let after = peek(1), after != "=", after != "!" {
                        index += 1
                        try skipGroupName()
                    } else if peek() == ":" {
                        index += 1
                    } else {
                        // Flags: `(?is)` for the rest of the enclosing group, `(?i:…)` for a group.
                        var set = inner
                        while let f = peek(), f != ")", f != ":" {
                            switch f {
                            case "i": set.caseInsensitive = true
                            case "s": set.dotAll = true
                            default: throw Unsupported()
                            }
                            index += 1
                        }
                        guard let end = peek() else { throw Unsupported() }
                        index += 1
                        if end == ")" {
                            flags = set
                            return nil
                        }
                        inner = set
                    }
                }
                let node = try parseAlternation(&inner)
                guard peek() == ")" else { throw Unsupported() }
                index += 1
                return .group(node)
            case ")", "*", "+", "?":
                throw Unsupported()
            case "{":
                // A `{` that starts no repetition stands for itself, as in RE2 (`a{,2}`, `{x}`).
                return try literal(c, flags)
            case ".": return .any(newlines: flags.dotAll)
            case "^": return .assert(.textStart)
            case "$": return .assert(.textEnd)
            case "[": return .set(try parseClass(flags))
            case "\\":
                switch try parseEscape(inClass: false) {
                case .scalar(let scalar): return try literal(scalar, flags)
                case .set(let set): return .set(set)
                case .assert(let assertion): return .assert(assertion)
                }
            default:
                return try literal(c, flags)
            }
        }

        mutating func skipGroupName() throws(Unsupported) {
            let start = index
            while let c = peek(), c != ">" {
                guard c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "_" else { throw Unsupported() }
                index += 1
            }
            guard peek() == ">", index > start else { throw Unsupported() }
            index += 1
        }

        func literal(_ scalar: Unicode.Scalar, _ flags: Flags) throws(Unsupported) -> Node {
            guard flags.caseInsensitive, scalar.properties.isAlphabetic else { return .scalar(scalar) }
            guard scalar.isASCII else { throw Unsupported() }  // Unicode case folding: not here
            var set = ScalarSet()
            set.add(scalar, caseInsensitive: true)
            return .set(set)
        }

        mutating func parseQuantifiers(on atom: Node) throws(Unsupported) -> Node {
            var node = atom
            while let c = peek() {
                var bounds: (Int, Int?)
                switch c {
                case "*": bounds = (0, nil); index += 1
                case "+": bounds = (1, nil); index += 1
                case "?": bounds = (0, 1); index += 1
                case "{":
                    guard let counted = try parseCount() else { return node }
                    bounds = counted
                default:
                    return node
                }
                if peek() == "?" {
                    index += 1  // lazy: the same set of whole matches
                } else if peek() == "+" {
                    throw Unsupported()  // possessive: not RE2
                }
                if case .repeated = node { throw Unsupported() }  // `a**`: RE2 refuses it
                node = .repeated(node, min: bounds.0, max: bounds.1)
            }
            return node
        }

        /// `{n}`, `{n,}` or `{n,m}` at `index`; nil (nothing read) when the brace starts no count
        /// (it is a literal then); throws for a count RE2 refuses (`{2,1}`, over 1000).
        mutating func parseCount() throws(Unsupported) -> (Int, Int?)? {
            var j = index + 1
            func number() -> Int? {
                let start = j
                var value = 0
                while j < chars.count, ("0"..."9").contains(chars[j]) {
                    value = min(value * 10 + Int(chars[j].value) - 48, LinearPattern.maxRepeat + 1)
                    j += 1
                }
                return j > start ? value : nil
            }
            guard let low = number() else { return nil }
            var high: Int? = low
            if j < chars.count, chars[j] == "," {
                j += 1
                high = number()
            }
            guard j < chars.count, chars[j] == "}" else { return nil }
            guard low <= LinearPattern.maxRepeat, (high ?? 0) <= LinearPattern.maxRepeat, high.map({ $0 >= low }) ?? true else {
                throw Unsupported()
            }
            index = j + 1
            return (low, high)
        }

        enum Escape {
            case scalar(Unicode.Scalar)
            case set(ScalarSet)
            case assert(Assertion)
        }

        /// The escape after a `\` (at `index`).
        mutating func parseEscape(inClass: Bool) throws(Unsupported) -> Escape {
            guard let c = peek() else { throw Unsupported() }
            index += 1
            switch c {
            case "d", "D", "w", "W", "s", "S":
                var set = ScalarSet()
                switch c {
                case "d", "D": set.add("0", "9")
                case "w", "W": set.add("0", "9"); set.add("A", "Z"); set.add("a", "z"); set.add("_", "_")
                default: for s in ["\t", "\n", "\u{0C}", "\r", " "] as [Unicode.Scalar] { set.add(s, s) }
                }
                set.negated = c.properties.isUppercase
                set.finish()
                return .set(set)
            case "n": return .scalar("\n")
            case "r": return .scalar("\r")
            case "t": return .scalar("\t")
            case "f": return .scalar("\u{0C}")
            case "v": return .scalar("\u{0B}")
            case "x":
                var digits = ""
                if peek() == "{" {
                    index += 1
                    while let d = peek(), d != "}" { digits.unicodeScalars.append(d); index += 1 }
                    guard peek() == "}" else { throw Unsupported() }
                    index += 1
                } else {
                    for _ in 0..<2 {
                        guard let d = peek() else { throw Unsupported() }
                        digits.unicodeScalars.append(d)
                        index += 1
                    }
                }
                guard !digits.isEmpty, digits.utf8.count <= 8, digits.unicodeScalars.allSatisfy(\.properties.isASCIIHexDigit),
                      let value = UInt32(digits, radix: 16),
                      let scalar = Unicode.Scalar(value) else { throw Unsupported() }
                return .scalar(scalar)
            case "A" where !inClass: return .assert(.textStart)
            case "z" where !inClass: return .assert(.textEnd)
            case "b" where !inClass: return .assert(.wordBoundary)
            case "B" where !inClass: return .assert(.notWordBoundary)
            default:
                // Escaped punctuation stands for itself; escaped letters and digits other than
                // the ones above mean something this engine does not do.
                guard c.isASCII, !c.properties.isAlphabetic, !("0"..."9").contains(c) else { throw Unsupported() }
                return .scalar(c)
            }
        }

        /// A class after its `[`.
        mutating func parseClass(_ flags: Flags) throws(Unsupported) -> ScalarSet {
            var set = ScalarSet()
            if peek() == "^" {
                set.negated = true
                index += 1
            }
            var first = true
            while true {
                guard let c = peek() else { throw Unsupported() }
                if c == "]" && !first { index += 1; break }
                first = false
                if c == "[" {
                    guard peek(1) == ":" else { throw Unsupported() }  // nested classes: not RE2
                    try parsePOSIXClass(into: &set)
                    continue
                }
                let low: Unicode.Scalar
                index += 1
                if c == "\\" {
                    switch try parseEscape(inClass: true) {
                    case .scalar(let scalar): low = scalar
                    case .set(let inner):
                        guard !inner.negated else { throw Unsupported() }  // `[^\D]`-style: keep it simple
                        set.ranges += inner.ranges
                        continue
                    case .assert: throw Unsupported()
                    }
                } else {
                    low = c
                }
                var high = low
                if peek() == "-", let after = peek(1), after != "]" {
                    index += 1
                    let h = chars[index]
                    index += 1
                    if h == "\\" {
                        guard case .scalar(let scalar) = try parseEscape(inClass: true) else { throw Unsupported() }
                        high = scalar
                    } else if h == "[" {
                        throw Unsupported()
                    } else {
                        high = h
                    }
                    guard low <= high else { throw Unsupported() }
                }
                set.add(low, high)
            }
            if flags.caseInsensitive { try set.foldASCIICase() }
            set.finish()
            return set
        }

        /// `[:name:]` at `index` (inside a class).
        mutating func parsePOSIXClass(into set: inout ScalarSet) throws(Unsupported) {
            index += 2
            var name = ""
            while let c = peek(), c != ":" { name.unicodeScalars.append(c); index += 1 }
            guard peek() == ":", peek(1) == "]" else { throw Unsupported() }
            index += 2
            switch name {
            case "alpha": set.add("A", "Z"); set.add("a", "z")
            case "digit": set.add("0", "9")
            case "alnum": set.add("0", "9"); set.add("A", "Z"); set.add("a", "z")
            case "upper": set.add("A", "Z")
            case "lower": set.add("a", "z")
            case "xdigit": set.add("0", "9"); set.add("A", "F"); set.add("a", "f")
            case "word": set.add("0", "9"); set.add("A", "Z"); set.add("a", "z"); set.add("_", "_")
            case "space": for s in ["\t", "\n", "\u{0B}", "\u{0C}", "\r", " "] as [Unicode.Scalar] { set.add(s, s) }
            case "punct": set.add("!", "/"); set.add(":", "@"); set.add("[", "`"); set.add("{", "~")
            default: throw Unsupported()
            }
        }
    }
}

/// Ranges of Unicode scalars, possibly negated.
struct ScalarSet: Sendable {
    var ranges: [ClosedRange<UInt32>] = []
    var negated = false

    /// ASCII members, one bit each (filled by ``finish()``).
    private var ascii: (UInt64, UInt64) = (0, 0)

    mutating func add(_ low: Unicode.Scalar, _ high: Unicode.Scalar) {
        ranges.append(low.value...high.value)
    }

    /// Adds `scalar`, and its other case when `caseInsensitive` and it is an ASCII letter.
    mutating func add(_ scalar: Unicode.Scalar, caseInsensitive: Bool) {
        add(scalar, scalar)
        if caseInsensitive { try? foldASCIICase() }
        finish()
    }

    /// Adds the other case of every ASCII letter in the set; throws when the set holds
    /// anything beyond ASCII (Unicode case folding is not done here).
    mutating func foldASCIICase() throws(LinearPattern.Unsupported) {
        var folded: [ClosedRange<UInt32>] = []
        for range in ranges {
            guard range.upperBound < 128 else { throw LinearPattern.Unsupported() }
            for (letters, shift) in [(UInt32(65)...90, Int64(32)), (UInt32(97)...122, Int64(-32))] where range.overlaps(letters) {
                let low = max(range.lowerBound, letters.lowerBound), high = min(range.upperBound, letters.upperBound)
                folded.append(UInt32(Int64(low) + shift)...UInt32(Int64(high) + shift))
            }
        }
        ranges += folded
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
            var low = 0, high = ranges.count
            while low < high {
                let middle = (low + high) / 2
                if ranges[middle].upperBound < value { low = middle + 1 } else { high = middle }
            }
            found = low < ranges.count && ranges[low].contains(value)
        }
        return found != negated
    }
}
