// TokenizeCommand.swift — the tokenize subcommand: a text's token ids, or the text of ids.
import ArgumentParser
import BenchSupport
import Foundation
import Qwen3

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print the token ids of a text, or with --decode the text of token ids, with the model folder's tokenizer.json.",
        discussion: """
        Prints the ids comma-separated on one line (as --tokens takes them); --json prints one object \
        with the ids and each id's piece of text. --decode prints the text of comma-separated ids \
        exactly (added tokens such as <|im_end|> included); with --json, an object with the text.
        """)

    @Option(help: "Model folder (or a checkpoint file in it) holding tokenizer.json.") var model: String
    @Option(help: "The text to tokenize.") var text: String?
    @Option(help: "A UTF-8 file to tokenize.") var file: String?
    @Option(help: "Comma-separated token ids to turn back into text.") var decode: String?
    @Flag(help: "One JSON object on stdout.") var json = false

    func run() throws {
        let command = self
        ToolMain.execute(tool: "benchmark_qwen3") { try command.execute() }
    }

    private func execute() throws {
        let input = try PromptText.read(prompt: text, file: file, textOption: "--text", fileOption: "--file")
        if input != nil && decode != nil { throw RequestError("give --text/--file or --decode, not both") }
        if input == nil && decode == nil { throw RequestError("tokenize needs --text, --file or --decode") }
        let tokenizer = try Tokenizer.load(modelPath: model)
        if let decode {
            let ids = try decode.split(separator: ",", omittingEmptySubsequences: false).map { item -> Int32 in
                let text = item.trimmingCharacters(in: .whitespaces)
                guard let id = Int32(text), id >= 0, Int(id) < tokenizer.idCount else {
                    throw RequestError("--decode: \"\(text)\" is not a token id of this tokenizer (0..<\(tokenizer.idCount))")
                }
                return id
            }
            let text = tokenizer.decode(ids)
            if json { print(try ResultTable.jsonLines([["ids": ids.map(Int.init), "text": text]]), terminator: "") } else { print(text) }
            return
        }
        let ids = try tokenizer.encode(input!)
        if json {
            let pieces = ids.map { String(decoding: tokenizer.bytes(of: $0), as: UTF8.self) }
            print(try ResultTable.jsonLines([["ids": ids.map(Int.init), "pieces": pieces, "count": ids.count]]), terminator: "")
        } else {
            print(ids.map(String.init).joined(separator: ","))
        }
    }
}
