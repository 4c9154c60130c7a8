// Config.swift — the Qwen3 configuration, decoded from Hugging Face's config.json and validated once.
import Foundation

/// Hyper-parameters of a dense Qwen3 model (`Qwen3ForCausalLM`).
public struct Qwen3Config: Equatable, Sendable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var numKVHeads: Int
    public var headDim: Int
    public var maxPositionEmbeddings: Int
    public var rmsNormEps: Float
    public var ropeTheta: Double
    public var tieWordEmbeddings: Bool
    public var attentionBias: Bool

    public init(vocabSize: Int, hiddenSize: Int, intermediateSize: Int, numLayers: Int,
                numHeads: Int, numKVHeads: Int, headDim: Int, maxPositionEmbeddings: Int,
                rmsNormEps: Float, ropeTheta: Double, tieWordEmbeddings: Bool,
                attentionBias: Bool = false) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.numKVHeads = numKVHeads
        self.headDim = headDim
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.tieWordEmbeddings = tieWordEmbeddings
        self.attentionBias = attentionBias
    }

    /// Qwen3-0.6B, as published: the shape of the built-in synthetic benchmark model.
    public static let qwen3_0_6B = Qwen3Config(
        vocabSize: 151_936, hiddenSize: 1024, intermediateSize: 3072, numLayers: 28,
        numHeads: 16, numKVHeads: 8, headDim: 128, maxPositionEmbeddings: 40_960,
        rmsNormEps: 1e-6, ropeTheta: 1_000_000, tieWordEmbeddings: true)

    /// Query heads that share one KV head.
    public var groupSize: Int { numHeads / numKVHeads }

    /// Number of weights (parameters) in the checkpoint, counting a tied lm_head once.
    public var parameterCount: Int {
        let attention = hiddenSize * headDim * (2 * numHeads + 2 * numKVHeads) + 2 * headDim
        let mlp = 3 * hiddenSize * intermediateSize
        let perLayer = attention + mlp + 2 * hiddenSize
        let embeddings = vocabSize * hiddenSize * (tieWordEmbeddings ? 1 : 2)
        return numLayers * perLayer + embeddings + hiddenSize
    }

    /// The same count in floating point, which cannot overflow for any configuration.
    public var parameterEstimate: Double {
        let (h, d, i) = (Double(hiddenSize), Double(headDim), Double(intermediateSize))
        let perLayer = h * d * Double(2 * numHeads + 2 * numKVHeads) + 2 * d + 3 * h * i + 2 * h
        return Double(numLayers) * perLayer + Double(vocabSize) * h * (tieWordEmbeddings ? 1 : 2) + h
    }

    /// Throws a `ModelLoadError` naming the first field that cannot describe a Qwen3 model.
    public func validate(path: String) throws {
        func fail(_ problem: String) -> ModelLoadError { ModelLoadError(path, problem) }
        let positive: [(String, Int)] = [
            ("vocab_size", vocabSize), ("hidden_size", hiddenSize),
            ("intermediate_size", intermediateSize), ("num_hidden_layers", numLayers),
            ("num_attention_heads", numHeads), ("num_key_value_heads", numKVHeads),
            ("head_dim", headDim), ("max_position_embeddings", maxPositionEmbeddings),
        ]
        for (key, value) in positive where value <= 0 {
            throw fail("\(key) must be positive, got \(value)")
        }
        if numHeads % numKVHeads != 0 {
            throw fail("num_attention_heads (\(numHeads)) is not a multiple of num_key_value_heads (\(numKVHeads))")
        }
        if headDim % 2 != 0 { throw fail("head_dim must be even for rotary embeddings, got \(headDim)") }
        if !(rmsNormEps > 0) || !rmsNormEps.isFinite { throw fail("rms_norm_eps must be positive, got \(rmsNormEps)") }
        if !(ropeTheta > 0) || !ropeTheta.isFinite { throw fail("rope_theta must be positive, got \(ropeTheta)") }
        if vocabSize > Int(Int32.max) { throw fail("vocab_size \(vocabSize) is too large") }
    }
}

// MARK: - config.json

extension Qwen3Config {
    /// Reads and validates `config.json`.
    public static func load(from url: URL) throws -> Qwen3Config {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw ModelLoadError(url.path, "cannot read config.json (\(describe(error)))")
        }
        return try decode(data, path: url.path)
    }

    public static func decode(_ data: Data, path: String) throws -> Qwen3Config {
        let raw: HFConfig
        do {
            raw = try JSONDecoder().decode(HFConfig.self, from: data)
        } catch let error as DecodingError {
            throw ModelLoadError(path, describe(error))
        } catch {
            throw ModelLoadError(path, "not valid JSON")
        }
        let config = try raw.qwen3Config(path: path)
        try config.validate(path: path)
        return config
    }

    fileprivate static func describe(_ error: Error) -> String {
        if let e = error as? CocoaError, let underlying = e.underlying as? POSIXError {
            return underlying.code == .ENOENT ? "no such file" : "\(underlying.code)"
        }
        return (error as NSError).localizedDescription
    }

    fileprivate static func describe(_ error: DecodingError) -> String {
        func keyPath(_ path: [CodingKey]) -> String {
            path.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "config.json lacks the required key \"\(keyPath(context.codingPath + [key]))\""
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            return "config.json key \"\(keyPath(context.codingPath))\" should be \(type)"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty
                ? "config.json is not valid JSON"
                : "config.json key \"\(keyPath(context.codingPath))\" is invalid"
        @unknown default:
            return "config.json could not be decoded"
        }
    }
}

