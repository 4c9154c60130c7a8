// Safetensors.swift — memory-maps safetensors checkpoints (one file or sharded) and validates every header.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Element types a checkpoint may store; all are converted to float32 at load.
public enum TensorDType: String, Sendable {
    case f32 = "F32", bf16 = "BF16", f16 = "F16"

    public var byteSize: Int { self == .f32 ? 4 : 2 }
}

/// One tensor inside a mapped file: its type, shape and bytes (valid while the file is open).
public struct TensorView {
    public let name: String
    public let dtype: TensorDType
    public let shape: [Int]
    public let data: UnsafeRawPointer
    public let path: String

    public var elementCount: Int { shape.reduce(1, *) }
}

/// A read-only memory mapping of one file, unmapped on deinit.
final class MappedFile {
    let path: String
    let base: UnsafeRawPointer
    let size: Int

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw ModelLoadError(path, "cannot open (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) != 0 { throw ModelLoadError(path, "cannot stat (\(String(cString: strerror(errno))))") }
        if (info.st_mode & S_IFMT) != S_IFREG { throw ModelLoadError(path, "is not a regular file") }
        size = Int(info.st_size)
        if size < 8 { throw ModelLoadError(path, "is not a safetensors file (\(size) bytes, shorter than its 8-byte header length)") }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw ModelLoadError(path, "cannot map (\(String(cString: strerror(errno))))")
        }
        base = UnsafeRawPointer(mapped)
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), size) }
}

/// A checkpoint: the tensors of one safetensors file, or of every shard named by an index.
public final class SafetensorsCheckpoint {
    private var files: [MappedFile] = []
    public private(set) var tensors: [String: TensorView] = [:]

    /// Largest header accepted: real headers are tens of kilobytes; a bigger one is corruption.
    static let maxHeaderBytes = 100 << 20

    /// Opens `path`: a `.safetensors` file, a `model.safetensors.index.json`, or a folder with either.
    public init(path: String) throws {
        for file in try Self.resolveFiles(path) {
            try add(file: file)
        }
    }

    public func tensor(_ name: String) -> TensorView? { tensors[name] }

