// SplitPlans.swift — attention split over MPI ranks: by KV heads, by zig-zag query chunks (prefill),
// or by contiguous cache slices merged as partial softmax states (decode).
import BenchSupport
import Foundation
import Qwen3

/// One rank's part of a split problem. Buffers are set up once; `step` is what is timed.
protocol SplitPlan {
    /// Floats of scratch this rank's attention uses.
    var scratchFloats: Int { get }
    /// The local attention, when it is not the --kernel.
    var localKernel: String? { get }
    /// Local attention and its communication.
    func step()
    /// The full output (tokens, heads, headDim) on every rank after a step (untimed).
    func gatherOutput() throws -> UnsafePointer<Float>
}

/// `n` items in `parts` contiguous ranges, as even as possible.
func evenRanges(_ n: Int, parts: Int) -> [Range<Int>] {
    (0..<parts).map { ($0 * n / parts)..<(($0 + 1) * n / parts) }
}

/// Each rank takes a contiguous share of the KV heads and the query heads that read them, runs
/// attention on them, and the outputs are all-gathered so every rank has the whole output.
final class HeadSplit: SplitPlan {
    let p: Problem, kind: AttentionKind, threads: Int, comm: Communicator, kernels: AttentionKernels
    let kvHeads: Range<Int>
    let headRanges: [Range<Int>]
    let counts: [Int]
    let localQ: FloatBuffer, localOut: FloatBuffer, scratch: FloatBuffer, gathered: FloatBuffer, out: FloatBuffer
    var localKernel: String? { nil }
    var scratchFloats: Int { scratch.count }

    init(problem p: Problem, kind: AttentionKind, threads: Int, comm: Communicator, kernels: AttentionKernels) throws {
        (self.p, self.kind, self.threads, self.comm, self.kernels) = (p, kind, threads, comm, kernels)
        let s = p.shape, d = s.headDim, group = s.group, t = p.tokens
        let kvRanges = evenRanges(s.kvHeads, parts: comm.size)
        kvHeads = kvRanges[comm.rank]
        headRanges = kvRanges.map { ($0.lowerBound * group)..<($0.upperBound * group) }
        counts = headRanges.map { t * $0.count * d }
        let mine = headRanges[comm.rank]
        localQ = try FloatBuffer(count: t * mine.count * d)
        for i in 0..<t {  // (T, heads, D) -> (T, my heads, D): this rank's q projection
            (localQ.pointer + i * mine.count * d).update(from: p.query + (i * s.heads + mine.lowerBound) * d, count: mine.count * d)
        }
        localOut = try FloatBuffer(count: t * mine.count * d)
        scratch = try FloatBuffer(count: AttentionKernels.scratchFloats(kind, tokens: t, pos0: p.pos0, headDim: d,
                                                                          group: s.group, slots: threads))
        gathered = try FloatBuffer(count: p.outputFloats)
        out = try FloatBuffer(count: p.outputFloats)
    }

    func step() {
        let s = p.shape, d = s.headDim, t = p.tokens, cacheOffset = kvHeads.lowerBound * p.seqLen * d
        kernels.run(kind, q: localQ.pointer, keys: p.inputs.keys.pointer + cacheOffset,
                    values: p.inputs.values.pointer + cacheOffset, out: localOut.pointer, tokens: t, pos0: p.pos0,
                    heads: headRanges[comm.rank].count, kvHeads: kvHeads.count, headDim: d, capacity: p.seqLen,
                    scale: p.scale, scratch: scratch.pointer, slots: threads)
        comm.allGather(localOut.pointer, into: gathered.pointer, counts: counts)
        var offset = 0  // (rank, T, its heads, D) -> (T, heads, D)
        for (r, heads) in headRanges.enumerated() {
            for i in 0..<t {
                (out.pointer + (i * s.heads + heads.lowerBound) * d).update(from: gathered.pointer + offset + i * heads.count * d,
                                                                           count: heads.count * d)
            }
            offset += counts[r]
        }
    }

    func gatherOutput() throws -> UnsafePointer<Float> { UnsafePointer(out.pointer) }
}

/// Prefill split by query tokens, zig-zag: the prompt is cut into 2P chunks and rank r owns chunks
/// r and 2P-1-r (an early, cheap one and a late, costly one: equal causal work). Each rank holds the
/// K/V rows of its own tokens; they are all-gathered into a full cache, then each rank runs
/// attention for its chunks (queries at pos0 = the chunk's start over the keys before its end).
final class SequencePrefill: SplitPlan {
    let p: Problem, kind: AttentionKind, threads: Int, comm: Communicator, kernels: AttentionKernels
    let owned: [[Range<Int>]]  // per rank, its two chunks of tokens
    let kvCounts: [Int]
    let sendKeys: FloatBuffer, sendValues: FloatBuffer      // (kvHeads, my tokens, D)
    let received: FloatBuffer                               // (rank, kvHeads, its tokens, D)
    let cacheKeys: FloatBuffer, cacheValues: FloatBuffer    // (kvHeads, S, D)
    let localOut: FloatBuffer                               // (my tokens, heads, D)
    let scratch: FloatBuffer
    var localKernel: String? { nil }
    var scratchFloats: Int { scratch.count }

