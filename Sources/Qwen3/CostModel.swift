// CostModel.swift — the floating-point operations and bytes each operation of the forward pass
// costs: one formula per operation, which the profile reads (OpProfile says what bytes count).

/// Work and unavoidable memory traffic of one operation.
struct OpCost {
    var flops: Double = 0
    var bytes: Double = 0

    static func + (a: OpCost, b: OpCost) -> OpCost { OpCost(flops: a.flops + b.flops, bytes: a.bytes + b.bytes) }

    private static let float = Double(MemoryLayout<Float>.size)

    /// y = x W^T over `rows` rows: 2 K N flops per row; the weights (and bias) streamed once, the
    /// input read and the output written.
    static func gemm(_ layer: Linear, rows: Int) -> OpCost {
        let (k, n, m) = (Double(layer.inFeatures), Double(layer.outFeatures), Double(rows))
        return OpCost(flops: 2 * m * k * n, bytes: Double(layer.byteCount) + float * m * (k + n))
    }

    /// RMSNorm of `rows` rows of `width`: each float read and written, plus the weight.
    static func rmsnorm(rows: Int, width: Int) -> OpCost {
        OpCost(bytes: float * Double(2 * rows * width + width))
    }

    /// RoPE in place on `heads` heads of `tokens` tokens, plus the cos and sin rows of each token.
    static func rope(tokens: Int, heads: Int, headDim: Int) -> OpCost {
        OpCost(bytes: float * Double(2 * tokens * heads * headDim + tokens * headDim))
    }

    /// A copy of `floats` floats (embedding rows, cache stores): read and written.
    static func copy(floats: Int) -> OpCost { OpCost(bytes: 2 * float * Double(floats)) }

    /// `values` new keys and values stored in a cache of `elementBytes` elements: f32 read, stored.
    static func cacheStore(values: Int, elementBytes: Int) -> OpCost {
        OpCost(bytes: Double(values * (MemoryLayout<Float>.size + elementBytes)))
    }

    /// silu(gate) * up over `rows` rows of `width`: gate and up read, the product written.
    static func swiglu(rows: Int, width: Int) -> OpCost { OpCost(bytes: 3 * float * Double(rows * width)) }

    /// x += y over `rows` rows of `width` (with a bias added to y first when there is one).
    static func residual(rows: Int, width: Int, bias: Bool) -> OpCost {
        OpCost(bytes: float * Double(bias ? 5 * rows * width + width : 3 * rows * width))
    }

    /// The payload of `floats` floats this rank hands to a collective; nothing over one rank.
    static func collective(floats: Int, ranks: Int) -> OpCost { collective(bytes: 4 * floats, ranks: ranks) }

    /// The payload of `bytes` bytes this rank hands to a collective; nothing over one rank.
    static func collective(bytes: Int, ranks: Int) -> OpCost {
        OpCost(bytes: ranks > 1 ? Double(bytes) : 0)
    }

    /// Causal attention of runs of consecutive query tokens, run i at positions
    /// `runs[i].pos0 ..< pos0 + count`: the query at position p attends to p + 1 keys, 4 flops per
    /// key and query-head dimension (QK^T and PV). Bytes: the keys and values visible to each run's
    /// last query, read once at `kvElementBytes` each (4 for an f32 cache, 2 for bf16), plus q read
    /// and the output written (f32).
    static func attention(runs: [(pos0: Int, count: Int)], heads: Int, kvHeads: Int, headDim: Int,
                          kvElementBytes: Int) -> OpCost {
        let qWidth = Double(heads * headDim), kvWidth = Double(kvHeads * headDim)
        var pairs = 0.0, visible = 0.0, rows = 0.0
        for run in runs {
            let first = Double(run.pos0), count = Double(run.count)
            pairs += count * first + count * (count + 1) / 2
            visible += first + count
            rows += count
        }
        return OpCost(flops: 4 * pairs * qWidth,
                      bytes: 2 * (Double(kvElementBytes) * visible * kvWidth + float * rows * qWidth))
    }
}
