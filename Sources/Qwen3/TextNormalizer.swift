// TextNormalizer.swift — the tokenizer's normalizer: Unicode normalization forms, alone or in sequence.
import Foundation

/// The `normalizer` of a tokenizer.json, restricted to the kinds Qwen's files use (NFC) and the
/// other Unicode forms; any other kind is refused when the file is read.
enum TextNormalizer {
    case form(Form)
    case sequence([TextNormalizer])

    enum Form: String { case NFC, NFD, NFKC, NFKD }

    init(json: [String: Any], path: String) throws {
        let type = json["type"] as? String ?? "(none)"
        if let form = Form(rawValue: type) {
            self = .form(form)
        } else if type == "Sequence", let items = json["normalizers"] as? [[String: Any]] {
            self = .sequence(try items.map { try TextNormalizer(json: $0, path: path) })
        } else {
            throw ModelLoadError(path, "normalizer \(type) is not supported (supported: NFC, NFD, NFKC, NFKD, Sequence)")
        }
    }

    func apply(_ text: String) -> String {
        switch self {
        case .sequence(let items): return items.reduce(text) { $1.apply($0) }
        case .form(let form):
            // ASCII is unchanged by every form.
            if text.utf8.allSatisfy({ $0 < 0x80 }) { return text }
            switch form {
            case .NFC: return text.precomposedStringWithCanonicalMapping
            case .NFD: return text.decomposedStringWithCanonicalMapping
            case .NFKC: return text.precomposedStringWithCompatibilityMapping
            case .NFKD: return text.decomposedStringWithCompatibilityMapping
            }
        }
    }
}
