// PromptText.swift — a text prompt from --prompt or --prompt-file, and the model folder's tokenizer.
import Foundation
import Qwen3

enum PromptText {
    /// The text of exactly one of `--prompt TEXT` and `--prompt-file F` (nil when neither is given);
    /// a file must be UTF-8.
    static func read(prompt: String?, file: String?, textOption: String = "--prompt", fileOption: String = "--prompt-file") throws -> String? {
        switch (prompt, file) {
        case (.some, .some): throw RequestError("give \(textOption) or \(fileOption), not both")
        case (let text?, nil): return text
        case (nil, let path?): return try readUTF8(path, option: fileOption)
        case (nil, nil): return nil
        }
    }

    static func readUTF8(_ path: String, option: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RequestError("\(option) \(path): cannot be read")
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            var valid = 0
            var iterator = data.makeIterator(), parser = Unicode.UTF8.ForwardParser()
            while case .valid(let scalar) = parser.parseScalar(from: &iterator) { valid += scalar.count }
            throw RequestError("\(option) \(path): not valid UTF-8 (first invalid byte at offset \(valid))")
        }
        return text
    }

    /// The folder holding the model (the path itself, or the folder of a checkpoint file).
    static func modelFolder(_ path: String) -> URL {
        var isDirectory: ObjCBool = false
        let url = URL(fileURLWithPath: path)
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
            ? url : url.deletingLastPathComponent()
    }
}
