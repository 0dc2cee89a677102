// swift-tools-version: 6.1
import Foundation
import PackageDescription

/// flowrec: a single-node recorder for NetObserv enriched flows.
///
/// The targets are layers; each depends only on the ones below it:
///   C shims (CRdKafka, CZstd, CSQLite)  → Debian's shared libraries, found with pkg-config
///   FlowModel                           → the NetObserv field list, JSON decoder and encoder
///   FlowGenerator                       → realistic synthetic traffic for tests, benchmarks and the demo
///   KafkaSource                         → librdkafka producer and consumer
///   LokiPush                            → Loki's push API bodies (snappy, protobuf, JSON) → flows
///   ShardStore                          → time-partitioned SQLite shards, exactly-once batches, sealing
///   Forwarders                          → replication of sealed shards: ClickHouse (AsyncHTTPClient),
///                                         a directory, a command
///   Query                               → queries over the shards of a time range
///   FlowRecorder                        → wiring: Kafka → decoder → store (flowrec record), its HTTP
///                                         listener (Hummingbird), Prometheus metrics, continuous
///                                         forwarding, and the settings table (YAML, env, flags)
///   flowrec                             → the command-line tool
/// plus `flowrec-testkafka` (a Kafka-protocol test broker on loopback),
/// `FlowrecTesting` (helpers that start the real test servers from tests) and
/// `FlowrecTestTraits` (the `.ownThread` trait for tests that block while they wait).
/// The commit `flowrec --version` reports: read from .git when the manifest is
/// evaluated (a fresh clone, CI and the container build always evaluate it).
let buildCommit: String = {
    let git = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(".git")
    guard let head = try? String(contentsOf: git.appendingPathComponent("HEAD"), encoding: .utf8)
        .trimmingCharacters(in: .whitespacesAndNewlines) else { return "unknown" }
    guard head.hasPrefix("ref: ") else { return String(head.prefix(12)) }
    let ref = String(head.dropFirst(5))
    if let sha = try? String(contentsOf: git.appendingPathComponent(ref), encoding: .utf8) {
        return String(sha.trimmingCharacters(in: .whitespacesAndNewlines).prefix(12))
    }
    let packed = (try? String(contentsOf: git.appendingPathComponent("packed-refs"), encoding: .utf8)) ?? ""
    let line = packed.split(separator: "\n").first { $0.hasSuffix(" " + ref) }
    return line.map { String($0.prefix(12)) } ?? "unknown"
}()

