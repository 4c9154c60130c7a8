// RegexSplit.swift — the `Split` pre-tokenizer: text cut at a regex's matches, each match its own piece.
import Foundation

/// `Split` with behavior `Isolated`: every match of the pattern is a piece, and so is every stretch
/// of text between matches. The pattern is the file's, compiled by ICU (NSRegularExpression), which
/// like the Oniguruma engine of `tokenizers` takes the leftmost match and tries alternatives in order.
struct RegexSplit {
    let pattern: String
    private let regex: NSRegularExpression

    init(pattern: String, path: String) throws {
        self.pattern = pattern
        do {
            regex = try NSRegularExpression(pattern: pattern)
        } catch {
            throw ModelLoadError(path, "the pre-tokenizer's regex does not compile: \(pattern)")
        }
    }

    /// The UTF-8 bytes of each piece of `text`, in order.
    func pieces(of text: String) -> [[UInt8]] {
        let utf16 = Array(text.utf16)
        var pieces: [[UInt8]] = []
        var end = 0
        func add(_ from: Int, _ to: Int) {
            guard to > from else { return }
            pieces.append(Array(String(decoding: utf16[from..<to], as: UTF16.self).utf8))
        }
        regex.enumerateMatches(in: text, range: NSRange(location: 0, length: utf16.count)) { match, _, _ in
            guard let range = match?.range, range.length > 0 else { return }
            add(end, range.location)
            add(range.location, range.location + range.length)
            end = range.location + range.length
        }
        add(end, utf16.count)
        return pieces
    }
}
