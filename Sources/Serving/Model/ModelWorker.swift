import CompressNIO
import Foundation
import Gateway
import Inference
import NIOCore
import Store
import Synchronization

/// One loaded instance of a model revision: the in-process worker the gateway hands requests to.
///
/// Requests queue for the instance's own thread, which decodes them, runs the model and encodes
/// the answer, so the gateway's event loops do not wait on inference. With a batcher, the thread
/// takes every request that arrives within `maxLatency` of the first (up to `maxBatchSize`
/// rows), runs them as one batch and splits the outputs; requests that cannot share a batch
/// run alone, and so does every request of a model whose rows are not independent (a Softmax
/// over the batch axis, say: see `OnnxModel.rowsAreIndependent`). Without one, requests that
/// queued up while the model was busy (at most ``queuedBatchLimit``) still run as one batch: none
/// waits for another to arrive, and the model reads its weights once for all of them instead of
/// once each.
///
/// The exception is a short job on an idle instance. A request runs on the calling thread (a
/// gateway event loop) when nothing is queued or running, no run ended in the last
/// ``InlinePolicy/afterIdle``, its body is not compressed, and the last lone request that the
/// model answered successfully took at most ``InlinePolicy/costLimit`` for a body at least half
/// as large. One client at a time then pays no handoff to the instance's thread and back, two
/// cross-CPU wakeups per request on a small host. Under load requests keep queueing for the
/// thread, and a batcher that waits for company always gets them.
final class ModelWorker: LocalUpstream, @unchecked Sendable {
    private struct Job {
        var request: LocalRequest
        var respond: @Sendable (LocalResponse) -> Void
    }

    let endpoint: ModelEndpoint
    private let batcher: ModelBatcher?
    /// Called after the answer to a repository `unload`: frees the model's instances.
    private let unload: @Sendable () -> Void
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [Job] = []
    private var stopping = false
    private var runningOnThread = false
    private var runningInline = false
    /// When the last run ended (uptime nanoseconds).
    private var lastRunEnded: UInt64 = 0
    /// What the last lone request cost, from decoding to the answer (nanoseconds), and its body
    /// size: a much larger request may cost much more.
    private var loneCost = UInt64.max
    private var loneBodyBytes = 0
    /// When a request may run on the calling thread; nil: never.
    private let inline: InlinePolicy?

    struct InlinePolicy: Sendable {
        /// The instance has been idle this long (nanoseconds): under load, one run on an event
        /// loop would hold up its other connections.
        var afterIdle: UInt64
        /// A lone request took at most this long last time (nanoseconds).
        var costLimit: UInt64

        static let standard = InlinePolicy(afterIdle: 100_000, costLimit: 300_000)
    }
    private var thread: Thread?
    /// Model runs so far (a batch counts once).
    let runs = Atomic<Int>(0)

    /// - Parameter inline: when a request may run on the calling thread; never with a batcher
    ///   that waits for other requests.
    init(
        endpoint: ModelEndpoint, batcher: ModelBatcher?, label: String, inline: InlinePolicy? = .standard,
        unload: @escaping @Sendable () -> Void = {}
    ) {
        self.endpoint = endpoint
        self.batcher = batcher
        self.unload = unload
        self.inline = batcher.map { $0.maxBatchSize > 1 } == true ? nil : inline
        let name = String("model-\(label)".utf8.prefix(15)) ?? "model"
        let thread = Thread { [self] in
            Thread.current.name = name
            loop()
        }
        thread.stackSize = 1 << 20
        self.thread = thread
        thread.start()
    }

    // MARK: LocalUpstream

    func handle(_ request: LocalRequest, respond: @escaping @Sendable (LocalResponse) -> Void) {
        condition.lock()
        let now = DispatchTime.now().uptimeNanoseconds
        if stopping {
            condition.unlock()
            respond(Self.localResponse(.error(503, "model \(endpoint.name) is being unloaded; retry")))
            return
        }
        if let inline, jobs.isEmpty, !runningOnThread, !runningInline, loneCost <= inline.costLimit,
           request.body.count <= 2 * loneBodyBytes, now &- lastRunEnded >= inline.afterIdle,
           request.header("content-encoding") == nil {
            runningInline = true
            condition.unlock()
            let answered = run([Job(request: request, respond: respond)])
            let ended = DispatchTime.now().uptimeNanoseconds
            condition.lock()
            runningInline = false
            ranAlone(from: now, to: ended, bodyBytes: request.body.count, answered: answered)
            if !jobs.isEmpty { condition.signal() }
            condition.unlock()
            return
        }
        jobs.append(Job(request: request, respond: respond))
        condition.signal()
        condition.unlock()
    }

