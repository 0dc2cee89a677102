import StorageKit
import FlowModel
import Foundation
import Synchronization
package import Logging
package import ShardStore

/// Everything the ClickHouse forwarder needs to know.
package struct ClickHouseForwarderOptions: Sendable {
    /// The name delivery state is kept under.
    package var name = "clickhouse"
    package var endpoint: ClickHouseEndpoint
    package var database = "netobserv"
    package var table = "flows"
    package var format: ClickHouseBlockEncoder.Format = .native
    /// How request bodies are compressed: ClickHouse's own framing of zstd blocks by
    /// default (a fraction of gzip's CPU time on both sides, taken by every server this
    /// forwarder supports); gzip for a proxy in between that only passes standard HTTP
    /// encodings.
    package var compression = ClickHouseBodyCompression.zstd
    /// Rows per INSERT. Larger chunks insert faster; a crash on a server without
    /// deduplication tokens may repeat at most one chunk.
    package var chunkRows: Int64 = 100_000
    /// Threads reading and encoding chunks ahead of their INSERT (`ChunkPreparer`).
    /// Each holds one chunk's encoder buffers (about 70 MB for 100,000 rows in Native).
    package var encodingThreads = 2
    /// The table's DDL flavour; nil picks it from `SELECT version()`.
    package var dialect: ClickHouseSchema.Dialect?
    /// `CREATE DATABASE` and `CREATE TABLE ... IF NOT EXISTS` before the first delivery.
    package var createTable = false
    /// TTL of the created table in days (modern servers only).
    package var ttlDays: Int?
    package var retry = RetryPolicy()
    /// Hears retries and notices (a missing deduplication window, say).
    package var logger = Logger(label: "flowrec.forward.clickhouse")

    package init(endpoint: ClickHouseEndpoint) {
        self.endpoint = endpoint
    }

    /// Every option at its default, against `ClickHouseEndpoint.defaultURL`.
    package static var defaults: ClickHouseForwarderOptions {
        // The default URL is a constant that parses.
        ClickHouseForwarderOptions(endpoint: ClickHouseEndpoint(url: URL(string: ClickHouseEndpoint.defaultURL)!))
    }
}

