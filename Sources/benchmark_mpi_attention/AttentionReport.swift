// AttentionReport.swift — the rows of a sweep (one per combination of the options' values) and their
// renderings: a text table with a header, Markdown, CSV, JSON and JSON Lines.
import BenchSupport
import Foundation
import Qwen3

struct AttentionReport {
    let settings: Settings
    let peaks: [KernelISA: MachinePeak]
    let processes: Int

    /// The rows of one group, which agree on every option but the kernel (and its tiles): every
    /// kernel that ran, with the speed-up of each over standard when standard ran too.
    static func rows(problem p: Problem, isa: KernelISA, split: Split?, threads: ThreadChoice,
                     group: [(AttentionKind, Measurement)], peak: MachinePeak?, settings s: Settings,
                     processes: Int) -> [ResultRow] {
        let standard = group.first { $0.0 == .standard }.map { Statistics(samples: $0.1.samples).median }
        let environment: ResultRow = [
            "commit": RunEnvironment.commit, "cpu": RunEnvironment.cpuModel, "cpu_features": RunEnvironment.cpuFeatures,
            "host": RunEnvironment.hostname, "timestamp": ISO8601DateFormatter().string(from: Date()),
        ]
        return group.map { kind, m in
            let t = Statistics(samples: m.samples)
            let gflops = p.flops / (t.median * 1e6)
            var row: ResultRow = [
                "test": "\(p.phase == .prefill ? "pp" : "tg")\(p.seqLen)",
                "kernel": kind.name, "kv_dtype": p.kv.rawValue, "phase": p.phase.rawValue, "seq_len": p.seqLen, "tokens": p.tokens, "pos0": p.pos0,
                "threads": threads.count, "threads_source": threads.source, "procs": processes,
                "parallel": split?.rawValue ?? "none",
                "isa": isa.rawValue, "kernel_isa": m.kernelISA.rawValue, "heads": p.shape.heads, "kv_heads": p.shape.kvHeads, "head_dim": p.shape.headDim,
                "iters": s.iterations, "warmup": s.warmup, "seed": s.seed,
                "flops": p.flops, "gflops": gflops, "scratch_bytes": m.scratchBytes,
                "comm_ms": m.commMs.isEmpty ? 0.0 : Statistics(samples: m.commMs).median,
            ]
            row.merge(t.json) { a, _ in a }
            row.merge(environment) { a, _ in a }
            if case .streaming(let q, let kv) = kind {
                row["q_block"] = q
                row["kv_block"] = kv
            }
            if let peak {
                let cores = threads.count * processes
                row["peak_gflops"] = peak.gflops(cores: cores)
                row["peak_of"] = "\(peak.instruction) x \(cores) cores"
                row["percent_of_peak"] = 100 * gflops / peak.gflops(cores: cores)
            }
            if let standard { row["speedup_vs_standard"] = standard / t.median }
            if !m.singleSamples.isEmpty && processes > 1 {
                let single = Statistics(samples: m.singleSamples).median
                row["single_ms"] = single
                row["single_samples_ms"] = m.singleSamples
                row["efficiency"] = single / (Double(processes) * t.median)
            }
            if let diff = m.maxAbsDiff { row["max_abs_diff"] = diff }
            if let sum = m.outputSum { row["output_sum"] = sum }
            if let local = m.localKernel { row["local_kernel"] = local }
            return row
        }
    }

