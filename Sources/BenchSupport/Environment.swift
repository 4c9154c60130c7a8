// Environment.swift — what a report says about the machine and build: CPU, cores, threads, commit.
import CKernels
import Foundation
import Qwen3

public enum RunEnvironment {
    /// Read once per process: a sweep asks for it on every row.
    public static var cpuModel: String { cachedCPUModel }
    private static let cachedCPUModel: String = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return "unknown"
    }()

    /// Cores this process may run on (its affinity mask), which is what OpenMP would use.
    /// Read from the affinity mask without starting OpenMP, which must not start before
    /// ThreadBinding has set its placement variables.
    public static var availableCores: Int {
        let cores = Int(ck_affinity_cores())
        return cores > 0 ? cores : onlineCores
    }

    /// Cores online on this host, whatever this process is bound to.
    public static var onlineCores: Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    /// CPU features the kernels can use, as a short list.
    public static var cpuFeatures: String {
        var features: [String] = []
        if ck_cpu_has_avx2_fma() != 0 { features.append("AVX2+FMA") }
        if ck_cpu_has_avx512() != 0 { features.append("AVX-512") }
        if ck_cpu_has_avx512_bf16() != 0 { features.append("AVX512_BF16") }
        return features.isEmpty ? "scalar only" : features.joined(separator: ", ")
    }

    /// The build's git commit: $QWEN3_BENCH_COMMIT, else the repository the executable lies in, else
    /// the repository these sources were compiled from (for builds with a scratch path outside it).
    /// "-dirty" follows the hash when tracked files differ from it, so a row never claims a commit
    /// whose code it did not run.
    public static var commit: String { cachedCommit }
    private static let cachedCommit: String = {
        if let commit = ProcessInfo.processInfo.environment["QWEN3_BENCH_COMMIT"], !commit.isEmpty { return commit }
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        for folder in [executable.deletingLastPathComponent(), URL(fileURLWithPath: #filePath).deletingLastPathComponent()] {
            guard let hash = git(["rev-parse", "--short=12", "HEAD"], in: folder), !hash.isEmpty else { continue }
            let changes = git(["status", "--porcelain", "--untracked-files=no"], in: folder) ?? ""
            return changes.isEmpty ? hash : hash + "-dirty"
        }
        return "unknown"
    }()

    /// What `git -C folder arguments` printed, trimmed, or nil if it failed.
    private static func git(_ arguments: [String], in folder: URL) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/git")
        process.arguments = ["-C", folder.path] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let out = String(data: pipe.fileHandleForReading.readDataToEndOfFile(), encoding: .utf8) ?? ""
        process.waitUntilExit()
        return process.terminationStatus == 0 ? out.trimmingCharacters(in: .whitespacesAndNewlines) : nil
    }

    public static var hostname: String { cachedHostname }
    private static let cachedHostname = ProcessInfo.processInfo.hostName

    /// The Swift build configuration the tools were compiled in (debug timings are not comparable).
    public static var buildConfiguration: String {
        #if DEBUG
        return "debug"
        #else
        return "release"
        #endif
    }

    public static var residentBytes: Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
            return kb * 1024
        }
        return 0
    }
}

/// How many OpenMP threads to use and where the number came from.
public struct ThreadChoice {
    public let count: Int
    public let source: String

    public init(count: Int, source: String) {
        self.count = count
        self.source = source
    }

    /// `localRanks` processes of this job share the host: without an explicit count each takes its
    /// share of the cores (or the cores it is bound to, when the launcher bound it).
    public static func resolve(option: Int?, localRanks: Int = 1,
                        environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ThreadChoice {
        if let option {
            guard option >= 1 else { throw RequestError("--threads must be at least 1, got \(option)") }
            return ThreadChoice(count: option, source: "--threads")
        }
        if let value = environment["OMP_NUM_THREADS"], !value.isEmpty {
            // OpenMP allows a comma list (one count per nesting level); the first level is ours.
            guard let first = value.split(separator: ",").first, let n = Int(first), n >= 1 else {
                throw RequestError("OMP_NUM_THREADS=\(value) is not a positive thread count")
            }
            return ThreadChoice(count: n, source: "OMP_NUM_THREADS")
        }
        let bound = RunEnvironment.availableCores, online = RunEnvironment.onlineCores
        if localRanks <= 1 { return ThreadChoice(count: bound, source: "all available cores") }
        if bound < online { return ThreadChoice(count: bound, source: "the cores this rank is bound to") }
        return ThreadChoice(count: max(1, online / localRanks),
                            source: "\(online) cores shared by \(localRanks) ranks on this host")
    }
}
