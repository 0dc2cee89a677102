// flowrec-testkafka: a Kafka-protocol broker for tests and the demo.
//
// It is librdkafka's own mock cluster (rdkafka_mock.h), which speaks the real Kafka
// protocol on loopback ports, wrapped in a process so tests, the demo and kcat can
// share it. Usage:
//
//   flowrec-testkafka [--brokers N] [--topic NAME:PARTITIONS]... [--bootstrap-file PATH]
//
// On start it prints `BOOTSTRAP host:port,...` on stdout (and writes the same
// addresses to --bootstrap-file). Then it reads commands on stdin, one per line,
// answering `ok` or `error: ...`:
//
//   down BROKER_ID              make a broker unreachable
//   up BROKER_ID                bring it back
//   rtt BROKER_ID MS            add round-trip latency
//   errors API_KEY ERR [COUNT]  fail the next COUNT requests of an API (e.g. 1 = Fetch) with ERR
//   topic-error TOPIC ERR       make a topic's metadata answer ERR (0 clears)
//   create TOPIC PARTITIONS     create another topic
//   quit                        stop
//
// SIGTERM, SIGINT or end of input with --exit-on-eof stop it cleanly.

import CRdKafka
import Foundation
import Synchronization

struct Options {
    var brokers: Int32 = 1
    var topics: [(String, Int32)] = []
    var bootstrapFile: String?
    var exitOnEOF = false
}

/// Writes a line to stdout unbuffered: the parent process reads replies as they come.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("flowrec-testkafka: \(message)\n".utf8))
    exit(2)
}

func parseOptions() -> Options {
    var options = Options()
    var args = CommandLine.arguments.dropFirst()
    while let arg = args.popFirst() {
        switch arg {
        case "--brokers":
            guard let v = args.popFirst(), let n = Int32(v), n > 0 else { fail("--brokers needs a positive number") }
            options.brokers = n
        case "--topic":
            guard let v = args.popFirst() else { fail("--topic needs NAME:PARTITIONS") }
            let parts = v.split(separator: ":")
            guard parts.count == 2, let n = Int32(parts[1]), n > 0 else { fail("--topic needs NAME:PARTITIONS, got \(v)") }
            options.topics.append((String(parts[0]), n))
        case "--bootstrap-file":
            guard let v = args.popFirst() else { fail("--bootstrap-file needs a path") }
            options.bootstrapFile = v
        case "--exit-on-eof":
            options.exitOnEOF = true
        case "-h", "--help":
            print("""
            usage: flowrec-testkafka [--brokers N] [--topic NAME:PARTITIONS]... [--bootstrap-file PATH] [--exit-on-eof]
            A Kafka-protocol test broker on loopback (librdkafka's mock cluster).
            stdin commands: down ID | up ID | rtt ID MS | errors API_KEY ERR [COUNT] | topic-error TOPIC ERR | create TOPIC PARTITIONS | quit
            """)
            exit(0)
        default:
            fail("unknown argument \(arg); see --help")
        }
    }
    return options
}

/// The mock cluster and the client handle that owns it. librdkafka's mock API is
/// thread-safe; the lock keeps shutdown from racing a command.
final class MockCluster: Sendable {
    /// The client handle and the cluster, nil once shut down; librdkafka's pointers are
    /// safe to use from any thread.
    private struct Handles: @unchecked Sendable {  // OpaquePointer is not Sendable; librdkafka's handles are thread-safe
        var client: OpaquePointer?
        var cluster: OpaquePointer?
    }
    private let handles: Mutex<Handles>
    let bootstraps: String

