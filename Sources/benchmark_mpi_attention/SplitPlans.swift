// SplitPlans.swift — attention split over MPI ranks exactly as the model splits it (ParallelPlan.swift
// decides who computes what): by query heads with their KV heads, by zig-zag prompt tokens (prefill),
// or by cache slices whose partial softmax states are merged (decode).
import BenchSupport
import Foundation
import Qwen3

/// Room for `elements` cache elements of `kv` (a float holds two bf16), and its bytes.
private func cacheBuffer(_ elements: Int, _ kv: KVPrecision) throws -> FloatBuffer {
    try FloatBuffer(count: (elements * kv.elementBytes + 3) / 4)
}

private func raw(_ buffer: FloatBuffer) -> UnsafeMutableRawPointer { UnsafeMutableRawPointer(buffer.pointer) }

/// One rank's part of a split problem. Buffers are set up once; `step` is what is timed.
protocol SplitPlan {
    /// Floats of scratch this rank's attention uses.
    var scratchFloats: Int { get }
    /// The local attention, when it is not the --kernel.
    var localKernel: String? { get }
    /// The instruction set the local attention runs.
    var instructionSet: KernelISA { get }
    /// Local attention and its communication.
    func step()
    /// The full output (tokens, heads, headDim) on every rank after a step (untimed).
    func gatherOutput() throws -> UnsafePointer<Float>
}

/// Tensor parallelism as the model runs it (`ShardPlan`): each rank takes a contiguous share of the
/// query heads with the KV heads they read, one local KV slot per entry of `kvHeads` (a KV head is
/// repeated when ranks outnumber KV heads or a group straddles ranks), runs attention on them, and
/// the outputs are all-gathered so every rank has the whole output.
final class HeadSplit: SplitPlan {
    let p: Problem, kind: AttentionKind, threads: Int, comm: Communicator, kernels: AttentionKernels
    let shard: ShardPlan
    let counts: [Int]
    let localQ: FloatBuffer, localOut: FloatBuffer       // (T, my heads, D)
    let localKeys: FloatBuffer, localValues: FloatBuffer // (my KV slots, S, D) of the problem's precision
    let scratch: FloatBuffer, gathered: FloatBuffer, out: FloatBuffer
    var localKernel: String? { nil }
    var scratchFloats: Int { scratch.count }
    var instructionSet: KernelISA { kernels.instructionSet(kind, tokens: p.tokens, group: localGroup, headDim: p.shape.headDim) }
    private var localGroup: Int { shard.queryHeads.count / shard.kvHeads.count }

    init(problem p: Problem, kind: AttentionKind, threads: Int, comm: Communicator, kernels: AttentionKernels) throws {
        (self.p, self.kind, self.threads, self.comm, self.kernels) = (p, kind, threads, comm, kernels)
        let s = p.shape, d = s.headDim, t = p.tokens, n = p.seqLen
        shard = try ShardPlan(heads: s.heads, kvHeads: s.kvHeads, rank: comm.rank, size: comm.size)
        counts = shard.headShards.map { t * $0.count * d }
        let mine = shard.queryHeads
        localQ = try FloatBuffer(count: t * mine.count * d)
        for i in 0..<t {  // (T, heads, D) -> (T, my heads, D): this rank's q projection
            (localQ.pointer + i * mine.count * d).update(from: p.query + (i * s.heads + mine.lowerBound) * d, count: mine.count * d)
        }
        localKeys = try cacheBuffer(shard.kvHeads.count * n * d, p.kv)
        localValues = try cacheBuffer(shard.kvHeads.count * n * d, p.kv)
        let head = n * d * p.kv.elementBytes
        for (slot, kv) in shard.kvHeads.enumerated() {  // this rank's k/v projections: its KV slots
            (raw(localKeys) + slot * head).copyMemory(from: p.keys + kv * head, byteCount: head)
            (raw(localValues) + slot * head).copyMemory(from: p.values + kv * head, byteCount: head)
        }
        localOut = try FloatBuffer(count: t * mine.count * d)
        scratch = try FloatBuffer(count: AttentionKernels.scratchFloats(kind, tokens: t, pos0: p.pos0, headDim: d,
                                                                    group: mine.count / shard.kvHeads.count, slots: threads))
        gathered = try FloatBuffer(count: p.outputFloats)
        out = try FloatBuffer(count: p.outputFloats)
    }