    static func resolveFiles(_ path: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ModelLoadError(path, "no such file or directory")
        }
        if isDirectory.boolValue {
            let folder = URL(fileURLWithPath: path)
            let single = folder.appendingPathComponent("model.safetensors").path
            let index = folder.appendingPathComponent("model.safetensors.index.json").path
            if FileManager.default.fileExists(atPath: single) { return [single] }
            if FileManager.default.fileExists(atPath: index) { return try shardFiles(index: index) }
            throw ModelLoadError(path, "folder has neither model.safetensors nor model.safetensors.index.json")
        }
        if path.hasSuffix(".index.json") { return try shardFiles(index: path) }
        return [path]
    }

    /// The distinct shard files an index's weight_map points to, each checked to exist.
    static func shardFiles(index: String) throws -> [String] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: index)) } catch {
            throw ModelLoadError(index, "cannot read the shard index")
        }
        let folder = URL(fileURLWithPath: index).deletingLastPathComponent()
        return try shardNames(indexData: data, path: index).map { name in
            let shard = folder.appendingPathComponent(name).path
            guard FileManager.default.fileExists(atPath: shard) else {
                throw ModelLoadError(shard, "shard named by \(index) is missing")
            }
            return shard
        }
    }

    /// The distinct file names of a `model.safetensors.index.json`, sorted.
    public static func shardNames(indexData data: Data, path: String) throws -> [String] {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let weightMap = object["weight_map"] as? [String: Any] else {
            throw ModelLoadError(path, "shard index is not JSON with a \"weight_map\" object")
        }
        var shards: Set<String> = []
        for (tensor, value) in weightMap {
            guard let name = value as? String, !name.isEmpty, !name.contains("/"), name != "..", name != "." else {
                throw ModelLoadError(path, "weight_map entry for \(tensor) is not a file name in the same folder")
            }
            shards.insert(name)
        }
        if shards.isEmpty { throw ModelLoadError(path, "weight_map is empty") }
        return shards.sorted()
    }

    private func add(file path: String) throws {
        let file = try MappedFile(path: path)
        files.append(file)
        for (name, view) in try Self.parse(file.base, size: file.size, path: path) {
            if tensors[name] != nil { throw ModelLoadError(path, "tensor \(name) appears in more than one file") }
            tensors[name] = view
        }
    }

    /// The raw keys of a JSON object's top level, in order and with duplicates, for text that
    /// JSONSerialization has accepted as an object.
    static func topLevelKeys(_ json: Data) -> [[UInt8]] {
        var keys: [[UInt8]] = []
        var depth = 0, inString = false, escaped = false
        var current: [UInt8] = [], candidate: [UInt8]?
        for byte in json {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true }
                else if byte == UInt8(ascii: "\"") { inString = false; if depth == 1 { candidate = current }; continue }
                if depth == 1 { current.append(byte) }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true; current = []
            case UInt8(ascii: ":"): if depth == 1, let key = candidate { keys.append(key) }; candidate = nil
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1; candidate = nil
            case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1; candidate = nil
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"): break
            default: candidate = nil
            }
        }
        return keys
    }

    /// Validates the header of a safetensors file held in `size` bytes at `base` and returns its
    /// tensors (views into those bytes).
    public static func parse(_ base: UnsafeRawPointer, size: Int, path: String) throws -> [String: TensorView] {
        func fail(_ problem: String) -> ModelLoadError { ModelLoadError(path, problem) }
        if size < 8 {
            throw fail("is not a safetensors file (\(size) bytes, shorter than its 8-byte header length)")
        }
        let headerLength = Int(clamping: base.loadUnaligned(as: UInt64.self).littleEndian)
        if headerLength > maxHeaderBytes || headerLength > size - 8 {
            throw fail("is not a safetensors file: header length \(headerLength) exceeds the file (\(size) bytes)")
        }
        let headerBytes = Data(bytes: base + 8, count: headerLength)
        guard String(data: headerBytes, encoding: .utf8) != nil,
              let header = try? JSONSerialization.jsonObject(with: headerBytes) as? [String: Any] else {
            throw fail("is not a safetensors file: header is not a UTF-8 JSON object")
        }
        // JSONSerialization keeps one of two equal keys silently; which tensor would be read?
        var seen: Set<[UInt8]> = []
        for key in topLevelKeys(headerBytes) where !seen.insert(key).inserted {
            throw fail("tensor \(String(decoding: key, as: UTF8.self)) appears twice in the header")
        }
        let dataStart = 8 + headerLength
        let dataSize = size - dataStart
        var tensors: [String: TensorView] = [:]
        var extents: [(begin: Int, end: Int, name: String)] = []

        for (name, value) in header where name != "__metadata__" {
            guard let entry = value as? [String: Any],
                  let dtypeName = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int],
                  let offsets = entry["data_offsets"] as? [Int], offsets.count == 2 else {
                throw fail("tensor \(name) has a malformed header entry")
            }
            guard let dtype = TensorDType(rawValue: dtypeName) else {
                throw fail("tensor \(name) has dtype \(dtypeName); supported: F32, BF16, F16")
            }
            if shape.contains(where: { $0 < 0 }) { throw fail("tensor \(name) has a negative dimension") }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end, end <= dataSize else {
                throw fail("tensor \(name) data_offsets [\(begin), \(end)] lie outside the data (\(dataSize) bytes)")
            }
            let (count, overflow) = shape.reduce((1, false)) { acc, d in
                let (p, o) = acc.0.multipliedReportingOverflow(by: d)
                return (p, acc.1 || o)
            }
            let (bytes, bytesOverflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
            if overflow || bytesOverflow || bytes != end - begin {
                throw fail("tensor \(name) shape \(shape) of \(dtype.rawValue) does not match its \(end - begin) bytes")
            }
            tensors[name] = TensorView(name: name, dtype: dtype, shape: shape, data: base + dataStart + begin, path: path)
            extents.append((begin, end, name))
        }
        extents.sort { $0.begin < $1.begin }
        for (a, b) in zip(extents, extents.dropFirst()) where b.begin < a.end && b.begin != b.end {
            throw fail("tensors \(a.name) and \(b.name) overlap in the file")
        }
        return tensors
    }
}
