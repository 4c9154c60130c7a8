// ToolMain.swift — how both tools start and fail: one line on stderr, a non-zero exit, no usage dump.
import ArgumentParser
import Foundation

public enum ToolMain {
    /// Parses and runs like ArgumentParser's default, except that a bad command line is one line
    /// on stderr (the message, no usage block) with exit code 64; --help still prints the help.
    public static func main<Command: ParsableCommand>(_ type: Command.Type, tool: String) {
        do {
            var command = try type.parseAsRoot()
            try command.run()
        } catch {
            let code = type.exitCode(for: error)
            if code == .success { type.exit(withError: error) }
            let message = type.message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments"
            fail(tool, message, status: code.rawValue)
        }
    }

    public static func report(_ tool: String, _ message: String) {
        FileHandle.standardError.write(Data("\(tool): error: \(message)\n".utf8))
    }

    public static func fail(_ tool: String, _ message: String, status: Int32 = 1) -> Never {
        report(tool, message)
        Foundation.exit(status)
    }
}
