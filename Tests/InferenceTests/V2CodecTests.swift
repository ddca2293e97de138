import Foundation
import Inference
import Testing

/// The Open Inference Protocol V2 REST codec and the Triton binary tensor extension.
@Suite struct V2CodecTests {
    func decode(_ json: String) throws -> InferenceRequest {
        try V2Codec.decodeRequest(body: Array(json.utf8))
    }

    func littleEndian<T>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

    @Test func decodesEveryDatatype() throws {
        let r = try decode("""
        {"id":"r1","parameters":{"trace":true,"n":3,"x":0.5,"s":"v"},
         "inputs":[
          {"name":"f32","shape":[2,2],"datatype":"FP32","data":[[1,2.5],[-3e-2,4]]},
          {"name":"f64","shape":[2],"datatype":"FP64","data":[1.25,-2]},
          {"name":"i64","shape":[2],"datatype":"INT64","data":[9007199254740993,-1]},
          {"name":"i32","shape":[1],"datatype":"INT32","data":[-2147483648]},
          {"name":"b","shape":[3],"datatype":"BOOL","data":[true,false,true]},
          {"name":"s","shape":[2],"datatype":"BYTES","data":["héllo","\\u00e9\\n"]},
          {"name":"u8","shape":[2],"datatype":"UINT8","data":[0,255]},
          {"name":"i8","shape":[1],"datatype":"INT8","data":[-128]},
          {"name":"u16","shape":[1],"datatype":"UINT16","data":[65535]},
          {"name":"i16","shape":[1],"datatype":"INT16","data":[-2]},
          {"name":"u32","shape":[1],"datatype":"UINT32","data":[4294967295]},
          {"name":"u64","shape":[1],"datatype":"UINT64","data":[7]},
          {"name":"h","shape":[2],"datatype":"FP16","data":[1.0,-2.0]},
          {"name":"bf","shape":[1],"datatype":"BF16","data":[1.0]}]}
        """)
        #expect(r.id == "r1")
        #expect(r.parameters == ["trace": .bool(true), "n": .int(3), "x": .double(0.5), "s": .string("v")])
        let t = r.tensors
        #expect(t["f32"]?.floats == [1, 2.5, -0.03, 4])
        #expect(t["f32"]?.shape == [2, 2])
        #expect(t["f64"]?.storage == .float64([1.25, -2]))
        #expect(t["i64"]?.int64s == [9_007_199_254_740_993, -1])
        #expect(t["i32"]?.storage == .int32([Int32.min]))
        #expect(t["b"]?.storage == .bool([true, false, true]))
        #expect(t["s"]?.strings == ["héllo", "é\n"])
        #expect(t["u8"]?.storage == .raw([0, 255]))
        #expect(t["i8"]?.storage == .raw([0x80]))
        #expect(t["u16"]?.storage == .raw([0xFF, 0xFF]))
        #expect(t["i16"]?.storage == .raw([0xFE, 0xFF]))
        #expect(t["u32"]?.storage == .raw([0xFF, 0xFF, 0xFF, 0xFF]))
        #expect(t["u64"]?.storage == .raw([7, 0, 0, 0, 0, 0, 0, 0]))
        #expect(t["h"]?.storage == .raw([0x00, 0x3C, 0x00, 0xC0]))
        #expect(t["bf"]?.storage == .raw([0x80, 0x3F]))
        #expect(r.outputs == nil)
    }

    @Test func outputsFilterAndBinaryFlags() throws {
        let r = try decode("""
        {"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],
         "parameters":{"binary_data_output":true},
         "outputs":[{"name":"a","parameters":{"binary_data":false}},{"name":"b"}]}
        """)
        #expect(r.outputNames == ["a", "b"])
        #expect(!r.wantsBinary("a"))
        #expect(r.wantsBinary("b"))
        #expect(try !decode(#"{"inputs":[]}"#).wantsBinary("a"))
    }

