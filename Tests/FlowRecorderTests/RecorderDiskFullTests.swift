import FlowrecTestTraits
import FlowGenerator
import FlowrecConfig
import FlowRecorder
import FlowrecTesting
import Foundation
import KafkaSource
import ShardStore
import Synchronization
import Testing

/// `flowrec record` on a volume that fills up while it ingests and seals in the
/// background: it keeps running with ingest paused and `/readyz` saying why (503), and
/// once space returns it resumes by itself and ends with every flow stored once and
/// every closed window sealed.
@Suite(.serialized, .ownThread) struct RecorderDiskFullTests {
    @Test func aFullDiskPausesIngestAndSpaceReturningResumesIt() throws {
        let fs = SmallFilesystem(megabytes: 6)
        guard fs.mounted else {
            #expect(!TestEnvironment.requireServers, "cannot mount a tmpfs (needs root): the disk-full test did not run")
            return
        }
        let broker = try TestKafkaBroker.start(topics: ["flows-export": 4])
        defer { broker.stop() }
        // Five minutes of flows that ended half an hour ago: one-minute windows, all of
        // them closed by the wall clock, far more than 6 MiB of active shards.
        var options = GeneratorOptions()
        options.flowsPerSecond = 200
        options.startMs = (Int64(Date().timeIntervalSince1970 * 1000) - 30 * 60_000) / 60_000 * 60_000
        var generator = FlowGenerator(options: options)
        let producer = try KafkaProducer(topic: "flows-export", properties: KafkaProperties([
            "bootstrap.servers": broker.bootstrapServers, "compression.codec": "zstd"]))
        var produced = Set<String>()
        for i in 0..<60_000 {
            var line: [UInt8] = []
            generator.nextRecord(into: &line)
            produced.insert(String(decoding: line, as: UTF8.self))
            try producer.send(line, partition: Int32(i % 4))
        }
        try producer.flush()

        var config = RecorderConfiguration(bootstrapServers: broker.bootstrapServers)
        config.dataDirectory = fs.path + "/data"
        config.store = ShardStore.Options(windowMs: 60_000, graceMs: 5_000, sealInBackground: true)
        config.kafkaProperties = ["session.timeout.ms": "6000"]
        config.deepCompaction = nil
        config.merge = nil
        var http = HTTPListenerConfiguration()
        http.port = 0
        config.http = http
        let recorder = UncheckedBox(Recorder(configuration: config))
        let stop = Atomic<Bool>(false)
        let failure = Mutex<String?>(nil)
        let finished = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            do { try recorder.value.run(shouldStop: { stop.load(ordering: .relaxed) }) } catch { failure.withLock { $0 = "\(error)" } }
            finished.signal()
        }
        var running = true
        func stopRecorder() {
            guard running else { return }
            running = false
            stop.store(true, ordering: .relaxed)
            finished.wait()
        }
        defer { stopRecorder() }

        // The volume fills: the recorder pauses, stays up, and says so.
        var sawPause = false
        var reason = ""
        for _ in 0..<600 {
            if let port = recorder.value.httpPort, let answer = try? LoopbackHTTP.get(port: port, path: "/readyz"),
               answer.status == 503, answer.text.contains("disk is full") {
                sawPause = true
                reason = answer.text
                break
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(sawPause, "/readyz turns 503 naming the full disk")
        #expect(reason.contains("resumes"), "\(reason)")
        Thread.sleep(forTimeInterval: 2)
        #expect(failure.withLock { $0 } == nil, "the recorder keeps running: \(failure.withLock { $0 } ?? "")")

        // Space returns: everything is stored and sealed without a restart.
        #expect(fs.resize(megabytes: 256))
        var done = false
        for _ in 0..<900 {
            if let store = try? ShardStore.openForReading(directory: fs.path + "/data"), let shards = try? store.shards(),
               shards.reduce(0, { $0 + $1.rowCount }) == 60_000, shards.allSatisfy({ $0.state == .sealed }) {
                done = true
                break
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        #expect(done, "every flow stored and every window sealed once space returned")
        if let port = recorder.value.httpPort {
            #expect(try LoopbackHTTP.get(port: port, path: "/readyz").status == 200, "ready again")
        }
        stopRecorder()
        #expect(failure.withLock { $0 } == nil, "\(failure.withLock { $0 } ?? "")")
        let stored = try storedFlows(ShardStore.openExisting(directory: fs.path + "/data"))
        #expect(stored.count == produced.count, "each flow once")
        #expect(Set(stored) == produced)
    }
}
