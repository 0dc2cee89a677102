import FlowrecTestTraits
import FlowGenerator
import FlowRecorder
import FlowrecConfig
import FlowrecTesting
import Foundation
import KafkaSource
import ShardStore
import Synchronization
import Testing

/// The recorder's HTTP listener: probes, the token on /metrics, TLS, and the figures a
/// running recorder reports.
@Suite(.serialized, .ownThread) struct StatusServerTests {
    func listener(token: String? = nil) -> HTTPListenerConfiguration {
        var http = HTTPListenerConfiguration()
        http.port = 0
        http.bearerToken = token
        return http
    }

    @Test func metricsNeedTheTokenAndProbesDoNot() throws {
        let metrics = RecorderMetrics()
        let server = try StatusServer(configuration: listener(token: "s3cret"), metrics: metrics, status: RecorderStatus())
        defer { server.stop() }
        let denied = try LoopbackHTTP.get(port: server.port, path: "/metrics")
        #expect(denied.status == 401)
        #expect(!denied.text.contains("flowrec_flows_stored_total"))
        let wrong = try LoopbackHTTP.get(port: server.port, path: "/metrics", headers: ["Authorization": "Bearer s3cre"])
        #expect(wrong.status == 401)
        let allowed = try LoopbackHTTP.get(port: server.port, path: "/metrics", headers: ["Authorization": "Bearer s3cret"])
        #expect(allowed.status == 200)
        #expect(allowed.text.contains("# TYPE flowrec_flows_stored_total counter"))
        // Counters are exported at 0 before their first event, so alerts see them.
        #expect(allowed.text.contains("flowrec_errors_total{kind=\"seal\"} 0"), "\(allowed.text.prefix(2000))")
        // The scheme is case-insensitive (RFC 7235).
        let lower = try LoopbackHTTP.get(port: server.port, path: "/metrics", headers: ["Authorization": "bearer s3cret"])
        #expect(lower.status == 200)
        #expect(try LoopbackHTTP.get(port: server.port, path: "/healthz").status == 200)
        let notReady = try LoopbackHTTP.get(port: server.port, path: "/readyz")
        #expect(notReady.status == 503 && notReady.text.contains("store is not open"))
    }

    /// The recorder loop (and, in tests, other blocking work) may hold every one of
    /// Swift's shared threads; the listener has a thread of its own and still answers.
    @Test func answersWhileTheSharedThreadsAreBlocked() throws {
        let release = DispatchSemaphore(value: 0)
        let blockers = ProcessInfo.processInfo.activeProcessorCount + 1
        for _ in 0..<blockers {
            Task.detached { release.wait() }  // each holds a cooperative thread until released
        }
        var released = false
        defer { if !released { for _ in 0..<blockers { release.signal() } } }
        Thread.sleep(forTimeInterval: 0.3)
        let server = try StatusServer(configuration: listener(), metrics: RecorderMetrics(), status: RecorderStatus())
        #expect(try LoopbackHTTP.get(port: server.port, path: "/healthz").status == 200)
        for _ in 0..<blockers { release.signal() }
        released = true
        server.stop()
    }

    @Test func aListenerOffLoopbackNeedsAToken() throws {
        var http = listener()
        http.host = "0.0.0.0"
        #expect(throws: SettingsError.self) {
            _ = try StatusServer(configuration: http, metrics: RecorderMetrics(), status: RecorderStatus())
        }
        http.bearerToken = "t"
        let server = try StatusServer(configuration: http, metrics: RecorderMetrics(), status: RecorderStatus())
        server.stop()
    }

    @Test func servesHTTPSWithTheGivenCertificate() throws {
        let dir = TemporaryDirectory()
        let made = try ChildProcess.output("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
            "-keyout", dir.path + "/key.pem", "-out", dir.path + "/cert.pem"])
        try #require(FileManager.default.fileExists(atPath: dir.path + "/cert.pem"), "openssl: \(made)")
        var http = listener()
        http.tlsCertificatePath = dir.path + "/cert.pem"
        http.tlsKeyPath = dir.path + "/key.pem"
        let server = try StatusServer(configuration: http, metrics: RecorderMetrics(), status: RecorderStatus())
        defer { server.stop() }
        let body = try ChildProcess.output("/usr/bin/curl", ["-sS", "--cacert", dir.path + "/cert.pem",
                                                             "https://localhost:\(server.port)/healthz"])
        #expect(body == "ok\n")
        let plain = try ChildProcess.output("/usr/bin/curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                                              "http://127.0.0.1:\(server.port)/healthz"])
        #expect(!plain.hasPrefix("200"), "plain HTTP is not served on a TLS listener")
    }

    @Test func aRunningRecorderReportsReadinessAndWhatItStored() throws {
        let broker = try TestKafkaBroker.start(topics: ["flows-export": 2])
        defer { broker.stop() }
        try broker.produceGeneratedFlows(2000, partitions: 2)
        let producer = try KafkaProducer(topic: "flows-export", properties: KafkaProperties([
            "bootstrap.servers": broker.bootstrapServers]))
        try producer.send(Array("not a flow".utf8), partition: 0)
        try producer.flush()

        let dir = TemporaryDirectory()
        var config = RecorderConfiguration(bootstrapServers: broker.bootstrapServers)
        config.dataDirectory = dir.path
        config.http = listener()
        config.deepCompaction = nil
        config.kafkaProperties = ["session.timeout.ms": "6000"]
        let recorder = Recorder(configuration: config)
        let stop = Atomic<Bool>(false)
        let finished = DispatchSemaphore(value: 0)
        let box = UncheckedBox(recorder)
        Thread.detachNewThread {
            _ = try? box.value.run(shouldStop: { stop.load(ordering: .relaxed) })
            finished.signal()
        }
        defer {
            stop.store(true, ordering: .relaxed)
            finished.wait()
        }

        // Wait for the listener, then for readiness (store open, partitions assigned).
        var port: Int?
        var ready = false
        var stored = ""
        for _ in 0..<300 {
            port = port ?? box.value.httpPort
            if let port {
                ready = ready || (try? LoopbackHTTP.get(port: port, path: "/readyz"))?.status == 200
                let metrics = (try? LoopbackHTTP.get(port: port, path: "/metrics"))?.text ?? ""
                stored = metrics.split(separator: "\n").first { $0.hasPrefix("flowrec_flows_stored_total ") }.map(String.init) ?? ""
                if ready && stored == "flowrec_flows_stored_total 2000" && metrics.contains("flowrec_dead_letters_total 1") { break }
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(ready, "/readyz turned 200 once partitions were assigned")
        #expect(stored == "flowrec_flows_stored_total 2000")
        let metrics = try LoopbackHTTP.get(port: try #require(port), path: "/metrics").text
        #expect(metrics.contains("flowrec_dead_letters_total 1"))
        #expect(metrics.contains("flowrec_batch_duration_seconds_count"))
    }
}

/// Hands a non-Sendable recorder to the thread that runs it; the test only reads its
/// thread-safe `httpPort` meanwhile.
final class UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
