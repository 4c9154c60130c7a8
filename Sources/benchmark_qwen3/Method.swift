// Method.swift — the --method names users know, and what each one runs.
import Qwen3

/// A benchmark method: which kernels, and whether the model is split across MPI processes.
enum Method: String, CaseIterable {
    case baseline, avx2, avx512, mpi
    case mpiAVX2 = "mpi+avx2"
    case mpiAVX512 = "mpi+avx512"

    var isa: KernelISA {
        switch self {
        case .baseline, .mpi: return .baseline
        case .avx2, .mpiAVX2: return .avx2
        case .avx512, .mpiAVX512: return .avx512
        }
    }

    var isDistributed: Bool { self == .mpi || self == .mpiAVX2 || self == .mpiAVX512 }

    /// The single-process and MPI methods of a kernel path.
    static func local(_ isa: KernelISA) -> Method { Method(rawValue: isa.rawValue)! }
    static func distributed(_ isa: KernelISA) -> Method { isa == .baseline ? .mpi : Method(rawValue: "mpi+" + isa.rawValue)! }

    /// The fastest method this CPU runs on one process.
    static var fastestLocal: Method { local(KernelISA.fastestSupported) }

    /// The method `--mode` implies for `self`: `--mode mpi` turns a kernel choice into its MPI form.
    func under(mode: String) throws -> Method {
        switch (mode, self) {
        case ("omp", _) where isDistributed:
            throw RequestError("--mode omp conflicts with --method \(rawValue); use --method \(Method.local(isa).rawValue) or --mode mpi")
        case ("omp", _): return self
        case ("mpi", _): return Method.distributed(isa)
        default: throw RequestError("--mode must be omp or mpi, got \(mode)")
        }
    }
}
