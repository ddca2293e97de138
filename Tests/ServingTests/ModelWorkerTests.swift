import CompressNIO
import Foundation
import Gateway
@testable import Inference
import NIOCore
import Store
import SwiftProtobuf
import Synchronization
import Testing
@testable import Serving

@Suite struct ModelWorkerTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("InferenceTests/Fixtures/mlp.onnx").path

    static func request(rows: Int, seed: Float) -> LocalRequest {
        let data = (0..<(rows * 16)).map { String(seed + Float($0) / 100) }.joined(separator: ",")
        let body = #"{"inputs":[{"name":"input","shape":[\#(rows),16],"datatype":"FP32","data":[\#(data)]}]}"#
        return LocalRequest(method: "POST", uri: "/v2/models/mlp/infer", headers: [], body: Array(body.utf8))
    }

    /// Sends every request at once and waits for all answers.
    static func answers(_ worker: ModelWorker, _ requests: [LocalRequest]) async -> [LocalResponse] {
        await withTaskGroup(of: (Int, LocalResponse).self) { group in
            for (index, request) in requests.enumerated() {
                group.addTask {
                    await withCheckedContinuation { continuation in
                        worker.handle(request) { continuation.resume(returning: $0) }
                    }.withIndex(index)
                }
            }
            var results = [LocalResponse?](repeating: nil, count: requests.count)
            for await (index, response) in group { results[index] = response }
            return results.map { $0! }
        }
    }

    /// One request, waiting for its answer before returning (nothing else is queued).
    static func answerAlone(_ worker: ModelWorker, _ request: LocalRequest) -> LocalResponse {
        let answered = DispatchSemaphore(value: 0)
        let answer = Mutex<LocalResponse?>(nil)
        worker.handle(request) { response in
            answer.withLock { $0 = response }
            answered.signal()
        }
        answered.wait()
        return answer.withLock { $0! }
    }

    static func expectSameOutputs(_ expected: [LocalResponse], _ got: [LocalResponse]) {
        for (index, (want, have)) in zip(expected, got).enumerated() {
            #expect(have.status == 200, "\(String(decoding: have.body, as: UTF8.self))")
            let a = Self.outputs(want), b = Self.outputs(have)
            #expect(a.count == (1 + index % 3) * 4 && a.count == b.count)
            #expect(zip(a, b).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($0)) }, "request \(index)")
        }
    }

    static func outputs(_ response: LocalResponse, named name: String = "output") -> [Double] {
        let json = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
        let first = (json?["outputs"] as? [[String: Any]])?.first { $0["name"] as? String == name }
        return (first?["data"] as? [NSNumber])?.map(\.doubleValue) ?? []
    }

    @Test func batcherJoinsConcurrentRequestsAndSplitsTheirRows() async throws {
        let model = try OnnxModel.load(path: Self.fixture)
        let requests = (0..<8).map { Self.request(rows: 1 + $0 % 3, seed: Float($0)) }
        let single = ModelWorker(endpoint: ModelEndpoint(name: "mlp", version: "v1", model: model), batcher: nil, label: "single")
        defer { single.stop() }
        let batched = ModelWorker(
            endpoint: ModelEndpoint(name: "mlp", version: "v1", model: model),
            batcher: ModelBatcher(maxBatchSize: 8, maxLatency: 200), label: "batched")
        defer { batched.stop() }

        let expected = requests.map { Self.answerAlone(single, $0) }
        let got = await Self.answers(batched, requests)
        #expect(single.runs.load(ordering: .relaxed) == 8)
        #expect(batched.runs.load(ordering: .relaxed) < 8, "requests queued together run as fewer batches")
        Self.expectSameOutputs(expected, got)
    }

    /// Without a batcher nothing waits for a later request, but requests that queued while the
    /// model was busy run as one batch, each with its own rows of the answer.
    @Test func withoutABatcherRequestsQueuedWhileBusyRunTogether() throws {
        let model = try OnnxModel.load(path: Self.fixture)
        let worker = ModelWorker(
            endpoint: ModelEndpoint(name: "mlp", version: "v1", model: model), batcher: nil, label: "queued", inline: nil)
        defer { worker.stop() }
        let requests = (0..<8).map { Self.request(rows: 1 + $0 % 3, seed: Float($0)) }
        let expected = requests.map { Self.answerAlone(worker, $0) }
        #expect(worker.runs.load(ordering: .relaxed) == 8)

        // The first answer's callback runs on the model's thread: hold it there while the other
        // seven queue up.
        let entered = DispatchSemaphore(value: 0), gate = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        let got = Mutex<[Int: LocalResponse]>([:])
        for (index, request) in requests.enumerated() {
            done.enter()
            worker.handle(request) { response in
                if index == 0 {
                    entered.signal()
                    gate.wait()
                }
                got.withLock { $0[index] = response }
                done.leave()
            }
            if index == 0 { entered.wait() }
        }
        gate.signal()
        done.wait()
        #expect(worker.runs.load(ordering: .relaxed) == 8 + 2, "the held request ran alone, the seven queued ones together")
        Self.expectSameOutputs(expected, got.withLock { dict in (0..<8).map { dict[$0]! } })
    }

    @Test func aBadRequestInABatchFailsAlone() async throws {
        let model = try OnnxModel.load(path: Self.fixture)
        let worker = ModelWorker(
            endpoint: ModelEndpoint(name: "mlp", version: "v1", model: model),
            batcher: ModelBatcher(maxBatchSize: 4, maxLatency: 200), label: "mixed")
        defer { worker.stop() }
        let bad = LocalRequest(
            method: "POST", uri: "/v2/models/mlp/infer", headers: [],
            body: Array(#"{"inputs":[{"name":"input","shape":[1,15],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]}]}"#.utf8))
        let answers = await Self.answers(worker, [Self.request(rows: 1, seed: 0), bad, Self.request(rows: 2, seed: 1)])
        #expect(answers.map(\.status) == [200, 400, 200])
        #expect(Self.outputs(answers[2]).count == 8)
    }
}

extension ModelWorkerTests {
    /// Answers one request; true when the answer came on the calling thread, before `handle`
    /// returned.
    static func answeredInline(_ worker: ModelWorker, _ request: LocalRequest) -> (LocalResponse, Bool) {
        let caller = pthread_self()
        let answered = DispatchSemaphore(value: 0)
        let answer = Mutex<(LocalResponse, Bool)?>(nil)
        worker.handle(request) { response in
            answer.withLock { $0 = (response, pthread_equal(pthread_self(), caller) != 0) }
            answered.signal()
        }
        answered.wait()
        return answer.withLock { $0! }
    }

    /// After a lone request on the instance's thread (its cost is unknown before), the next one
    /// that finds the instance idle runs on the calling thread, with the same answer; one with
    /// a body over twice as large goes to the thread again, and so does every request when
    /// inline runs are off, the last lone request cost more than the limit, the body is
    /// compressed, the only lone request so far was refused, or a batcher waits for company.
    @Test func aLoneRequestOnAnIdleInstanceRunsOnTheCallingThread() throws {
        let model = try OnnxModel.load(path: Self.fixture)
        // No cost limit to speak of: a debug build decodes slowly.
        let anyCost = ModelWorker.InlinePolicy(afterIdle: 100_000, costLimit: 10_000_000_000)
        let worker = ModelWorker(
            endpoint: ModelEndpoint(name: "mlp", version: "v1", model: model), batcher: nil, label: "inline", inline: anyCost)
        defer { worker.stop() }
        let request = Self.request(rows: 1, seed: 3)
        let (first, firstInline) = Self.answeredInline(worker, request)
        #expect(first.status == 200 && !firstInline, "the first request's cost is unknown: it runs on the instance's thread")
        // The instance's thread notes the end of its run just after answering; on a busy host
        // that can take a while, so a request may still find it running and queue.
        var inline: LocalResponse?
        var sent = 1
        while inline == nil, sent < 200 {
            Thread.sleep(forTimeInterval: 0.002)
            let (answer, onCaller) = Self.answeredInline(worker, request)
            sent += 1
            if onCaller { inline = answer }
        }
        #expect(inline != nil, "no request ran on the calling thread in \(sent - 1) tries")
        if let inline { Self.expectSameOutputs([first], [inline]) }
        #expect(worker.runs.load(ordering: .relaxed) == sent)
        Thread.sleep(forTimeInterval: 0.002)
        let (_, largerInline) = Self.answeredInline(worker, Self.request(rows: 8, seed: 3))
        #expect(!largerInline, "a body over twice as large goes to the thread")
        // A compressed body may expand to far more than it looks.
        var gzipped = request
        var buffer = ByteBuffer(bytes: request.body)
        var compressed = try buffer.compress(with: .gzip())
        gzipped.body = compressed.readBytes(length: compressed.readableBytes) ?? []
        gzipped.headers.append(HeaderField(name: "Content-Encoding", value: "gzip"))
        for _ in 0..<3 {
            Thread.sleep(forTimeInterval: 0.002)
            let (answer, onCaller) = Self.answeredInline(worker, gzipped)
            #expect(answer.status == 200 && !onCaller, "a compressed body goes to the thread")
        }

        // An error answer says nothing about what a good request costs: after a refused one,
        // the next request still goes to the thread.
        let fresh = ModelWorker(endpoint: ModelEndpoint(name: "mlp", version: "v1", model: model), batcher: nil, label: "refused", inline: anyCost)
        defer { fresh.stop() }
        var bad = request
        bad.body = Array(String(decoding: request.body, as: UTF8.self).replacingOccurrences(of: "FP32", with: "FP99").utf8)
        #expect(Self.answeredInline(fresh, bad).0.status == 400)
        Thread.sleep(forTimeInterval: 0.002)
        #expect(!Self.answeredInline(fresh, request).1, "no good lone request was measured yet")

        let cases: [(String, ModelWorker.InlinePolicy?, ModelBatcher?)] = [
            ("off", nil, nil), ("over the cost limit", ModelWorker.InlinePolicy(afterIdle: 100_000, costLimit: 0), nil),
            ("batcher", anyCost, ModelBatcher(maxBatchSize: 4, maxLatency: 1)),
        ]
        for (label, inline, batcher) in cases {
            let other = ModelWorker(
                endpoint: ModelEndpoint(name: "mlp", version: "v1", model: model), batcher: batcher, label: label, inline: inline)
            defer { other.stop() }
            for _ in 0..<3 {
                Thread.sleep(forTimeInterval: 0.002)
                #expect(!Self.answeredInline(other, request).1, "\(label)")
            }
        }
    }

    /// A repository `unload` is answered first; the unload runs after the answer, once.
    @Test func unloadIsAnsweredThenRequested() throws {
        let model = try OnnxModel.load(path: Self.fixture)
        let order = Mutex<[String]>([])
        let unloaded = DispatchSemaphore(value: 0)
        let worker = ModelWorker(
            endpoint: ModelEndpoint(name: "mlp", version: "v1", model: model), batcher: nil, label: "unload",
            unload: {
                order.withLock { $0.append("unload") }
                unloaded.signal()
            })
        defer { worker.stop() }
        let ready = Self.answerAlone(worker, LocalRequest(method: "GET", uri: "/v2/models/mlp/ready", headers: [], body: []))
        #expect(ready.status == 200)
        #expect(order.withLock { $0 }.isEmpty, "other requests unload nothing")
        worker.handle(LocalRequest(method: "POST", uri: "/v2/repository/models/mlp/unload", headers: [], body: [])) { response in
            order.withLock { $0.append("answer \(response.status)") }
        }
        #expect(unloaded.wait(timeout: .now() + 10) == .success)
        Thread.sleep(forTimeInterval: 0.05)
        #expect(order.withLock { $0 } == ["answer 200", "unload"], "answered first, unloaded once")
    }

    /// Bodies in Content-Encoding gzip or deflate (tritonclient's request compression) answer
    /// as the plain body does; other codings and corrupt data are refused.
    @Test func compressedRequestBodiesAreDecoded() throws {
        let model = try OnnxModel.load(path: Self.fixture)
        let worker = ModelWorker(endpoint: ModelEndpoint(name: "mlp", version: "v1", model: model), batcher: nil, label: "gzip")
        defer { worker.stop() }
        let plain = Self.request(rows: 2, seed: 3)
        let expected = Self.outputs(Self.answerAlone(worker, plain))
        #expect(expected.count == 8)
        for (algorithm, coding) in [(CompressionAlgorithm.gzip(), "gzip"), (.zlib(), "deflate")] {
            var buffer = ByteBuffer(bytes: plain.body)
            var compressed = try buffer.compress(with: algorithm)
            var request = plain
            request.body = compressed.readBytes(length: compressed.readableBytes) ?? []
            request.headers.append(HeaderField(name: "Content-Encoding", value: coding))
            let answer = Self.answerAlone(worker, request)
            #expect(answer.status == 200, "\(String(decoding: answer.body, as: UTF8.self))")
            #expect(Self.outputs(answer) == expected)
        }
        var brotli = plain
        brotli.headers.append(HeaderField(name: "Content-Encoding", value: "br"))
        #expect(Self.answerAlone(worker, brotli).status == 415)
        var trailing = plain
        var gzipped = ByteBuffer(bytes: plain.body)
        var compressed = try gzipped.compress(with: .gzip())
        trailing.body = (compressed.readBytes(length: compressed.readableBytes) ?? []) + Array("xx".utf8)
        trailing.headers.append(HeaderField(name: "Content-Encoding", value: "gzip"))
        #expect(Self.answerAlone(worker, trailing).status == 400, "bytes after the gzip stream")
        var corrupt = plain
        corrupt.headers.append(HeaderField(name: "Content-Encoding", value: "gzip"))
        #expect(Self.answerAlone(worker, corrupt).status == 400, "an uncompressed body labelled gzip")
    }

    /// `y = Softmax(x, axis=0)` on x of shape [N, 3]: each answer depends on every row of the run.
    static func softmaxOverRows() throws -> OnnxModel {
        var model = Onnx_ModelProto()
        model.irVersion = 8
        var opset = Onnx_OperatorSetIdProto()
        opset.version = 17
        model.opsetImport = [opset]
        var node = Onnx_NodeProto()
        node.opType = "Softmax"
        node.input = ["x"]
        node.output = ["y"]
        var axis = Onnx_AttributeProto()
        axis.name = "axis"
        axis.type = .int
        axis.i = 0
        node.attribute = [axis]
        model.graph.node = [node]
        var input = Onnx_ValueInfoProto()
        input.name = "x"
        input.type.tensorType.elemType = 1
        var batch = Onnx_TensorShapeProto.Dimension()
        batch.dimParam = "N"
        var width = Onnx_TensorShapeProto.Dimension()
        width.dimValue = 3
        input.type.tensorType.shape.dim = [batch, width]
        model.graph.input = [input]
        var output = Onnx_ValueInfoProto()
        output.name = "y"
        model.graph.output = [output]
        return try OnnxModel(bytes: try model.serializedBytes())
    }

    /// Requests to a model that mixes rows are never joined, with a batcher or without one: each
    /// gets the answer it gets alone (a one-row Softmax over the rows is all ones).
    @Test(arguments: [true, false])
    func aModelThatMixesRowsRunsEachRequestAlone(withBatcher: Bool) async throws {
        let model = try Self.softmaxOverRows()
        #expect(!model.rowsAreIndependent)
        let worker = ModelWorker(
            endpoint: ModelEndpoint(name: "sm", version: "v1", model: model),
            batcher: withBatcher ? ModelBatcher(maxBatchSize: 8, maxLatency: 200) : nil, label: "mixing")
        defer { worker.stop() }
        let requests = (0..<6).map { i in
            LocalRequest(method: "POST", uri: "/v2/models/sm/infer", headers: [],
                         body: Array(#"{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[\#(i),1,2]}]}"#.utf8))
        }
        let answers = await Self.answers(worker, requests)
        #expect(worker.runs.load(ordering: .relaxed) == 6)
        for (index, answer) in answers.enumerated() {
            #expect(answer.status == 200)
            #expect(Self.outputs(answer, named: "y") == [1, 1, 1], "request \(index): \(String(decoding: answer.body, as: UTF8.self))")
        }
    }
}

extension LocalResponse {
    fileprivate func withIndex(_ index: Int) -> (Int, LocalResponse) { (index, self) }
}