    init(brokers: Int32) {
        guard let conf = rd_kafka_conf_new() else { fail("rd_kafka_conf_new failed") }
        var errbuf = [CChar](repeating: 0, count: 512)
        _ = rd_kafka_conf_set(conf, "log_level", "3", &errbuf, errbuf.count)
        guard let rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &errbuf, errbuf.count) else {
            fail("rd_kafka_new: \(String(decoding: errbuf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))")
        }
        guard let mc = rd_kafka_mock_cluster_new(rk, brokers) else { fail("cannot start the mock cluster") }
        handles = Mutex(Handles(client: rk, cluster: mc))
        bootstraps = String(cString: rd_kafka_mock_cluster_bootstraps(mc))
    }

    func createTopic(_ name: String, partitions: Int32) -> String? {
        withCluster { check(rd_kafka_mock_topic_create($0, name, partitions, 1)) }
    }

    func run(_ line: String) -> String? {
        let words = line.split(separator: " ").map(String.init)
        guard let verb = words.first else { return nil }
        func int(_ i: Int) -> Int32? { i < words.count ? Int32(words[i]) : nil }
        switch verb {
        case "down":
            guard let id = int(1) else { return "usage: down BROKER_ID" }
            return withCluster { check(rd_kafka_mock_broker_set_down($0, id)) }
        case "up":
            guard let id = int(1) else { return "usage: up BROKER_ID" }
            return withCluster { check(rd_kafka_mock_broker_set_up($0, id)) }
        case "rtt":
            guard let id = int(1), let ms = int(2) else { return "usage: rtt BROKER_ID MS" }
            return withCluster { check(rd_kafka_mock_broker_set_rtt($0, id, ms)) }
        case "errors":
            guard let api = int(1), let err = int(2) else { return "usage: errors API_KEY ERR [COUNT]" }
            let count = Int(int(3) ?? 1)
            let errors = [rd_kafka_resp_err_t](repeating: rd_kafka_resp_err_t(err), count: count)
            return withCluster { mc in
                errors.withUnsafeBufferPointer { rd_kafka_mock_push_request_errors_array(mc, Int16(api), count, $0.baseAddress) }
                return nil
            }
        case "topic-error":
            guard words.count == 3, let err = int(2) else { return "usage: topic-error TOPIC ERR" }
            return withCluster { mc in
                rd_kafka_mock_topic_set_error(mc, words[1], rd_kafka_resp_err_t(err))
                return nil
            }
        case "create":
            guard words.count == 3, let n = int(2), n > 0 else { return "usage: create TOPIC PARTITIONS" }
            return createTopic(words[1], partitions: n)
        default:
            return "unknown command \(verb)"
        }
    }

    func shutdown() {
        handles.withLock { handles in
            if let mc = handles.cluster { rd_kafka_mock_cluster_destroy(mc) }
            if let rk = handles.client { rd_kafka_destroy(rk) }
            handles = Handles()
        }
    }

    private func withCluster(_ body: (OpaquePointer) -> String?) -> String? {
        handles.withLock { handles in
            guard let mc = handles.cluster else { return "the cluster is stopped" }
            return body(mc)
        }
    }

    private func check(_ err: rd_kafka_resp_err_t) -> String? {
        err == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : String(cString: rd_kafka_err2str(err))
    }
}

let options = parseOptions()

// Block the stop signals in every thread; the main thread waits for them below.
var stopSignals = sigset_t()
sigemptyset(&stopSignals)
sigaddset(&stopSignals, SIGTERM)
sigaddset(&stopSignals, SIGINT)
pthread_sigmask(SIG_BLOCK, &stopSignals, nil)

let cluster = MockCluster(brokers: options.brokers)
for (name, partitions) in options.topics {
    if let error = cluster.createTopic(name, partitions: partitions) { fail("cannot create topic \(name): \(error)") }
}
if let path = options.bootstrapFile {
    do {
        try (cluster.bootstraps + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    } catch {
        fail("cannot write \(path): \(error)")
    }
}
say("BOOTSTRAP \(cluster.bootstraps)")

let commandReader = Thread {
    while let line = readLine() {
        let command = line.trimmingCharacters(in: .whitespaces)
        if command.isEmpty { continue }
        if command == "quit" { kill(getpid(), SIGTERM); return }
        if let error = cluster.run(command) { say("error: \(error)") } else { say("ok") }
    }
    if options.exitOnEOF { kill(getpid(), SIGTERM) }
}
commandReader.start()

var received: Int32 = 0
sigwait(&stopSignals, &received)
cluster.shutdown()
exit(0)
