// ResultTable.swift — result rows and their renderings: Markdown, CSV, JSON, JSON Lines.
import Foundation
import Qwen3

/// Output formats both tools share; `text` is each tool's own human layout.
public enum OutputFormat: String, CaseIterable {
    case text, md, csv, json, jsonl
}

/// One measured test: a JSON object. Columns of the tables are chosen by key.
public typealias ResultRow = [String: Any]

/// A column of the Markdown and CSV tables: the row key, its heading, and how to print a value.
public struct Column {
    public let key: String
    public let heading: String
    public let format: (Any) -> String

    public init(_ key: String, _ heading: String, format: @escaping (Any) -> String = Column.plain) {
        self.key = key
        self.heading = heading
        self.format = format
    }

    public static func plain(_ value: Any) -> String {
        if let d = value as? Double { return String(format: "%.4g", d) }
        return "\(value)"
    }

    public static func fixed(_ digits: Int) -> (Any) -> String {
        { value in (value as? Double).map { String(format: "%.\(digits)f", $0) } ?? "\(value)" }
    }
}

public enum ResultTable {
    /// A GitHub Markdown table; missing values are blank.
    public static func markdown(_ rows: [ResultRow], columns: [Column]) -> String {
        var lines = ["| " + columns.map(\.heading).joined(separator: " | ") + " |",
                     "|" + columns.map { _ in "---" }.joined(separator: "|") + "|"]
        for row in rows {
            lines.append("| " + columns.map { c in row[c.key].map(c.format) ?? "" }.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// RFC 4180 CSV with the row keys as the header; values holding commas or quotes are quoted.
    public static func csv(_ rows: [ResultRow], columns: [Column]) -> String {
        func field(_ text: String) -> String {
            text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" })
                ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
        }
        func value(_ v: Any) -> String {
            if let list = v as? [Double] { return list.map { String(format: "%.4f", $0) }.joined(separator: ";") }
            if let d = v as? Double { return String(format: "%.6g", d) }
            return "\(v)"
        }
        var lines = [columns.map { field($0.key) }.joined(separator: ",")]
        for row in rows { lines.append(columns.map { c in field(row[c.key].map(value) ?? "") }.joined(separator: ",")) }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One JSON object per line, keys sorted.
    public static func jsonLines(_ rows: [ResultRow]) throws -> String {
        try rows.map { row in
            String(decoding: try JSONSerialization.data(withJSONObject: row, options: [.sortedKeys]), as: UTF8.self)
        }.joined(separator: "\n") + (rows.isEmpty ? "" : "\n")
    }

    /// A JSON array of the rows, pretty-printed.
    public static func json(_ rows: [ResultRow]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: rows, options: [.sortedKeys, .prettyPrinted]),
               as: UTF8.self) + "\n"
    }

    /// Appends rows as JSON Lines to `path` (created if missing).
    public static func appendJSONLines(_ rows: [ResultRow], to path: String) throws {
        let text = try jsonLines(rows)
        let fm = FileManager.default
        if !fm.fileExists(atPath: path) && !fm.createFile(atPath: path, contents: nil) {
            throw RequestError("cannot create \(path)")
        }
        guard let handle = FileHandle(forWritingAtPath: path) else { throw RequestError("cannot write \(path)") }
        defer { try? handle.close() }
        handle.seekToEndOfFile()
        handle.write(Data(text.utf8))
    }

    /// Output files are checked before any work, so a long run never ends in a write error.
    public static func checkWritable(_ path: String, option: String) throws {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue,
              access(folder, W_OK) == 0 else {
            throw RequestError("\(option): cannot write in \(folder) (missing or not writable)")
        }
    }
}
