// ChatTemplate.swift — Qwen's ChatML: messages wrapped in <|im_start|>role ... <|im_end|>.

/// The prompt Qwen3's chat template builds for a conversation with the generation prompt added:
/// `<|im_start|>{role}\n{content}<|im_end|>\n` per message, then `<|im_start|>assistant\n`, and with
/// thinking disabled the empty thinking block `<think>\n\n</think>\n\n` (as the template's
/// enable_thinking=false does). The markers become single ids because they are added tokens.
public enum ChatTemplate {
    public struct Message: Sendable {
        public let role: String
        public let content: String
        public init(role: String, content: String) {
            self.role = role
            self.content = content
        }
    }

    public static func prompt(_ messages: [Message], thinking: Bool) -> String {
        var text = ""
        for message in messages { text += "<|im_start|>\(message.role)\n\(message.content)<|im_end|>\n" }
        text += "<|im_start|>assistant\n"
        if !thinking { text += "<think>\n\n</think>\n\n" }
        return text
    }

    /// The markers the template relies on, which the tokenizer must have as added tokens.
    public static func requiredTokens(thinking: Bool) -> [String] {
        ["<|im_start|>", "<|im_end|>"] + (thinking ? [] : ["<think>", "</think>"])
    }
}
