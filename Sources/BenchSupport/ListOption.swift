// ListOption.swift — comma-separated option values (`--prompt-len 32,128,512`) for sweeps.
import Qwen3

public enum ListOption {
    /// The items of a comma-separated list, each converted; an empty item or one that does not
    /// convert is an error naming the option and the item. Repeated items are kept once, in order.
    public static func parse<T: Equatable>(_ text: String, option: String, expected: String,
                                           _ convert: (String) -> T?) throws -> [T] {
        var items: [T] = []
        for raw in text.split(separator: ",", omittingEmptySubsequences: false) {
            let item = raw.trimmingCharacters(in: .whitespaces)
            guard !item.isEmpty else { throw RequestError("\(option): empty item in \"\(text)\"") }
            guard let value = convert(item) else {
                throw RequestError("\(option) must be \(expected), got \(item)")
            }
            if !items.contains(value) { items.append(value) }
        }
        return items
    }

    /// Integers, each within `range`.
    public static func integers(_ text: String, option: String, range: ClosedRange<Int>) throws -> [Int] {
        let values = try parse(text, option: option, expected: "an integer or a comma-separated list of integers") { Int($0) }
        for value in values where !range.contains(value) {
            let bound = range.upperBound == Int.max ? "at least \(range.lowerBound)" : "between \(range.lowerBound) and \(range.upperBound)"
            throw RequestError("\(option) must be \(bound), got \(value)")
        }
        return values
    }

    /// Names from a fixed set.
    public static func choices(_ text: String, option: String, from allowed: [String]) throws -> [String] {
        try parse(text, option: option, expected: "one of \(allowed.joined(separator: ", ")) (or a comma-separated list)") {
            allowed.contains($0) ? $0 : nil
        }
    }
}
