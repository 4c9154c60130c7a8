// TokenizerFile.swift — reads a Hugging Face tokenizer.json into a Tokenizer, refusing what it cannot run.
import Foundation

extension Tokenizer {
    /// The tokenizer.json of a model folder (or of the folder holding a checkpoint file).
    public static func load(modelPath: String) throws -> Tokenizer {
        var folder = URL(fileURLWithPath: modelPath)
        var isDirectory: ObjCBool = false
        if !(FileManager.default.fileExists(atPath: modelPath, isDirectory: &isDirectory) && isDirectory.boolValue) {
            folder = folder.deletingLastPathComponent()
        }
        return try load(file: folder.appendingPathComponent("tokenizer.json").path)
    }

    public static func load(file path: String) throws -> Tokenizer {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ModelLoadError(path, "not found; text in and out needs the model's tokenizer.json (token ids work without one)")
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw ModelLoadError(path, "cannot be read") }
        return try parse(data, path: path)
    }

    /// Builds a tokenizer from tokenizer.json's bytes; every unsupported feature is one error naming it.
    public static func parse(_ data: Data, path: String) throws -> Tokenizer {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ModelLoadError(path, "is not a JSON object (malformed tokenizer.json)")
        }
        guard let model = root["model"] as? [String: Any] else { throw ModelLoadError(path, "has no \"model\" object") }
        guard (model["type"] as? String) == "BPE" else {
            throw ModelLoadError(path, "model type \(model["type"] as? String ?? "(none)") is not supported (only BPE)")
        }
        for key in ["dropout", "continuing_subword_prefix", "end_of_word_suffix"] {
            if let value = model[key], !(value is NSNull), (value as? String) != "" {
                throw ModelLoadError(path, "BPE \(key) is not supported")
            }
        }
        if (model["byte_fallback"] as? Bool) == true { throw ModelLoadError(path, "BPE byte_fallback is not supported") }
        let normalizer = try (root["normalizer"] as? [String: Any]).map { try TextNormalizer(json: $0, path: path) }
        let split = try preTokenizer(root["pre_tokenizer"], path: path)
        try checkByteLevel(root["decoder"], role: "decoder", path: path)
        if let post = root["post_processor"] as? [String: Any] { try checkByteLevel(post, role: "post_processor", path: path) }

        guard let vocab = model["vocab"] as? [String: Any] else { throw ModelLoadError(path, "has no model.vocab") }
        var idBytes: [[UInt8]] = []
        var bytesToId: [[UInt8]: Int32] = [:]
        bytesToId.reserveCapacity(vocab.count)
        func setBytes(_ id: Int, _ bytes: [UInt8]) {
            if id >= idBytes.count { idBytes += Array(repeating: [], count: id + 1 - idBytes.count) }
            idBytes[id] = bytes
        }
        for (token, value) in vocab {
            guard let id = (value as? NSNumber)?.intValue, id >= 0, id < Int(Int32.max) else {
                throw ModelLoadError(path, "model.vocab entry \"\(token)\" has no valid id")
            }
            if let bytes = ByteLevel.decode(token) {
                bytesToId[bytes] = Int32(id)
                setBytes(id, bytes)
            } else {
                setBytes(id, Array(token.utf8))  // outside the byte alphabet: decoded as written, as tokenizers does
            }
        }
        let merges = try parseMerges(model["merges"], bytesToId: bytesToId, path: path)

        var added: [AddedToken] = []
        for entry in root["added_tokens"] as? [[String: Any]] ?? [] {
            guard let content = entry["content"] as? String, let id = (entry["id"] as? NSNumber)?.intValue,
                  id >= 0, id < Int(Int32.max) else {
                throw ModelLoadError(path, "an added_tokens entry lacks its content or id")
            }
            for flag in ["single_word", "lstrip", "rstrip"] where (entry[flag] as? Bool) == true {
                throw ModelLoadError(path, "added token \(content): \(flag) is not supported")
            }
            added.append(AddedToken(content: content, id: Int32(id), special: entry["special"] as? Bool ?? false))
            setBytes(id, ByteLevel.decode(content) ?? Array(content.utf8))
        }
        let byteIds = (0..<256).map { bytesToId[[UInt8($0)]] ?? -1 }
        let ignoreMerges = model["ignore_merges"] as? Bool ?? false
        let bpe = BytePairEncoding(merges: merges, byteIds: byteIds, wholeWords: ignoreMerges ? bytesToId : nil)
        return Tokenizer(addedTokens: added, normalizer: normalizer, split: split, bpe: bpe, idBytes: idBytes)
    }

    /// Merges in either form tokenizer.json uses: "a b" strings or ["a", "b"] pairs; rank = position.
    private static func parseMerges(_ value: Any?, bytesToId: [[UInt8]: Int32], path: String) throws
        -> [UInt64: (rank: Int32, id: Int32)] {
        guard let list = value as? [Any] else { throw ModelLoadError(path, "has no model.merges list") }
        var merges: [UInt64: (rank: Int32, id: Int32)] = [:]
        merges.reserveCapacity(list.count)
        for (rank, item) in list.enumerated() {
            var parts: [String] = []
            if let pair = item as? [String] {
                parts = pair
            } else if let text = item as? String {
                parts = text.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            }
            guard parts.count == 2, let left = ByteLevel.decode(parts[0]), let right = ByteLevel.decode(parts[1]),
                  let leftId = bytesToId[left], let rightId = bytesToId[right], let merged = bytesToId[left + right] else {
                throw ModelLoadError(path, "merge \(rank) (\(item)) is not two vocabulary entries whose join is one")
            }
            let key = BytePairEncoding.pairKey(leftId, rightId)
            if merges[key] == nil { merges[key] = (Int32(rank), merged) }
        }
        return merges
    }

    /// Qwen2/Qwen3's pre-tokenizer: a Sequence of a Split (regex, Isolated) and a ByteLevel without its
    /// own regex or prefix space; a ByteLevel alone (no regex) is accepted too.
    private static func preTokenizer(_ value: Any?, path: String) throws -> RegexSplit? {
        guard let json = value as? [String: Any] else {
            throw ModelLoadError(path, "pre_tokenizer is missing; a byte-level BPE needs ByteLevel")
        }
        let items: [[String: Any]]
        if json["type"] as? String == "Sequence" {
            items = json["pretokenizers"] as? [[String: Any]] ?? []
        } else {
            items = [json]
        }
        var split: RegexSplit?
        var byteLevel = false
        for item in items {
            let type = item["type"] as? String ?? "(none)"
            switch type {
            case "Split" where split == nil && !byteLevel:
                let behavior = item["behavior"] as? String ?? "(none)"
                guard behavior == "Isolated", (item["invert"] as? Bool ?? false) == false else {
                    throw ModelLoadError(path, "pre_tokenizer Split with behavior \(behavior)\((item["invert"] as? Bool) == true ? ", inverted" : "") is not supported (only Isolated)")
                }
                let pattern = item["pattern"] as? [String: Any]
                if let regex = pattern?["Regex"] as? String {
                    split = try RegexSplit(pattern: regex, path: path)
                } else if let literal = pattern?["String"] as? String {
                    split = try RegexSplit(pattern: NSRegularExpression.escapedPattern(for: literal), path: path)
                } else {
                    throw ModelLoadError(path, "pre_tokenizer Split has no Regex or String pattern")
                }
            case "ByteLevel" where !byteLevel:
                if (item["add_prefix_space"] as? Bool) == true || (item["use_regex"] as? Bool ?? true) {
                    throw ModelLoadError(path, "pre_tokenizer ByteLevel with add_prefix_space or use_regex is not supported (Qwen's uses neither)")
                }
                byteLevel = true
            default:
                throw ModelLoadError(path, "pre_tokenizer \(type) is not supported here (supported: Sequence of Split, ByteLevel)")
            }
        }
        guard byteLevel else { throw ModelLoadError(path, "pre_tokenizer has no ByteLevel step; only byte-level BPE is supported") }
        return split
    }

    private static func checkByteLevel(_ value: Any?, role: String, path: String) throws {
        let type = (value as? [String: Any])?["type"] as? String ?? "(none)"
        guard type == "ByteLevel" else { throw ModelLoadError(path, "\(role) \(type) is not supported (only ByteLevel)") }
    }
}