    /// Notes a lone request's run (the lock held): when it ended, and what it cost when the
    /// model answered it (an error answered early says nothing about the cost of a good one).
    private func ranAlone(from start: UInt64, to end: UInt64, bodyBytes: Int, answered: Bool) {
        lastRunEnded = end
        guard answered else { return }
        loneCost = end &- start
        loneBodyBytes = bodyBytes
    }

    /// Lets the thread finish what is queued, then end; the model is freed with the last
    /// reference to it.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    // MARK: The instance's thread

    /// Queued requests joined into one run when no batcher is configured.
    static let queuedBatchLimit = 16

    private func loop() {
        while let first = next(waitingUntil: nil) {
            let started = DispatchTime.now().uptimeNanoseconds
            var batch = [first]
            // A model that mixes rows runs each request alone: no window to wait for.
            if let batcher, batcher.maxBatchSize > 1, endpoint.model.rowsAreIndependent {
                let deadline = Date(timeIntervalSinceNow: Double(batcher.maxLatency) / 1000)
                while batch.count < batcher.maxBatchSize, let job = next(waitingUntil: deadline) {
                    batch.append(job)
                }
            } else {
                batch += queued(limit: Self.queuedBatchLimit - 1)
            }
            let answered = run(batch)
            let ended = DispatchTime.now().uptimeNanoseconds
            condition.lock()
            runningOnThread = false
            if batch.count == 1, first.request.header("content-encoding") == nil {
                ranAlone(from: started, to: ended, bodyBytes: first.request.body.count, answered: answered)
            } else {
                lastRunEnded = ended
            }
            condition.unlock()
        }
        thread = nil
    }

    /// The next queued job, once no request runs on a calling thread; waits for one (until
    /// `deadline`, when given). Nil when stopping with nothing queued, or when the deadline passes.
    private func next(waitingUntil deadline: Date?) -> Job? {
        condition.lock()
        defer { condition.unlock() }
        while jobs.isEmpty || runningInline {
            if stopping && jobs.isEmpty { return nil }
            if let deadline {
                if !condition.wait(until: deadline) { return nil }
            } else {
                condition.wait()
            }
        }
        runningOnThread = true
        return jobs.removeFirst()
    }

    /// Up to `limit` jobs that are already queued, without waiting.
    private func queued(limit: Int) -> [Job] {
        condition.lock()
        defer { condition.unlock() }
        let count = min(limit, jobs.count)
        guard count > 0 else { return [] }
        let taken = Array(jobs.prefix(count))
        jobs.removeFirst(count)
        return taken
    }

    /// Decodes, runs and answers `jobs`; true when every answer was a success (below 400).
    @discardableResult
    private func run(_ jobs: [Job]) -> Bool {
        var prepared: [(Job, PreparedInference)] = []
        var unloadAsked = false
        var succeeded = true
        defer { if unloadAsked { unload() } }
        func answer(_ job: Job, _ response: EndpointResponse) {
            if response.status >= 400 { succeeded = false }
            job.respond(Self.localResponse(response))
        }
        for job in jobs {
            var request = job.request
            if let encoding = request.header("content-encoding") {
                switch Self.decode(request.body, encoding: encoding) {
                case .body(let body): request.body = body
                case .refused(let refusal):
                    answer(job, refusal)
                    continue
                }
            }
            switch endpoint.route(
                method: request.method, path: request.path,
                inferenceHeaderLength: request.header("inference-header-content-length"), body: request.body) {
            case .respond(let response):
                answer(job, response)
            case .infer(let call):
                prepared.append((job, call))
            case .unload(let response):
                answer(job, response)
                unloadAsked = true
            }
        }
        if prepared.count > 1, runBatched(prepared) { return succeeded }
        for (job, call) in prepared {
            answer(job, infer(call))
        }
        return succeeded
    }

