#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Decodes ONNX `TensorProto`s (typed fields, `raw_data`, external data) into executor values.
struct TensorDecoder {
    /// The model file's folder; external data `location`s are relative to it.
    let baseDirectory: String?

    func decode(_ t: Onnx_TensorProto, what: String) throws -> Value {
        let dims = t.dims.map { Int($0) }
        if let bad = dims.first(where: { $0 < 0 }) {
            throw InferenceError(.invalidTensor, "\(what): negative dimension \(bad) in \(dims)")
        }
        let count = try checkedCount(dims, what: what)
        guard let type = ElementType(onnx: Int(t.dataType)) else {
            throw InferenceError(.unsupportedAttribute, "\(what): tensor data type \(t.dataType) is not supported")
        }
        var raw: Data? = t.hasRawData ? t.rawData : nil
        if t.dataLocation == .external {
            raw = try externalData(t, what: what)
        }
        var v = Value()
        v.shape = dims
        v.type = type
        if let raw {
            try decodeRaw(raw, into: &v, count: count, what: what)
        } else {
            switch type {
            case .float32: v.f = t.floatData
            case .float64: v.d = t.doubleData
            case .int64: v.i = t.int64Data
            case .int32, .bool, .uint8, .int8: v.i = t.int32Data.map(Int64.init)
            case .string: v.s = t.stringData.map { [UInt8]($0) }
            }
            let got = type == .float32 ? v.f.count : type == .float64 ? v.d.count : type == .string ? v.s.count : v.i.count
            guard got == count else {
                throw InferenceError(.invalidTensor, "\(what): shape \(dims) needs \(count) elements, the tensor holds \(got)")
            }
        }
        return v
    }

    private func decodeRaw(_ raw: Data, into v: inout Value, count: Int, what: String) throws {
        let size: Int
        switch v.type {
        case .float32, .int32: size = 4
        case .float64, .int64: size = 8
        case .bool, .uint8, .int8: size = 1
        case .string: throw InferenceError(.invalidTensor, "\(what): string tensors cannot use raw_data")
        }
        guard raw.count == count * size else {
            throw InferenceError(.invalidTensor, "\(what): shape \(v.shape) needs \(count * size) bytes of raw_data, got \(raw.count)")
        }
        raw.withUnsafeBytes { (p: UnsafeRawBufferPointer) in
            switch v.type {
            case .float32:
                v.f = (0..<count).map { Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
            case .float64:
                v.d = (0..<count).map { Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self))) }
            case .int64:
                v.i = (0..<count).map { Int64(littleEndian: p.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
            case .int32:
                v.i = (0..<count).map { Int64(Int32(littleEndian: p.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self))) }
            case .int8:
                v.i = (0..<count).map { Int64(Int8(bitPattern: p[$0])) }
            case .bool, .uint8:
                v.i = (0..<count).map { Int64(p[$0]) }
            case .string: break
            }
        }
    }

    private func externalData(_ t: Onnx_TensorProto, what: String) throws -> Data {
        var entries: [String: String] = [:]
        for e in t.externalData { entries[e.key] = e.value }
        guard let location = entries["location"], !location.isEmpty else {
            throw InferenceError(.invalidModel, "\(what): external data without a location")
        }
        guard let base = baseDirectory else {
            throw InferenceError(.modelNotReadable, "\(what): external data needs the model's file path (load(path:))")
        }
        if location.hasPrefix("/") || location.split(separator: "/").contains("..") {
            throw InferenceError(.modelNotReadable, "\(what): external data location '\(location)' must stay inside the model's folder")
        }
        let path = base + "/" + location
        let (data, problem) = ModelFile.read(path)
        guard let file = data else {
            throw InferenceError(.modelNotReadable, "\(what): cannot read external data file \(path): \(problem ?? "")")
        }
        let offset = Int(entries["offset"] ?? "0") ?? -1
        let length = entries["length"].map { Int($0) ?? -1 } ?? (file.count - max(offset, 0))
        // Compared without `offset + length`, which can overflow for hostile values.
        guard offset >= 0, length >= 0, offset <= file.count, length <= file.count - offset else {
            throw InferenceError(.invalidTensor, "\(what): external data range offset \(offset) length \(length) exceeds \(path) (\(file.count) bytes)")
        }
        return file.subdata(in: offset..<(offset + length))
    }
}
