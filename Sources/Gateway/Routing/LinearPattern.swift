/// A regular expression in RE2's syntax, matched by simulating its automaton (one pass over the
/// value, every alive state at once): time proportional to the value's length times the
/// pattern's size, whatever the pattern, as RE2 promises Istio's users.
///
/// The syntax: literals, escaped punctuation, `\Q…\E`, and `{` where it starts no repetition;
/// `.` (not `\n`, unless `(?s)`); classes `[a-z]`, `[^…]`, `[]a]` with escapes, `\p{…}` and POSIX
/// `[:alpha:]` / `[:^alpha:]` names (ASCII, as in RE2); `\d \D \w \W \s \S` (ASCII, as in RE2);
/// Unicode general categories `\pL`, `\p{Lu}`, `\p{^L}`, `\PL` and `\p{Any}`; `\a \n \r \t \f \v`,
/// octal `\0`, `\123`, hexadecimal `\xHH`, `\x{H…}`; anchors `^ $` (text start and end, or line
/// start and end under `(?m)`), `\A \z`, and `\b \B` (ASCII word boundaries, as in RE2); groups
/// `(…)`, `(?:…)`, `(?P<name>…)`, `(?<name>…)`, nested at most ``Parser/maxDepth`` deep;
/// alternation; `* + ? {n} {n,} {n,m}` (at most 1000) and their lazy forms (the same for a whole
/// match); flags `i m s U`, set with `(?im)`, cleared with `(?-s)`, or for a group `(?i:…)`.
/// `(?i)` matches every scalar of a case orbit (from Unicode's simple case mappings, as RE2's
/// simple case folding does: `k` also matches U+212A KELVIN SIGN).
///
/// What RE2 refuses is refused with a ``SyntaxError`` saying what and where: backreferences,
/// lookaround, atomic groups, possessive quantifiers, recursion. So are script classes
/// (`\p{Greek}`), which RE2 has and the standard library's Unicode data does not.
///
/// Classes are sorted and merged when parsed: a character costs a bit test (ASCII) or a
/// binary search, however the class was written.
struct LinearPattern: Sendable {
    /// What is wrong with a pattern, and where; or that it compiles to more than
    /// ``maxInstructions``.
    typealias SyntaxError = PatternError

    /// Most instructions a pattern compiles to (counted repetitions are unrolled): bounds the
    /// work per matched character, so an 8 KiB value costs at most about 8 million steps.
    static let maxInstructions = 1_000
    /// Largest count in `{n,m}` (RE2's limit).
    static let maxRepeat = 1_000

    private let program: [Instruction]
    private let sets: [ScalarSet]

    init(_ pattern: String) throws(SyntaxError) {
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
    enum Assertion: Sendable {
        /// `^`, `\A`.
        case textStart
        /// `$`, `\z`.
        case textEnd
        /// `^` under `(?m)`: the text's start or after a `\n`.
        case lineStart
        /// `$` under `(?m)`: the text's end or before a `\n`.
        case lineEnd
        /// `\b`: a word character (ASCII `[0-9A-Za-z_]`, as in RE2) on one side only.
        case wordBoundary
        /// `\B`.
        case notWordBoundary

        func holds(between previous: Unicode.Scalar?, and following: Unicode.Scalar?) -> Bool {
            switch self {
            case .textStart: return previous == nil
            case .textEnd: return following == nil
            case .lineStart: return previous == nil || previous == "\n"
            case .lineEnd: return following == nil || following == "\n"
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

    /// A parsed pattern (see LinearPattern+Parser.swift).
    indirect enum Node {
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

        mutating func append(_ instruction: Instruction) throws(SyntaxError) {
            guard program.count < LinearPattern.maxInstructions else {
                throw SyntaxError(
                    message: "the pattern is too large: it compiles to more than \(LinearPattern.maxInstructions) states (unroll fewer counted repetitions)")
            }
            program.append(instruction)
        }

        mutating func emit(_ node: Node) throws(SyntaxError) {
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