/// The subset of Hugging Face's Qwen3 `config.json` this engine reads, under its own key names.
private struct HFConfig: Decodable {
    struct RopeParameters: Decodable {
        let ropeTheta: Double?
        let ropeType: String?
        let type: String?
        enum CodingKeys: String, CodingKey {
            case ropeTheta = "rope_theta", ropeType = "rope_type", type
        }
        var kind: String { ropeType ?? type ?? "default" }
    }

    let architectures: [String]?
    let modelType: String?
    let vocabSize: Int
    let hiddenSize: Int
    let intermediateSize: Int
    let numHiddenLayers: Int
    let numAttentionHeads: Int
    let numKeyValueHeads: Int?
    let headDim: Int?
    let maxPositionEmbeddings: Int?
    let rmsNormEps: Double?
    let ropeTheta: Double?
    let ropeParameters: RopeParameters?
    let ropeScaling: RopeParameters?
    let tieWordEmbeddings: Bool?
    let attentionBias: Bool?
    let hiddenAct: String?
    let useSlidingWindow: Bool?

    enum CodingKeys: String, CodingKey {
        case architectures, modelType = "model_type", vocabSize = "vocab_size"
        case hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads", headDim = "head_dim"
        case maxPositionEmbeddings = "max_position_embeddings", rmsNormEps = "rms_norm_eps"
        case ropeTheta = "rope_theta", ropeParameters = "rope_parameters"
        case ropeScaling = "rope_scaling", tieWordEmbeddings = "tie_word_embeddings"
        case attentionBias = "attention_bias", hiddenAct = "hidden_act"
        case useSlidingWindow = "use_sliding_window"
    }

    func qwen3Config(path: String) throws -> Qwen3Config {
        func unsupported(_ what: String) -> ModelLoadError {
            ModelLoadError(path, "\(what); this engine supports dense Qwen3 models (Qwen3ForCausalLM, model_type \"qwen3\")")
        }
        if let architectures, !architectures.contains("Qwen3ForCausalLM") {
            throw unsupported("architecture \(architectures.joined(separator: ", ")) is not supported")
        }
        if let modelType, modelType != "qwen3" {
            throw unsupported("model_type \"\(modelType)\" is not supported")
        }
        if let hiddenAct, hiddenAct != "silu" {
            throw unsupported("hidden_act \"\(hiddenAct)\" is not supported (only silu)")
        }
        if useSlidingWindow == true {
            throw unsupported("use_sliding_window true is not supported")
        }
        for rope in [ropeScaling, ropeParameters].compactMap({ $0 }) where rope.kind != "default" {
            throw unsupported("rope scaling \"\(rope.kind)\" is not supported (only default RoPE)")
        }
        let theta = ropeTheta ?? ropeParameters?.ropeTheta ?? 10_000
        let heads = numAttentionHeads
        return Qwen3Config(
            vocabSize: vocabSize, hiddenSize: hiddenSize, intermediateSize: intermediateSize,
            numLayers: numHiddenLayers, numHeads: heads, numKVHeads: numKeyValueHeads ?? heads,
            headDim: headDim ?? (heads > 0 ? hiddenSize / heads : 0),
            maxPositionEmbeddings: maxPositionEmbeddings ?? 40_960,
            rmsNormEps: Float(rmsNormEps ?? 1e-6), ropeTheta: theta,
            tieWordEmbeddings: tieWordEmbeddings ?? false, attentionBias: attentionBias ?? false)
    }
}

extension Qwen3Config {
    /// config.json in Hugging Face's key names, as the synthetic checkpoint generator writes it.
    public func huggingFaceJSON() throws -> Data {
        let object: [String: Any] = [
            "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3",
            "vocab_size": vocabSize, "hidden_size": hiddenSize,
            "intermediate_size": intermediateSize, "num_hidden_layers": numLayers,
            "num_attention_heads": numHeads, "num_key_value_heads": numKVHeads,
            "head_dim": headDim, "max_position_embeddings": maxPositionEmbeddings,
            "rms_norm_eps": Double(rmsNormEps), "rope_theta": ropeTheta,
            "tie_word_embeddings": tieWordEmbeddings, "attention_bias": attentionBias,
            "hidden_act": "silu", "use_sliding_window": false, "rope_scaling": NSNull(),
            "torch_dtype": "bfloat16",
        ]
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }
}
