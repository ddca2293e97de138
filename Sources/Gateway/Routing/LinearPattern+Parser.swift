/// The syntax side of ``LinearPattern``: the parser from pattern text to ``LinearPattern/Node``,
/// and the character classes it builds.
extension LinearPattern {
    struct Flags {
        var caseInsensitive = false
        var dotAll = false
        var multiLine = false
    }

    struct Parser {
        let chars: [Unicode.Scalar]
        var index = 0
        /// Open groups around `index`: the parser and the compiler recurse per group.
        var depth = 0
        /// Deepest group nesting taken.
        static let maxDepth = 100

        init(_ chars: [Unicode.Scalar]) { self.chars = chars }

        var atEnd: Bool { index >= chars.count }
        func peek(_ offset: Int = 0) -> Unicode.Scalar? { index + offset < chars.count ? chars[index + offset] : nil }

        /// The error for what is wrong at scalar offset `at` (by default the one just read).
        func error(_ what: String, at: Int? = nil) -> SyntaxError {
            SyntaxError(message: "\(what) (at character \(min(at ?? index - 1, chars.count - 1) + 1))")
        }

        mutating func parseWhole() throws(SyntaxError) -> Node {
            var flags = Flags()
            let node = try parseAlternation(&flags)
            guard atEnd else { throw error("unmatched )", at: index) }
            return node
        }

        mutating func parseAlternation(_ flags: inout Flags) throws(SyntaxError) -> Node {
            var branches = [try parseConcatenation(&flags)]
            while peek() == "|" {
                index += 1
                branches.append(try parseConcatenation(&flags))
            }
            return branches.count == 1 ? branches[0] : .alternate(branches)
        }

        mutating func parseConcatenation(_ flags: inout Flags) throws(SyntaxError) -> Node {
            var items: [Node] = []
            while let c = peek(), c != "|", c != ")" {
                if c == "\\", peek(1) == "Q" {
                    // `\Q…\E`: literal text; a quantifier after it repeats its last character.
                    index += 2
                    var quoted: [Node] = []
                    while let q = peek(), !(q == "\\" && peek(1) == "E") {
                        quoted.append(literal(q, flags))
                        index += 1
                    }
                    if !atEnd { index += 2 }
                    guard let last = quoted.popLast() else { continue }
                    items += quoted
                    items.append(try parseQuantifiers(on: last))
                    continue
                }
                guard let atom = try parseAtom(&flags) else { continue }  // a flag group
                items.append(try parseQuantifiers(on: atom))
            }
            return items.isEmpty ? .empty : items.count == 1 ? items[0] : .concat(items)
        }

