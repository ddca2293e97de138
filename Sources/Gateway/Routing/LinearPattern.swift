/// A regular expression in the common part of RE2's syntax, matched by simulating its automaton
/// (one pass over the value, every alive state at once): time proportional to the value's
/// length times the pattern's size, whatever the pattern, as RE2 promises Istio's users.
///
/// The syntax covered: literals and escaped punctuation, `{` where it starts no repetition;
/// `.` (not `\n`, unless `(?s)`); classes `[a-z]`, `[^…]`, `[]a]`, with `\d \w \s`, POSIX
/// `[:alpha:]`-style names and the escapes below; `\d \D \w \W \s \S` (ASCII, as in RE2);
/// `\n \r \t \f \v`, `\xHH`, `\x{H…}`; anchors `^ $ \A \z` (text start and end, as in RE2
/// without `(?m)`) and `\b \B` (ASCII word boundaries, as in RE2); groups `(…)`, `(?:…)`, `(?P<name>…)`, `(?<name>…)`, nested at most
/// ``Parser/maxDepth`` deep; alternation; `* + ? {n} {n,} {n,m}` (at most 1000) and their lazy
/// forms (the same for a whole match); flags `(?i)`, `(?s)` and `(?i:…)`-style groups (case
/// folding for ASCII only). Anything else — `\p{…}`, `\Q…\E`, lookaround, backreferences,
/// possessive quantifiers, `(?m)`, non-ASCII under `(?i)` — throws ``Unsupported``, and
/// ``MatchPattern`` falls back to Swift's `Regex` with its guards. Malformed patterns throw
/// ``Unsupported`` too: `Regex` then gives the error.
///
/// Classes are sorted and merged when parsed: a character costs a bit test (ASCII) or a
/// binary search, however the class was written.
struct LinearPattern: Sendable {
    struct Unsupported: Error {
        /// The pattern is in the syntax covered but compiles to more than ``maxInstructions``.
        var tooLarge = false
    }

    /// Most instructions a pattern compiles to (counted repetitions are unrolled): bounds the
    /// work per matched character, so an 8 KiB value costs at most about 8 million steps.
    static let maxInstructions = 1_000
    /// Largest count in `{n,m}` (RE2's limit).
    static let maxRepeat = 1_000

    private let program: [Instruction]
    private let sets: [ScalarSet]

    init(_ pattern: String) throws(Unsupported) {
        var parser = Parser(Array(pattern.unicodeScalars))
        let node = try parser.parseWhole()
        var compiler = Compiler()
        try compiler.emit(node)
        compiler.program.append(.match)
        program = compiler.program
        sets = compiler.sets
    }

    /// Whether the whole of `value` matches.
    func matchesWhole(_ value: Substring) -> Bool {
        let scalars = value.unicodeScalars
        let count = program.count
        var current = ThreadList(capacity: count)
        var next = ThreadList(capacity: count)
        var stack: [Int] = []
        var index = scalars.startIndex
        add(0, to: &current, between: nil, and: index < scalars.endIndex ? scalars[index] : nil, stack: &stack)
        while index < scalars.endIndex {
            if current.pcs.isEmpty { return false }
            let scalar = scalars[index]
            scalars.formIndex(after: &index)
            let following = index < scalars.endIndex ? scalars[index] : nil
            next.clear()
            for pc in current.pcs {
                let advances: Bool
                switch program[pc] {
                case .scalar(let expected): advances = scalar == expected
                case .set(let index): advances = sets[index].contains(scalar)
                case .any(let newlines): advances = newlines || scalar != "\n"
                default: advances = false
                }
                if advances { add(pc + 1, to: &next, between: scalar, and: following, stack: &stack) }
            }
            swap(&current, &next)
        }
        return current.pcs.contains { if case .match = program[$0] { true } else { false } }
    }

    /// Adds `pc` and every state reachable from it without reading: splits, jumps, and the
    /// assertions that hold between `previous` and `following` (nil: the value's start or end).
    private func add(
        _ pc: Int, to list: inout ThreadList, between previous: Unicode.Scalar?, and following: Unicode.Scalar?,
        stack: inout [Int]
    ) {
        stack.append(pc)
        while let pc = stack.popLast() {
            guard list.insert(pc) else { continue }
            switch program[pc] {
            case .jump(let target): stack.append(target)
            case .split(let first, let second):
                stack.append(second)
                stack.append(first)
            case .assert(let assertion):
                if assertion.holds(between: previous, and: following) { stack.append(pc + 1) }
            case .scalar, .set, .any, .match: break
            }
        }
    }

