import ArgumentParser
import Foundation
import Query

/// Buffered byte output to a file or stdout.
final class LineSink {
    private let handle: FileHandle
    private var buffer: [UInt8] = []

    init(path: String) throws {
        if path == "-" {
            handle = FileHandle.standardOutput
        } else {
            guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
                throw CommandFailure("cannot create \(path): check the directory exists and is writable", exit: .cannotCreate)
            }
            handle = h
        }
    }

    func write(_ bytes: [UInt8]) throws {
        buffer.append(contentsOf: bytes)
        if buffer.count >= 1 << 20 { try flush() }
    }

    /// `bytes` and a newline, without building a new array per line.
    func writeLine(_ bytes: [UInt8]) throws {
        buffer.append(contentsOf: bytes)
        buffer.append(UInt8(ascii: "\n"))
        if buffer.count >= 1 << 20 { try flush() }
    }

    func finish() throws {
        try flush()
        try handle.synchronize()
    }

    private func flush() throws {
        try handle.write(contentsOf: buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}

/// CSV with a header row; values quoted when they contain a comma, quote or newline.
final class CSVFile {
    private let sink: LineSink

    init(path: String, columns: [String]) throws {
        sink = try LineSink(path: path)
        try sink.writeLine(Array(columns.map(csvField).joined(separator: ",").utf8))
    }

    private var line: [UInt8] = []

    func write(_ values: [QueryValue]) throws {
        line.removeAll(keepingCapacity: true)
        for (i, value) in values.enumerated() {
            if i > 0 { line.append(UInt8(ascii: ",")) }
            switch value {
            case .null: break
            case .text(let t): appendCSVField(t, to: &line)
            default: line.append(contentsOf: value.text.utf8)
            }
        }
        try sink.writeLine(line)
    }

    func finish() throws { try sink.finish() }
}
