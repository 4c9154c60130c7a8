// GenerateSynthetic.swift — the generate-synthetic subcommand: deterministic random Qwen3 checkpoints.
import ArgumentParser
import Foundation
import Qwen3

struct GenerateSynthetic: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate-synthetic",
        abstract: "Write a deterministic random Qwen3 checkpoint (config.json + model.safetensors) to a folder.",
        discussion: "Starts from the Qwen3-0.6B configuration; each option overrides one value.")

    @Option(help: "Output folder.")
    var out: String

    @Option(help: "Element type of the weights: f32, bf16 or f16.")
    var dtype: String = "bf16"

    @Option(help: "Seed of the weights.") var seed: UInt64 = 0
    @Option(help: "Decoder layers.") var layers: Int?
    @Option(help: "Hidden size.") var hidden: Int?
    @Option(help: "Query heads.") var heads: Int?
    @Option(help: "Key/value heads.") var kvHeads: Int?
    @Option(help: "Head dimension.") var headDim: Int?
    @Option(help: "MLP intermediate size.") var intermediate: Int?
    @Option(help: "Vocabulary size.") var vocab: Int?
    @Flag(help: "Store a separate lm_head.weight (tie_word_embeddings false).") var untied = false

    func run() throws {
        guard let type = ["f32": TensorDType.f32, "bf16": .bf16, "f16": .f16][dtype] else {
            BenchmarkQwen3.fail("--dtype must be f32, bf16 or f16, got \(dtype)")
        }
        var c = Qwen3Config.qwen3_0_6B
        c.numLayers = layers ?? c.numLayers
        c.hiddenSize = hidden ?? c.hiddenSize
        c.numHeads = heads ?? c.numHeads
        c.numKVHeads = kvHeads ?? c.numKVHeads
        c.headDim = headDim ?? c.headDim
        c.intermediateSize = intermediate ?? c.intermediateSize
        c.vocabSize = vocab ?? c.vocabSize
        c.tieWordEmbeddings = !untied
        do {
            try c.validate(path: "generate-synthetic")
            try SyntheticCheckpoint.write(config: c, dtype: type, seed: seed, to: out)
        } catch let error as ModelLoadError {
            BenchmarkQwen3.fail(error.description)
        }
        print("wrote \(out) (\(c.parameterCount) parameters, \(type.rawValue))")
    }
}
