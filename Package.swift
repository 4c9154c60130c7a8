// swift-tools-version:5.9
// Qwen3 CPU inference engine and benchmark.
// CKernels holds the hot loops (C, AVX2 intrinsics, OpenMP); CMPI is Open MPI; Qwen3 is the Swift
// model library; benchmark_qwen3 is the command-line tool.
import PackageDescription

// LLVM's OpenMP runtime from Debian's libomp-19-dev. Swift's clang 21 needs it: libgomp compiles but
// runs serially, and libomp-dev (LLVM 14) lacks __kmpc_dispatch_deinit, which clang 21 emits for
// dynamic schedules. omp.h is not on Swift clang's include path, hence the explicit -I.
let openMPRoot = "/usr/lib/llvm-19/lib"

let package = Package(
    name: "Qwen3Bench",
    products: [
        .executable(name: "benchmark_qwen3", targets: ["benchmark_qwen3"]),
        .executable(name: "benchmark_mpi_attention", targets: ["benchmark_mpi_attention"]),
        .library(name: "Qwen3", targets: ["Qwen3"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .target(
            name: "CKernels",
            path: "CKernels",
            cSettings: [
                .unsafeFlags(["-O3", "-fopenmp", "-I\(openMPRoot)/clang/19/include",
                              "-fno-math-errno", "-Wall", "-Wextra", "-Wno-unused-parameter"]),
            ],
            linkerSettings: [
                .unsafeFlags(["-L\(openMPRoot)", "-Xlinker", "-rpath", "-Xlinker", openMPRoot]),
                .linkedLibrary("omp"),
            ]
        ),
        // Open MPI (Debian's libopenmpi-dev), found through pkg-config's ompi-c.
        .systemLibrary(
            name: "CMPI",
            path: "Sources/CMPI",
            pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev"])]
        ),
        .target(
            name: "Qwen3",
            dependencies: ["CKernels", "CMPI"],
            path: "Sources/Qwen3"
        ),
        // What both command-line tools share: environment, statistics, list options, output formats.
        .target(
            name: "BenchSupport",
            dependencies: ["Qwen3", "CKernels", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/BenchSupport"
        ),
        .executableTarget(
            name: "benchmark_qwen3",
            dependencies: ["Qwen3", "BenchSupport", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/benchmark_qwen3"
        ),
        // Attention alone: standard vs streaming, prefill and decode, split over MPI by heads or sequence.
        .executableTarget(
            name: "benchmark_mpi_attention",
            dependencies: ["Qwen3", "BenchSupport", "CKernels", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/benchmark_mpi_attention"
        ),
        // Fuzz target for the checkpoint parsers; a corpus replayer unless built with -DFUZZING.
        .executableTarget(name: "fuzz_loader", dependencies: ["Qwen3"], path: "Sources/fuzz_loader"),
        .testTarget(name: "CKernelsTests", dependencies: ["CKernels"], path: "Tests/CKernelsTests"),
        .testTarget(name: "Qwen3Tests", dependencies: ["Qwen3", "CKernels"], path: "Tests/Qwen3Tests"),
        .testTarget(name: "BenchSupportTests", dependencies: ["BenchSupport"], path: "Tests/BenchSupportTests"),
        .testTarget(name: "CLITests", dependencies: ["benchmark_qwen3", "benchmark_mpi_attention", "fuzz_loader"],
                    path: "Tests/CLITests"),
    ]
)