    func step() {
        let s = p.shape, d = s.headDim, t = p.tokens
        kernels.run(kind, q: localQ.pointer, keys: localKeys.pointer, values: localValues.pointer, kv: p.kv, out: localOut.pointer,
                    tokens: t, pos0: p.pos0, heads: shard.queryHeads.count, kvHeads: shard.kvHeads.count, headDim: d,
                    capacity: p.seqLen, scale: p.scale, scratch: scratch.pointer, slots: threads)
        comm.allGather(localOut.pointer, into: gathered.pointer, counts: counts)
        var offset = 0  // (rank, T, its heads, D) -> (T, heads, D)
        for (r, heads) in shard.headShards.enumerated() {
            for i in 0..<t {
                (out.pointer + (i * s.heads + heads.lowerBound) * d).update(from: gathered.pointer + offset + i * heads.count * d,
                                                                           count: heads.count * d)
            }
            offset += counts[r]
        }
    }

    func gatherOutput() throws -> UnsafePointer<Float> { UnsafePointer(out.pointer) }
}

/// Prefill split by query tokens as the model splits a step (`SequenceSplit`, zig-zag: rank r owns
/// chunks r and 2P-1-r of 2P). Each rank holds the K/V rows of its own tokens; they are all-gathered
/// into a full cache, then each rank runs attention for its chunks (queries at pos0 = the chunk's
/// start over the keys before its end). K/V rows move in the problem's precision (bf16: half the bytes).
final class SequencePrefill: SplitPlan {
    let p: Problem, kind: AttentionKind, threads: Int, comm: Communicator, kernels: AttentionKernels
    let split: SequenceSplit
    let kvCounts: [Int]                                     // elements per rank
    let sendKeys: FloatBuffer, sendValues: FloatBuffer      // (kvHeads, my tokens, D)
    let received: FloatBuffer                               // (rank, kvHeads, its tokens, D)
    let cacheKeys: FloatBuffer, cacheValues: FloatBuffer    // (kvHeads, S, D)
    let localOut: FloatBuffer                               // (my tokens, heads, D)
    let scratch: FloatBuffer
    var localKernel: String? { nil }
    var scratchFloats: Int { scratch.count }
    var instructionSet: KernelISA {
        let shortest = split.ranges(of: comm.rank).map(\.count).min() ?? p.tokens
        return kernels.instructionSet(kind, tokens: shortest, group: p.shape.group, headDim: p.shape.headDim)
    }

    init(problem p: Problem, kind: AttentionKind, threads: Int, comm: Communicator, kernels: AttentionKernels) throws {
        (self.p, self.kind, self.threads, self.comm, self.kernels) = (p, kind, threads, comm, kernels)
        let s = p.shape, d = s.headDim, n = p.seqLen
        split = SequenceSplit(tokens: n, ranks: comm.size)
        kvCounts = split.counts.map { s.kvHeads * $0 * d }
        let mine = split.ranges(of: comm.rank), myTokens = split.count(of: comm.rank)
        let e = p.kv.elementBytes
        sendKeys = try cacheBuffer(kvCounts[comm.rank], p.kv)
        sendValues = try cacheBuffer(kvCounts[comm.rank], p.kv)
        for kv in 0..<s.kvHeads {  // this rank's own K/V rows, as its k/v projections would give them
            var row = 0
            for chunk in mine {
                let from = (kv * n + chunk.lowerBound) * d * e, to = (kv * myTokens + row) * d * e
                (raw(sendKeys) + to).copyMemory(from: p.keys + from, byteCount: chunk.count * d * e)
                (raw(sendValues) + to).copyMemory(from: p.values + from, byteCount: chunk.count * d * e)
                row += chunk.count
            }
        }
        received = try cacheBuffer(s.kvHeads * n * d, p.kv)
        cacheKeys = try cacheBuffer(s.kvHeads * n * d, p.kv)
        cacheValues = try cacheBuffer(s.kvHeads * n * d, p.kv)
        localOut = try FloatBuffer(count: myTokens * s.heads * d)
        let most = mine.map {
            AttentionKernels.scratchFloats(kind, tokens: $0.count, pos0: $0.lowerBound, headDim: d,
                                           group: s.group, slots: threads)
        }.max() ?? 0
        scratch = try FloatBuffer(count: most)
    }

    func step() {
        let s = p.shape, d = s.headDim, e = p.kv.elementBytes
        for (send, cache) in [(sendKeys, cacheKeys), (sendValues, cacheValues)] {
            comm.allGather(bytes: raw(send), into: raw(received), counts: kvCounts.map { $0 * e })
            scatter(raw(received), rowBytes: d * e, rowsPerHead: s.kvHeads, into: raw(cache)) { kv, chunkStart in
                (kv * p.seqLen + chunkStart) * d * e
            }
        }
        var row = 0
        for chunk in split.ranges(of: comm.rank) {
            kernels.run(kind, q: p.query + chunk.lowerBound * s.heads * d, keys: cacheKeys.pointer,
                        values: cacheValues.pointer, kv: p.kv, out: localOut.pointer + row * s.heads * d, tokens: chunk.count,
                        pos0: chunk.lowerBound, heads: s.heads, kvHeads: s.kvHeads, headDim: d, capacity: p.seqLen,
                        scale: p.scale, scratch: scratch.pointer, slots: threads)
            row += chunk.count
        }
    }

