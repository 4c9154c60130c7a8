// GenerateCommand.swift — the generate subcommand: a text prompt in, the model's continuation streamed out.
import ArgumentParser
import BenchSupport
import CKernels
import Foundation
import Qwen3

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text from a prompt with a model folder that has a tokenizer.json.",
        discussion: """
        Streams the generated text to stdout as it is produced (the prompt is not echoed; the \
        end-of-sequence token is not printed), then prints on stderr the prompt's token count, the \
        time to first token (the prompt's forward pass), prefill and decode tokens/s and why \
        generation stopped. Tokenisation and sampling are outside every timed region. Generation \
        stops at an end-of-sequence id (generation_config.json's eos_token_id, else the tokenizer's \
        <|im_end|> and <|endoftext|>), after --max-new-tokens, or when the context \
        (max_position_embeddings) is full. Greedy (temperature 0) by default; with --temperature > 0, \
        top-k, then top-p, then a draw seeded by --seed (the same seed and thread count give the same text).

        Under mpirun give an MPI method (mpi, mpi+avx2, mpi+avx512) and --parallel heads or sequence: \
        rank 0 samples each token and sends it to the others; only rank 0 prints.

        --json prints, instead of streaming, one JSON object: prompt_ids, generated_ids (the \
        end-of-sequence id included when generation stopped there), text, stop, and the timings.
        """)

    @Option(help: "Model folder (config.json, safetensors, tokenizer.json; generation_config.json optional).")
    var model: String
    @Option(help: "The prompt text.") var prompt: String?
    @Option(help: "A UTF-8 file holding the prompt.") var promptFile: String?
    @Flag(help: "Wrap the prompt in Qwen's chat format (ChatML) as the user's message, with the assistant's turn opened.")
    var chat = false
    @Option(help: "With --chat: a system message before the user's.") var system: String?
    @Flag(help: "With --chat: close an empty thinking block after the assistant's turn opens (Qwen3's enable_thinking=false).")
    var noThink = false
    @Option(help: "Most tokens to generate (end-of-sequence included). Default 128.") var maxNewTokens = 128
    @Option(help: "Sampling temperature; 0 (default) is greedy.") var temperature: Float = 0
    @Option(help: "With --temperature > 0: sample from the K most likely tokens (0: all). Default 0.") var topK: Int?
    @Option(help: "With --temperature > 0: sample from the smallest set of tokens whose probability reaches P. Default 1.") var topP: Float?
    @Option(help: "With --temperature > 0: the sampler's seed. Default 0.") var seed: UInt64?
    @Option(help: "baseline, avx2, avx512, or under mpirun mpi, mpi+avx2, mpi+avx512. Default: the fastest this CPU supports.")
    var method: String?
    @Option(help: "MPI methods: heads (tensor parallel) or sequence (the prompt's tokens split). Default heads.")
    var parallel: String?
    @Option(help: "Linear-layer weights in memory: f32 or bf16.") var weights: String = "f32"
    @Option(help: "Attention: standard or streaming.") var attention: String = "standard"
    @Option(help: "OpenMP threads per process. Default: OMP_NUM_THREADS, else the available cores.") var threads: Int?
    @Flag(help: "Print one JSON object (ids, text, timings) instead of streaming the text.") var json = false

    func run() throws {
        let command = self
        ToolMain.execute(tool: "benchmark_qwen3") { try command.execute() }
    }

    /// Every option checked before MPI starts or the model loads.
    private func checkOptions() throws -> (method: Method, parallelism: Parallelism, precision: WeightPrecision, attention: AttentionKind) {
        if !chat {
            if system != nil { throw RequestError("--system applies only with --chat") }
            if noThink { throw RequestError("--no-think applies only with --chat") }
        }
        guard maxNewTokens >= 1 else { throw RequestError("--max-new-tokens must be at least 1, got \(maxNewTokens)") }
        if temperature == 0 {
            for (name, given) in [("--top-k", topK != nil), ("--top-p", topP != nil), ("--seed", seed != nil)] where given {
                throw RequestError("\(name) applies only to sampling (--temperature above 0); temperature 0 is greedy")
            }
        }
        let launch = MPICommunicator.launchedRanks()
        var method = Method.fastestLocal
        if let name = self.method {
            guard let chosen = Method(rawValue: name) else {
                throw RequestError("--method must be one of \(Method.allCases.map(\.rawValue).joined(separator: ", ")), got \(name)")
            }
            method = chosen
        }
        if let launch, launch.size > 1, !method.isDistributed {
            throw RequestError("--method \(method.rawValue) runs on one process, but mpirun started \(launch.size); use --method \(Method.distributed(method.isa).rawValue)")
        }
        var parallelism = Parallelism.heads
        if let text = parallel {
            guard method.isDistributed else { throw RequestError("--parallel applies only to the MPI methods (mpi, mpi+avx2, mpi+avx512)") }
            guard let p = Parallelism(rawValue: text) else { throw RequestError("--parallel must be heads or sequence, got \(text)") }
            parallelism = p
        }
        guard let precision = WeightPrecision(rawValue: weights) else { throw RequestError("--weights must be f32 or bf16, got \(weights)") }
        try method.isa.check(weights: precision)
        let kinds = ["standard": AttentionKind.standard,
                     "streaming": .streaming(qBlock: AttentionKind.defaultQBlock, kvBlock: AttentionKind.defaultKVBlock)]
        guard let kind = kinds[attention] else { throw RequestError("--attention must be standard or streaming, got \(attention)") }
        return (method, parallelism, precision, kind)
    }

    private func execute() throws {
        let (method, parallelism, precision, attention) = try checkOptions()
        var sampler = try Sampler(temperature: temperature, topK: topK ?? 0, topP: topP ?? 1, seed: seed ?? 0)
        guard var text = try PromptText.read(prompt: prompt, file: promptFile) else {
            throw RequestError("generate needs --prompt or --prompt-file")
        }
        let launch = MPICommunicator.launchedRanks()
        let threadCount = try ThreadChoice.resolve(option: threads, localRanks: method.isDistributed ? launch?.localSize ?? 1 : 1).count
        let comm: Communicator = method.isDistributed ? try MPICommunicator() : SingleProcessCommunicator()
        func agree<T>(_ step: () throws -> T) throws -> T { try ToolMain.agree(tool: "benchmark_qwen3", comm, step) }

        // Text work happens before the model loads, so a bad tokenizer or prompt fails fast.
        let (tokenizer, promptIds, config, eos) = try agree { () throws -> (Tokenizer, [Int32], Qwen3Config, Set<Int32>) in
            let tokenizer = try Tokenizer.load(modelPath: model)
            if chat {
                for marker in ChatTemplate.requiredTokens(thinking: !noThink) where tokenizer.addedTokenId(marker) == nil {
                    throw RequestError("--chat needs \(marker) as an added token, and this tokenizer.json has none")
                }
                var messages: [ChatTemplate.Message] = []
                if let system { messages.append(.init(role: "system", content: system)) }
                messages.append(.init(role: "user", content: text))
                text = ChatTemplate.prompt(messages, thinking: !noThink)
            }
            let ids = try tokenizer.encode(text)
            guard !ids.isEmpty else { throw RequestError("the prompt is empty: it has no tokens") }
            let folder = PromptText.modelFolder(model)
            let config = try Qwen3Config.load(from: folder.appendingPathComponent("config.json"))
            guard ids.count <= config.maxPositionEmbeddings else {
                throw RequestError("the prompt has \(ids.count) tokens, more than the model's context of \(config.maxPositionEmbeddings) (max_position_embeddings)")
            }
            if tokenizer.idCount > config.vocabSize {
                throw RequestError("the tokenizer's ids reach \(tokenizer.idCount - 1), outside the model's vocabulary of \(config.vocabSize)")
            }
            return (tokenizer, ids, config, try EndOfSequence.ids(modelFolder: folder, tokenizer: tokenizer))
        }

        ck_set_num_threads(Int32(threadCount))
        let capacity = min(promptIds.count + maxNewTokens - 1, config.maxPositionEmbeddings)
        let session = try agree { () throws -> InferenceSession in
            let model = try Qwen3Model(path: model, config: config, isa: method.isa, precision: precision,
                                       communicator: comm, parallelism: parallelism)
            return try InferenceSession(model: model, attention: attention, capacity: capacity,
                                        maxTokens: promptIds.count, allLogits: false)
        }

        let printing = comm.rank == 0
        var stream = StreamingDecoder(tokenizer: tokenizer)
        let result = try Generator(session: session, endOfSequence: eos).run(
            prompt: promptIds, maxNewTokens: maxNewTokens, sampler: &sampler) { token in
            guard printing, !json, !eos.contains(token) else { return }
            FileHandle.standardOutput.write(Data(stream.append(token).utf8))
        }
        // The slowest rank's time is the job's.
        let times = comm.max([result.prefillSeconds, result.decodeSeconds])
        guard printing else { return }
        let shown = result.tokens.filter { !eos.contains($0) }
        let prefillRate = Double(promptIds.count) / times[0]
        let decodeRate = result.decodeSteps > 0 ? Double(result.decodeSteps) / times[1] : 0
        if json {
            let row: ResultRow = [
                "prompt_ids": promptIds.map(Int.init), "generated_ids": result.tokens.map(Int.init),
                "text": tokenizer.decode(shown), "stop": result.stop.rawValue, "prompt_tokens": promptIds.count,
                "generated_tokens": result.tokens.count, "ttft_ms": times[0] * 1000,
                "prefill_tokens_per_s": prefillRate, "decode_tokens_per_s": decodeRate, "decode_steps": result.decodeSteps,
                "method": method.rawValue, "parallel": parallelism.rawValue, "procs": comm.size, "threads": threadCount,
                "temperature": Double(temperature), "top_k": topK ?? 0, "top_p": Double(topP ?? 1), "seed": Int(seed ?? 0),
            ]
            print(try ResultTable.jsonLines([row]), terminator: "")
            return
        }
        print(stream.finish())
        let summary = String(format: "prompt %d tokens, generated %d (stop: %@); time to first token %.1f ms; prefill %.1f tokens/s; decode %.1f tokens/s (%d steps); %@, %d process%@ x %d thread%@",
                             promptIds.count, result.tokens.count, result.stop.rawValue, times[0] * 1000, prefillRate,
                             decodeRate, result.decodeSteps, method.rawValue, comm.size, comm.size == 1 ? "" : "es",
                             threadCount, threadCount == 1 ? "" : "s")
        FileHandle.standardError.write(Data((summary + "\n").utf8))
    }
}
