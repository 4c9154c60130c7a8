// SafetensorsWriter.swift — writes safetensors files tensor by tensor (synthetic checkpoints, tests).
import CKernels
import Foundation

/// One tensor to write: its name, element type, shape, and a function that fills its values
/// `count` at a time starting at element `offset`.
public struct TensorSpec {
    public let name: String
    public let dtype: TensorDType
    public let shape: [Int]
    public let fill: (_ offset: Int, _ values: UnsafeMutableBufferPointer<Float>) -> Void

    public init(name: String, dtype: TensorDType, shape: [Int],
                fill: @escaping (_ offset: Int, _ values: UnsafeMutableBufferPointer<Float>) -> Void) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.fill = fill
    }

    var byteCount: Int { shape.reduce(1, *) * dtype.byteSize }
}

public enum SafetensorsWriter {
    /// Writes `tensors` to `path` in order; values are produced in chunks, so a checkpoint of any
    /// size streams through a few megabytes of memory.
    public static func write(_ tensors: [TensorSpec], to path: String, metadata: [String: String] = [:]) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for t in tensors {
            header[t.name] = ["dtype": t.dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + t.byteCount]]
            offset += t.byteCount
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // The data section starts 8-byte aligned, as the reference implementation pads it.
        while (8 + json.count) % 8 != 0 { json.append(UInt8(ascii: " ")) }

        guard let file = fopen(path, "wb") else {
            throw ModelLoadError(path, "cannot create (\(String(cString: strerror(errno))))")
        }
        defer { fclose(file) }
        var length = UInt64(json.count).littleEndian
        var ok = fwrite(&length, 8, 1, file) == 1
        ok = ok && json.withUnsafeBytes { fwrite($0.baseAddress, 1, json.count, file) } == json.count

        let chunk = 1 << 20
        let floats = UnsafeMutableBufferPointer<Float>.allocate(capacity: chunk)
        let halves = UnsafeMutableBufferPointer<UInt16>.allocate(capacity: chunk)
        defer { floats.deallocate(); halves.deallocate() }
        for t in tensors where ok {
            let count = t.shape.reduce(1, *)
            var start = 0
            while start < count && ok {
                let n = min(chunk, count - start)
                let part = UnsafeMutableBufferPointer(rebasing: floats[0..<n])
                t.fill(start, part)
                switch t.dtype {
                case .f32:
                    ok = fwrite(part.baseAddress, 4, n, file) == n
                case .bf16:
                    ck_convert_f32_to_bf16(part.baseAddress, halves.baseAddress, n)
                    ok = fwrite(halves.baseAddress, 2, n, file) == n
                case .f16:
                    for i in 0..<n { halves[i] = Float16(part[i]).bitPattern }
                    ok = fwrite(halves.baseAddress, 2, n, file) == n
                }
                start += n
            }
        }
        if !ok || fflush(file) != 0 {
            throw ModelLoadError(path, "write failed (\(String(cString: strerror(errno))))")
        }
    }
}
