// InferenceBench: kernel latency of Outpost's ONNX engine, driven by bench/inference/run.py.
//
//   InferenceBench <model.onnx> <inputs-dir> <threads> <seconds> <batch>...
//
// For each batch it reads <inputs-dir>/<batch>.in.f32 (little-endian float32, row-major), runs
// the model once and writes <inputs-dir>/<batch>.<coretype>.out.f32 for the output check, then
// times back-to-back calls on one session for <seconds> and prints one JSON line per batch
// (p50/p99, load time, the OpenBLAS core and the direct convolution kernel's instruction set).
// Model load time is the median of 20 loads.
import Foundation
import Inference

@main
struct InferenceBench {
    static func main() throws {
        let args = CommandLine.arguments
        guard args.count >= 6, let threads = Int(args[3]), let seconds = Double(args[4]) else {
            FileHandle.standardError.write(Data("usage: InferenceBench model.onnx inputs-dir threads seconds batch...\n".utf8))
            exit(2)
        }
        let modelPath = args[1], dir = args[2]
        let batches = args[5...].compactMap { Int($0) }
        BLASRuntime.setThreadCount(threads)
        var loads: [Double] = []
        var model = try OnnxModel.load(path: modelPath)
        for _ in 0..<20 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            model = try OnnxModel.load(path: modelPath)
            loads.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1000)
        }
        loads.sort()
        let input = model.inputs[0], output = model.outputs[0].name
        let session = model.makeSession()
        let environment = ProcessInfo.processInfo.environment
        let tag = (environment["OPENBLAS_CORETYPE"] ?? "auto") + (environment["OUTPOST_GEMM"].map { ".\($0)" } ?? "")
        for batch in batches {
            let raw = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(batch).in.f32"))
            let floats = raw.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            var shape = input.shape
            shape[0] = batch
            let x = try Tensor(shape: shape, floats: floats)
            let y = try session.run([input.name: x], outputs: [output])[output]!.floats!
            try y.withUnsafeBytes { Data($0) }.write(to: URL(fileURLWithPath: "\(dir)/\(batch).\(tag).out.f32"))
            // Warm up, then time every call.
            for _ in 0..<20 { _ = try session.run([input.name: x], outputs: [output]) }
            var samples: [Double] = []
            samples.reserveCapacity(200_000)
            let end = DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1e9)
            while true {
                let t0 = DispatchTime.now().uptimeNanoseconds
                _ = try session.run([input.name: x], outputs: [output])
                let t1 = DispatchTime.now().uptimeNanoseconds
                samples.append(Double(t1 - t0) / 1000)
                if t1 >= end { break }
            }
            samples.sort()
            let p50 = samples[samples.count / 2], p99 = samples[min(samples.count - 1, samples.count * 99 / 100)]
            print("{\"batch\":\(batch),\"threads\":\(threads),\"calls\":\(samples.count),\"p50_us\":\(p50),\"p99_us\":\(p99)," +
                  "\"load_us\":\(loads[loads.count / 2]),\"core\":\"\(BLASRuntime.coreName)\",\"blas_threads\":\(BLASRuntime.threadCount)," +
                  "\"conv_isa\":\"\(KernelRuntime.directConvolution)\",\"gemm\":\"\(KernelRuntime.weightGEMM)\"}")
        }
    }
}
