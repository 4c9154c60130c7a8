// NPYWriter.swift — writes float32 arrays as NumPy .npy (format 1.0, little-endian, C order).
import Foundation

public enum NPYWriter {
    /// Writes `values` with `shape` to `path`, replacing it atomically: a failed write leaves no file.
    public static func write(_ values: UnsafeBufferPointer<Float>, shape: [Int], to path: String) throws {
        guard shape.reduce(1, *) == values.count else {
            throw RequestError("cannot write \(path): \(values.count) values do not fill shape \(shape)")
        }
        let dims = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(dims), }"
        // Magic (6) + version (2) + length (2) + header must be a multiple of 64, ending in '\n'.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        values.withMemoryRebound(to: UInt8.self) { data.append(contentsOf: $0) }
        do {
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw RequestError("cannot write \(path): \((error as NSError).localizedDescription)")
        }
    }
}
