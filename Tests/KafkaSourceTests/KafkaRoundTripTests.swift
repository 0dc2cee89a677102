import FlowrecTestTraits
import FlowGenerator
import FlowrecTesting
import Foundation
import KafkaSource
import Testing

/// Generated flows go into the test broker with the librdkafka producer and come back
/// with the consumer: same count, same bytes, for every producer compression.
@Suite(.serialized, .ownThread) struct KafkaRoundTripTests {
    func generated(_ count: Int, seed: UInt64) -> [[UInt8]] {
        var options = GeneratorOptions()
        options.seed = seed
        var generator = FlowGenerator(options: options)
        return (0..<count).map { _ in
            var line: [UInt8] = []
            generator.nextRecord(into: &line)
            return line
        }
    }

    func produceAndConsume(count: Int, compression: String, partitions: Int) throws {
        let broker = try TestKafkaBroker.start(topics: ["flows-export": partitions])
        defer { broker.stop() }
        let sent = generated(count, seed: UInt64(count))
        let producer = try KafkaProducer(
            topic: "flows-export",
            properties: KafkaProperties(["bootstrap.servers": broker.bootstrapServers, "compression.codec": compression]))
        for message in sent { try producer.send(message) }
        try producer.flush()
        #expect(producer.delivered == count)
        #expect(producer.failed == 0)

        let consumer = try KafkaConsumer(topics: ["flows-export"], properties: KafkaProperties([
            "bootstrap.servers": broker.bootstrapServers, "group.id": "roundtrip-\(compression)",
            "session.timeout.ms": "6000",
        ]))
        defer { consumer.close() }
        var received: [[UInt8]] = []
        var offsets = Set<String>()
        // Give up only after a minute without a single message.
        var watch = ProgressWatch(stallSeconds: 60)
        while received.count < count && !watch.stalled(progress: received.count) {
            try consumer.poll(maxMessages: 10_000, timeoutMs: 500) { message in
                received.append(Array(message.payload))
                offsets.insert("\(message.partition)/\(message.offset)")
            }
        }
        #expect(received.count == count)
        #expect(offsets.count == count, "each message once")
        // Partitions interleave, so compare as multisets (as a Bool: a failure must not
        // print 100 MB of bytes).
        let key: ([UInt8], [UInt8]) -> Bool = { $0.lexicographicallyPrecedes($1) }
        let identical = received.sorted(by: key) == sent.sorted(by: key)
        #expect(identical, "the consumed messages differ from the produced ones")
    }

    /// The mock broker keeps about 5 MiB per partition and silently drops older data,
    /// so 100k flows (~100 MB) are spread over 48 partitions.
    @Test func hundredThousandFlowsComeBackIdentical() throws {
        try produceAndConsume(count: 100_000, compression: "zstd", partitions: 48)
    }

    @Test(arguments: ["none", "gzip", "snappy", "lz4"])
    func everyProducerCompression(_ codec: String) throws {
        try produceAndConsume(count: 5_000, compression: codec, partitions: 2)
    }