    init(problem p: Problem, kind: AttentionKind, threads: Int, comm: Communicator, kernels: AttentionKernels) throws {
        (self.p, self.kind, self.threads, self.comm, self.kernels) = (p, kind, threads, comm, kernels)
        let s = p.shape, d = s.headDim, n = p.seqLen, ranks = comm.size
        let chunks = evenRanges(n, parts: 2 * ranks)
        owned = (0..<ranks).map { [chunks[$0], chunks[2 * ranks - 1 - $0]] }
        let tokens = owned.map { $0.reduce(0) { $0 + $1.count } }
        kvCounts = tokens.map { s.kvHeads * $0 * d }
        let mine = owned[comm.rank], myTokens = tokens[comm.rank]
        sendKeys = try FloatBuffer(count: kvCounts[comm.rank])
        sendValues = try FloatBuffer(count: kvCounts[comm.rank])
        for kv in 0..<s.kvHeads {  // this rank's own K/V rows, as its k/v projections would give them
            var row = 0
            for chunk in mine {
                let from = (kv * n + chunk.lowerBound) * d, to = (kv * myTokens + row) * d
                (sendKeys.pointer + to).update(from: p.inputs.keys.pointer + from, count: chunk.count * d)
                (sendValues.pointer + to).update(from: p.inputs.values.pointer + from, count: chunk.count * d)
                row += chunk.count
            }
        }
        received = try FloatBuffer(count: s.kvHeads * n * d)
        cacheKeys = try FloatBuffer(count: s.kvHeads * n * d)
        cacheValues = try FloatBuffer(count: s.kvHeads * n * d)
        localOut = try FloatBuffer(count: myTokens * s.heads * d)
        let most = mine.map {
            AttentionKernels.scratchFloats(kind, tokens: $0.count, pos0: $0.lowerBound, headDim: d,
                                           group: s.group, slots: threads)
        }.max() ?? 0
        scratch = try FloatBuffer(count: most)
    }

    func step() {
        let s = p.shape, d = s.headDim
        for (send, cache) in [(sendKeys, cacheKeys), (sendValues, cacheValues)] {
            comm.allGather(send.pointer, into: received.pointer, counts: kvCounts)
            scatter(received.pointer, rowFloats: d, rowsPerHead: s.kvHeads, into: cache.pointer) { kv, chunkStart in
                (kv * p.seqLen + chunkStart) * d
            }
        }
        var row = 0
        for chunk in owned[comm.rank] where !chunk.isEmpty {
            kernels.run(kind, q: p.query + chunk.lowerBound * s.heads * d, keys: cacheKeys.pointer,
                        values: cacheValues.pointer, out: localOut.pointer + row * s.heads * d, tokens: chunk.count,
                        pos0: chunk.lowerBound, heads: s.heads, kvHeads: s.kvHeads, headDim: d, capacity: p.seqLen,
                        scale: p.scale, scratch: scratch.pointer, slots: threads)
            row += chunk.count
        }
    }

    /// Copies gathered rows (rank, outer, its tokens, rowFloats) to their places: `destination(outer, chunk start)`.
    private func scatter(_ gathered: UnsafePointer<Float>, rowFloats: Int, rowsPerHead outer: Int,
                         into target: UnsafeMutablePointer<Float>, destination: (Int, Int) -> Int) {
        var offset = 0
        for chunks in owned {
            let tokens = chunks.reduce(0) { $0 + $1.count }
            for o in 0..<outer {
                var row = 0
                for chunk in chunks {
                    (target + destination(o, chunk.lowerBound)).update(from: gathered + offset + (o * tokens + row) * rowFloats,
                                                                       count: chunk.count * rowFloats)
                    row += chunk.count
                }
            }
            offset += outer * tokens * rowFloats
        }
    }

    func gatherOutput() throws -> UnsafePointer<Float> {
        let s = p.shape, rowFloats = s.heads * s.headDim
        let counts = owned.map { $0.reduce(0) { $0 + $1.count } * rowFloats }
        let gathered = try FloatBuffer(count: p.outputFloats), out = try FloatBuffer(count: p.outputFloats)
        comm.allGather(localOut.pointer, into: gathered.pointer, counts: counts)
        scatter(gathered.pointer, rowFloats: rowFloats, rowsPerHead: 1, into: out.pointer) { _, start in start * rowFloats }
        retained = out
        return UnsafePointer(out.pointer)
    }
    private var retained: FloatBuffer?
}

/// Decode split by the cache: each rank takes a contiguous slice of the S keys, computes the partial
/// softmax state of the query over it, and the states are all-gathered and merged on every rank.
final class SequenceDecode: SplitPlan {
    let p: Problem, threads: Int, comm: Communicator
    let slice: Range<Int>
    let state: FloatBuffer, states: FloatBuffer, scratch: FloatBuffer, out: FloatBuffer
    var localKernel: String? { "partial softmax (Swift, SSE)" }
    var scratchFloats: Int { scratch.count + state.count + states.count }

    init(problem p: Problem, threads: Int, comm: Communicator) throws {
        (self.p, self.threads, self.comm) = (p, threads, comm)
        let s = p.shape
        slice = evenRanges(p.seqLen, parts: comm.size)[comm.rank]
        state = try FloatBuffer(count: PartialAttention.stateFloats(heads: s.heads, headDim: s.headDim))
        states = try FloatBuffer(count: comm.size * state.count)
        scratch = try FloatBuffer(count: PartialAttention.scratchFloats(keys: slice.count, workers: threads))
        out = try FloatBuffer(count: p.outputFloats)
    }

    func step() {
        let s = p.shape
        PartialAttention.partial(q: p.query, keys: p.inputs.keys.pointer, values: p.inputs.values.pointer, slice: slice,
                                 heads: s.heads, kvHeads: s.kvHeads, headDim: s.headDim, capacity: p.seqLen,
                                 scale: p.scale, state: state.pointer, scratch: scratch.pointer, workers: threads)
        comm.allGather(state.pointer, into: states.pointer, counts: Array(repeating: state.count, count: comm.size))
        PartialAttention.merge(states: states.pointer, parts: comm.size, heads: s.heads, headDim: s.headDim, out: out.pointer)
    }

    func gatherOutput() throws -> UnsafePointer<Float> { UnsafePointer(out.pointer) }
}
