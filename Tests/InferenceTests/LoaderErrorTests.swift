import Foundation
import Inference
import Testing

/// What the loader and the executor reject, and that they say clearly what and where.
@Suite struct LoaderErrorTests {
    /// A valid Relu model to mutate.
    func relu() -> ModelBuilder {
        var b = ModelBuilder()
        b.input("x", [-1, 4])
        b.node("Relu", ["x"], ["y"], name: "act")
        b.output("y")
        return b
    }

    @Test func unsupportedOperatorFailsAtLoadNamingNodeAndOperator() throws {
        var b = relu()
        b.node("NonMaxSuppression", ["y"], ["z"], name: "nms_1")
        b.output("z")
        let e = try #require(inferenceError { _ = try b.load() })
        #expect(e.code == .unsupportedOperator)
        #expect(e.message.contains("'nms_1'") && e.message.contains("NonMaxSuppression"))
    }

    /// FLOAT16 (10), UINT16 (4), UINT64 (13), BFLOAT16 (16): refused at load, named, instead of
    /// being reported as FP32 and failing at the first request.
    @Test(arguments: [Int32(10), 4, 13, 16])
    func inputsOfATypeNoKernelComputesWithFailAtLoad(_ type: Int32) throws {
        var b = ModelBuilder()
        b.input("x", [-1, 4], type: type)
        b.node("Identity", ["x"], ["y"], name: "id")
        b.output("y")
        let e = try #require(inferenceError { _ = try b.load() })
        #expect(e.code == .unsupportedAttribute)
        #expect(e.message.contains("'x'") && e.message.contains("(\(type))"), "\(e.message)")
    }

    /// Gelu exists from opset 20: in an opset-17 model it is refused at load, naming the node.
    @Test func operatorNewerThanTheModelsOpsetFailsAtLoad() throws {
        var old = ModelBuilder(opset: 17)
        old.input("x", [-1, 4])
        old.node("Gelu", ["x"], ["y"], name: "act")
        old.output("y")
        let e = try #require(inferenceError { _ = try old.load() })
        #expect(e.code == .unsupportedOpset)
        #expect(e.message.contains("'act'") && e.message.contains("opset 20"), "\(e.message)")
        var current = ModelBuilder(opset: 20)
        current.input("x", [-1, 4])
        current.node("Gelu", ["x"], ["y"], name: "act")
        current.output("y")
        _ = try current.load()
    }

    @Test func unsupportedAttributeFailsAtLoad() throws {
        var b = ModelBuilder()
        b.input("x", [1, 4])
        b.node("Flatten", ["x"], ["y"], name: "flat", attributes: [ModelBuilder.int("axis", 1), ModelBuilder.int("bogus", 3)])
        b.output("y")
        let e = try #require(inferenceError { _ = try b.load() })
        #expect(e.code == .unsupportedAttribute)
        #expect(e.message.contains("'flat'") && e.message.contains("Flatten") && e.message.contains("bogus"))
    }

    @Test func unsupportedAttributeValueFailsAtLoad() throws {
        var b = ModelBuilder()
        b.input("x", [1, 1, 4, 4, 4])
        b.initializer("w", dims: [1, 1, 2, 2, 2], floats: Array(repeating: 1, count: 8))
        b.node("Conv", ["x", "w"], ["y"], name: "conv3d")
        b.output("y")
        let e = try #require(inferenceError { _ = try b.load() })
        #expect(e.code == .unsupportedAttribute)
        #expect(e.message.contains("conv3d") && e.message.contains("Conv"))
    }

    @Test func unsupportedMLOperatorIsNamed() throws {
        var b = ModelBuilder(ml: 3)
        b.input("x", [1, 4])
        b.node("SVMClassifier", ["x"], ["y"], name: "svm", domain: "ai.onnx.ml")
        b.output("y")
        let e = try #require(inferenceError { _ = try b.load() })
        #expect(e.code == .unsupportedOperator && e.message.contains("SVMClassifier") && e.message.contains("ai.onnx.ml"))
    }

    @Test func oldOpsetIsRejected() throws {
        var b = ModelBuilder(opset: 9)
        b.input("x", [1])
        b.node("Relu", ["x"], ["y"])
        b.output("y")
        #expect(inferenceError { _ = try b.load() }?.code == .unsupportedOpset)
    }

    @Test func rawDataOfTheWrongLengthIsRejected() throws {
        var b = relu()
        b.initializer("w", dims: [2, 3], raw: [0, 0, 128, 63])  // 4 bytes for 6 floats
        let e = try #require(inferenceError { _ = try b.load() })
        #expect(e.code == .invalidTensor && e.message.contains("'w'") && e.message.contains("24"))
    }

