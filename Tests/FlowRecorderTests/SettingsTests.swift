import FlowrecTestTraits
import FlowRecorder
import FlowrecConfig
import FlowrecTesting
import Foundation
import KafkaSource
import Testing

/// The settings layers: YAML file < environment < flags, checked values, secrets kept
/// out of flags, files and output, and generated docs that match the table.
@Suite(.ownThread) struct SettingsTests {
    func file(_ text: String, in dir: TemporaryDirectory) throws -> String {
        let path = dir.path + "/flowrec.yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func flagsBeatEnvironmentBeatsFileBeatsDefaults() throws {
        let dir = TemporaryDirectory()
        let path = try file("""
            kafka:
              brokers: from-file:9092
              group: file-group
              topics: [a, b]
            store:
              window: 5m
              grace: 30s
            """, in: dir)
        let s = try ResolvedSettings(table: FlowrecSettings.record, arguments: ["--window", "10m", "--topic", "c", "--topic=d"],
                                     environment: ["FLOWREC_STORE_WINDOW": "20m", "FLOWREC_KAFKA_GROUP": "env-group"], configFile: path)
        #expect(s.string("kafka.brokers") == "from-file:9092")
        #expect(s.source("kafka.brokers") == .file(path))
        #expect(s.string("kafka.group") == "env-group")
        #expect(s.seconds("store.window") == 600 && s.source("store.window") == .flag("window"))
        #expect(s.seconds("store.grace") == 30)
        #expect(s.list("kafka.topics") == ["c", "d"], "repeated flags add up, and replace the file's list")
        #expect(s.string("http.listen") == "127.0.0.1:9464" && s.source("http.listen") == .defaultValue)
    }

    @Test func mistakesNameTheSettingAndWhereItCameFrom() throws {
        let dir = TemporaryDirectory()
        func failure(_ yaml: String?, _ args: [String] = [], env: [String: String] = [:]) -> String {
            do {
                let path = try yaml.map { try file($0, in: dir) }
                _ = try ResolvedSettings(table: FlowrecSettings.record, arguments: args, environment: env, configFile: path)
                return ""
            } catch { return "\(error)" }
        }
        #expect(failure("kafka:\n  broker: x\n").contains("unknown setting 'kafka.broker' (did you mean 'kafka.brokers'?)"))
        #expect(failure(nil, ["--windw", "1m"]).contains("did you mean '--window'?"))
        #expect(failure(nil, ["--window", "5x"]).contains("store.window (flag --window): '5x' is not a duration"))
        #expect(failure(nil, env: ["FLOWREC_RETENTION_MIN_FREE": "120%"]).contains("env FLOWREC_RETENTION_MIN_FREE"))
        #expect(failure("store:\n  window: [1m]\n").contains("expected one value"))
        #expect(failure("clickhouse:\n  format: parquet\n").contains("one of native, rowbinary"))
        #expect(failure("kafka:\n  sasl:\n    password: hunter2\n").contains("is a secret and is read from FLOWREC_KAFKA_SASL_PASSWORD only"))
        #expect(failure(nil, ["--password", "hunter2"]).contains("not accepted on the command line"))
        #expect(failure(nil, ["--brokers"]).contains("--brokers needs a value"))
        #expect(failure("kafka: [1, 2\n").contains("not valid YAML"))
    }

    @Test func checkConfigMasksSecretsAndSaysWhereEachValueCameFrom() throws {
        let s = try ResolvedSettings(table: FlowrecSettings.record, arguments: ["--brokers", "k:9092", "--kafka-property", "sasl.password=oops,still"],
                                     environment: ["FLOWREC_KAFKA_SASL_PASSWORD": "hunter2", "FLOWREC_CLICKHOUSE_PASSWORD": "ch-secret"],
                                     configFile: nil)
        let text = s.rendered()
        #expect(!text.contains("hunter2") && !text.contains("ch-secret") && !text.contains("oops"))
        #expect(text.contains("password: \"********\"  # env FLOWREC_KAFKA_SASL_PASSWORD"))
        #expect(text.contains("brokers: k:9092  # flag --brokers"))
        #expect(s.map("kafka.properties") == ["sasl.password": "oops,still"], "a flag's value keeps its commas")
    }

    @Test func flowrecsKafkaDefaultsGiveWayToConfiguredProperties() throws {
        var config = RecorderConfiguration(bootstrapServers: "k:9092")
        config.maxMessageBytes = 4 << 20
        let defaults = Recorder.consumerProperties(config)
        #expect(defaults["queued.max.messages.kbytes"] == nil, "librdkafka's own prefetch queue size")
        #expect(defaults["session.timeout.ms"] == "10000")
        #expect(defaults["fetch.message.max.bytes"] == String((4 << 20) + 1024))
        #expect(defaults["bootstrap.servers"] == "k:9092" && defaults["group.id"] == config.groupID)
        config.kafkaProperties = ["queued.max.messages.kbytes": "65536", "session.timeout.ms": "45000", "fetch.message.max.bytes": "2000000"]
        let configured = Recorder.consumerProperties(config)
        #expect(configured["queued.max.messages.kbytes"] == "65536")
        #expect(configured["session.timeout.ms"] == "45000")
        #expect(configured["fetch.message.max.bytes"] == "2000000")
        // The setting's help names every default the recorder and the consumer apply.
        let help = try #require(FlowrecSettings.record.first { $0.key == "kafka.properties" }).help
        for (key, value) in RecorderConfiguration.kafkaDefaults.merging(KafkaConsumer.defaultProperties, uniquingKeysWith: { a, _ in a }) {
            #expect(help.contains("\(key)=\(value)"), "\(key)=\(value)")
        }
    }

