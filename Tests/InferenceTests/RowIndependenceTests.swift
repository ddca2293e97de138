import Foundation
@testable import Inference
import Testing

/// The load-time check that tells whether requests may share one run along the first dimension.
@Suite struct RowIndependenceTests {
    /// A model of one node on `x` of shape [N, 3] (or `inputShape`), with the given constants.
    static func model(
        _ op: String, inputShape: [Int64] = [-1, 3], extraInputs: [String] = [], attributes: [Onnx_AttributeProto] = [],
        constants: [(String, [Int64], [Float]?, [UInt8]?, Int32)] = []
    ) throws -> OnnxModel {
        var b = ModelBuilder()
        b.input("x", inputShape)
        for (name, dims, floats, raw, type) in constants { b.initializer(name, dims: dims, floats: floats, raw: raw, type: type) }
        b.node(op, ["x"] + extraInputs, ["y"], name: "n", attributes: attributes)
        b.output("y")
        return try b.load()
    }

    static func int64s(_ v: [Int64]) -> [UInt8] { v.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) } }

    @Test(arguments: ["mlp", "cnn", "logreg", "rfc", "rfr", "linreg", "external"])
    func theFixtureModelsKeepRowsApart(_ name: String) throws {
        // The CNN reshapes through Shape → Gather(0) → Unsqueeze → Concat, PyTorch's flatten.
        #expect(try OnnxModel.load(path: Fixtures.path("\(name).onnx")).rowsAreIndependent)
    }

    @Test func softmaxOverTheRowsMixesThem() throws {
        #expect(try !Self.model("Softmax", attributes: [ModelBuilder.int("axis", 0)]).rowsAreIndependent)
        #expect(try Self.model("Softmax", attributes: [ModelBuilder.int("axis", 1)]).rowsAreIndependent)
        #expect(try Self.model("Softmax").rowsAreIndependent, "the default axis is the last one")
        #expect(try !Self.model("Softmax", inputShape: [-1]).rowsAreIndependent, "on a vector the last axis is the rows")
    }

    @Test func movingTheFirstAxisMixesRows() throws {
        #expect(try !Self.model("Transpose", attributes: [ModelBuilder.ints("perm", [1, 0])]).rowsAreIndependent)
        #expect(try Self.model("Transpose", inputShape: [-1, 3, 2], attributes: [ModelBuilder.ints("perm", [0, 2, 1])]).rowsAreIndependent)
        #expect(try !Self.model("Flatten", attributes: [ModelBuilder.int("axis", 0)]).rowsAreIndependent)
        #expect(try Self.model("Flatten", inputShape: [-1, 3, 2]).rowsAreIndependent)
    }

    @Test func reshapeKeepsRowsOnlyWhenItKeepsTheFirstDimension() throws {
        let keep = [("s", [Int64(2)], [Float]?.none, Optional(Self.int64s([0, -1])), Int32(7))]
        #expect(try Self.model("Reshape", extraInputs: ["s"], constants: keep).rowsAreIndependent)
        let regroup = [("s", [Int64(2)], [Float]?.none, Optional(Self.int64s([-1, 6])), Int32(7))]
        #expect(try !Self.model("Reshape", extraInputs: ["s"], constants: regroup).rowsAreIndependent)
    }

    /// A constant B of A's rank broadcasts its first dimension against the rows: a different
    /// matrix per row mixes requests, the same matrix for every row does not.
    @Test func batchedMatMulWithAConstantKeepsRowsOnlyForOneMatrix() throws {
        let perRow = [("w", [Int64(2), 8, 3], Optional([Float](repeating: 0.5, count: 48)), [UInt8]?.none, Int32(1))]
        #expect(try !Self.model("MatMul", inputShape: [-1, 4, 8], extraInputs: ["w"], constants: perRow).rowsAreIndependent)
        let shared = [("w", [Int64(1), 8, 3], Optional([Float](repeating: 0.5, count: 24)), [UInt8]?.none, Int32(1))]
        #expect(try Self.model("MatMul", inputShape: [-1, 4, 8], extraInputs: ["w"], constants: shared).rowsAreIndependent)
        let matrix = [("w", [Int64(8), 3], Optional([Float](repeating: 0.5, count: 24)), [UInt8]?.none, Int32(1))]
        #expect(try Self.model("MatMul", inputShape: [-1, 4, 8], extraInputs: ["w"], constants: matrix).rowsAreIndependent)
    }

    @Test func concatAlongTheRowsMixesThem() throws {
        var b = ModelBuilder()
        b.input("x", [-1, 3])
        b.node("Concat", ["x", "x"], ["y"], attributes: [ModelBuilder.int("axis", 0)])
        b.output("y")
        #expect(try !b.load().rowsAreIndependent)
        var c = ModelBuilder()
        c.input("x", [-1, 3])
        c.node("Concat", ["x", "x"], ["y"], attributes: [ModelBuilder.int("axis", 1)])
        c.output("y")
        #expect(try c.load().rowsAreIndependent)
    }

    @Test func broadcastingKeepsRowsUnlessAConstantLinesUpWithThem() throws {
        let vector = [("c", [Int64(3)], Optional([Float](repeating: 1, count: 3)), [UInt8]?.none, Int32(1))]
        #expect(try Self.model("Add", extraInputs: ["c"], constants: vector).rowsAreIndependent)
        let oneRow = [("c", [Int64(1), 3], Optional([Float](repeating: 1, count: 3)), [UInt8]?.none, Int32(1))]
        #expect(try Self.model("Mul", extraInputs: ["c"], constants: oneRow).rowsAreIndependent)
        let twoRows = [("c", [Int64(2), 3], Optional([Float](repeating: 1, count: 6)), [UInt8]?.none, Int32(1))]
        #expect(try !Self.model("Sub", extraInputs: ["c"], constants: twoRows).rowsAreIndependent)
        let higherRank = [("c", [Int64(2), 1, 3], Optional([Float](repeating: 1, count: 6)), [UInt8]?.none, Int32(1))]
        #expect(try !Self.model("Div", extraInputs: ["c"], constants: higherRank).rowsAreIndependent)
    }
}