    /// Copies gathered rows (rank, outer, its tokens, rowBytes) to their places: the byte offset
    /// `destination(outer, chunk start)`.
    private func scatter(_ gathered: UnsafeRawPointer, rowBytes: Int, rowsPerHead outer: Int,
                         into target: UnsafeMutableRawPointer, destination: (Int, Int) -> Int) {
        var offset = 0
        for rank in 0..<split.ranks {
            let tokens = split.count(of: rank)
            for o in 0..<outer {
                var row = 0
                for chunk in split.ranges(of: rank) {
                    (target + destination(o, chunk.lowerBound)).copyMemory(
                        from: gathered + offset + (o * tokens + row) * rowBytes, byteCount: chunk.count * rowBytes)
                    row += chunk.count
                }
            }
            offset += outer * tokens * rowBytes
        }
    }

    func gatherOutput() throws -> UnsafePointer<Float> {
        let s = p.shape, rowFloats = s.heads * s.headDim
        let gathered = try FloatBuffer(count: p.outputFloats), out = try FloatBuffer(count: p.outputFloats)
        comm.allGather(localOut.pointer, into: gathered.pointer, counts: split.counts.map { $0 * rowFloats })
        scatter(raw(gathered), rowBytes: 4 * rowFloats, rowsPerHead: 1, into: raw(out)) { _, start in 4 * start * rowFloats }
        retained = out
        return UnsafePointer(out.pointer)
    }
    private var retained: FloatBuffer?
}

/// Decode split by the cache as the model splits it (`ParallelPlan.cacheSlice`): each rank computes
/// the partial softmax state of the query over its slice of the keys with the streaming kernels of
/// its ISA (`AttentionKernels.partial`), and the states are all-gathered and merged on every rank
/// (`AttentionKernels.merge`). Standard attention has no partial state, so its rows run the
/// streaming partial at the default blocks.
final class SequenceDecode: SplitPlan {
    let p: Problem, threads: Int, comm: Communicator, kernels: AttentionKernels
    let qBlock: Int, kvBlock: Int
    let slice: Range<Int>
    let state: FloatBuffer, states: FloatBuffer, scratch: FloatBuffer, out: FloatBuffer
    var localKernel: String? { "streaming partial q\(qBlock)/kv\(kvBlock) + merge" }
    var scratchFloats: Int { scratch.count + state.count + states.count }
    var instructionSet: KernelISA {
        kernels.instructionSet(.streaming(qBlock: qBlock, kvBlock: kvBlock), tokens: p.tokens, group: p.shape.group,
                               headDim: p.shape.headDim)
    }

    init(problem p: Problem, kind: AttentionKind, threads: Int, comm: Communicator, kernels: AttentionKernels) throws {
        (self.p, self.threads, self.comm, self.kernels) = (p, threads, comm, kernels)
        if case .streaming(let q, let kv) = kind { (qBlock, kvBlock) = (q, kv) } else {
            (qBlock, kvBlock) = (AttentionKind.defaultQBlock, AttentionKind.defaultKVBlock)
        }
        let s = p.shape
        slice = ParallelPlan.cacheSlice(cached: p.seqLen, ranks: comm.size, rank: comm.rank)
        state = try FloatBuffer(count: AttentionKernels.stateFloats(tokens: p.tokens, heads: s.heads, headDim: s.headDim))
        states = try FloatBuffer(count: comm.size * state.count)
        scratch = try FloatBuffer(count: AttentionKernels.scratchFloats(.streaming(qBlock: qBlock, kvBlock: kvBlock),
                                                                    tokens: p.tokens, pos0: p.pos0, headDim: s.headDim,
                                                                    group: s.group, slots: threads))
        out = try FloatBuffer(count: p.outputFloats)
    }

    func step() {
        let s = p.shape
        kernels.partial(q: p.query, keys: p.keys, values: p.values, kv: p.kv, keyRange: slice,
                        state: state.pointer, tokens: p.tokens, pos0: p.pos0, heads: s.heads, kvHeads: s.kvHeads,
                        headDim: s.headDim, capacity: p.seqLen, scale: p.scale, qBlock: qBlock, kvBlock: kvBlock,
                        scratch: scratch.pointer, slots: threads)
        comm.allGather(state.pointer, into: states.pointer, counts: Array(repeating: state.count, count: comm.size))
        AttentionKernels.merge(states: states.pointer, parts: comm.size, rows: p.tokens * s.heads, headDim: s.headDim,
                               out: out.pointer)
    }

    func gatherOutput() throws -> UnsafePointer<Float> { UnsafePointer(out.pointer) }
}
