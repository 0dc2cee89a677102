package import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A minimal blocking HTTP/1.1 client for talking to test servers on loopback.
///
/// Foundation's URLSession on Linux never completes a request answered with `401` and
/// a `WWW-Authenticate` challenge (as ClickHouse answers a wrong password), which is a
/// case the tests must check, so the test helpers speak HTTP themselves.
package enum LoopbackHTTP {
    package struct Response: Sendable {
        package let status: Int
        package let body: Data
        package var text: String { String(decoding: body, as: UTF8.self) }
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    package static func post(host: String = "127.0.0.1", port: Int, path: String, headers: [String: String], body: Data) throws -> Response {
        try request("POST", host: host, port: port, path: path, headers: headers, body: body)
    }

    package static func get(host: String = "127.0.0.1", port: Int, path: String, headers: [String: String] = [:]) throws -> Response {
        try request("GET", host: host, port: port, path: path, headers: headers, body: Data())
    }

    static func request(_ method: String, host: String, port: Int, path: String, headers: [String: String], body: Data) throws -> Response {
        let fd = try connected(host: host, port: port)
        defer { close(fd) }

        var request = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\nContent-Length: \(body.count)\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        try sendAll(fd, Data(request.utf8) + body)

        var response = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n < 0 { throw Failure(description: "recv failed: errno \(errno)") }
            if n == 0 { break }
            response.append(contentsOf: buffer[0..<n])
        }
        return try parse(response)
    }

    /// A socket connected to `host:port`, with a 60 s receive timeout.
    static func connected(host: String, port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket() failed: errno \(errno)") }
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &address.sin_addr) == 1 else {
            throw Failure(description: "only IPv4 loopback addresses are supported, got \(host)")
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw Failure(description: "cannot connect to \(host):\(port): errno \(errno)")
        }
        return fd
    }

    /// One kept-alive connection that sends requests one after another, as Go's HTTP
    /// client (FLP's) does: no connection set up and torn down per request. Answers must
    /// carry a Content-Length or be 204 (flowrec's push answers are).
    package final class Connection {
        private let fd: Int32
        private var received = Data()

        package init(host: String = "127.0.0.1", port: Int) throws {
            fd = try LoopbackHTTP.connected(host: host, port: port)
        }

        deinit { close(fd) }

        package func post(path: String, headers: [String: String], body: [UInt8]) throws -> Response {
            var head = "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(body.count)\r\n"
            for (name, value) in headers { head += "\(name): \(value)\r\n" }
            head += "\r\n"
            // One send: a header sent apart from its body waits out Nagle's algorithm
            // against the server's delayed ACK (40 ms a request).
            var request = Data(head.utf8)
            request.append(contentsOf: body)
            try LoopbackHTTP.sendAll(fd, request)
            var chunk = [UInt8](repeating: 0, count: 16384)
            while true {
                // The answer ends Content-Length bytes after its header (none for a 204).
                if let split = received.firstRange(of: Data("\r\n\r\n".utf8)) {
                    let head = String(decoding: received[received.startIndex..<split.lowerBound], as: UTF8.self)
                    let length = head.components(separatedBy: "\r\n").lazy.compactMap { line -> Int? in
                        let pair = line.split(separator: ":", maxSplits: 1)
                        guard pair.count == 2, pair[0].lowercased() == "content-length" else { return nil }
                        return Int(pair[1].trimmingCharacters(in: .whitespaces))
                    }.first ?? 0
                    let end = split.upperBound + length
                    if received.endIndex >= end {
                        let answer = try LoopbackHTTP.parse(received[received.startIndex..<end])
                        received = Data(received[end...])
                        return answer
                    }
                }
                let n = recv(fd, &chunk, chunk.count, 0)
                if n < 0 { throw Failure(description: "recv failed: errno \(errno)") }
                if n == 0 { throw Failure(description: "the server closed the connection") }
                received.append(contentsOf: chunk[0..<n])
            }
        }
    }

    /// Waits up to `seconds` for `GET path` to answer 200 (a server started as a child
    /// process becoming ready); false when it did not, or `process` exited first.
    package static func waitUntilReady(port: Int, path: String, process: Process? = nil, seconds: Double = 30) -> Bool {
        let deadline = Date() + seconds
        while Date() < deadline {
            if let answer = try? get(port: port, path: path), answer.status == 200 { return true }
            if let process, !process.isRunning { return false }
            usleep(50_000)
        }
        return false
    }

    static func sendAll(_ fd: Int32, _ data: Data) throws {
        var offset = 0
        try data.withUnsafeBytes { raw in
            while offset < raw.count {
                let n = send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if n <= 0 { throw Failure(description: "send failed: errno \(errno)") }
                offset += n
            }
        }
    }

    static func parse(_ raw: Data) throws -> Response {
        guard let split = raw.firstRange(of: Data("\r\n\r\n".utf8)) else { throw Failure(description: "malformed HTTP response") }
        let head = String(decoding: raw[raw.startIndex..<split.lowerBound], as: UTF8.self)
        let lines = head.components(separatedBy: "\r\n")
        let statusParts = lines.first?.split(separator: " ") ?? []
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw Failure(description: "malformed status line") }
        var body = Data(raw[split.upperBound...])
        if lines.contains(where: { $0.lowercased() == "transfer-encoding: chunked" }) { body = try dechunk(body) }
        return Response(status: status, body: body)
    }

    private static func dechunk(_ data: Data) throws -> Data {
        var out = Data()
        var rest = data[...]
        while let lineEnd = rest.firstRange(of: Data("\r\n".utf8)) {
            let sizeText = String(decoding: rest[rest.startIndex..<lineEnd.lowerBound], as: UTF8.self)
            guard let size = Int(sizeText.split(separator: ";").first ?? "", radix: 16) else {
                throw Failure(description: "malformed chunk size \(sizeText)")
            }
            if size == 0 { break }
            let start = lineEnd.upperBound
            guard rest.distance(from: start, to: rest.endIndex) >= size else { throw Failure(description: "truncated chunk") }
            let end = rest.index(start, offsetBy: size)
            out.append(rest[start..<end])
            let next = rest.index(end, offsetBy: 2, limitedBy: rest.endIndex) ?? rest.endIndex
            rest = rest[next...]
        }
        return out
    }
}