    @Test func kafkaSecurityBecomesLibrdkafkaProperties() throws {
        let dir = TemporaryDirectory()
        let passwordFile = dir.path + "/sasl"
        try "from-file\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)
        func properties(_ args: [String], env: [String: String] = [:]) throws -> [String: String] {
            let s = try ResolvedSettings(table: FlowrecSettings.record, arguments: args, environment: env, configFile: nil)
            return try FlowrecSettings.kafkaSecurityProperties(s) { try String(contentsOfFile: $0, encoding: .utf8).trimmingCharacters(in: .newlines) }
        }
        #expect(try properties([]).isEmpty)
        #expect(try properties(["--kafka-ca-file", "/ca.pem"]) == ["ssl.ca.location": "/ca.pem", "security.protocol": "SSL"])
        #expect(try properties(["--kafka-ca-file", "/ca.pem", "--kafka-cert-file", "/c.pem", "--kafka-key-file", "/k.pem",
                                "--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-username", "u",
                                "--kafka-sasl-password-file", passwordFile]) == [
            "ssl.ca.location": "/ca.pem", "ssl.certificate.location": "/c.pem", "ssl.key.location": "/k.pem",
            "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "u", "sasl.password": "from-file", "security.protocol": "SASL_SSL",
        ])
        #expect(try properties(["--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "u"], env: ["FLOWREC_KAFKA_SASL_PASSWORD": "p"])
                == ["sasl.mechanisms": "PLAIN", "sasl.username": "u", "sasl.password": "p", "security.protocol": "SASL_PLAINTEXT"])
        #expect(throws: SettingsError.self) { try properties(["--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "u"]) }
        #expect(throws: SettingsError.self) { try properties(["--kafka-cert-file", "/c.pem"]) }
    }

    @Test func environmentNamesFollowTheKeys() {
        let names = Dictionary(uniqueKeysWithValues: FlowrecSettings.record.map { ($0.key, $0.environmentVariable) })
        #expect(names["kafka.sasl.passwordFile"] == "FLOWREC_KAFKA_SASL_PASSWORD_FILE")
        #expect(names["retention.minFree"] == "FLOWREC_RETENTION_MIN_FREE")
        #expect(names["http.tlsCert"] == "FLOWREC_HTTP_TLS_CERT")
        #expect(Set(names.values).count == names.count, "every variable names one setting")
        let flags = FlowrecSettings.record.compactMap(\.flag)
        #expect(Set(flags).count == flags.count, "every flag names one setting")
        // The reference documents every setting a command reads.
        let documented = Set(FlowrecSettings.sections.flatMap { $0.settings.map(\.key) })
        #expect(documented == Set((FlowrecSettings.record + FlowrecSettings.sync + FlowrecSettings.prune).map(\.key)))
    }

    /// docs/configuration.md and deploy/flowrec.example.yaml are the table's own output,
    /// and the example is a valid configuration.
    @Test func generatedReferenceAndExampleAreCurrentAndValid() throws {
        let root = TestEnvironment.packageRoot
        let reference = try String(contentsOf: root.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        #expect(reference == FlowrecSettings.referenceMarkdown(), "docs/configuration.md is stale: run `swift run flowrec config reference --write`")
        let examplePath = root.appendingPathComponent("deploy/flowrec.example.yaml").path
        let example = try String(contentsOfFile: examplePath, encoding: .utf8)
        #expect(example == FlowrecSettings.exampleYAML(), "deploy/flowrec.example.yaml is stale: run `swift run flowrec config example --write`")
        let s = try ResolvedSettings(table: FlowrecSettings.record, arguments: [], environment: [:], configFile: examplePath)
        #expect(s.string("kafka.brokers") == "kafka-bootstrap.netobserv:9092")
        #expect(s.freeSpace("retention.minFree")?.fraction == 0.1)
        for setting in FlowrecSettings.record {
            #expect(reference.contains("`\(setting.key)`"), "\(setting.key) is documented")
        }
    }

    /// docs/commands.md is the binary's own `--help` for every command.
    @Test func commandReferenceIsCurrent() throws {
        let flowrec = try ChildProcess.flowrec()
        let generated = try ChildProcess.output(flowrec.path, ["config", "commands"])
        let onDisk = try String(contentsOf: TestEnvironment.packageRoot.appendingPathComponent("docs/commands.md"), encoding: .utf8)
        #expect(generated == onDisk, "docs/commands.md is stale: run `swift run flowrec config commands --write`")
    }

    /// `record --check-config` through the binary: exit 0, secrets masked, a bad value
    /// named with its source and exit status 1 without a stack of usage text.
    @Test func checkConfigFromTheCommandLine() throws {
        let flowrec = try ChildProcess.flowrec()
        let dir = TemporaryDirectory()
        let path = try file("kafka:\n  brokers: k:9092\n  sasl:\n    mechanism: PLAIN\n    username: u\n", in: dir)
        let process = Process()
        process.executableURL = flowrec
        process.arguments = ["record", "--config", path, "--check-config", "--window", "5m"]
        process.environment = ProcessInfo.processInfo.environment.merging(["FLOWREC_KAFKA_SASL_PASSWORD": "hunter2"]) { _, new in new }
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(text.contains("window: 5m  # flag --window") && text.contains("# configuration is valid"))
        #expect(!text.contains("hunter2"))
        let bad = try ChildProcess.output(flowrec.path, ["record", "--config", path, "--check-config", "--max-size", "lots"])
        #expect(bad.contains("retention.maxSize (flag --max-size): 'lots' is not a size"), "\(bad)")
    }
}
