import FlowrecTestTraits
import FlowrecTesting
import Forwarders
import Foundation
import ShardStore
import Testing

/// The ClickHouse forwarder over HTTPS with a private CA and a client certificate
/// (mutual TLS), against a private 18.16 server that requires one.
@Suite(.ownThread) struct ClickHouseTLSTests {
    /// A CA, a server certificate for 127.0.0.1 and a client certificate, by openssl.
    func makeCertificates(in dir: String) throws {
        let script = """
            set -e
            cd '\(dir)'
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=flowrec test CA' -keyout ca.key -out ca.crt
            openssl req -newkey rsa:2048 -nodes -subj '/CN=127.0.0.1' -keyout server.key -out server.csr
            printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext
            openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.crt
            openssl req -newkey rsa:2048 -nodes -subj '/CN=flowrec client' -keyout client.key -out client.csr
            openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out client.crt
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestServerUnavailable("openssl could not make test certificates") }
    }

    @Test func mutualTLSDeliversAndAMissingCertificateOrCAIsRefused() async throws {
        guard ClickHouseTestServer.fromEnvironment() != nil else {
            #expect(!TestEnvironment.requireServers, "FLOWREC_CLICKHOUSE_URL is not set")
            return
        }
        let scratch = TemporaryDirectory()
        let tls = scratch.path + "/tls"
        try FileManager.default.createDirectory(atPath: tls, withIntermediateDirectories: true)
        try makeCertificates(in: tls)
        let port = 18_500 + Int.random(in: 0..<300)
        let httpsPort = port + 2000
        let instance = try PrivateClickHouse(directory: scratch.path + "/ch", httpPort: port, extraEnvironment: [
            "FLOWREC_CH_HTTPS_PORT": String(httpsPort), "FLOWREC_CH_TLS_DIR": tls, "FLOWREC_CH_TLS_CLIENT_CERTS": "1",
        ])
        defer { instance.stop() }
        let plain = try instance.start()
        let dir = TemporaryDirectory()
        let store = try sealedGeneratedStore(at: dir.path, count: 30_000)
        let expected = try ReplicationTotals(sealedShardsOf: store)

        func options(ca: Bool, clientCertificate: Bool) throws -> ClickHouseForwarderOptions {
            var options = plain.forwarderOptions(database: "tls")
            options.endpoint = ClickHouseEndpoint(
                url: try #require(URL(string: "https://127.0.0.1:\(httpsPort)")), user: plain.user, password: plain.password,
                caFile: ca ? tls + "/ca.crt" : nil,
                certificateFile: clientCertificate ? tls + "/client.crt" : nil, keyFile: clientCertificate ? tls + "/client.key" : nil)
            options.retry = RetryPolicy(maxAttempts: 1)
            return options
        }
        // No client certificate: the server refuses the handshake.
        await #expect(throws: ForwarderError.self) {
            try await ShardReplicator(store: store, forwarder: ClickHouseForwarder(options: options(ca: true, clientCertificate: false))).run()
        }
        // The system's CAs do not know the private one.
        await #expect(throws: ForwarderError.self) {
            try await ShardReplicator(store: store, forwarder: ClickHouseForwarder(options: options(ca: false, clientCertificate: true))).run()
        }
        #expect(try store.deliveries(forwarder: "clickhouse").isEmpty)
        // Both: every row arrives.
        let summary = try await ShardReplicator(store: store, forwarder: ClickHouseForwarder(options: options(ca: true, clientCertificate: true))).run()
        #expect(summary.rowsDelivered == expected.rows)
        #expect(try ReplicationTotals(table: "tls.flows", on: plain) == expected)
    }
}