    @Test func typedDataOfTheWrongCountIsRejected() throws {
        var b = relu()
        b.initializer("w", dims: [3], floats: [1, 2])
        #expect(inferenceError { _ = try b.load() }?.code == .invalidTensor)
    }

    @Test func truncatedAndGarbageBytesAreRejected() throws {
        let good = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.path("mlp.onnx"))))
        for cut in [good.count / 2, good.count - 3, 7] {
            let e = inferenceError { _ = try OnnxModel(bytes: Array(good.prefix(cut))) }
            #expect(e != nil, "truncated at \(cut) must fail with an InferenceError")
        }
        #expect(inferenceError { _ = try OnnxModel(bytes: Array("not a model at all".utf8)) }?.code == .invalidModel)
        #expect(inferenceError { _ = try OnnxModel.load(path: "/nonexistent/model.onnx") }?.code == .modelNotReadable)
        // A device would be read without end.
        let device = inferenceError { _ = try OnnxModel.load(path: "/dev/zero") }
        #expect(device?.code == .modelNotReadable && device?.message.contains("not a regular file") == true)
    }

    @Test func valueUsedBeforeProducedIsRejected() throws {
        var b = ModelBuilder()
        b.input("x", [1])
        b.node("Add", ["x", "later"], ["y"], name: "early")
        b.node("Relu", ["x"], ["later"])
        b.output("y")
        let e = try #require(inferenceError { _ = try b.load() })
        #expect(e.code == .invalidModel && e.message.contains("later"))
    }

    @Test func externalDataMayNotLeaveTheModelFolder() throws {
        var b = relu()
        b.externalInitializer("w", dims: [2], location: "../../etc/passwd")
        #expect(inferenceError { _ = try b.load(baseDirectory: Fixtures.directory) }?.code == .modelNotReadable)
        var c = relu()
        c.externalInitializer("w", dims: [2], location: "missing.bin")
        #expect(inferenceError { _ = try c.load(baseDirectory: Fixtures.directory) }?.code == .modelNotReadable)
    }

    @Test(arguments: [("9223372036854775807", "1"), ("1", "9223372036854775807"), ("49", nil), ("-1", "4"),
                      ("0", "-1"), ("40", "9"), ("0", "99999999999999999999")] as [(String, String?)])
    func externalDataRangeOutsideTheFileIsAnInvalidTensor(offset: String, length: String?) throws {
        // external.weights holds 48 bytes; `offset + length` must not overflow (a trap kills the daemon).
        var b = relu()
        b.externalInitializer("w", dims: [2], location: "external.weights", offset: offset, length: length)
        let e = try #require(inferenceError { _ = try b.load(baseDirectory: Fixtures.directory) })
        #expect(e.code == .invalidTensor && e.message.contains("'w'"), "\(e.message)")
        // In range, the same tensor loads.
        var ok = relu()
        ok.externalInitializer("w", dims: [2], location: "external.weights", offset: "40", length: "8")
        _ = try ok.load(baseDirectory: Fixtures.directory)
    }

    @Test func badRequestsAreErrorsNotCrashes() throws {
        let mlp = try OnnxModel.load(path: Fixtures.path("mlp.onnx"))
        let good = try Tensor(shape: [2, 16], floats: Array(repeating: 0.5, count: 32))
        #expect(inferenceError { _ = try mlp.run(["input": try Tensor(shape: [2, 15], floats: Array(repeating: 0, count: 30))]) }?.code == .invalidInput)
        #expect(inferenceError { _ = try mlp.run(["input": try Tensor(shape: [32], floats: Array(repeating: 0, count: 32))]) }?.code == .invalidInput)
        #expect(inferenceError { _ = try mlp.run(["input": try Tensor(shape: [2, 16], int64s: Array(repeating: 0, count: 32))]) }?.code == .invalidInput)
        #expect(inferenceError { _ = try mlp.run([:]) }?.code == .invalidInput)
        #expect(inferenceError { _ = try mlp.run(["input": good, "extra": good]) }?.code == .invalidInput)
        #expect(inferenceError { _ = try Tensor(shape: [2, 16], floats: [1, 2, 3]) }?.code == .invalidTensor)
        #expect(inferenceError { _ = try Tensor(shape: [-1, 2], floats: []) }?.code == .invalidTensor)
        #expect(inferenceError { _ = try Tensor(shape: [Int.max, 2], floats: []) }?.code == .invalidTensor)
        // Batch 0 is a valid, empty batch.
        let empty = try mlp.run(["input": try Tensor(shape: [0, 16], floats: [])])
        #expect(empty["output"]?.shape == [0, 4])
    }

    @Test func runtimeShapeErrorsNameTheNode() throws {
        var b = ModelBuilder()
        b.input("x", [-1, -1])
        b.input("i", [-1], type: 7)
        b.node("Gather", ["x", "i"], ["y"], name: "pick", attributes: [ModelBuilder.int("axis", 1)])
        b.output("y")
        let model = try b.load()
        let x = try Tensor(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
        let ok = try model.run(["x": x, "i": try Tensor(shape: [2], int64s: [2, -3])])
        #expect(ok["y"]?.floats == [3, 1, 6, 4])
        let e = try #require(inferenceError { _ = try model.run(["x": x, "i": try Tensor(shape: [1], int64s: [3])]) })
        #expect(e.code == .invalidInput && e.message.contains("'pick'") && e.message.contains("out of range"))
    }

    /// Model files that wrote (or read) past a buffer, or trapped, are refused at load.
    @Test func windowAndWeightMismatchesFailAtLoad() throws {
        // A 1-D Conv with a 2-D kernel_shape and top/bottom pads sized its output for one row.
        var conv = ModelBuilder()
        conv.input("x", [-1, 1, 8])
        conv.initializer("w", dims: [1, 1, 3], floats: [1, 1, 1])
        conv.node("Conv", ["x", "w"], ["y"], name: "c1", attributes: [ModelBuilder.ints("kernel_shape", [1, 3]), ModelBuilder.ints("pads", [1, 1, 1, 1])])
        conv.output("y")
        #expect(inferenceError { _ = try conv.load() }?.message.contains("'c1'") == true)
        // A node output named like an initializer that a Conv packed at load.
        var shadow = ModelBuilder()
        shadow.input("x", [-1, 1, 4, 4])
        shadow.input("wd", [1, 1, 3, 3])
        shadow.initializer("w", dims: [1, 1, 3, 3], floats: Array(repeating: 1, count: 9))
        shadow.node("Relu", ["wd"], ["w"], name: "r")
        shadow.node("Conv", ["x", "w"], ["y"], name: "c")
        shadow.output("y")
        #expect(inferenceError { _ = try shadow.load() }?.message.contains("already the name") == true)
        // Zero output channels, a negative kernel, and huge dilations.
        var empty = ModelBuilder()
        empty.input("x", [-1, 1, 4, 4])
        empty.initializer("w", dims: [0, 1, 3, 3], floats: [])
        empty.node("Conv", ["x", "w"], ["y"], name: "c0")
        empty.output("y")
        #expect(inferenceError { _ = try empty.load() } != nil)
        for attributes in [[ModelBuilder.ints("kernel_shape", [-1, -1])],
                           [ModelBuilder.ints("kernel_shape", [2, 2]), ModelBuilder.ints("dilations", [1 << 62, 1])]] {
            var pool = ModelBuilder()
            pool.input("x", [-1, 1, 4, 4])
            pool.node("MaxPool", ["x"], ["y"], name: "p", attributes: attributes)
            pool.output("y")
            #expect(inferenceError { _ = try pool.load() }?.code == .unsupportedAttribute)
        }
    }

    /// An empty spatial dimension in a request is a 400, not a trap.
    @Test func anEmptySpatialDimensionIsRefused() throws {
        var b = ModelBuilder()
        b.input("x", [-1, 1, -1])
        b.initializer("w", dims: [1, 1, 3], floats: [1, 1, 1])
        b.node("Conv", ["x", "w"], ["y"], name: "c", attributes: [ModelBuilder.ints("kernel_shape", [3])])
        b.output("y")
        let model = try b.load()
        let e = try #require(inferenceError { _ = try model.run(["x": try Tensor(shape: [1, 1, 0], floats: [])]) })
        #expect(e.message.contains("empty spatial dimension"), "\(e.message)")
    }

    @Test func integerDivisionEdgeCasesDoNotTrap() throws {
        var b = ModelBuilder()
        b.input("a", [-1], type: 7)
        b.input("b", [-1], type: 7)
        b.node("Div", ["a", "b"], ["y"], name: "div")
        b.output("y")
        let model = try b.load()
        let out = try model.run(["a": try Tensor(shape: [2], int64s: [Int64.min, 7]), "b": try Tensor(shape: [2], int64s: [-1, 2])])
        #expect(out["y"]?.int64s == [Int64.min, 3])
        let e = try #require(inferenceError { _ = try model.run(["a": try Tensor(shape: [1], int64s: [1]), "b": try Tensor(shape: [1], int64s: [0])]) })
        #expect(e.code == .invalidInput && e.message.contains("division by zero"))
    }
}
