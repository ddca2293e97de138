/// The Unicode data behind ``LinearPattern``'s `\p{…}` classes and its `(?i)` case folding,
/// read from the standard library's scalar properties on first use (each table is one pass over
/// the code space: about 0.1 s on a small host, once per process) and shared by every pattern
/// after that. Only compiling a pattern reads them, never matching one.
enum UnicodeTables {
    /// Code point ranges of each two-letter general category RE2 names (`Lu`, `Nd`, …), of the
    /// one-letter groups (`L` is `Lu|Ll|Lt|Lm|Lo`, `C` is `Cc|Cf|Co|Cs`, as in RE2) and of `Any`;
    /// sorted and merged.
    static let categories: [String: [ClosedRange<UInt32>]] = buildCategories()

    /// Case orbits (RE2's term for the scalars `(?i)` treats as one), built from the standard
    /// library's single-scalar lower, upper and title case mappings: each scalar that has another
    /// case maps to every scalar of its orbit, itself included (`k` → `K k K`, the last being
    /// U+212A KELVIN SIGN). Mappings to several scalars (`ß` → `SS`) take no part, as in simple
    /// case folding.
    static let orbits: [UInt32: [UInt32]] = buildOrbits()

    /// Calls `body` with every Unicode scalar, in order (surrogate code points are no scalars:
    /// they never occur in a matched value).
    private static func forEachScalar(_ body: (Unicode.Scalar) -> Void) {
        for value in UInt32(0)...0x10FFFF {
            if let scalar = Unicode.Scalar(value) { body(scalar) }
        }
    }

    private static func code(_ category: Unicode.GeneralCategory) -> String? {
        switch category {
        case .uppercaseLetter: "Lu"
        case .lowercaseLetter: "Ll"
        case .titlecaseLetter: "Lt"
        case .modifierLetter: "Lm"
        case .otherLetter: "Lo"
        case .nonspacingMark: "Mn"
        case .spacingMark: "Mc"
        case .enclosingMark: "Me"
        case .decimalNumber: "Nd"
        case .letterNumber: "Nl"
        case .otherNumber: "No"
        case .connectorPunctuation: "Pc"
        case .dashPunctuation: "Pd"
        case .openPunctuation: "Ps"
        case .closePunctuation: "Pe"
        case .initialPunctuation: "Pi"
        case .finalPunctuation: "Pf"
        case .otherPunctuation: "Po"
        case .mathSymbol: "Sm"
        case .currencySymbol: "Sc"
        case .modifierSymbol: "Sk"
        case .otherSymbol: "So"
        case .spaceSeparator: "Zs"
        case .lineSeparator: "Zl"
        case .paragraphSeparator: "Zp"
        case .control: "Cc"
        case .format: "Cf"
        case .surrogate: "Cs"
        case .privateUse: "Co"
        case .unassigned: nil
        @unknown default: nil
        }
    }

    private static func buildCategories() -> [String: [ClosedRange<UInt32>]] {
        var categories: [String: [ClosedRange<UInt32>]] = [:]
        forEachScalar { scalar in
            guard let code = code(scalar.properties.generalCategory) else { return }
            let value = scalar.value
            if let last = categories[code]?.last, last.upperBound &+ 1 == value {
                categories[code]![categories[code]!.count - 1] = last.lowerBound...value
            } else {
                categories[code, default: []].append(value...value)
            }
        }
        let groups: [String: [String]] = [
            "L": ["Lu", "Ll", "Lt", "Lm", "Lo"], "M": ["Mn", "Mc", "Me"], "N": ["Nd", "Nl", "No"],
            "P": ["Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po"], "S": ["Sm", "Sc", "Sk", "So"], "Z": ["Zs", "Zl", "Zp"],
            "C": ["Cc", "Cf", "Co", "Cs"],
        ]
        for (group, members) in groups {
            categories[group] = ScalarSet(ranges: members.flatMap { categories[$0] ?? [] }).ranges
        }
        categories["Any"] = [0...0x10FFFF]
        return categories
    }

    private static func buildOrbits() -> [UInt32: [UInt32]] {
        // Union-find over the scalars joined by a single-scalar case mapping.
        var parent: [UInt32: UInt32] = [:]
        func root(_ value: UInt32) -> UInt32 {
            var value = value
            while let up = parent[value], up != value { value = up }
            return value
        }
        forEachScalar { scalar in
            let properties = scalar.properties
            guard properties.changesWhenCaseMapped else { return }
            for mapping in [properties.lowercaseMapping, properties.uppercaseMapping, properties.titlecaseMapping] {
                let scalars = mapping.unicodeScalars
                guard scalars.count == 1, let other = scalars.first?.value, other != scalar.value else { continue }
                if parent[scalar.value] == nil { parent[scalar.value] = scalar.value }
                if parent[other] == nil { parent[other] = other }
                let (a, b) = (root(scalar.value), root(other))
                if a != b { parent[max(a, b)] = min(a, b) }
            }
        }
        var members: [UInt32: [UInt32]] = [:]
        for scalar in parent.keys { members[root(scalar), default: []].append(scalar) }
        var orbits: [UInt32: [UInt32]] = [:]
        for orbit in members.values where orbit.count > 1 {
            for scalar in orbit { orbits[scalar] = orbit.sorted() }
        }
        return orbits
    }
}
