import FlowrecConfig
import FlowrecTesting
import Foundation
import ShardStore
import Testing
import Yams

/// deploy/kubernetes/base holds its own numbers: at the rate its StatefulSet states, the
/// worst case of `Sizing` (what `flowrec config sizing` prints) with the ConfigMap's
/// settings fits the volume after `retention.minFree`, the memory limit with 10% to
/// spare, and a seal fits the termination grace period at the pod's CPU request.
@Suite struct DeployManifestTests {
    struct Manifests {
        let flowsPerSecond: Double
        let groupsPerMinute: Double
        let volumeBytes: Double
        let memoryLimitBytes: Double
        let cpuRequest: Double
        let gracePeriodSeconds: Double
        let settings: ResolvedSettings
    }

    /// A Kubernetes quantity (`200Gi`, `1Gi`, `640Mi`, `500m`, `2`).
    static func quantity(_ text: String) throws -> Double {
        if text.hasSuffix("m") { return try #require(Double(text.dropLast())) / 1000 }
        if text.hasSuffix("i") { return Double(try #require(SettingParsers.bytes(text + "B"))) }
        return try #require(Double(text))
    }

    static func load() throws -> Manifests {
        let base = TestEnvironment.packageRoot.appendingPathComponent("deploy/kubernetes/base")
        let sts = try #require(try Yams.load(yaml: String(contentsOf: base.appendingPathComponent("statefulset.yaml"), encoding: .utf8)) as? [String: Any])
        let cm = try #require(try Yams.load(yaml: String(contentsOf: base.appendingPathComponent("configmap.yaml"), encoding: .utf8)) as? [String: Any])
        let annotations = try #require((sts["metadata"] as? [String: Any])?["annotations"] as? [String: Any])
        let spec = try #require(sts["spec"] as? [String: Any])
        let pod = try #require((spec["template"] as? [String: Any])?["spec"] as? [String: Any])
        let container = try #require((pod["containers"] as? [[String: Any]])?.first)
        let resources = try #require(container["resources"] as? [String: Any])
        let claim = try #require((spec["volumeClaimTemplates"] as? [[String: Any]])?.first)
        let storage = try #require((((claim["spec"] as? [String: Any])?["resources"] as? [String: Any])?["requests"] as? [String: Any])?["storage"] as? String)
        let config = try #require((cm["data"] as? [String: Any])?["flowrec.yaml"] as? String)
        let path = NSTemporaryDirectory() + "flowrec-deploy-\(UUID().uuidString).yaml"
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let settings = try ResolvedSettings(table: FlowrecSettings.record, arguments: [], environment: [:], configFile: path)
        return Manifests(
            flowsPerSecond: try #require(Double("\(annotations["flowrec.netobserv.io/sized-for-flows-per-second"] ?? "")")),
            groupsPerMinute: try #require(Double("\(annotations["flowrec.netobserv.io/sized-for-groups-per-minute"] ?? "")")),
            volumeBytes: try quantity(storage),
            memoryLimitBytes: try quantity(try #require((resources["limits"] as? [String: Any])?["memory"] as? String)),
            cpuRequest: try quantity(try #require((resources["requests"] as? [String: Any])?["cpu"] as? String)),
            gracePeriodSeconds: Double(try #require(pod["terminationGracePeriodSeconds"] as? Int)),
            settings: settings)
    }

    static func sizing(_ m: Manifests, rate: Double? = nil) throws -> Sizing {
        try Sizing(flowsPerSecond: rate ?? m.flowsPerSecond, settings: m.settings, groupsPerMinute: m.groupsPerMinute, cpuCores: m.cpuRequest)
    }

    @Test func theBaseFitsItsVolumeMemoryAndGracePeriodAtItsRate() throws {
        let m = try Self.load()
        let sizing = try Self.sizing(m)
        let retention = try RetentionPolicy(settings: m.settings)
        #expect(retention.maxAgeMs != nil, "the manifests bound raw shards by age, so the disk estimate is complete")
        #expect(retention.minFreeFraction != nil || retention.minFreeBytes != nil, "minFree guards the volume against a higher rate than sized for")
        let usable = Sizing.usableBytes(volume: m.volumeBytes, retention: retention)
        #expect(sizing.diskBytes <= usable, "disk: \(sizing.diskBytes / 1_073_741_824) GiB needed, \(usable / 1_073_741_824) GiB usable")
        #expect(sizing.memoryBytes <= 0.9 * m.memoryLimitBytes, "memory: \(sizing.memoryBytes / 1_048_576) MiB needed, limit \(m.memoryLimitBytes / 1_048_576) MiB")
        #expect(sizing.gracePeriodSeconds <= m.gracePeriodSeconds,
                "a seal takes \(sizing.sealSeconds) s at \(m.cpuRequest) CPU: terminationGracePeriodSeconds must be at least \(sizing.gracePeriodSeconds)")
        // The model answers to the rate: at four times it, this volume would not do.
        #expect(try Self.sizing(m, rate: 4 * m.flowsPerSecond).diskBytes > usable)
    }

    /// The sealer's memory grows with the window: an hourly window at the manifests' rate
    /// is what the 1 GiB limit of an earlier manifest could not hold at 20,000 flows/s.
    @Test func theModelCountsTheSealersWindow() throws {
        let m = try Self.load()
        let window = Double(m.settings.milliseconds("store.window")) / 1000
        let sealer = try #require(try Self.sizing(m).memory.first { $0.what.contains("sealer") })
        #expect(sealer.bytes == m.flowsPerSecond * window * Sizing.Measured.sealerBytesPerFlow)
        let busier = try Self.sizing(m, rate: 20_000).memoryBytes, sized = try Self.sizing(m).memoryBytes
        #expect(busier > sized)
    }
}
