// ThreadBinding.swift — says where the OpenMP threads may run, for the report.
import CKernels
import Foundation

/// Threads are left where the user or launcher put them. Pinning by default was measured here and
/// lost (bf16 prefill, 128 tokens, 2 threads: 357 and 394 tokens/s pinned against 387 and 407 unpinned,
/// side by side) on this shared machine, where an unpinned thread can move off a busy core.
/// Pin with OpenMP's own variables: OMP_PROC_BIND=close OMP_PLACES=cores.
public enum ThreadBinding {
    public static func describe(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let bind = environment["OMP_PROC_BIND"] {
            return "OMP_PROC_BIND=\(bind)" + (environment["OMP_PLACES"].map { " OMP_PLACES=\($0)" } ?? "")
        }
        let online = RunEnvironment.onlineCores, allowed = Int(ck_affinity_cores())
        if allowed > 0 && allowed < online { return "bound by the launcher to \(allowed) of \(online) cores" }
        return "threads unpinned"
    }
}
