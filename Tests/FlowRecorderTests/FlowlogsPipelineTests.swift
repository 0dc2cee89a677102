import FlowrecTestTraits
import FlowGenerator
import FlowModel
import FlowrecTesting
import Foundation
import ShardStore
import Testing

/// NetObserv's own flowlogs-pipeline (built from `../shared/clients`) writing to flowrec:
/// through its Loki writer to `/loki/api/v1/push`, and through its Kafka encoder to the
/// test broker that `flowrec record` reads. Either way flowrec ends with exactly the
/// flows FLP read, also when flowrec is killed in the middle of the pushes.
@Suite(.serialized, .ownThread) struct FlowlogsPipelineTests {
    /// A free loopback port (bound, then released for the program under test).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw TestServerUnavailable("no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// The input file: generated flows as NetObserv exports them, one per line, as FLP's
    /// JSON decoder reads them: with `TimeReceived` (it adds the time of reading to a
    /// record that lacks it) and without null members (it drops them). FLP then reads
    /// exactly this file.
    static func writeFlows(_ count: Int, seed: UInt64, to path: String) throws -> [String] {
        let lines = try generatedLines(count, seed: seed, rate: 200, features: Set(GeneratorOptions.Feature.allCases)).map { line in
            guard var object = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                  let end = object["TimeFlowEndMs"] as? NSNumber else { return line }
            let nulls = object.filter { $0.value is NSNull }.map(\.key)
            guard object["TimeReceived"] == nil || !nulls.isEmpty else { return line }
            for key in nulls { object[key] = nil }
            if object["TimeReceived"] == nil { object["TimeReceived"] = end.int64Value / 1000 }
            return Array(try JSONSerialization.data(withJSONObject: object))
        }
        var data = Data()
        for line in lines { data += line + [UInt8(ascii: "\n")] }
        try data.write(to: URL(fileURLWithPath: path))
        return try canonical(lines)
    }

    /// Flows as flowrec's encoder writes them, then with every object's keys sorted (FLP
    /// rewrites the objects inside NetworkEvents in Go's map order): what two stores
    /// holding the same flows both give.
    static func canonical(_ lines: [[UInt8]]) throws -> [String] {
        let decoder = FlowDecoder(), encoder = FlowEncoder()
        return try lines.map { line in
            var flow = Flow()
            try decoder.decode(line, into: &flow)
            var out: [UInt8] = []
            encoder.encode(flow, into: &out)
            return try sortedKeys(String(decoding: out, as: UTF8.self))
        }.sorted()
    }

