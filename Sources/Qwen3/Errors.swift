// Errors.swift — the typed errors the library throws; each renders as one line naming the input.

/// A problem with the model files or their contents, found while loading.
public struct ModelLoadError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let problem: String
    public init(_ path: String, _ problem: String) {
        self.path = path
        self.problem = problem
    }
    public var description: String { "\(path): \(problem)" }
}

/// A request the loaded model or this machine cannot serve (options, sizes, CPU features).
public struct RequestError: Error, CustomStringConvertible, Equatable {
    public let problem: String
    public init(_ problem: String) { self.problem = problem }
    public var description: String { problem }
}
