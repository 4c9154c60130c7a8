// Method.swift — the --method names users know, and what each one runs.
import Qwen3

/// A benchmark method: which kernels, and whether the model is split across MPI processes.
enum Method: String, CaseIterable {
    case baseline, avx2, mpi
    case mpiAVX2 = "mpi+avx2"

    var isa: KernelISA {
        switch self {
        case .baseline, .mpi: return .baseline
        case .avx2, .mpiAVX2: return .avx2
        }
    }

    var isDistributed: Bool { self == .mpi || self == .mpiAVX2 }

    /// The fastest method this CPU runs on one process.
    static var fastestLocal: Method { KernelISA.fastestSupported == .avx2 ? .avx2 : .baseline }

    /// The method `--mode` implies for `self`: `--mode mpi` turns a kernel choice into its MPI form.
    func under(mode: String) throws -> Method {
        switch (mode, self) {
        case ("omp", _) where isDistributed:
            throw RequestError("--mode omp conflicts with --method \(rawValue); use --method \(isa == .avx2 ? "avx2" : "baseline") or --mode mpi")
        case ("omp", _): return self
        case ("mpi", .baseline): return .mpi
        case ("mpi", .avx2): return .mpiAVX2
        case ("mpi", _): return self
        default: throw RequestError("--mode must be omp or mpi, got \(mode)")
        }
    }
}
