// Model.swift — a loaded Qwen3 model: configuration, this rank's weights, its kernels and how the
// job's work is split (ParallelPlan). InferenceSession.swift runs it.
import CKernels
import Foundation

/// A loaded Qwen3 model: configuration, this rank's weights, its kernels and its communicator.
public final class Qwen3Model {
    public let config: Qwen3Config
    /// Who computes what: this rank's weight shard, and how steps are split over the job.
    public let plan: ParallelPlan
    public let isa: KernelISA
    public let precision: WeightPrecision
    let kernels: Kernels
    let weights: ModelWeights
    /// Every process of the job (rank order, failure agreement, sequence-parallel K/V exchange).
    public let communicator: Communicator
    /// The processes the weights are split over: the job under head parallelism, this process alone
    /// under sequence parallelism (every rank holds every weight).
    let tensorParallel: Communicator
    public var parallelism: Parallelism { plan.parallelism }

    /// Loads `path` (a .safetensors file with config.json beside it, a shard index, or a folder).
    /// `config` is the folder's config.json when the caller has read it already; it is read here otherwise.
    public init(path: String, config: Qwen3Config? = nil, isa: KernelISA, precision: WeightPrecision = .f32,
                communicator: Communicator = SingleProcessCommunicator(), parallelism: Parallelism = .heads) throws {
        let config = try config ?? Qwen3Config.load(from: Self.folder(of: path).appendingPathComponent("config.json"))
        self.config = config
        plan = try ParallelPlan(config: config, parallelism: parallelism, rank: communicator.rank, size: communicator.size,
                                precision: precision)
        tensorParallel = parallelism == .heads ? communicator : SingleProcessCommunicator()
        kernels = try Kernels(isa, precision: precision)
        self.isa = isa
        self.precision = precision
        self.communicator = communicator
        // Refuse up front what cannot fit: this rank's share of the weights, in memory precision,
        // plus the replicated embedding table in the same format (at most).
        let needed = config.parameterEstimate / Double(plan.shard.size) * precision.bytesPerWeight
            + Double(config.vocabSize) * Double(config.hiddenSize) * precision.bytesPerWeight
        let available = Self.physicalMemory()
        if needed > Double(available) * 0.9 {
            let bytes = needed < 9e18 ? String(Int(needed)) : String(format: "%.3g", needed)
            throw RequestError("the model needs about \(bytes) bytes of weights in \(precision.rawValue) on each of \(communicator.size) process(es) (\(parallelism.rawValue) parallelism), more than this machine's \(available) bytes of memory")
        }
        let checkpoint = try SafetensorsCheckpoint(path: path)
        weights = try WeightLoader(checkpoint: checkpoint, config: config, plan: plan.shard, kernels: kernels,
                                   path: path).load()
        // Loading frees temporaries (the chunk scratch, bias and norm rows); freed, they stay in the
        // heap unless returned. When whole tensors went through float32, the resident memory of a
        // q8_0 model carried 378 MiB of them over its weights (q4_0: 100 MiB).
        ck_release_free_memory()
    }

    /// The folder that holds config.json for a model path.
    static func folder(of path: String) -> URL {
        var isDirectory: ObjCBool = false
        let url = URL(fileURLWithPath: path)
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            return url
        }
        return url.deletingLastPathComponent()
    }

    /// This rank's linear layers (lm_head included) held in `precision`, and all of them: a
    /// quantized model keeps a layer whose input dimension is not a multiple of 32 in float32.
    public var linearLayersInPrecision: (count: Int, of: Int) {
        let all = weights.linears
        return (precision == .f32 ? all.count : all.filter { !$0.weight.isF32 }.count, all.count)
    }

    /// What the token embedding table is held as: its format, or the tied lm_head's rows it reads.
    public var embeddingFormat: String { weights.embedding.summary }

    /// Bytes of weights this rank holds in memory.
    public var weightBytes: Int { weights.byteCount }

    /// Element type the checkpoint stored (weights are computed in float32 either way).
    public var checkpointDType: TensorDType { weights.checkpointDType }

    static func physicalMemory() -> Int { Int(ProcessInfo.processInfo.physicalMemory) }
}
