import Foundation
import Testing
@testable import Inference

/// Numbers parse to the same Double as the C library's correctly rounded strtod, on the fast
/// path (short decimals) and off it.
@Suite struct JSONNumberTests {
    func parsed(_ text: String) throws -> Double? {
        switch try JSONParser.parse(Array(text.utf8)) {
        case .number(let value): return value
        case .int(let value): return Double(value)
        default: return nil
        }
    }

    @Test func matchesStrtodOnManyDecimals() throws {
        var generator = SystemRandomNumberGenerator()
        var texts = ["0", "-0", "0.5", "1e22", "1e23", "9007199254740993", "0.1", "-0.0001", "123456789012345678",
                     "1.7976931348623157e308", "5e-324", "2.2250738585072014e-308", "0.30000000000000004",
                     "1234567890123456789012", "3.14159265358979323846264338327950288", "1E-7", "4.9e+3"]
        for _ in 0..<2000 {
            let value = Double.random(in: -1000...1000, using: &generator)
            texts.append(String(format: "%.\(Int.random(in: 0...17, using: &generator))f", value))
            texts.append(String(format: "%.\(Int.random(in: 1...17, using: &generator))e", value))
        }
        for text in texts {
            let expected = strtod(text, nil)
            #expect(try parsed(text) == expected, "\(text)")
        }
    }

    @Test func numericArraysStayExactAndMixedArraysStayGeneral() throws {
        // A mixed array is a float array: integers in it lose their integer-ness, not their value.
        #expect(try JSONParser.parse(Array("[1, 2.5, -3]".utf8)).items == [.number(1), .number(2.5), .number(-3)])
        #expect(try JSONParser.parse(Array("[1,2,3]".utf8)).items == [.int(1), .int(2), .int(3)])
        #expect(try JSONParser.parse(Array(#"[1, 2, "x", 4]"#.utf8)) == .array([.int(1), .int(2), .string("x"), .int(4)]))
        #expect(try JSONParser.parse(Array("[1, 9007199254740993, 3]".utf8)) == .array([.int(1), .int(9_007_199_254_740_993), .int(3)]))
        #expect(try JSONParser.parse(Array("[9007199254740993]".utf8)) == .array([.int(9_007_199_254_740_993)]))
        #expect(try JSONParser.parse(Array("[[1,2],[3,4]]".utf8)).items?.count == 2)
        #expect(try JSONParser.parse(Array("[1, true]".utf8)) == .array([.int(1), .bool(true)]))
        for bad in ["[1,]", "[1 2]", "[1,", "[-]", "[1, 9007199254740993 4]"] {
            #expect(throws: InferenceError.self, "\(bad)") { try JSONParser.parse(Array(bad.utf8)) }
        }
        let tensor = try TensorCoding.fromJSON(try JSONParser.parse(Array("[[1, 2.5], [3, 4]]".utf8)), shape: [2, 2], datatype: .float32, what: "x")
        #expect(tensor.floats == [1, 2.5, 3, 4])
        let ints = try TensorCoding.fromJSON(try JSONParser.parse(Array("[1, 2]".utf8)), shape: [2], datatype: .int64, what: "x")
        #expect(ints.int64s == [1, 2])
        #expect(throws: InferenceError.self) {
            try TensorCoding.fromJSON(try JSONParser.parse(Array("[1.5, 2]".utf8)), shape: [2], datatype: .int64, what: "x")
        }
    }
}