/// Replicates sealed shards into a ClickHouse table over the HTTP interface.
///
/// Each chunk is a fixed rowid range of the shard, sorted by the table's sort key,
/// sent as one INSERT. On servers that support it (22.2 and later) each INSERT carries
/// `insert_deduplication_token` = shard/chunk size/chunk, so a chunk retried after a
/// crash or a lost answer is stored once (the table needs
/// `non_replicated_deduplication_window`, which the modern DDL sets). Older servers
/// (such as Debian's 18.16) have no such token: progress is saved after every chunk,
/// so a crash repeats at most the one chunk that was in flight.
package final class ClickHouseForwarder: Forwarder, Sendable {
    package let options: ClickHouseForwarderOptions
    private struct State {
        /// Made by `prepare` (so a forwarder that never sends holds no connections), shut
        /// down by `shutdown`.
        var client: ClickHouseHTTP?
        /// Set once by `prepare`, read by `deliver`.
        var server: ServerFacts?
        var phases = PhaseSeconds()
    }
    private let state = Mutex(State())

    /// What `prepare` learnt about the server.
    package struct ServerFacts: Sendable {
        package let version: String
        package let dialect: ClickHouseSchema.Dialect
        package let deduplicationTokens: Bool
    }

    package init(options: ClickHouseForwarderOptions) throws(ForwarderError) {
        guard options.chunkRows > 0 else { throw ForwarderError(.configuration, "the chunk size must be at least 1 row") }
        guard Self.isPlainIdentifier(options.database), Self.isPlainIdentifier(options.table) else {
            throw ForwarderError(.configuration, "database and table names may hold letters, digits and '_' only (got \(options.database).\(options.table))")
        }
        self.options = options
    }

    private var http: ClickHouseHTTP {
        get throws(ForwarderError) {
            guard let client = state.withLock({ $0.client }) else {
                throw ForwarderError(.configuration, "ClickHouseForwarder.prepare() must run before anything is sent")
            }
            return client
        }
    }

    package var name: String { options.name }

    /// Set after `prepare`.
    package var serverFacts: ServerFacts? { state.withLock { $0.server } }

    /// Where delivery time went, summed over every chunk: for the benchmark's profile.
    /// Reading, encoding and compressing are summed over the encoding threads, which run
    /// side by side, so together they may exceed the wall time.
    package struct PhaseSeconds: Sendable {
        /// Reading the chunk's rows from the shard (in the table's key order) and encoding them.
        package var readAndEncode = 0.0
        /// Joining the encoder's column buffers into the body, or compressing them
        /// (straight from the buffers).
        package var compress = 0.0
        /// The forwarder waiting for the next chunk to be prepared (wall time).
        package var waitForEncoding = 0.0
        /// Waiting for INSERTs beyond the time spent encoding the next chunk (they run
        /// side by side): upload, server-side parsing and writing, retries.
        package var insert = 0.0
        package var bodyBytes: Int64 = 0
    }
    package var phaseSeconds: PhaseSeconds { state.withLock { $0.phases } }

    private var qualifiedTable: String { "`\(options.database)`.`\(options.table)`" }

    package func prepare() async throws {
        let connection = try ClickHouseHTTP(endpoint: options.endpoint)
        let previous = state.withLock { state in
            defer { state.client = connection }
            return state.client
        }
        try await previous?.shutdown()
        let version = try await retrying("ask the server version") {
            try await self.http.query("SELECT version()").trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let (major, minor) = Self.versionNumbers(version)
        let dialect = options.dialect ?? (major >= 21 ? .modern : .compatible)
        let facts = ServerFacts(version: version, dialect: dialect,
                                deduplicationTokens: (major, minor) >= (22, 2))
        state.withLock { $0.server = facts }
        if options.createTable {
            _ = try await retrying("create the database") {
                try await self.http.query("CREATE DATABASE IF NOT EXISTS `\(self.options.database)`")
            }
            let ddl = ClickHouseSchema.createTable(database: options.database, table: options.table, dialect: dialect,
                                                   ttlDays: dialect == .modern ? options.ttlDays : nil)
            _ = try await retrying("create the table") { try await self.http.query(ddl) }
        }
        try await checkSchema(facts)
    }

    /// Compares the table with the columns flowrec sends, column by column.
    private func checkSchema(_ facts: ServerFacts) async throws {
        let listing = try await retrying("read the table's columns") {
            try await self.http.query("""
                SELECT name, type FROM system.columns WHERE database = '\(self.options.database)' AND table = '\(self.options.table)'
                FORMAT TabSeparated
                """)
        }
        var tableTypes: [String: String] = [:]
        for line in listing.split(separator: "\n") {
            let parts = line.split(separator: "\t", maxSplits: 1).map(String.init)
            if parts.count == 2 { tableTypes[parts[0]] = parts[1] }
        }
        guard !tableTypes.isEmpty else {
            throw ForwarderError(.rejected, "table \(options.database).\(options.table) does not exist on \(options.endpoint.displayURL): run `flowrec sync clickhouse --create-table`, or create it from migrations/clickhouse/")
        }
        let problems = Self.schemaProblems(tableTypes: tableTypes)
        guard problems.isEmpty else {
            throw ForwarderError(.rejected, "table \(options.database).\(options.table) does not match what flowrec sends:\n"
                                 + problems.map { "  - \($0)" }.joined(separator: "\n")
                                 + "\nAlter the table (or drop it and use --create-table); migrations/clickhouse/ has the expected DDL.")
        }
        if facts.deduplicationTokens {
            let ddl = try await retrying("read the table's settings") {
                try await self.http.query("SELECT create_table_query FROM system.tables WHERE database = '\(self.options.database)' AND name = '\(self.options.table)'")
            }
            if !ddl.contains("non_replicated_deduplication_window") && !ddl.contains("Replicated") {
                options.logger.warning("the ClickHouse table has no non_replicated_deduplication_window: a chunk retried after a crash may be stored twice; `ALTER TABLE ... MODIFY SETTING non_replicated_deduplication_window = 1000` turns deduplication on",
                                       metadata: ["table": "\(options.database).\(options.table)"])
            }
        }
    }

    /// One line per column that is missing or has another type than the payload's.
    static func schemaProblems(tableTypes: [String: String]) -> [String] {
        var problems: [String] = []
        for column in ClickHouseSchema.columns(dialect: .compatible) {
            guard let type = tableTypes[column.name] else {
                problems.append("column `\(column.name)` is missing (flowrec sends \(column.payloadType))")
                continue
            }
            if type.replacingLowCardinality() != column.payloadType {
                problems.append("column `\(column.name)` is \(type), flowrec sends \(column.payloadType)")
            }
        }
        return problems
    }

    package func plan(_ shard: SealedShard, resuming: DeliveryState?) throws -> DeliveryPlan {
        let chunkRows = resuming.map(\.chunkRows).flatMap { $0 > 0 ? $0 : nil } ?? options.chunkRows
        guard let range = try ShardReader(path: shard.path).rowIDRange() else { return DeliveryPlan(chunkCount: 0, chunkRows: chunkRows) }
        let span = range.upperBound - range.lowerBound + 1
        return DeliveryPlan(chunkCount: Int((span + chunkRows - 1) / chunkRows), chunkRows: chunkRows)
    }

    private static let sortKeyFields: [FieldID] = ClickHouseSchema.sortKey.compactMap { FlowSchema.id(named: $0) }

    package func deliver(_ shard: SealedShard, plan: DeliveryPlan, fromChunk first: Int,
                        delivered: (_ chunk: Int, _ rows: Int) throws -> Void) async throws {
        try await deliver([ShardDelivery(shard: shard, plan: plan, firstChunk: first)]) { _, chunk, rows in
            try delivered(chunk, rows)
        }
    }

    /// One chunk to send: which shard (an index into the delivery) and which chunk of it.
    private typealias ChunkAddress = (item: Int, chunk: Int)

    package func deliver(_ work: [ShardDelivery], delivered: (_ item: Int, _ chunk: Int, _ rows: Int) throws -> Void) async throws {
        guard let facts = serverFacts else {
            throw ForwarderError(.configuration, "ClickHouseForwarder.prepare() must run before deliver()")
        }
        let chunks: [ChunkAddress] = work.indices.flatMap { item in
            (work[item].firstChunk..<max(work[item].firstChunk, work[item].plan.chunkCount)).map { (item, $0) }
        }
        guard !chunks.isEmpty else { return }
        let statement = "INSERT INTO \(qualifiedTable) (\(ClickHouseBlockEncoder.columnList(dialect: facts.dialect))) FORMAT \(options.format.rawValue)"
        // Chunks are read, encoded and compressed ahead on `encodingThreads` threads, and
        // one chunk's INSERT is in flight while the forwarder waits for the next: the
        // server and the workers share the cores. The workers run on across shard
        // boundaries, so the next shard's first chunk is ready when the previous shard's
        // last INSERT ends. Chunks are still sent and recorded in order, each only after
        // its INSERT succeeded. The INSERT is a child task, so it runs where the caller
        // runs (the recorder gives forwarding its own thread).
        let preparer = ChunkPreparer<PreparedChunk>(chunks: chunks.indices, workers: options.encodingThreads,
                                                    name: "flowrec-encode") { [self] in
            try chunkWorker(work, chunks, dialect: facts.dialect)
        }
        defer { preparer.cancel() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            var inFlight: (address: ChunkAddress, rows: Int)?
            /// Waits for the INSERT in flight and records its chunk.
            func finishInFlight() async throws {
                guard let (address, rows) = inFlight else { return }
                let started = monotonicSeconds()
                try await group.next()
                inFlight = nil
                state.withLock { $0.phases.insert += monotonicSeconds() - started }
                try delivered(address.item, address.chunk, rows)
            }
            do {
                for (index, address) in chunks.enumerated() {
                    let waited = monotonicSeconds()
                    let (rows, body) = try preparer.take(index)
                    state.withLock { $0.phases.waitForEncoding += monotonicSeconds() - waited }
                    try await finishInFlight()
                    // Nothing is in flight here: a cancelled run stops with its progress
                    // exact (`ShardReplicator` checked between shards when it called once
                    // per shard).
                    try Task.checkCancellation()
                    let shard = work[address.item].shard, plan = work[address.item].plan
                    let settings = Self.insertSettings(
                        format: options.format, dialect: facts.dialect,
                        deduplicationToken: facts.deduplicationTokens
                            ? Self.deduplicationToken(shard: shard.id, chunkRows: plan.chunkRows, chunk: address.chunk) : nil)
                    let what = "insert chunk \(address.chunk + 1)/\(plan.chunkCount) of shard \(shard.id)"
                    let payload = body
                    inFlight = (address, rows)
                    group.addTask {
                        try await self.retrying(what) {
                            try await self.http.insert(statement, body: payload, compression: self.options.compression, settings: settings)
                        }
                    }
                }
                try await finishInFlight()
            } catch {
                // Whatever failed, an INSERT already sent is waited for and, if it
                // succeeded, recorded: progress never lags what the table holds by
                // more than the chunk a crash interrupts.
                if inFlight != nil { try? await finishInFlight() }
                throw error
            }
        }
    }

    /// One chunk ready to send: its row count and its (compressed) body.
    private typealias PreparedChunk = (rows: Int, body: [UInt8])

    /// What prepares chunks on one worker thread: its own encoder, and its own reader of
    /// the shard its current chunk is in (opened when the worker reaches that shard),
    /// reading each chunk in the table's key order.
    private func chunkWorker(_ work: [ShardDelivery], _ chunks: [ChunkAddress],
                             dialect: ClickHouseSchema.Dialect) throws -> (Int) throws -> PreparedChunk {
        let encoder = try ClickHouseBlockEncoder(format: options.format, dialect: dialect, compression: options.compression)
        typealias OpenShard = (item: Int, reader: ShardReader, range: ClosedRange<Int64>, shardName: [UInt8])
        var open: OpenShard?
        return { [self] index in
            let (item, chunk) = chunks[index]
            let current: OpenShard
            if let open, open.item == item {
                current = open
            } else {
                let shard = work[item].shard
                let reader = try ShardReader(path: shard.path)
                guard let range = try reader.rowIDRange() else {
                    throw ForwarderError(.rejected, "sealed shard \(shard.id) has no rows, but its delivery plan has \(work[item].plan.chunkCount) chunks")
                }
                current = (item, reader, range, Array(shard.id.description.utf8))
                open = current
            }
            let (_, reader, range, shardName) = current
            let chunkRows = work[item].plan.chunkRows
            let low = range.lowerBound + Int64(chunk) * chunkRows
            let high = min(range.upperBound, low + chunkRows - 1)
            // Blocks are compressed as they fill, inside `append`: the encoder times that part.
            let started = monotonicSeconds(), compressedBefore = encoder.compressSeconds
            try encoder.append(rowsOf: reader, rowIDs: low...high, orderedBy: Self.sortKeyFields, shard: shardName)
            let rows = encoder.rowCount
            let body = try encoder.finish()
            let compressing = encoder.compressSeconds - compressedBefore
            let total = monotonicSeconds() - started
            state.withLock {
                $0.phases.readAndEncode += total - compressing
                $0.phases.compress += compressing
                $0.phases.bodyBytes += Int64(body.count)
            }
            return (rows, body)
        }
    }

    /// Runs `body` under the retry policy; what is left after the last attempt becomes
    /// a `ForwarderError` saying what failed and what to check.
    private func retrying<T>(_ what: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await options.retry.run(isRetryable: Self.isRetryable, onRetry: { attempt, error, delay in
                self.options.logger.warning("a ClickHouse request failed; retrying", metadata: [
                    "request": "\(what)", "attempt": "\(attempt)", "error": "\(error)", "retry_in_s": "\(String(format: "%.1f", delay))",
                ])
            }, body)
        } catch let error as ClickHouseStatusError where !error.isRetryable {
            let hint = error.status == 401 || error.status == 403 ? " Check the ClickHouse user and password." : ""
            throw ForwarderError(.rejected, "ClickHouse at \(options.endpoint.displayURL) refused to \(what): HTTP \(error.status): \(error.message)\(hint)")
        } catch let error as ForwarderError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw ForwarderError(.unavailable, "could not \(what) on ClickHouse at \(options.endpoint.displayURL) after \(options.retry.maxAttempts) attempts: \(error)")
        }
    }

    static func isRetryable(_ error: any Error) -> Bool {
        switch error {
        case let status as ClickHouseStatusError: status.isRetryable
        case is ForwarderError, is CancellationError: false
        default: true  // connection refused, reset, timeout: the server may come back
        }
    }

    package func shutdown() async throws {
        let connection = state.withLock { state in
            defer { state.client = nil }
            return state.client
        }
        try await connection?.shutdown()
    }

    /// The URL settings of one chunk's INSERT: its deduplication token (on servers that
    /// take one), and plain strings for LowCardinality columns in Native bodies (the
    /// modern table has them; the encoder writes plain String columns). The benchmark's
    /// server-alone baseline sends the same.
    package static func insertSettings(format: ClickHouseBlockEncoder.Format, dialect: ClickHouseSchema.Dialect,
                                       deduplicationToken: String?) -> [String: String] {
        var settings: [String: String] = [:]
        if let deduplicationToken { settings["insert_deduplication_token"] = deduplicationToken }
        if format == .native && dialect == .modern { settings["low_cardinality_allow_in_native_format"] = "0" }
        return settings
    }

    /// The token of one chunk: the same chunk of the same shard cut the same way always
    /// gets the same token, and nothing else does.
    package static func deduplicationToken(shard: ShardID, chunkRows: Int64, chunk: Int) -> String {
        "\(shard)/\(chunkRows)/\(chunk)"
    }

    static func versionNumbers(_ version: String) -> (Int, Int) {
        let parts = version.split(separator: ".").compactMap { Int($0) }
        return (parts.first ?? 0, parts.count > 1 ? parts[1] : 0)
    }

    static func isPlainIdentifier(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { $0 == UInt8(ascii: "_") || ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) }
    }
}
