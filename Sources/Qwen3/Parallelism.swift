// Parallelism.swift — how an MPI job splits the model: Megatron heads (tensor) or the prompt's tokens.

/// How the processes of an MPI job share the work.
public enum Parallelism: String, CaseIterable, Sendable {
    /// Tensor parallelism: each rank holds a share of the heads, MLP columns and vocabulary;
    /// activations are all-reduced twice per layer. Weights divided, activations replicated.
    case heads
    /// Sequence parallelism (prefill): each rank holds every weight and takes a zig-zag share of
    /// the prompt's tokens; only keys and values are exchanged (one all-gather per layer).
    /// Weights replicated, activations divided. Decode steps are not split: every rank runs them whole.
    case sequence
}