    /// Runs calls that share input names and row shapes as one batch; false when they cannot be
    /// joined, the model mixes rows, or the joined run fails (then each runs alone and gets its
    /// own answer or error).
    private func runBatched(_ calls: [(Job, PreparedInference)]) -> Bool {
        let rows = calls.map { $0.1.batchRows }
        guard endpoint.model.rowsAreIndependent, !rows.contains(nil), Set(calls.map { Set($0.1.inputs.keys) }).count == 1,
              Set(calls.map { $0.1.outputNames ?? [] }).count == 1 else { return false }
        let names = Array(calls[0].1.inputs.keys)
        do {
            var joined: [String: Tensor] = [:]
            for name in names {
                joined[name] = try Tensor.concatenated(calls.map { $0.1.inputs[name]! })
            }
            runs.add(1, ordering: .relaxed)
            let outputs = try endpoint.model.run(joined, outputs: calls[0].1.outputNames)
            let total = rows.reduce(0) { $0 + $1! }
            guard outputs.values.allSatisfy({ $0.shape.first == total }) else { return false }
            var start = 0
            var answers: [LocalResponse] = []
            for (index, (_, call)) in calls.enumerated() {
                let range = start..<(start + rows[index]!)
                start = range.upperBound
                var mine: [String: Tensor] = [:]
                for (name, tensor) in outputs { mine[name] = try tensor.rows(range) }
                answers.append(Self.localResponse(call.response(outputs: mine)))
            }
            for (answer, (job, _)) in zip(answers, calls) { job.respond(answer) }
            return true
        } catch {
            return false
        }
    }

    /// The largest body a compressed request may expand to: the gateway's limit for a body it
    /// hands to an in-process worker.
    static let maxDecodedBodyBytes = 64 << 20

    /// A request body in `Content-Encoding` gzip or deflate (as `tritonclient` sends with
    /// `request_compression_algorithm`), decoded; an error answer for another coding, corrupt
    /// data, or more than ``maxDecodedBodyBytes``.
    enum DecodedBody {
        case body([UInt8])
        case refused(EndpointResponse)
    }

    static func decode(_ body: [UInt8], encoding: String) -> DecodedBody {
        let coding = encoding.trimmingCharacters(in: .whitespaces).lowercased()
        // HTTP's "deflate" is the zlib format; some clients send raw deflate, tried second.
        let algorithms: [CompressionAlgorithm]
        switch coding {
        case "identity", "": return .body(body)
        case "gzip", "x-gzip": algorithms = [.gzip()]
        case "deflate": algorithms = [.zlib(), .deflate()]
        default:
            return .refused(.error(415, "Content-Encoding \(encoding) is not supported; send gzip, deflate or an uncompressed body"))
        }
        for algorithm in algorithms {
            var buffer = ByteBuffer(bytes: body)
            do {
                var decoded = try buffer.decompress(with: algorithm, maxSize: maxDecodedBodyBytes)
                // Bytes after the end of the stream (a second gzip member, garbage) are refused.
                guard buffer.readableBytes == 0 else { continue }
                return .body(decoded.readBytes(length: decoded.readableBytes) ?? [])
            } catch let error as CompressNIOError where error == .bufferOverflow {
                return .refused(.error(413, "the request body expands to more than \(maxDecodedBodyBytes) bytes"))
            } catch {
                continue
            }
        }
        return .refused(.error(400, "the request body is not valid \(coding) data"))
    }

    private func infer(_ call: PreparedInference) -> EndpointResponse {
        runs.add(1, ordering: .relaxed)
        do {
            return call.response(outputs: try endpoint.model.run(call.inputs, outputs: call.outputNames))
        } catch let error as InferenceError {
            return .error(error)
        } catch {
            return .error(500, "\(error)")
        }
    }

    static func localResponse(_ response: EndpointResponse) -> LocalResponse {
        LocalResponse(
            status: response.status,
            headers: response.headers.map { HeaderField(name: $0.key, value: $0.value) },
            body: response.body)
    }
}