    /// A condition on the place between two characters, read without consuming any.
    fileprivate enum Assertion: Sendable {
        /// `^`, `\A`.
        case textStart
        /// `$`, `\z`.
        case textEnd
        /// `\b`: a word character (ASCII `[0-9A-Za-z_]`, as in RE2) on one side only.
        case wordBoundary
        /// `\B`.
        case notWordBoundary

        func holds(between previous: Unicode.Scalar?, and following: Unicode.Scalar?) -> Bool {
            switch self {
            case .textStart: return previous == nil
            case .textEnd: return following == nil
            case .wordBoundary: return Self.isWord(previous) != Self.isWord(following)
            case .notWordBoundary: return Self.isWord(previous) == Self.isWord(following)
            }
        }

        static func isWord(_ scalar: Unicode.Scalar?) -> Bool {
            guard let scalar, scalar.isASCII else { return false }
            let value = scalar.value
            return (48...57).contains(value) || (65...90).contains(value) || (97...122).contains(value) || value == 95
        }
    }

    private enum Instruction: Sendable {
        case scalar(Unicode.Scalar)
        case set(Int)
        case any(newlines: Bool)
        case split(Int, Int)
        case jump(Int)
        case assert(Assertion)
        case match
    }

    /// A set of program counters with insertion order, cleared in O(1) by a generation count.
    private struct ThreadList {
        var pcs: [Int] = []
        var marks: [UInt32]
        var generation: UInt32 = 1

        init(capacity: Int) {
            marks = Array(repeating: 0, count: capacity)
            pcs.reserveCapacity(capacity)
        }

        mutating func clear() {
            pcs.removeAll(keepingCapacity: true)
            generation &+= 1
            if generation == 0 {
                for index in marks.indices { marks[index] = 0 }
                generation = 1
            }
        }

        /// Inserts `pc`; false when it was there already.
        mutating func insert(_ pc: Int) -> Bool {
            if marks[pc] == generation { return false }
            marks[pc] = generation
            pcs.append(pc)
            return true
        }
    }

    // MARK: Syntax

    fileprivate indirect enum Node {
        case empty
        case scalar(Unicode.Scalar)
        case set(ScalarSet)
        case any(newlines: Bool)
        case assert(Assertion)
        case concat([Node])
        case alternate([Node])
        case group(Node)
        case repeated(Node, min: Int, max: Int?)
    }

    fileprivate struct Flags {
        var caseInsensitive = false
        var dotAll = false
    }

    private struct Parser {
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

    // MARK: Program

    private struct Compiler {
        var program: [Instruction] = []
        var sets: [ScalarSet] = []

        /// Whether `node` compiles to no instruction at all.
        static func emitsNothing(_ node: Node) -> Bool {
            switch node {
            case .empty: true
            case .scalar, .set, .any, .assert, .alternate: false
            case .concat(let items): items.allSatisfy(emitsNothing)
            case .group(let inner): emitsNothing(inner)
            case .repeated(let inner, _, let high): high == 0 || emitsNothing(inner)
            }
        }

        mutating func append(_ instruction: Instruction) throws(Unsupported) {
            guard program.count < LinearPattern.maxInstructions else { throw Unsupported(tooLarge: true) }
            program.append(instruction)
        }

        mutating func emit(_ node: Node) throws(Unsupported) {
            switch node {
            case .empty: break
            case .scalar(let scalar): try append(.scalar(scalar))
            case .set(let set):
                sets.append(set)
                try append(.set(sets.count - 1))
            case .any(let newlines): try append(.any(newlines: newlines))
            case .assert(let assertion): try append(.assert(assertion))
            case .concat(let items): for item in items { try emit(item) }
            case .group(let inner): try emit(inner)
            case .alternate(let branches):
                var jumps: [Int] = []
                for (offset, branch) in branches.enumerated() {
                    if offset < branches.count - 1 {
                        let split = program.count
                        try append(.split(split + 1, 0))
                        try emit(branch)
                        jumps.append(program.count)
                        try append(.jump(0))
                        program[split] = .split(split + 1, program.count)
                    } else {
                        try emit(branch)
                    }
                }
                for jump in jumps { program[jump] = .jump(program.count) }
            case .repeated(let body, let low, let high):
                // A body that compiles to nothing (`()`, `x{0}`) is left out: unrolled, it would
                // loop up to 1000 times per level of nesting without reaching the instruction
                // limit. Any other copy adds an instruction, so the limit bounds the unrolling.
                if Self.emitsNothing(body) { break }
                for _ in 0..<low { try emit(body) }
                if let high {
                    var splits: [Int] = []
                    for _ in low..<high {
                        splits.append(program.count)
                        try append(.split(program.count + 1, 0))
                        try emit(body)
                    }
                    for split in splits { program[split] = .split(split + 1, program.count) }
                } else {
                    let loop = program.count
                    try append(.split(loop + 1, 0))
                    try emit(body)
                    try append(.jump(loop))
                    program[loop] = .split(loop + 1, program.count)
                }
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
