/// Reserved words of CESQL. They are matched case-insensitively (spec §2) and therefore cannot
/// be used as attribute or function names.
enum CESQLKeyword: String, Sendable {
    case and = "AND"
    case or = "OR"
    case xor = "XOR"
    case not = "NOT"
    case like = "LIKE"
    case exists = "EXISTS"
    case `in` = "IN"
    case `true` = "TRUE"
    case `false` = "FALSE"
}

/// One lexical unit of an expression, with the offset (in Unicode scalars) where it starts so
/// parse errors can point at it.
struct CESQLToken: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        /// Unsigned decimal digits; the sign and the 32-bit range are handled by the parser so that
        /// `-2147483648` is representable.
        case integer(String)
        /// The decoded content of a quoted string literal.
        case string(String)
        /// A run of ASCII letters, digits and underscores that is not a keyword: an attribute
        /// identifier or a function name, depending on whether `(` follows.
        case word(String)
        case keyword(CESQLKeyword)
        case leftParen, rightParen, comma
        case plus, minus, star, slash, percent
        case equal, notEqual, lessGreater, less, lessOrEqual, greater, greaterOrEqual
        case end
    }

    let kind: Kind
    let offset: Int
}

extension CESQLToken.Kind {
    /// How the token is shown in parse error messages.
    var display: String {
        switch self {
        case .integer(let digits): "integer \(digits)"
        case .string(let text): "string '\(text)'"
        case .word(let word): "'\(word)'"
        case .keyword(let keyword): keyword.rawValue
        case .leftParen: "'('"
        case .rightParen: "')'"
        case .comma: "','"
        case .plus: "'+'"
        case .minus: "'-'"
        case .star: "'*'"
        case .slash: "'/'"
        case .percent: "'%'"
        case .equal: "'='"
        case .notEqual: "'!='"
        case .lessGreater: "'<>'"
        case .less: "'<'"
        case .lessOrEqual: "'<='"
        case .greater: "'>'"
        case .greaterOrEqual: "'>='"
        case .end: "end of expression"
        }
    }
}

/// Splits a CESQL expression into tokens. Runs once per expression at compile time.
struct CESQLLexer {
    private let scalars: [Unicode.Scalar]
    private var index = 0

    private init(_ source: String) {
        scalars = Array(source.unicodeScalars)
    }

    /// Tokenizes `source`; the result always ends with an `.end` token.
    static func tokenize(_ source: String) throws(CESQLError) -> [CESQLToken] {
        var lexer = CESQLLexer(source)
        var tokens: [CESQLToken] = []
        while true {
            let token = try lexer.nextToken()
            tokens.append(token)
            if token.kind == .end { return tokens }
        }
    }

    private var current: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }

    private func peek(_ distance: Int) -> Unicode.Scalar? {
        let position = index + distance
        return position < scalars.count ? scalars[position] : nil
    }

    private mutating func nextToken() throws(CESQLError) -> CESQLToken {
        skipWhitespace()
        let start = index
        guard let scalar = current else { return CESQLToken(kind: .end, offset: start) }
        if scalar == "'" || scalar == "\"" {
            return CESQLToken(kind: .string(try lexString(quote: scalar)), offset: start)
        }
        if Self.isWordScalar(scalar) {
            return CESQLToken(kind: lexWord(), offset: start)
        }
        return CESQLToken(kind: try lexSymbol(scalar, at: start), offset: start)
    }

    /// Space, tab, carriage return and line feed separate tokens (the upstream grammar's set).
    private mutating func skipWhitespace() {
        while let scalar = current, scalar == " " || scalar == "\t" || scalar == "\r" || scalar == "\n" {
            index += 1
        }
    }

    private static func isWordScalar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", "_": true
        default: false
        }
    }

    /// Words are classified here only as far as the lexer can tell: all digits is an integer
    /// literal, a reserved word is a keyword, anything else is left for the parser.
    private mutating func lexWord() -> CESQLToken.Kind {
        var word = ""
        var allDigits = true
        while let scalar = current, Self.isWordScalar(scalar) {
            if !("0"..."9").contains(scalar) { allDigits = false }
            word.unicodeScalars.append(scalar)
            index += 1
        }
        if allDigits { return .integer(word) }
        if let keyword = CESQLKeyword(rawValue: word.uppercased()) { return .keyword(keyword) }
        return .word(word)
    }

    /// Decodes a quoted literal. A backslash before either quote character yields that quote,
    /// `\\` yields one backslash, and a doubled delimiter (`''` inside `'…'`) yields one delimiter.
    /// Any other backslash is kept verbatim, so `LIKE` patterns receive their `\%` and `\_` escapes
    /// intact.
    private mutating func lexString(quote: Unicode.Scalar) throws(CESQLError) -> String {
        let start = index
        index += 1
        var text = String.UnicodeScalarView()
        while let scalar = current {
            if scalar == "\\" {
                guard let escaped = peek(1) else { break }
                if escaped == "'" || escaped == "\"" || escaped == "\\" {
                    text.append(escaped)
                } else {
                    text.append(scalar)
                    text.append(escaped)
                }
                index += 2
            } else if scalar == quote {
                if peek(1) == quote {
                    text.append(quote)
                    index += 2
                } else {
                    index += 1
                    return String(text)
                }
            } else {
                text.append(scalar)
                index += 1
            }
        }
        throw CESQLError(
            kind: .parse,
            message: "unterminated string literal; close it with \(quote)",
            position: start
        )
    }

    private mutating func lexSymbol(_ scalar: Unicode.Scalar, at start: Int) throws(CESQLError) -> CESQLToken.Kind {
        index += 1
        switch scalar {
        case "(": return .leftParen
        case ")": return .rightParen
        case ",": return .comma
        case "+": return .plus
        case "-": return .minus
        case "*": return .star
        case "/": return .slash
        case "%": return .percent
        case "=": return .equal
        case "!":
            if current == "=" {
                index += 1
                return .notEqual
            }
            throw CESQLError(kind: .parse, message: "unexpected '!'; use NOT for negation or != for inequality", position: start)
        case "<":
            if current == "=" {
                index += 1
                return .lessOrEqual
            }
            if current == ">" {
                index += 1
                return .lessGreater
            }
            return .less
        case ">":
            if current == "=" {
                index += 1
                return .greaterOrEqual
            }
            return .greater
        default:
            throw CESQLError(kind: .parse, message: "unexpected character '\(scalar.escaped(asASCII: true))'", position: start)
        }
    }
}
