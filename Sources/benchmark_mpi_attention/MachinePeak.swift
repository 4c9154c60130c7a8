// MachinePeak.swift — the f32 FMA peak of one core, timed once per run: the yardstick of "percent of peak".
import BenchSupport
import CKernels
import Qwen3

/// The peak a kernel of an ISA is measured against: 12 chains of 256-bit (avx2, and baseline,
/// which is compared with what the machine can do) or 512-bit (avx512) FMAs on one thread, best
/// of ten runs of ~2 ms. A machine without AVX2 has no probe and reports no percentage.
struct MachinePeak {
    let perCoreGFLOPS: Double
    let instruction: String

    /// The peak of each ISA that has a probe; ISAs sharing a probe share one timing of it.
    static func measure(_ isas: [KernelISA]) -> [KernelISA: MachinePeak] {
        var peaks: [KernelISA: MachinePeak] = [:], timed: [String: MachinePeak] = [:]
        for isa in isas {
            guard let probe = probe(for: isa) else { continue }
            let peak = timed[probe.instruction] ?? MachinePeak(probe)
            timed[probe.instruction] = peak
            peaks[isa] = peak
        }
        return peaks
    }

    private typealias Probe = (run: (Int) -> Float, flopsPerIter: Double, instruction: String)

    private static func probe(for isa: KernelISA) -> Probe? {
        if isa == .avx512 && ck_cpu_has_avx512() != 0 {
            return (ck_probe_fma_avx512, CK_PROBE_FMA_AVX512_FLOPS_PER_ITER, "avx512-fma")
        } else if ck_cpu_has_avx2_fma() != 0 {
            return (ck_probe_fma_avx2, CK_PROBE_FMA_AVX2_FLOPS_PER_ITER, "avx2-fma")
        }
        return nil
    }

    private init(_ probe: Probe) {
        let iters = 1_000_000
        var best = Double.infinity, sink: Float = 0
        for _ in 0..<10 {
            let start = Clock.now()
            sink += probe.run(iters)
            best = Swift.min(best, Clock.ms(start, Clock.now()))
        }
        precondition(sink.isFinite)
        perCoreGFLOPS = probe.flopsPerIter * Double(iters) / (best * 1e6)
        instruction = probe.instruction
    }

    /// Peak of `cores` cores each running the chains.
    func gflops(cores: Int) -> Double { perCoreGFLOPS * Double(cores) }
}
