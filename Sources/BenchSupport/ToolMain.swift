// ToolMain.swift — how both tools start and fail: one line on stderr, a non-zero exit, no usage dump.
import ArgumentParser
import Foundation
import Qwen3

public enum ToolMain {
    /// Parses and runs like ArgumentParser's default, except that a bad command line is one line
    /// on stderr (the message, no usage block) with exit code 64; --help still prints the help.
    /// `arguments` defaults to the process's.
    public static func main<Command: ParsableCommand>(_ type: Command.Type, tool: String, arguments: [String]? = nil) {
        do {
            var command = try type.parseAsRoot(arguments)
            try command.run()
        } catch {
            let code = type.exitCode(for: error)
            if code == .success { type.exit(withError: error) }
            let message = type.message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments"
            fail(tool, message, status: code.rawValue)
        }
    }

    /// Runs a command's work: a failure found before MPI started (the same on every rank) is reported
    /// once, by rank 0, as one line; a `JobFailure` was already agreed and reported. Exit code 1.
    public static func execute(tool: String, _ work: () throws -> Void) {
        var failure: String?
        do {
            try work()
        } catch let error as RequestError {
            failure = error.description
        } catch let error as ModelLoadError {
            failure = error.description
        } catch is JobFailure {
            Foundation.exit(1)
        } catch {
            failure = "\(error)"
        }
        if let failure {
            if (MPICommunicator.launchedRanks()?.rank ?? 0) == 0 {
                report(tool, failure)
            } else {
                // Rank 0 reports and exits 1, and mpirun then ends this rank. Exiting first would
                // make mpirun kill rank 0 before it reported (seen on a loaded host); the wait only
                // bounds the case where rank 0 somehow did not fail.
                Thread.sleep(forTimeInterval: 5)
            }
            Foundation.exit(1)
        }
    }

    /// Runs a step that may fail on some ranks only (loading, allocating); every rank learns whether
    /// any failed, rank 0 reports the first failure once, and every rank throws `JobFailure`, so none
    /// is left waiting in a later collective for a rank that has given up.
    public static func agree<T>(tool: String, _ comm: Communicator, _ step: () throws -> T) throws -> T {
        var value: T?
        var message: String?
        do { value = try step() } catch let error as RequestError { message = error.description }
        catch let error as ModelLoadError { message = error.description }
        if let failure = comm.firstFailure(message) {
            // Report before any rank exits: once one does, mpirun may tear the job down.
            if comm.rank == 0 { report(tool, comm.size > 1 ? "rank \(failure.rank): \(failure.message)" : failure.message) }
            comm.barrier()
            throw JobFailure()
        }
        guard let value else { throw JobFailure() }
        return value
    }

    public static func report(_ tool: String, _ message: String) {
        FileHandle.standardError.write(Data("\(tool): error: \(message)\n".utf8))
    }

    public static func fail(_ tool: String, _ message: String, status: Int32 = 1) -> Never {
        report(tool, message)
        Foundation.exit(status)
    }
}

/// An error every rank has agreed on and rank 0 has already reported.
public struct JobFailure: Error {
    public init() {}
}
