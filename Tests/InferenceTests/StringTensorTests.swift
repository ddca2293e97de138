@testable import Inference
import Testing

/// ONNX strings are bytes: a BYTES tensor that is not UTF-8 goes through the executor unchanged.
@Suite struct StringTensorTests {
    @Test("non-UTF-8 BYTES elements pass through a string graph byte for byte")
    func bytesPassThrough() throws {
        var builder = ModelBuilder()
        builder.input("s", [-1], type: 8)
        builder.node("Concat", ["s", "s"], ["y"], attributes: [ModelBuilder.int("axis", 0)])
        builder.output("y")
        let model = try builder.load()
        let items: [[UInt8]] = [[0xFF, 0x00, 0x80], Array("ok".utf8), []]
        let input = try Tensor(shape: [3], datatype: .bytes, storage: .bytes(items))
        let output = try #require(try model.run(["s": input])["y"])
        #expect(output.shape == [6])
        guard case .bytes(let got) = output.storage else {
            Issue.record("expected BYTES, got \(output.datatype)")
            return
        }
        #expect(got == items + items)
    }
}