    @Test(arguments: [
        (#"{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2,3]}]}"#, "needs 4 elements, got 3"),
        (#"{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":["a","b"]}]}"#, "not a valid FP32"),
        (#"{"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":[3000000000]}]}"#, "not a valid INT32"),
        (#"{"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[1.5]}]}"#, "not a valid INT64"),
        (#"{"inputs":[{"name":"x","shape":[1],"datatype":"FLOAT","data":[1]}]}"#, "unknown 'datatype'"),
        (#"{"inputs":[{"name":"x","shape":[-1],"datatype":"FP32","data":[1]}]}"#, "non-negative integers"),
        (#"{"inputs":[{"name":"x","datatype":"FP32","data":[1]}]}"#, "'shape'"),
        (#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32"}]}"#, "no 'data'"),
        (#"{"id":5,"inputs":[]}"#, "'id' must be a string"),
        (#"{"outputs":[]}"#, "'inputs' array"),
        (#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}"#, "invalid JSON"),
        (#"[1,2]"#, "JSON object"),
        (#"{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2,3],[4]]}]}"#, "must follow the shape [2, 2]"),
        (#"{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[[1,2],[3,4]]]}]}"#, "must follow the shape"),
        (#"{"inputs":[{"name":"x","shape":[2,2],"datatype":"BOOL","data":[[true],[false,true,false]]}]}"#, "must follow the shape"),
        (#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]},{"name":"x","shape":[1],"datatype":"FP32","data":[2]}]}"#,
         "given twice"),
        (#"{"inputs":[],"parameters":{"p":[1]}}"#, "string, number or boolean"),
        (#"{"inputs":[{"name":"x","shape":[2147483647,2147483647,2147483647],"datatype":"FP32","data":[1]}]}"#, "too many elements"),
    ])
    func rejectsMalformedRequests(body: String, fragment: String) throws {
        let e = try #require(inferenceError { _ = try decode(body) })
        #expect(e.message.contains(fragment), "\(e.message)")
        #expect(e.protocolStatus == 400)
    }

    @Test func emptyOutputsListMeansAllOutputs() throws {
        let r = try decode(#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[]}"#)
        #expect(r.outputs == nil)
        #expect(r.outputNames == nil)
    }

    @Test func manyInputsDecodeInLinearTime() throws {
        // 30 000 distinct names: a pairwise duplicate check takes ~450M string comparisons
        // (about 50 s in a debug build). The bound is loose: a regression guard, not a speed claim.
        let n = 30_000
        let inputs = (0..<n).map { #"{"name":"x\#($0)","shape":[1],"datatype":"FP32","data":[1]}"# }
        let body = #"{"inputs":["# + inputs.joined(separator: ",") + "]}"
        let start = ContinuousClock.now
        let r = try decode(body)
        let elapsed = ContinuousClock.now - start
        #expect(r.inputs.count == n)
        #expect(elapsed < .seconds(15), "\(elapsed)")
        let twice = #"{"inputs":["# + inputs.joined(separator: ",") + "," + inputs[n / 2] + "]}"
        let e = try #require(inferenceError { _ = try decode(twice) })
        #expect(e.message.contains("inputs[\(n)]: the input 'x\(n / 2)' is given twice"), "\(e.message)")
    }

    @Test(arguments: [
        (#"{"name":"x","shape":[1],"datatype":"FP32","data":[1e40]}"#, "input 'x': 1e+40 is out of range for FP32"),
        (#"{"name":"x","shape":[2,1],"datatype":"FP32","data":[[-1e40],[1]]}"#, "input 'x': -1e+40 is out of range for FP32"),
        // A big integer makes the parser box the array, so this goes the general way.
        (#"{"name":"x","shape":[2],"datatype":"FP32","data":[1e39,9007199254740993]}"#, "input 'x': 1e+39 is out of range for FP32"),
        (#"{"name":"h","shape":[1],"datatype":"FP16","data":[70000]}"#, "input 'h': 70000.0 is out of range for FP16"),
        (#"{"name":"h","shape":[1],"datatype":"FP16","data":[1e40]}"#, "input 'h': 1e+40 is out of range for FP16"),
        (#"{"name":"b","shape":[1],"datatype":"BF16","data":[-1e39]}"#, "input 'b': -1e+39 is out of range for BF16"),
    ])
    func finiteNumbersOutOfRangeAreRejected(input: String, fragment: String) throws {
        let e = try #require(inferenceError { _ = try decode(#"{"inputs":["# + input + "]}") })
        #expect(e.message.contains(fragment), "\(e.message)")
        #expect(e.protocolStatus == 400)
    }

    @Test func largestFiniteValuesAndInfinitiesStillDecode() throws {
        let r = try decode("""
        {"inputs":[{"name":"f","shape":[4],"datatype":"FP32","data":[3.4028234663852886e38,-Infinity,Infinity,NaN]},
                   {"name":"h","shape":[2],"datatype":"FP16","data":[65504,-65504]},
                   {"name":"b","shape":[1],"datatype":"BF16","data":[1e38]}]}
        """)
        let f = try #require(r.tensors["f"]?.floats)
        #expect(f[0] == .greatestFiniteMagnitude && f[1] == -.infinity && f[2] == .infinity && f[3].isNaN)
        #expect(r.tensors["h"]?.storage == .raw([0xFF, 0x7B, 0xFF, 0xFB]))
        #expect(r.tensors["b"] != nil)
    }

    @Test func integerOutputsAreJSONIntegers() throws {
        let outputs = [
            ResponseOutput(name: "u8", tensor: try Tensor(shape: [2], datatype: .uint8, storage: .raw([1, 255]))),
            ResponseOutput(name: "i8", tensor: try Tensor(shape: [2], datatype: .int8, storage: .raw([0x80, 2]))),
            ResponseOutput(name: "i16", tensor: try Tensor(shape: [1], datatype: .int16, storage: .raw([0xFE, 0xFF]))),
            ResponseOutput(name: "u64", tensor: try Tensor(shape: [1], datatype: .uint64, storage: .raw([UInt8](repeating: 0xFF, count: 8)))),
            ResponseOutput(name: "h", tensor: try Tensor(shape: [1], datatype: .float16, storage: .raw([0x00, 0x3C]))),
        ]
        let text = String(decoding: V2Codec.encodeResponse(InferenceResponse(modelName: "m", outputs: outputs)).bytes, as: UTF8.self)
        #expect(text.contains(#""name":"u8","datatype":"UINT8","shape":[2],"data":[1,255]"#), "\(text)")
        #expect(text.contains(#""data":[-128,2]"#), "\(text)")
        #expect(text.contains(#""data":[-2]"#), "\(text)")
        #expect(text.contains(#""data":[18446744073709551615]"#), "\(text)")
        #expect(text.contains(#""data":[1.0]"#) || text.contains(#""data":[1]"#), "\(text)")
    }

    @Test func decodesBinaryTensors() throws {
        let header = """
        {"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","parameters":{"binary_data_size":16}},
                   {"name":"j","shape":[1],"datatype":"INT64","data":[5]},
                   {"name":"s","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":13}}],
         "outputs":[{"name":"y","parameters":{"binary_data":true}}]}
        """
        let blob = littleEndian([Float(1), -2, 3.5, 4]) + [2, 0, 0, 0] + Array("hi".utf8) + [3, 0, 0, 0] + Array("abc".utf8)
        let body = Array(header.utf8) + blob
        let r = try V2Codec.decodeRequest(body: body, jsonLength: header.utf8.count)
        #expect(r.tensors["x"]?.floats == [1, -2, 3.5, 4])
        #expect(r.tensors["j"]?.int64s == [5])
        #expect(r.tensors["s"]?.strings == ["hi", "abc"])
        #expect(r.wantsBinary("y"))
    }

    @Test func truncatedAndInconsistentBinaryDataAreErrors() throws {
        let header = #"{"inputs":[{"name":"x","shape":[4],"datatype":"FP32","parameters":{"binary_data_size":16}}]}"#
        let h = Array(header.utf8)
        let full = littleEndian([Float](repeating: 1, count: 4))
        for cut in [0, 1, 15] {
            let e = try #require(inferenceError { _ = try V2Codec.decodeRequest(body: h + full.prefix(cut), jsonLength: h.count) })
            #expect(e.message.contains("truncated"))
        }
        // Extra bytes nobody claims.
        #expect(inferenceError { _ = try V2Codec.decodeRequest(body: h + full + [0], jsonLength: h.count) }?.code == .invalidRequest)
        // Header length beyond the body.
        #expect(inferenceError { _ = try V2Codec.decodeRequest(body: h, jsonLength: h.count + 1) }?.code == .invalidRequest)
        // binary_data_size without the header.
        #expect(inferenceError { _ = try V2Codec.decodeRequest(body: h + full) } != nil)
        // Size that disagrees with the shape.
        let wrong = #"{"inputs":[{"name":"x","shape":[3],"datatype":"FP32","parameters":{"binary_data_size":16}}]}"#
        let e = try #require(inferenceError { _ = try V2Codec.decodeRequest(body: Array(wrong.utf8) + full, jsonLength: wrong.utf8.count) })
        #expect(e.message.contains("needs 12"))
        // BYTES element whose length prefix runs past the end.
        let s = #"{"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":6}}]}"#
        let bad = try #require(inferenceError { _ = try V2Codec.decodeRequest(body: Array(s.utf8) + [9, 0, 0, 0, 65, 66], jsonLength: s.utf8.count) })
        #expect(bad.message.contains("truncated"))
    }

    @Test func rawBinaryRequestUsesTheOnlyInput() throws {
        let meta = TensorMetadata(name: "input", datatype: .float32, shape: [-1, 3])
        let r = try V2Codec.decodeRawBinaryRequest(body: littleEndian([Float(1), 2, 3]), input: meta)
        #expect(r.tensors["input"]?.shape == [1, 3])
        #expect(r.wantsBinary("anything"))
        #expect(inferenceError { _ = try V2Codec.decodeRawBinaryRequest(body: [1, 2, 3], input: meta) }?.code == .invalidInput)
        let variable = TensorMetadata(name: "v", datatype: .int32, shape: [-1, -1])
        #expect(try V2Codec.decodeRawBinaryRequest(body: littleEndian([Int32(1), 2]), input: variable).tensors["v"]?.shape == [1, 2])
    }

    @Test(arguments: [[-1, -1, 4_294_967_296, 4_294_967_296], [1, -1, 1 << 62], [1 << 61, -1], [-1, 4_294_967_296, 4_294_967_296]])
    func rawBinaryShapeTooLargeToCountIsABadRequest(shape: [Int]) throws {
        let meta = TensorMetadata(name: "big", datatype: .float32, shape: shape)
        let e = try #require(inferenceError { _ = try V2Codec.decodeRawBinaryRequest(body: littleEndian([Float(1)]), input: meta) })
        #expect(e.protocolStatus == 400)
        #expect(e.message.contains("input 'big'") && e.message.contains("too many elements"), "\(e.message)")
    }

    @Test func encodesJSONAndBinaryResponses() throws {
        let y = try Tensor(shape: [1, 2], floats: [0.25, -1])
        let labels = try Tensor(shape: [2], strings: ["cat", "dog"])
        let response = InferenceResponse(modelName: "m", modelVersion: "2", id: "abc", parameters: ["p": .bool(true)],
                                         outputs: [ResponseOutput(name: "y", tensor: y), ResponseOutput(name: "label", tensor: labels)])
        let json = V2Codec.encodeResponse(response)
        #expect(json.jsonLength == nil)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(json.bytes)) as? [String: Any])
        #expect(obj["model_name"] as? String == "m" && obj["model_version"] as? String == "2" && obj["id"] as? String == "abc")
        let outs = try #require(obj["outputs"] as? [[String: Any]])
        #expect(outs[0]["datatype"] as? String == "FP32" && outs[0]["shape"] as? [Int] == [1, 2])
        #expect((outs[0]["data"] as? [Double]) == [0.25, -1])
        #expect(outs[1]["data"] as? [String] == ["cat", "dog"])

        let binary = V2Codec.encodeResponse(response, binaryOutputs: ["y", "label"])
        let n = try #require(binary.jsonLength)
        let head = try #require(try JSONSerialization.jsonObject(with: Data(binary.bytes[..<n])) as? [String: Any])
        let bouts = try #require(head["outputs"] as? [[String: Any]])
        #expect(bouts[0]["data"] == nil)
        #expect((bouts[0]["parameters"] as? [String: Any])?["binary_data_size"] as? Int == 8)
        #expect((bouts[1]["parameters"] as? [String: Any])?["binary_data_size"] as? Int == 14)
        #expect(Array(binary.bytes[n...]) == littleEndian([Float(0.25), -1]) + [3, 0, 0, 0] + Array("cat".utf8) + [3, 0, 0, 0] + Array("dog".utf8))
    }

    @Test func errorAndMetadataBodies() throws {
        let e = try #require(try JSONSerialization.jsonObject(with: Data(V2Codec.errorBody("bad \"input\"\n"))) as? [String: String])
        #expect(e == ["error": "bad \"input\"\n"])
        let mlp = try OnnxModel.load(path: Fixtures.path("mlp.onnx"))
        let meta = V2Codec.encodeModelMetadata(name: "mlp", versions: ["1"], inputs: mlp.inputs, outputs: mlp.outputs)
        let m = try #require(try JSONSerialization.jsonObject(with: Data(meta)) as? [String: Any])
        #expect(m["platform"] as? String == "onnx_onnxv1")
        let ins = try #require(m["inputs"] as? [[String: Any]])
        #expect(ins[0]["name"] as? String == "input" && ins[0]["datatype"] as? String == "FP32" && ins[0]["shape"] as? [Int] == [-1, 16])
    }

    @Test func jsonRequestThroughTheModelMatchesOnnxRuntime() throws {
        let mlp = try OnnxModel.load(path: Fixtures.path("mlp.onnx"))
        let c = try #require(try Fixtures.cases("mlp").last)
        let x = try #require(c.inputs["input"]?.floats)
        let body = #"{"id":"q","inputs":[{"name":"input","shape":[3,16],"datatype":"FP32","data":["#
            + x.map { "\($0)" }.joined(separator: ",") + #"]}],"outputs":[{"name":"output"}]}"#
        let request = try V2Codec.decodeRequest(body: Array(body.utf8))
        let out = try mlp.run(request.tensors, outputs: request.outputNames)
        let encoded = V2Codec.encodeResponse(InferenceResponse(modelName: "mlp", id: request.id,
            outputs: out.map { ResponseOutput(name: $0.key, tensor: $0.value) }))
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(encoded.bytes)) as? [String: Any])
        let outs = try #require(obj["outputs"] as? [[String: Any]])
        #expect(outs.count == 1 && obj["id"] as? String == "q")
        let want = try #require(c.outputs["output"]?["data"] as? [Double])
        expectClose((outs[0]["data"] as! [Double]).map(Float.init), want.map(Float.init), "mlp via V2 JSON")
    }
}
