// Generation.swift — the decode loop: prefill the prompt, then sample, feed back, until a stop.
import Foundation

/// The end-of-sequence ids of a model folder: generation_config.json's `eos_token_id` (an id or a
/// list), else the tokenizer's `<|im_end|>` and `<|endoftext|>`.
public enum EndOfSequence {
    public static func ids(modelFolder: URL, tokenizer: Tokenizer) throws -> Set<Int32> {
        let path = modelFolder.appendingPathComponent("generation_config.json").path
        if let data = FileManager.default.contents(atPath: path) {
            guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
                throw ModelLoadError(path, "is not a JSON object")
            }
            if let id = json["eos_token_id"] as? Int { return [Int32(id)] }
            if let list = json["eos_token_id"] as? [Int], !list.isEmpty { return Set(list.map { Int32($0) }) }
        }
        return Set(["<|im_end|>", "<|endoftext|>"].compactMap { tokenizer.addedTokenId($0) })
    }
}

/// Why generation ended.
public enum StopReason: String, Sendable {
    case endOfSequence = "eos", length, context
}

/// What one generation produced and how long its forward passes took (sampling and the token's
/// broadcast are outside every timed region).
public struct GenerationResult: Sendable {
    public var tokens: [Int32] = []
    public var stop: StopReason = .length
    /// The prompt's forward pass, until the logits of the first new token.
    public var prefillSeconds = 0.0
    /// The single-token forward passes that followed (one fewer than tokens generated).
    public var decodeSeconds = 0.0
    public var decodeSteps = 0
}

/// Generates with a session whose model may be split over MPI ranks: rank 0 samples each token and
/// every rank takes it from rank 0, so all ranks feed the same ids even if their logits differed.
public struct Generator {
    public let session: InferenceSession
    public let endOfSequence: Set<Int32>

    public init(session: InferenceSession, endOfSequence: Set<Int32>) {
        self.session = session
        self.endOfSequence = endOfSequence
    }

    /// Runs the prompt and up to `maxNewTokens` steps, calling `onToken` with each token as it is
    /// chosen (the end-of-sequence token included). Stops at an end-of-sequence id or when the
    /// session's cache is full.
    public func run(prompt: [Int32], maxNewTokens: Int, sampler: inout Sampler,
                    onToken: (Int32) -> Void) throws -> GenerationResult {
        let comm = session.model.communicator
        var result = GenerationResult()
        session.reset()
        var start = DispatchTime.now().uptimeNanoseconds
        var logits = try session.forward(prompt)
        result.prefillSeconds = Self.seconds(since: start)
        while true {
            let chosen = comm.rank == 0 ? sampler.sample(logits) : 0
            let token = comm.size > 1 ? Int32(comm.allGather([Double(chosen)])[0]) : chosen
            result.tokens.append(token)
            onToken(token)
            if endOfSequence.contains(token) { result.stop = .endOfSequence; break }
            if result.tokens.count >= maxNewTokens { result.stop = .length; break }
            if session.position >= session.capacity { result.stop = .context; break }
            start = DispatchTime.now().uptimeNanoseconds
            logits = try session.forward([token])
            result.decodeSeconds += Self.seconds(since: start)
            result.decodeSteps += 1
        }
        return result
    }

    private static func seconds(since start: UInt64) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
}