    /// The table's columns; a dimension given more than one value gets a column of its own.
    var columns: [Column] {
        let s = settings
        var c = [Column("phase", "phase"), Column("seq_len", "S"), Column("kernel", "kernel")]
        if s.kernels.filter({ $0 != .standard }).count > 1 { c += [Column("q_block", "q block"), Column("kv_block", "kv block")] }
        c.append(Column("threads", "threads"))
        if s.kvPrecisions.count > 1 { c.append(Column("kv_dtype", "kv")) }
        if s.isas.count > 1 { c.append(Column("isa", "isa")) }
        if s.shapes.count > 1 { c += [Column("heads", "heads"), Column("kv_heads", "kv heads"), Column("head_dim", "head dim")] }
        c += [Column("median_ms", "median ms", format: Column.fixed(3)),
                 Column("stddev_ms", "stddev ms", format: Column.fixed(3)),
                 Column("min_ms", "min ms", format: Column.fixed(3)), Column("gflops", "GFLOP/s", format: Column.fixed(1)),
                 Column("percent_of_peak", "% peak", format: Column.fixed(1)),
                 Column("scratch_bytes", "scratch KiB") { value in "\(((value as? Int ?? 0) + 1023) / 1024)" },
                 Column("speedup_vs_standard", "vs standard") { value in String(format: "%.2fx", value as? Double ?? 0) }]
        if processes > 1 {
            c += [Column("procs", "procs"), Column("parallel", "parallel"),
                  Column("comm_ms", "comm ms", format: Column.fixed(3)), Column("single_ms", "1-proc ms", format: Column.fixed(3)),
                  Column("efficiency", "efficiency", format: Column.fixed(2)),
                  Column("max_abs_diff", "max abs diff") { value in String(format: "%.2e", value as? Double ?? 0) }]
        }
        return c
    }

    /// Every scalar key, for CSV.
    var csvColumns: [Column] {
        ["test", "kernel", "phase", "seq_len", "tokens", "pos0", "threads", "procs", "parallel", "isa", "kernel_isa", "kv_dtype", "heads", "kv_heads",
         "head_dim", "q_block", "kv_block", "iters", "warmup", "median_ms", "mean_ms", "stddev_ms", "min_ms", "max_ms",
         "samples_ms", "flops", "gflops", "peak_gflops", "percent_of_peak", "scratch_bytes", "speedup_vs_standard",
         "comm_ms", "single_ms", "efficiency", "max_abs_diff", "output_sum", "local_kernel", "commit", "cpu", "host", "timestamp"]
            .map { Column($0, $0) }
    }

    func render(_ rows: [ResultRow]) throws -> String {
        switch settings.format {
        case .text: return header + "\n" + textTable(rows)
        case .md: return ResultTable.markdown(rows, columns: columns)
        case .csv: return ResultTable.csv(rows, columns: csvColumns)
        case .json: return try ResultTable.json(rows)
        case .jsonl: return try ResultTable.jsonLines(rows)
        }
    }

    var header: String {
        let s = settings
        let shapes = s.shapes.map { "\($0.heads) query heads, \($0.kvHeads) KV heads, head_dim \($0.headDim)" }
        var lines = ["benchmark_mpi_attention: causal attention alone, random inputs (seed \(s.seed))",
                     "Shapes: \(shapes.joined(separator: "; ")); prefill S x S, decode 1 x S",
                     "Kernels: \(s.isas.map(\.rawValue).joined(separator: ", ")) (\(s.isaSource)); warm-up \(s.warmup), iterations \(s.iterations) per row",
                     "CPU: \(RunEnvironment.cpuModel) [\(RunEnvironment.cpuFeatures)], \(ThreadBinding.describe()); commit \(RunEnvironment.commit)"]
        var probes: [String] = []
        for isa in s.isas {
            guard let peak = peaks[isa], !probes.contains(where: { $0.contains("(\(peak.instruction) probe") }) else { continue }
            let users = s.isas.filter { peaks[$0]?.instruction == peak.instruction }.map(\.rawValue).joined(separator: ", ")
            probes.append(String(format: "%.1f GFLOP/s per core (%@ probe%@)", peak.perCoreGFLOPS, peak.instruction,
                                 s.isas.count > 1 ? ", for \(users)" : ""))
        }
        if !probes.isEmpty {
            lines.append("Peak: \(probes.joined(separator: ", ")); % peak is against that x threads x processes")
        }
        if processes > 1 {
            let splits = s.splits.map { $0?.rawValue ?? "none" }.joined(separator: ", ")
            lines.append("Processes: \(processes), split by \(splits); 1-proc ms: rank 0 alone on the whole problem; efficiency = 1-proc / (procs x split)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Columns padded to their widest cell.
    func textTable(_ rows: [ResultRow]) -> String {
        let cells = [columns.map(\.heading)] + rows.map { row in columns.map { c in row[c.key].map(c.format) ?? "" } }
        let widths = columns.indices.map { i in cells.map { $0[i].count }.max() ?? 0 }
        return cells.map { line in
            zip(line, widths).map { cell, width in String(repeating: " ", count: width - cell.count) + cell }
                .joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}
