// FuzzLoader.swift — feeds arbitrary bytes to the checkpoint parsers: the safetensors header, the
// shard index and config.json. A typed error or a success is fine; a crash, trap or hang is a bug.
// Built with -DFUZZING and -sanitize=fuzzer it is a libFuzzer target (see scripts/fuzz.sh);
// built normally it replays the files named on its command line (the committed corpus).
import Foundation
import Qwen3

func fuzzOne(_ data: Data) {
    data.withUnsafeBytes { raw in
        if let base = raw.baseAddress {
            _ = try? SafetensorsCheckpoint.parse(base, size: raw.count, path: "input")
        }
    }
    _ = try? SafetensorsCheckpoint.shardNames(indexData: data, path: "input")
    _ = try? Qwen3Config.decode(data, path: "input")
}

#if FUZZING
// libFuzzer's driver (from libclang_rt.fuzzer), called from our own entry point.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzerTestOneInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    fuzzOne(count > 0 && bytes != nil ? Data(bytes: bytes!, count: count) : Data())
    return 0
}

// SwiftPM links an executable's entry point as <target>_main; libFuzzer's driver runs from it.
@_cdecl("fuzz_loader_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments, fuzzerTestOneInput)
}
#else
@main
struct ReplayCorpus {
    static func main() throws {
        var files: [String] = []
        for argument in CommandLine.arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory) else {
                FileHandle.standardError.write(Data("fuzz_loader: no such file: \(argument)\n".utf8))
                exit(2)
            }
            if isDirectory.boolValue {
                let names = try FileManager.default.contentsOfDirectory(atPath: argument).sorted()
                files += names.map { argument + "/" + $0 }
            } else {
                files.append(argument)
            }
        }
        for file in files { fuzzOne(try Data(contentsOf: URL(fileURLWithPath: file))) }
        print("replayed \(files.count) inputs")
    }
}
#endif