    /// A consumer slower than its broker fills librdkafka's queue, and librdkafka 2.0
    /// then fetches again only when its broker thread wakes (once a second when nothing
    /// else happens). `poll` wakes it when the queue runs dry with data left on the
    /// broker; the wake-ups must neither lose nor repeat a message.
    @Test func aDrainedQueueWakesTheFetcherAndLosesNothing() throws {
        let broker = try TestKafkaBroker.start(topics: ["flows-export": 4])
        defer { broker.stop() }
        let sent = generated(8_000, seed: 5)
        let producer = try KafkaProducer(topic: "flows-export", properties: KafkaProperties(["bootstrap.servers": broker.bootstrapServers]))
        for (i, message) in sent.enumerated() { try producer.send(message, partition: Int32(i % 4)) }
        try producer.flush()

        // A queue of 64 KiB (about 60 messages) fills at once; the reader takes a few
        // hundred at a time, more slowly than the broker gives them.
        let consumer = try KafkaConsumer(topics: ["flows-export"], properties: KafkaProperties([
            "bootstrap.servers": broker.bootstrapServers, "group.id": "stalled-fetcher", "session.timeout.ms": "6000",
            "queued.max.messages.kbytes": "64", "fetch.message.max.bytes": "16384",
        ]))
        defer { consumer.close() }
        var received: [[UInt8]] = []
        var offsets = Set<String>()
        var watch = ProgressWatch(stallSeconds: 60)
        let started = ContinuousClock.now
        while received.count < sent.count && !watch.stalled(progress: received.count) {
            try consumer.poll(maxMessages: 300, timeoutMs: 500) { message in
                received.append(Array(message.payload))
                offsets.insert("\(message.partition)/\(message.offset)")
            }
            usleep(2_000)
        }
        #expect(received.count == sent.count)
        #expect(offsets.count == sent.count, "each message once")
        #expect(Dictionary(grouping: received, by: { $0 }).mapValues(\.count) == Dictionary(grouping: sent, by: { $0 }).mapValues(\.count))
        #expect(consumer.stallWakes > 0, "the queue ran dry with messages left on the broker, so the fetcher was woken")
        // Freed message buffers go back to the kernel while consuming, at most once per
        // interval (not after every poll: each trim costs milliseconds).
        let intervals = (ContinuousClock.now - started) / .seconds(KafkaConsumer.trimIntervalSeconds)
        #expect(intervals < 1 || consumer.memoryTrims > 0, "\(intervals) trim intervals passed while consuming")
        #expect(Double(consumer.memoryTrims) <= intervals + 1)
    }