let strictSwift: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// The flow hot paths (decode, encode, generate) are optimized in debug builds too:
/// `swift run flowrec generate` and the test suite push millions of flows through them,
/// and unoptimized Swift is about ten times slower there.
let hotPathSwift: [SwiftSetting] = strictSwift + [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "flowrec",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "flowrec", targets: ["flowrec"]),
        .executable(name: "flowrec-testkafka", targets: ["flowrec-testkafka"]),
        .executable(name: "flowrec-bench", targets: ["flowrec-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CRdKafka", pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]),
        .systemLibrary(
            name: "CZstd", pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(
            name: "CZlib", pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(
            name: "CSQLite", pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]),

        .systemLibrary(
            name: "CSnappy", pkgConfig: "snappy",
            providers: [.apt(["libsnappy-dev"])]),
        // glibc's malloc.h (part of libc: no package, nothing to link).
        .systemLibrary(name: "CMalloc"),

        .target(name: "CBuildInfo", cSettings: [.define("FLOWREC_COMMIT", to: "\"\(buildCommit)\"")]),

        .target(name: "FlowModel", swiftSettings: hotPathSwift),
        .target(name: "FlowGenerator", dependencies: ["FlowModel"], swiftSettings: hotPathSwift),
        .target(
            name: "KafkaSource", dependencies: ["CRdKafka", "CMalloc", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSwift),
        .target(name: "StorageKit", dependencies: ["CSQLite", "CZstd"], swiftSettings: strictSwift),
        .target(
            name: "ShardStore",
            dependencies: ["FlowModel", "StorageKit", "CSQLite", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSwift),
        .target(name: "FileSource", dependencies: ["FlowModel", "StorageKit", "ShardStore"], swiftSettings: strictSwift),
        .target(
            name: "LokiPush",
            dependencies: ["FlowModel", "StorageKit", "ShardStore", "CSnappy", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["Wire/push.proto"],
            swiftSettings: strictSwift),
        .target(
            name: "Forwarders",
            dependencies: [
                "FlowModel", "StorageKit", "ShardStore", "CZlib", "CZstd",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift),
        .target(name: "Query", dependencies: ["FlowModel", "StorageKit", "ShardStore", "CSQLite", .product(name: "Logging", package: "swift-log")], swiftSettings: strictSwift),
        .target(
            name: "FlowrecConfig",
            dependencies: [
                "FlowModel", "StorageKit", "ShardStore", "Forwarders",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strictSwift),
        .target(
            name: "FlowRecorder",
            dependencies: [
                "FlowModel", "KafkaSource", "StorageKit", "ShardStore", "Forwarders", "Query", "FlowrecConfig", "LokiPush",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strictSwift),
        .target(
            name: "FlowrecTesting",
            dependencies: ["KafkaSource", "StorageKit", "ShardStore", "FlowModel", "FlowGenerator", "LokiPush", "Query",
                           .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSwift),

        .target(name: "FlowrecTestTraits", dependencies: ["StorageKit"], swiftSettings: strictSwift),

        .executableTarget(
            name: "flowrec",
            dependencies: [
                "CBuildInfo", "FlowModel", "FlowGenerator", "KafkaSource", "StorageKit", "ShardStore", "FileSource", "Forwarders", "FlowRecorder", "Query",
                "FlowrecConfig",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift),
        .executableTarget(
            name: "flowrec-testkafka",
            dependencies: ["CRdKafka"],
            swiftSettings: strictSwift),
        .executableTarget(
            name: "flowrec-fuzz",
            dependencies: ["FlowModel", "StorageKit", "ShardStore"],
            swiftSettings: strictSwift),
        .executableTarget(
            name: "flowrec-bench",
            dependencies: [
                "FlowModel", "FlowGenerator", "StorageKit", "ShardStore", "FileSource", "Forwarders", "Query", "KafkaSource", "FlowrecTesting",
                "LokiPush", "FlowrecConfig",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSwift),

        .testTarget(name: "FlowModelTests", dependencies: ["FlowModel", "FlowGenerator", "FlowrecTesting"], swiftSettings: strictSwift),
        .testTarget(name: "FlowGeneratorTests", dependencies: ["FlowGenerator", "FlowModel"], swiftSettings: strictSwift),
        .testTarget(
            name: "KafkaSourceTests",
            dependencies: ["KafkaSource", "FlowGenerator", "FlowModel", "FlowrecTesting", "FlowrecTestTraits"],
            swiftSettings: strictSwift),
        .testTarget(name: "FlowrecTestingTests", dependencies: ["FlowrecTesting", "FlowrecTestTraits"], swiftSettings: strictSwift),
        .testTarget(
            name: "FlowRecorderTests",
            dependencies: [
                "FlowRecorder", "Forwarders", "Query", "FlowGenerator", "FlowModel", "KafkaSource", "StorageKit", "ShardStore", "FlowrecTesting", "FlowrecTestTraits",
                "FlowrecConfig", "LokiPush",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strictSwift),
        .testTarget(
            name: "LokiPushTests",
            dependencies: ["LokiPush", "StorageKit", "ShardStore", "FlowModel", "FlowGenerator", "FlowrecTesting",
                           .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: strictSwift),
        .testTarget(
            name: "QueryTests",
            dependencies: ["Query", "StorageKit", "ShardStore", "FlowModel", "FlowGenerator", "FlowrecTesting", "FlowrecTestTraits", "CSQLite"],
            swiftSettings: strictSwift),
        .testTarget(
            name: "ForwardersTests",
            dependencies: ["Forwarders", "FlowModel", "StorageKit", "ShardStore", "FlowGenerator", "FlowrecTesting", "FlowrecTestTraits"],
            swiftSettings: strictSwift),
        .testTarget(
            name: "ShardStoreTests",
            dependencies: ["StorageKit", "ShardStore", "FileSource", "FlowModel", "FlowGenerator", "FlowrecTesting", "FlowrecTestTraits"],
            swiftSettings: strictSwift),
    ],
    swiftLanguageModes: [.v6]
)
