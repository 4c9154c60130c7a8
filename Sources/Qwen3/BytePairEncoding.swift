// BytePairEncoding.swift — the BPE model: one pre-token's bytes to ids by rank-ordered merges.

/// Byte-level BPE over raw bytes. A pre-token starts as one symbol per byte; the adjacent pair with
/// the lowest merge rank (leftmost on ties) is merged until no pair has a merge, as `tokenizers`
/// does, using a heap of candidate pairs so long pieces (a CJK sentence is one pre-token) stay
/// O(n log n). Results are cached per pre-token.
final class BytePairEncoding {
    /// (left id, right id) -> (rank, merged id).
    private let merges: [UInt64: (rank: Int32, id: Int32)]
    /// The id of each single byte, -1 when the vocabulary lacks it.
    private let byteIds: [Int32]
    /// Whole pre-tokens looked up before merging (`ignore_merges`).
    private let wholeWords: [[UInt8]: Int32]?
    private var cache: [[UInt8]: [Int32]] = [:]
    private static let cacheLimit = 200_000

    init(merges: [UInt64: (rank: Int32, id: Int32)], byteIds: [Int32], wholeWords: [[UInt8]: Int32]?) {
        self.merges = merges
        self.byteIds = byteIds
        self.wholeWords = wholeWords
    }

    static func pairKey(_ left: Int32, _ right: Int32) -> UInt64 { UInt64(UInt32(left)) << 32 | UInt64(UInt32(right)) }

    /// The ids of one pre-token, appended to `out`; nil if a byte has no id in the vocabulary.
    func encode(_ piece: ArraySlice<UInt8>, into out: inout [Int32]) -> Bool {
        let key = Array(piece)
        if let hit = cache[key] {
            out.append(contentsOf: hit)
            return true
        }
        if let id = wholeWords?[key] {
            out.append(id)
            return true
        }
        guard let ids = merge(key) else { return false }
        if cache.count >= Self.cacheLimit { cache.removeAll(keepingCapacity: true) }
        cache[key] = ids
        out.append(contentsOf: ids)
        return true
    }

    private struct Candidate {
        let rank: Int32
        let left: Int32
        let right: Int32
        let leftId: Int32
        let rightId: Int32
        func precedes(_ other: Candidate) -> Bool { rank != other.rank ? rank < other.rank : left < other.left }
    }

    private func merge(_ bytes: [UInt8]) -> [Int32]? {
        let n = bytes.count
        var ids = [Int32](repeating: 0, count: n)
        for i in 0..<n {
            ids[i] = byteIds[Int(bytes[i])]
            if ids[i] < 0 { return nil }
        }
        if n == 1 { return ids }
        // Symbols as a linked list over their first byte's position; a merged-away symbol is dead.
        var next = (0..<n).map { Int32($0 + 1) }, prev = (0..<n).map { Int32($0 - 1) }
        var alive = [Bool](repeating: true, count: n)
        var heap = MinHeap<Candidate> { $0.precedes($1) }
        func consider(_ left: Int32, _ right: Int32) {
            guard right < Int32(n), let merge = merges[Self.pairKey(ids[Int(left)], ids[Int(right)])] else { return }
            heap.push(Candidate(rank: merge.rank, left: left, right: right, leftId: ids[Int(left)], rightId: ids[Int(right)]))
        }
        for i in 0..<(n - 1) { consider(Int32(i), Int32(i + 1)) }
        while let top = heap.pop() {
            let l = Int(top.left), r = Int(top.right)
            // Stale when either symbol has changed since the pair was queued.
            guard alive[l], alive[r], next[l] == top.right, ids[l] == top.leftId, ids[r] == top.rightId,
                  let merged = merges[Self.pairKey(top.leftId, top.rightId)] else { continue }
            ids[l] = merged.id
            alive[r] = false
            next[l] = next[r]
            if next[r] < Int32(n) { prev[Int(next[r])] = Int32(l) }
            if prev[l] >= 0 { consider(prev[l], Int32(l)) }
            consider(Int32(l), next[l])
        }
        var out: [Int32] = []
        var i = 0
        while i < n {
            out.append(ids[i])
            i = Int(next[i])
        }
        return out
    }
}

/// A binary heap ordered by `precedes` (the smallest first).
struct MinHeap<Element> {
    private var items: [Element] = []
    private let precedes: (Element, Element) -> Bool

    init(_ precedes: @escaping (Element, Element) -> Bool) { self.precedes = precedes }

    mutating func push(_ item: Element) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard precedes(items[child], items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Element? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if items.isEmpty { return first }
        items[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < items.count && precedes(items[left], items[smallest]) { smallest = left }
            if right < items.count && precedes(items[right], items[smallest]) { smallest = right }
            if smallest == parent { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return first
    }
}