    /// A member that polls again before storing what it read (a batch filled over
    /// several polls) hears of partitions taken away inside the poll, before its
    /// handover commit, and drops what it read of them: their new owner reads those
    /// messages from the commit. Together the two store every message exactly once. With
    /// the unstored messages kept instead, both stored them.
    @Test func partitionsTakenAwayMidBatchAreLeftToTheirNewOwner() throws {
        let broker = try TestKafkaBroker.start(topics: ["t": 8])
        defer { broker.stop() }
        let producer = try KafkaProducer(topic: "t", properties: KafkaProperties(["bootstrap.servers": broker.bootstrapServers]))
        let count = 4_000
        for i in 0..<count { try producer.send(Array("\(i)".utf8), partition: Int32(i % 8)) }
        try producer.flush()

        /// One member's messages read and not yet stored, and those it stored.
        final class Member {
            var pending: [(partition: Int32, offset: Int64, payload: String)] = []
            var stored: [String] = []
            var dropped = 0
            var revocations = 0
            /// Stores what is pending and commits it, for the partitions still its own (as
            /// the recorder does: a partition taken away is its new owner's to commit).
            func store(_ consumer: KafkaConsumer) {
                var next: [Int32: Int64] = [:]
                for m in pending where consumer.assignment.contains(where: { $0.partition == m.partition }) {
                    next[m.partition] = max(next[m.partition] ?? 0, m.offset + 1)
                }
                stored += pending.map(\.payload)
                pending.removeAll()
                consumer.commit(next.map { ("t", $0.key, $0.value) })
            }
        }
        let log = CapturedLog()
        func member(_ m: Member) throws -> KafkaConsumer {
            try KafkaConsumer(topics: ["t"], properties: KafkaProperties([
                "bootstrap.servers": broker.bootstrapServers, "group.id": "handover", "session.timeout.ms": "6000",
            ]), revoked: { partitions in
                m.revocations += 1
                let before = m.pending.count
                m.pending.removeAll { message in partitions.contains { $0.topic == "t" && $0.partition == message.partition } }
                m.dropped += before - m.pending.count
            }, logger: log.logger())
        }
        let a = Member(), b = Member()
        let first = try member(a)
        defer { first.close() }
        var second: KafkaConsumer?
        defer { second?.close() }
        var watch = ProgressWatch(stallSeconds: 60)
        // Until every message is stored, the second member has partitions, and nothing more
        // comes for three seconds (a message stored twice would come after the first store).
        var lastRead = ContinuousClock.now
        while Set(a.stored + b.stored).count < count || !a.pending.isEmpty || second?.assignment.isEmpty != false
                || ContinuousClock.now - lastRead < .seconds(3) {
            if watch.stalled(progress: a.stored.count + b.stored.count + a.pending.count + (second?.assignment.count ?? 0)) { break }
            let read = a.pending.count + b.stored.count, owned = second?.assignment.count
            // A stores what it read every few polls; from B's start until its first
            // revocation it stores nothing, so the revocation finds messages unstored.
            try first.poll(maxMessages: 40, timeoutMs: 100) { a.pending.append(($0.partition, $0.offset, String(decoding: $0.payload, as: UTF8.self))) }
            if second == nil, a.stored.count >= 400 {
                second = try member(b)
            } else if second == nil || a.revocations > 0, a.pending.count >= 120 || a.stored.count + b.stored.count + a.pending.count >= count {
                a.store(first)
            }
            if let second {
                try second.poll(maxMessages: 500, timeoutMs: 50) { b.pending.append(($0.partition, $0.offset, String(decoding: $0.payload, as: UTF8.self))) }
                b.store(second)
            }
            if a.pending.count + b.stored.count != read || second?.assignment.count != owned { lastRead = .now }
        }
        #expect(a.revocations > 0, "the second member took partitions away")
        #expect(a.dropped > 0, "the first member held unstored messages of them")
        #expect(b.stored.count >= a.dropped, "the new owner read what the first member dropped")
        let all = a.stored + b.stored
        #expect(Set(all) == Set((0..<count).map { "\($0)" }), "every message is stored")
        let twice = all.count - Set(all).count
        // librdkafka 2.0.2's mock broker sometimes refuses a handover commit (the
        // SyncGroup race of `TwoRecordersTests`); the consumer reports it, and then the new
        // owner restarts from an older commit. Without such a report, nothing is twice.
        let refused = log.messages.filter { $0.contains("their new owner may store some of those flows again") }
        if twice > 0 && !refused.isEmpty {
            withKnownIssue("the mock broker refused a handover commit: \(refused)") { #expect(twice == 0) }
        } else {
            #expect(twice == 0, "\(twice) messages were stored by both members")
        }
    }

    @Test func brokerDownThenUpLosesNothing() throws {
        let broker = try TestKafkaBroker.start(topics: ["t": 1])
        defer { broker.stop() }
        let producer = try KafkaProducer(topic: "t", properties: KafkaProperties([
            "bootstrap.servers": broker.bootstrapServers, "message.timeout.ms": "60000",
        ]))
        let messages = generated(2000, seed: 3)
        for m in messages.prefix(1000) { try producer.send(m) }
        try producer.flush()
        try broker.command("down 1")
        for m in messages.suffix(1000) { try producer.send(m) }
        Thread.sleep(forTimeInterval: 1)
        try broker.command("up 1")
        try producer.flush(timeoutMs: 30_000)
        #expect(producer.delivered == 2000)
        #expect(producer.failed == 0)
    }

    @Test func unknownCommandIsReportedByTheBroker() throws {
        let broker = try TestKafkaBroker.start(topics: ["t": 1])
        defer { broker.stop() }
        #expect(throws: TestServerUnavailable.self) { try broker.command("explode") }
        try broker.command("rtt 1 5")
    }

    @Test func badPropertyGivesAnActionableError() {
        do {
            _ = try KafkaProducer(topic: "t", properties: KafkaProperties(["no.such.property": "1"]))
            Issue.record("accepted an unknown property")
        } catch {
            #expect(error.description.contains("no.such.property"))
        }
    }
}