    static func sortedKeys(_ json: String) throws -> String {
        let value = try JSONSerialization.jsonObject(with: Data(json.utf8))
        return String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]), as: UTF8.self)
    }

    static func stored(_ directory: String) throws -> [String] {
        try storedFlows(try ShardStore.openExisting(directory: directory)).map(sortedKeys).sorted()
    }

    static func flpConfig(input: String, write: String, metricsPort: Int) -> String {
        """
        log-level: info
        metricsSettings: {port: \(metricsPort)}
        pipeline:
          - name: ingest
          - name: write
            follows: ingest
        parameters:
          - name: ingest
            ingest: {type: file, file: {filename: \(input), decoder: {type: json}}}
          - name: write
        \(write)
        """
    }

    static func lokiWriter(port: Int, retries: Int = 2) -> String {
        """
            write:
              type: loki
              loki:
                url: http://127.0.0.1:\(port)
                tenantID: netobserv
                labels: [SrcK8S_Namespace, SrcK8S_OwnerName, SrcK8S_Type, DstK8S_Namespace, DstK8S_OwnerName, DstK8S_Type, K8S_FlowLayer, FlowDirection]
                staticLabels: {app: netobserv-flowcollector}
                timestampLabel: TimeFlowEndMs
                timestampScale: 1ms
                batchWait: 200ms
                batchSize: 262144
                minBackoff: 200ms
                maxBackoff: 1s
                maxRetries: \(retries)
        """
    }

    /// Runs FLP to the end of its file (it exits by itself), within `seconds`.
    static func runFLP(_ flp: URL, config: String, in dir: TemporaryDirectory, seconds: Double = 180,
                       during: (Process) throws -> Void = { _ in }) throws {
        let path = dir.path + "/flp.yaml"
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        let process = try ChildProcess.start(flp, ["--config", path], errorLog: dir.path + "/flp.log")
        try during(process)
        let deadline = Date() + seconds
        while process.isRunning && Date() < deadline { usleep(100_000) }
        if process.isRunning {
            process.terminate()
            Issue.record("flowlogs-pipeline did not finish within \(Int(seconds)) s; its log: \((try? String(contentsOfFile: dir.path + "/flp.log", encoding: .utf8))?.suffix(2000) ?? "")")
        }
    }

    static func startRecorder(_ flowrec: URL, data: String, port: Int, extra: [String] = [], log: String) throws -> Process {
        let process = try ChildProcess.start(flowrec, ["record", "--data", data, "--http-listen", "127.0.0.1:\(port)",
                                                       "--window", "1m", "--grace", "0s", "--compact-level", "0",
                                                       "--loki-tenant", "netobserv", "--log-format", "human"] + extra,
                                             errorLog: log)
        if LoopbackHTTP.waitUntilReady(port: port, path: "/ready", process: process) { return process }
        throw TestServerUnavailable("flowrec did not become ready on port \(port): \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    static func stop(_ process: Process) {
        process.terminate()
        process.waitUntilExit()
    }

    @Test func pushedThroughFLPsLokiWriterStoredExactly() throws {
        guard let flp = try NetObservClients.binary(.flowlogsPipeline) else { return }
        let flowrec = try ChildProcess.flowrec()
        let dir = TemporaryDirectory()
        let expected = try Self.writeFlows(6_000, seed: 41, to: dir.path + "/flows.jsonl")
        let port = try Self.freePort()
        let recorder = try Self.startRecorder(flowrec, data: dir.path + "/data", port: port, log: dir.path + "/flowrec.log")
        try Self.runFLP(flp, config: Self.flpConfig(input: dir.path + "/flows.jsonl", write: Self.lokiWriter(port: port),
                                                    metricsPort: try Self.freePort()), in: dir)
        // FLP's client sends its last batch as it exits; the answer comes after the commit.
        Self.stop(recorder)
        let store = try ShardStore.openExisting(directory: dir.path + "/data")
        let stored = try Self.stored(dir.path + "/data")
        #expect(stored.count == expected.count)
        #expect(stored == expected)
        #expect(try store.deadLetterCount() == 0)
    }

    @Test func killedInTheMiddleOfThePushesStillExactAfterFLPsRetries() throws {
        guard let flp = try NetObservClients.binary(.flowlogsPipeline) else { return }
        let flowrec = try ChildProcess.flowrec()
        let dir = TemporaryDirectory()
        let expected = try Self.writeFlows(15_000, seed: 43, to: dir.path + "/flows.jsonl")
        let port = try Self.freePort()
        var recorder = try Self.startRecorder(flowrec, data: dir.path + "/data", port: port, log: dir.path + "/flowrec-1.log")
        var killed = false
        try Self.runFLP(flp, config: Self.flpConfig(input: dir.path + "/flows.jsonl", write: Self.lokiWriter(port: port, retries: 30),
                                                    metricsPort: try Self.freePort()), in: dir) { _ in
            // Once some pushes are stored, kill flowrec mid-stream and bring it back.
            let deadline = Date() + 60
            while Date() < deadline {
                let metrics = (try? LoopbackHTTP.get(port: port, path: "/metrics").text) ?? ""
                if let line = metrics.split(separator: "\n").first(where: { $0.hasPrefix("flowrec_loki_pushes_total ") }),
                   let n = Double(line.split(separator: " ").last ?? ""), n >= 3 { break }
                usleep(20_000)
            }
            kill(recorder.processIdentifier, SIGKILL)
            recorder.waitUntilExit()
            killed = true
            recorder = try Self.startRecorder(flowrec, data: dir.path + "/data", port: port, log: dir.path + "/flowrec-2.log")
        }
        #expect(killed)
        Self.stop(recorder)
        let store = try ShardStore.openExisting(directory: dir.path + "/data")
        let stored = try Self.stored(dir.path + "/data")
        #expect(stored.count == expected.count)
        #expect(stored == expected)
        #expect(try store.deadLetterCount() == 0, "a push cut off by the kill is retried by FLP, not dead-lettered")
    }

    @Test func throughFLPsKafkaEncoderAndFlowrecRecordExactToo() throws {
        guard let flp = try NetObservClients.binary(.flowlogsPipeline) else { return }
        let flowrec = try ChildProcess.flowrec()
        let dir = TemporaryDirectory()
        let expected = try Self.writeFlows(6_000, seed: 47, to: dir.path + "/flows.jsonl")
        let broker = try TestKafkaBroker.start(topics: ["flows-export": 4])
        defer { broker.stop() }
        let kafka = """
                encode: {type: kafka, kafka: {address: \(broker.bootstrapServers), topic: flows-export}}
            """
        try Self.runFLP(flp, config: Self.flpConfig(input: dir.path + "/flows.jsonl", write: kafka, metricsPort: try Self.freePort()), in: dir)
        // FLP's Kafka writer may exit before its last sends are acknowledged (it logs
        // nothing and exits 0): flowrec must hold exactly what reached the topic.
        let arrived = try ChildProcess.output("/usr/bin/kcat", ["-C", "-b", broker.bootstrapServers, "-t", "flows-export", "-e", "-q", "-f", "%s\n"])
            .split(separator: "\n").map { Array($0.utf8) }
        #expect(arrived.count > expected.count / 2, "FLP delivered \(arrived.count) of \(expected.count) flows to Kafka")
        let status = try ChildProcess.run(flowrec, ["record", "--brokers", broker.bootstrapServers, "--data", dir.path + "/data",
                                                    "--http-listen", "off", "--window", "1m", "--grace", "0s", "--compact-level", "0",
                                                    "--exit-when-idle", "5s"])
        #expect(status == 0)
        let stored = try Self.stored(dir.path + "/data")
        let delivered = try Self.canonical(arrived)
        #expect(stored.count == delivered.count)
        #expect(stored == delivered)
        #expect(Set(delivered).isSubset(of: Set(expected)))
    }
}