        /// The atom at `index`, or nil for a flag group such as `(?i)` (which changes `flags`).
        mutating func parseAtom(_ flags: inout Flags) throws(SyntaxError) -> Node? {
            let c = chars[index]
            index += 1
            switch c {
            case "(":
                let open = index - 1
                depth += 1
                defer { depth -= 1 }
                guard depth <= Self.maxDepth else { throw error("groups nested more than \(Self.maxDepth) deep") }
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
                    } else if let construct = Self.perlOnlyGroup(peek(), peek(1)) {
                        throw error("\(construct) is not RE2 syntax (RE2 matches in linear time and has no such groups)", at: open)
                    } else {
                        // Flags: `(?is)` for the rest of the enclosing group, `(?i:…)` for a
                        // group; `-` turns the following ones off.
                        var set = inner
                        var on = true, any = false
                        while let f = peek(), f != ")", f != ":" {
                            switch f {
                            case "i": set.caseInsensitive = on
                            case "s": set.dotAll = on
                            case "m": set.multiLine = on
                            case "U": break  // ungreedy: the same set of whole matches
                            case "-" where on: on = false; any = false; index += 1; continue
                            default: throw error("unknown flag \(f.escaped(asASCII: true)) in a flag group (RE2 has i, m, s and U)", at: index)
                            }
                            any = true
                            index += 1
                        }
                        guard let end = peek() else { throw error("missing ) after a flag group", at: open) }
                        guard any else { throw error("empty flag group", at: open) }
                        index += 1
                        if end == ")" {
                            flags = set
                            return nil
                        }
                        inner = set
                    }
                }
                let node = try parseAlternation(&inner)
                guard peek() == ")" else { throw error("missing )", at: open) }
                index += 1
                return .group(node)
            case ")":
                throw error("unmatched )")
            case "*", "+", "?":
                throw error("missing argument to repetition operator \(c)")
            case "{":
                // A `{` that starts no repetition stands for itself, as in RE2 (`a{,2}`, `{x}`).
                let brace = index - 1
                index = brace
                if try parseCount() != nil { throw error("missing argument to repetition operator {", at: brace) }
                index = brace + 1
                return literal(c, flags)
            case ".": return .any(newlines: flags.dotAll)
            case "^": return .assert(flags.multiLine ? .lineStart : .textStart)
            case "$": return .assert(flags.multiLine ? .lineEnd : .textEnd)
            case "[": return .set(try parseClass(flags))
            case "\\":
                switch try parseEscape(inClass: false) {
                case .scalar(let scalar): return literal(scalar, flags)
                case .set(var set):
                    if flags.caseInsensitive { set.foldCase() }
                    return .set(set)
                case .assert(let assertion): return .assert(assertion)
                }
            default:
                return literal(c, flags)
            }
        }

        /// The Perl group syntax RE2 refuses, named for the error, or nil.
        static func perlOnlyGroup(_ first: Unicode.Scalar?, _ second: Unicode.Scalar?) -> String? {
            switch (first, second) {
            case ("="?, _): "lookahead (?=…)"
            case ("!"?, _): "negative lookahead (?!…)"
            case ("<"?, "="?): "lookbehind (?<=…)"
            case ("<"?, "!"?): "negative lookbehind (?<!…)"
            case (">"?, _): "an atomic group (?>…)"
            case ("P"?, "="?): "a backreference (?P=…)"
            case ("P"?, ">"?), ("R"?, _), ("&"?, _), ("+"?, _): "recursion"
            case ("|"?, _): "a branch reset group (?|…)"
            case ("#"?, _): "a comment group (?#…)"
            case ("("?, _): "a conditional group (?(…)…)"
            case (let digit?, _) where ("0"..."9").contains(digit): "recursion"
            default: nil
            }
        }

        mutating func skipGroupName() throws(SyntaxError) {
            let start = index
            while let c = peek(), c != ">" {
                guard c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "_" else {
                    throw error("invalid character in a group name", at: index)
                }
                index += 1
            }
            guard peek() == ">", index > start else { throw error("invalid group name", at: start) }
            index += 1
        }

        /// A literal, matched in every case of its orbit under `(?i)`.
        func literal(_ scalar: Unicode.Scalar, _ flags: Flags) -> Node {
            guard flags.caseInsensitive, let orbit = UnicodeTables.orbits[scalar.value] else { return .scalar(scalar) }
            return .set(ScalarSet(ranges: orbit.map { $0...$0 }))
        }

        mutating func parseQuantifiers(on atom: Node) throws(SyntaxError) -> Node {
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
                    throw error("a possessive quantifier is not RE2 syntax", at: index)
                }
                if case .repeated = node { throw error("bad repetition operator (a repeated repetition, as in a**)") }
                node = .repeated(node, min: bounds.0, max: bounds.1)
            }
            return node
        }

        /// `{n}`, `{n,}` or `{n,m}` at `index`; nil (nothing read) when the brace starts no count
        /// (it is a literal then); throws for a count RE2 refuses (`{2,1}`, over 1000).
        mutating func parseCount() throws(SyntaxError) -> (Int, Int?)? {
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
            guard low <= LinearPattern.maxRepeat, (high ?? 0) <= LinearPattern.maxRepeat else {
                throw error("a repetition count over \(LinearPattern.maxRepeat)", at: index)
            }
            guard high.map({ $0 >= low }) ?? true else { throw error("a repetition range whose maximum is below its minimum", at: index) }
            index = j + 1
            return (low, high)
        }

        enum Escape {
            case scalar(Unicode.Scalar)
            case set(ScalarSet)
            case assert(Assertion)
        }

        /// The escape after a `\` (at `index`).
        mutating func parseEscape(inClass: Bool) throws(SyntaxError) -> Escape {
            let backslash = index - 1
            guard let c = peek() else { throw error("trailing \\", at: backslash) }
            index += 1
            switch c {
            case "d", "D", "w", "W", "s", "S":
                let ranges = switch c {
                case "d", "D": ScalarSet.asciiClass("digit")!
                case "w", "W": ScalarSet.asciiClass("word")!
                default: ScalarSet.perlSpace
                }
                return .set(ScalarSet(ranges: ranges, negated: c.properties.isUppercase))
            case "p", "P":
                return .set(try parseProperty(negated: c == "P", backslash: backslash))
            case "a": return .scalar("\u{07}")
            case "n": return .scalar("\n")
            case "r": return .scalar("\r")
            case "t": return .scalar("\t")
            case "f": return .scalar("\u{0C}")
            case "v": return .scalar("\u{0B}")
            case "0"..."7":
                // Octal, as RE2 reads it: `\0`, or up to three digits; a lone `\1`…`\7` is a
                // backreference.
                var value = c.value - 48
                var digits = 1
                while digits < 3, let d = peek(), ("0"..."7").contains(d) {
                    value = value * 8 + d.value - 48
                    digits += 1
                    index += 1
                }
                guard c == "0" || digits > 1 else {
                    throw error("backreferences (\\\(c)) are not RE2 syntax (RE2 matches in linear time)", at: backslash)
                }
                return .scalar(Unicode.Scalar(value)!)
            case "8", "9":
                throw error("backreferences (\\\(c)) are not RE2 syntax (RE2 matches in linear time)", at: backslash)
            case "x":
                var digits = ""
                if peek() == "{" {
                    index += 1
                    while let d = peek(), d != "}" { digits.unicodeScalars.append(d); index += 1 }
                    guard peek() == "}" else { throw error("missing } in \\x{…}", at: backslash) }
                    index += 1
                } else {
                    for _ in 0..<2 {
                        guard let d = peek() else { throw error("\\x needs two hexadecimal digits", at: backslash) }
                        digits.unicodeScalars.append(d)
                        index += 1
                    }
                }
                guard !digits.isEmpty, digits.utf8.count <= 8, digits.unicodeScalars.allSatisfy(\.properties.isASCIIHexDigit),
                      let value = UInt32(digits, radix: 16),
                      let scalar = Unicode.Scalar(value) else { throw error("invalid \\x escape (hexadecimal code point of a Unicode scalar)", at: backslash) }
                return .scalar(scalar)
            case "A" where !inClass: return .assert(.textStart)
            case "z" where !inClass: return .assert(.textEnd)
            case "b" where !inClass: return .assert(.wordBoundary)
            case "B" where !inClass: return .assert(.notWordBoundary)
            case "k", "g":
                throw error("backreferences (\\\(c)) are not RE2 syntax (RE2 matches in linear time)", at: backslash)
            case "C":
                throw error("\\C (any byte) is not supported: values are matched by code point", at: backslash)
            case "Z":
                throw error("\\Z is not RE2 syntax; \\z is the end of the text", at: backslash)
            default:
                // Escaped punctuation stands for itself.
                guard c.isASCII, !c.properties.isAlphabetic, !("0"..."9").contains(c) else {
                    throw error("invalid escape sequence \\\(c.escaped(asASCII: true))", at: backslash)
                }
                return .scalar(c)
            }
        }

        /// `\pL`, `\p{Lu}`, `\p{^L}` (and `\P…`, its complement) after the `p`: RE2's general
        /// categories and `Any`. Scripts (`\p{Greek}`) are not in the standard library's data.
        mutating func parseProperty(negated: Bool, backslash: Int) throws(SyntaxError) -> ScalarSet {
            var name = ""
            var negated = negated
            if peek() == "{" {
                index += 1
                if peek() == "^" { negated.toggle(); index += 1 }
                while let c = peek(), c != "}" { name.unicodeScalars.append(c); index += 1 }
                guard peek() == "}" else { throw error("missing } in \\p{…}", at: backslash) }
                index += 1
            } else if let c = peek() {
                name.unicodeScalars.append(c)
                index += 1
            }
            guard let ranges = UnicodeTables.categories[name] else {
                throw error(
                    "unknown or unsupported Unicode class \\p{\(name)}: use a general category (L, Lu, Ll, Lt, Lm, Lo, M, N, Nd, P, S, Z, C, …) "
                        + "or Any; script classes are not supported, write their ranges instead", at: backslash)
            }
            return ScalarSet(ranges: ranges, negated: negated)
        }

        /// A class after its `[`.
        mutating func parseClass(_ flags: Flags) throws(SyntaxError) -> ScalarSet {
            let open = index - 1
            var set = ScalarSet()
            if peek() == "^" {
                set.negated = true
                index += 1
            }
            var first = true
            while true {
                guard let c = peek() else { throw error("missing ] to close a class", at: open) }
                if c == "]" && !first { index += 1; break }
                first = false
                if c == "[", peek(1) == ":" {
                    try parsePOSIXClass(into: &set)
                    continue
                }
                let low: Unicode.Scalar
                index += 1
                if c == "\\" {
                    switch try parseEscape(inClass: true) {
                    case .scalar(let scalar): low = scalar
                    case .set(let inner):
                        set.ranges += inner.members
                        continue
                    case .assert: throw error("an assertion inside a class")
                    }
                } else {
                    low = c
                }
                var high = low
                if peek() == "-", let after = peek(1), after != "]" {
                    let dash = index
                    index += 1
                    let h = chars[index]
                    index += 1
                    if h == "\\" {
                        guard case .scalar(let scalar) = try parseEscape(inClass: true) else {
                            throw error("a class escape cannot end a range", at: dash)
                        }
                        high = scalar
                    } else {
                        high = h
                    }
                    guard low <= high else { throw error("a range whose end is below its start", at: dash) }
                }
                set.add(low, high)
            }
            set.finish()
            if flags.caseInsensitive { set.foldCase() }
            return set
        }

        /// `[:name:]` or `[:^name:]` at `index` (inside a class): RE2's ASCII classes.
        mutating func parsePOSIXClass(into set: inout ScalarSet) throws(SyntaxError) {
            let open = index
            index += 2
            var name = ""
            while let c = peek(), c != ":", c != "]" { name.unicodeScalars.append(c); index += 1 }
            guard peek() == ":", peek(1) == "]" else { throw error("a [: without its :]", at: open) }
            index += 2
            let negated = name.hasPrefix("^")
            if negated { name.removeFirst() }
            guard let ranges = ScalarSet.asciiClass(name) else { throw error("unknown POSIX class [:\(name):]", at: open) }
            set.ranges += ScalarSet(ranges: ranges, negated: negated).members
        }
    }
}
