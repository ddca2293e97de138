import Testing
@testable import Inference

/// Tensor `data` decoding: element counts are checked before any element is converted.
@Suite struct TensorCodingTests {
    @Test(arguments: [TensorDataType.int64, .int32, .bool, .uint8, .float16, .bytes])
    func countMismatchIsFoundBeforeBoxingElements(_ datatype: TensorDataType) throws {
        // What a ~65 KB gzip body can inflate to: millions of numbers for a one-element shape.
        let n = 8_000_000
        let data = JSON.numbers([Double](repeating: 1, count: n), integral: true)
        let start = ContinuousClock.now
        let e = try #require(inferenceError {
            _ = try TensorCoding.fromJSON(data, shape: [1], datatype: datatype, what: "x")
        })
        let elapsed = ContinuousClock.now - start
        #expect(e.message.contains("input 'x': shape [1] needs 1 elements, got \(n)"), "\(e.message)")
        // Boxing 8M elements twice took about 2 s and hundreds of MB (debug build); counting
        // takes nothing. The bound is loose: a regression guard, not a speed claim.
        #expect(elapsed < .seconds(1), "\(elapsed)")
    }

    @Test func integerTypesTakeTheUnboxedPath() throws {
        let rows = JSON.array([.numbers([1, -2], integral: true), .numbers([3, 4], integral: true)])
        #expect(try TensorCoding.fromJSON(rows, shape: [2, 2], datatype: .int64, what: "x").int64s == [1, -2, 3, 4])
        #expect(try TensorCoding.fromJSON(rows, shape: [2, 2], datatype: .int32, what: "x").storage == .int32([1, -2, 3, 4]))
        #expect(try TensorCoding.fromJSON(rows, shape: [2, 2], datatype: .int8, what: "x").storage == .raw([1, 0xFE, 3, 4]))
        #expect(try TensorCoding.fromJSON(rows, shape: [2, 2], datatype: .float16, what: "x").storage
                == .raw([0x00, 0x3C, 0x00, 0xC0, 0x00, 0x42, 0x00, 0x44]))
        // The same checks as the general path: range, integral literals, type.
        let uint8 = inferenceError { _ = try TensorCoding.fromJSON(rows, shape: [2, 2], datatype: .uint8, what: "x") }
        #expect(uint8?.message.contains("a number is not a valid UINT8 value") == true)
        let mixed = JSON.array([.numbers([1, 2], integral: true), .numbers([3, 4.5], integral: false)])
        let int64 = inferenceError { _ = try TensorCoding.fromJSON(mixed, shape: [2, 2], datatype: .int64, what: "x") }
        #expect(int64?.message.contains("a number is not a valid INT64 value") == true)
        let bool = inferenceError { _ = try TensorCoding.fromJSON(rows, shape: [2, 2], datatype: .bool, what: "x") }
        #expect(bool?.message.contains("a number is not a valid BOOL value") == true)
    }
}
