// StreamingDecoder.swift — generated ids to text as they arrive, holding back a character cut in two.

/// Turns ids into text one at a time. A token may end inside a multi-byte character (byte-level BPE
/// splits emoji and CJK freely); those trailing bytes are held until the character completes, so
/// the pieces printed join to exactly `Tokenizer.decode` of all the ids.
public struct StreamingDecoder {
    private let tokenizer: Tokenizer
    private var pending: [UInt8] = []

    public init(tokenizer: Tokenizer) { self.tokenizer = tokenizer }

    /// The text that `id` completes (possibly empty).
    public mutating func append(_ id: Int32) -> String {
        pending += tokenizer.bytes(of: id)
        let keep = Self.incompleteSuffixLength(pending)
        let ready = pending[..<(pending.count - keep)]
        let text = String(decoding: ready, as: UTF8.self)
        pending.removeFirst(ready.count)
        return text
    }

    /// Whatever is still held, U+FFFD for an unfinished character.
    public mutating func finish() -> String {
        defer { pending = [] }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Length of the trailing bytes that begin a valid UTF-8 sequence but do not finish it (0 to 3).
    static func incompleteSuffixLength(_ bytes: [UInt8]) -> Int {
        let n = bytes.count
        for back in 1...min(3, max(n, 1)) where back <= n {
            let lead = bytes[n - back]
            if lead & 0xC0 == 0x80 { continue }  // a continuation byte: look further back for the lead
            let length: Int
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0...0xEF: length = 3
            case 0xF0...0xF4: length = 4
            default: length = 1  // ASCII, or a byte that never starts a character
            }
            guard length > back else { return 0 }
            // The second byte's range depends on the lead (no overlongs, surrogates or > U+10FFFF).
            if back >= 2 {
                let second = bytes[n - back + 1]
                let low: UInt8 = lead == 0xE0 ? 0xA0 : lead == 0xF0 ? 0x90 : 0x80
                let high: UInt8 = lead == 0xED ? 0x9F : lead == 0xF4 ? 0x8F : 0xBF
                guard second >= low && second <= high else { return 0 }
            }
            return back
        }
        return 0
    }
}
