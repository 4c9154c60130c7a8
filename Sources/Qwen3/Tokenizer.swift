// Tokenizer.swift — text to token ids and back, as Hugging Face `tokenizers` does for byte-level BPE.
import Foundation

/// A token listed in `added_tokens`: matched in the raw text before anything else, never merged.
public struct AddedToken: Equatable, Sendable {
    public let content: String
    public let id: Int32
    /// Special tokens (`<|im_end|>`) are control tokens; others (`<think>`) are ordinary text.
    public let special: Bool
}

/// A byte-level BPE tokenizer read from a tokenizer.json. Encoding: split the text on added tokens
/// (longest match first), normalize each remaining stretch, cut it into pre-tokens with the file's
/// regex, and run BPE over each pre-token's bytes. Decoding: each id's bytes (an added token's
/// content as written), joined, then read as UTF-8 with U+FFFD for invalid sequences.
public final class Tokenizer {
    public let addedTokens: [AddedToken]
    /// One past the largest id, counting added tokens.
    public let idCount: Int
    let normalizer: TextNormalizer?
    let split: RegexSplit?
    let bpe: BytePairEncoding
    /// Each id's bytes (empty for ids the file does not define).
    let idBytes: [[UInt8]]
    /// Added tokens by their first byte, longest first.
    private let addedByFirstByte: [UInt8: [(bytes: [UInt8], id: Int32)]]
    private let addedIds: [Int32: AddedToken]

    init(addedTokens: [AddedToken], normalizer: TextNormalizer?, split: RegexSplit?, bpe: BytePairEncoding,
         idBytes: [[UInt8]]) {
        self.addedTokens = addedTokens
        self.normalizer = normalizer
        self.split = split
        self.bpe = bpe
        self.idBytes = idBytes
        idCount = idBytes.count
        var byFirst: [UInt8: [(bytes: [UInt8], id: Int32)]] = [:]
        for token in addedTokens where !token.content.isEmpty {
            let bytes = Array(token.content.utf8)
            byFirst[bytes[0], default: []].append((bytes, token.id))
        }
        addedByFirstByte = byFirst.mapValues { $0.sorted { $0.bytes.count > $1.bytes.count } }
        addedIds = Dictionary(addedTokens.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The id of an added token by its content (`<|im_end|>`), if the file has it.
    public func addedTokenId(_ content: String) -> Int32? { addedTokens.first { $0.content == content }?.id }

    public func isSpecial(_ id: Int32) -> Bool { addedIds[id]?.special ?? false }

    // MARK: encoding

    /// The token ids of `text`.
    public func encode(_ text: String) throws -> [Int32] {
        var ids: [Int32] = []
        let bytes = Array(text.utf8)
        var start = 0, i = 0
        while i < bytes.count {
            if let candidates = addedByFirstByte[bytes[i]],
               let match = candidates.first(where: { bytes.count - i >= $0.bytes.count && bytes[i..<(i + $0.bytes.count)].elementsEqual($0.bytes) }) {
                try encodeText(bytes[start..<i], into: &ids)
                ids.append(match.id)
                i += match.bytes.count
                start = i
            } else {
                i += 1
            }
        }
        try encodeText(bytes[start..<bytes.count], into: &ids)
        return ids
    }

    /// Text between added tokens: normalized, pre-tokenized, each pre-token through BPE.
    private func encodeText(_ bytes: ArraySlice<UInt8>, into ids: inout [Int32]) throws {
        guard !bytes.isEmpty else { return }
        var text = String(decoding: bytes, as: UTF8.self)
        if let normalizer { text = normalizer.apply(text) }
        let pieces = split?.pieces(of: text) ?? [Array(text.utf8)]
        for piece in pieces where !piece.isEmpty {
            guard bpe.encode(piece[...], into: &ids) else {
                throw RequestError("the tokenizer's vocabulary lacks a byte of \"\(String(decoding: piece, as: UTF8.self))\"")
            }
        }
    }

    // MARK: decoding

    /// The bytes of one id: an added token's content, a vocabulary entry's bytes; empty if undefined.
    public func bytes(of id: Int32) -> [UInt8] {
        guard id >= 0 && Int(id) < idBytes.count else { return [] }
        return idBytes[Int(id)]
    }

    /// The text of `ids`; invalid UTF-8 (ids that cut a character apart) becomes U+FFFD, as
    /// `tokenizers` decodes. Ids the tokenizer does not define are skipped, as there.
    public func decode(_ ids: [Int32], skipSpecial: Bool = false) -> String {
        var bytes: [UInt8] = []
        for id in ids where !(skipSpecial && isSpecial(id)) { bytes += self.bytes(of: id) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
