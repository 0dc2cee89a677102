// swift-tools-version: 6.1
import PackageDescription

/// flowrec: a single-node recorder for NetObserv enriched flows.
///
/// The targets are layers; each depends only on the ones below it:
///   C shims (CRdKafka, CZstd, CSQLite)  → Debian's shared libraries, found with pkg-config
///   FlowModel                           → the NetObserv field list, JSON decoder and encoder
///   FlowGenerator                       → realistic synthetic traffic for tests, benchmarks and the demo
///   KafkaSource                         → librdkafka producer and consumer
///   ShardStore                          → time-partitioned SQLite shards, exactly-once batches, sealing
///   Forwarders                          → replication of sealed shards: ClickHouse (AsyncHTTPClient),
///                                         a directory, a command
///   Query                               → queries over the shards of a time range
///   FlowRecorder                        → wiring: Kafka → decoder → store (flowrec record), its HTTP
///                                         listener (Hummingbird), Prometheus metrics, continuous
///                                         forwarding, and the settings table (YAML, env, flags)
///   flowrec                             → the command-line tool
/// plus `flowrec-testkafka` (a Kafka-protocol test broker on loopback) and
/// `FlowrecTesting` (helpers that start the real test servers from tests).
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

        .target(name: "FlowModel", swiftSettings: hotPathSwift),
        .target(name: "FlowGenerator", dependencies: ["FlowModel"], swiftSettings: hotPathSwift),
        .target(name: "KafkaSource", dependencies: ["CRdKafka"], swiftSettings: strictSwift),
        .target(name: "ShardStore", dependencies: ["FlowModel", "CSQLite", "CZstd"], swiftSettings: strictSwift),
        .target(
            name: "Forwarders",
            dependencies: [
                "FlowModel", "ShardStore", "CZlib",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift),
        .target(name: "Query", dependencies: ["FlowModel", "ShardStore"], swiftSettings: strictSwift),
        .target(
            name: "FlowRecorder",
            dependencies: [
                "FlowModel", "KafkaSource", "ShardStore", "Forwarders", "Query",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
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
            dependencies: ["KafkaSource", "ShardStore", "FlowModel", "FlowGenerator"],
            swiftSettings: strictSwift),

        .executableTarget(
            name: "flowrec",
            dependencies: [
                "FlowModel", "FlowGenerator", "KafkaSource", "ShardStore", "Forwarders", "FlowRecorder", "Query",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSwift),
        .executableTarget(
            name: "flowrec-testkafka",
            dependencies: ["CRdKafka"],
            swiftSettings: strictSwift),
        .executableTarget(
            name: "flowrec-fuzz",
            dependencies: ["FlowModel", "ShardStore"],
            swiftSettings: strictSwift),
        .executableTarget(
            name: "flowrec-bench",
            dependencies: [
                "FlowModel", "FlowGenerator", "ShardStore", "Forwarders", "Query", "KafkaSource", "FlowrecTesting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSwift),

        .testTarget(name: "FlowModelTests", dependencies: ["FlowModel", "FlowGenerator", "FlowrecTesting"], swiftSettings: strictSwift),
        .testTarget(name: "FlowGeneratorTests", dependencies: ["FlowGenerator", "FlowModel"], swiftSettings: strictSwift),
        .testTarget(
            name: "KafkaSourceTests",
            dependencies: ["KafkaSource", "FlowGenerator", "FlowModel", "FlowrecTesting"],
            swiftSettings: strictSwift),
        .testTarget(name: "FlowrecTestingTests", dependencies: ["FlowrecTesting"], swiftSettings: strictSwift),
        .testTarget(
            name: "FlowRecorderTests",
            dependencies: [
                "FlowRecorder", "Forwarders", "Query", "FlowGenerator", "FlowModel", "KafkaSource", "ShardStore", "FlowrecTesting",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strictSwift),
        .testTarget(
            name: "QueryTests",
            dependencies: ["Query", "ShardStore", "FlowModel", "FlowGenerator", "FlowrecTesting"],
            swiftSettings: strictSwift),
        .testTarget(
            name: "ForwardersTests",
            dependencies: ["Forwarders", "FlowModel", "ShardStore", "FlowGenerator", "FlowrecTesting"],
            swiftSettings: strictSwift),
        .testTarget(
            name: "ShardStoreTests",
            dependencies: ["ShardStore", "FlowModel", "FlowGenerator", "FlowrecTesting"],
            swiftSettings: strictSwift),
    ],
    swiftLanguageModes: [.v6]
)
