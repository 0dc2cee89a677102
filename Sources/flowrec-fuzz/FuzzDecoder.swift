// The fuzz targets: the flow decoder (default) and the sealed-shard reader
// (FLOWREC_FUZZ_TARGET=sealed). `scripts/fuzz` builds them with libFuzzer
// (`-sanitize=fuzzer,address -DFLOWREC_FUZZING`); built normally it replays files
// through the same check, which is how a crash found by the fuzzer becomes a test:
//
//   swift run flowrec-fuzz crash-1234 corpus-dir/...
import FlowModel
import ShardStore

/// The property the fuzzer checks: any bytes either fail to decode with a
/// `FlowDecodingError`, or decode to a flow that re-encodes to JSON that decodes again
/// to an equal flow. A trap anywhere is a bug.
func checkDecoder(_ bytes: UnsafeRawBufferPointer) {
    let decoder = FlowDecoder(limits: .init(maxMessageBytes: 1 << 16, maxDepth: 16))
    var flow = Flow()
    do {
        try decoder.decode(bytes, into: &flow)
    } catch {
        _ = error.description
        return
    }
    var encoded: [UInt8] = []
    FlowEncoder().encode(flow, into: &encoded)
    let again: Flow
    do {
        again = try FlowDecoder().decode(encoded)
    } catch {
        fatalError("re-encoded flow does not decode: \(error)\n\(String(decoding: encoded, as: UTF8.self))")
    }
    guard again == flow else {
        fatalError("re-encoded flow differs:\n\(String(decoding: encoded, as: UTF8.self))")
    }
}

/// The sealed-shard reader's property: any bytes given as a `.sqlite.zst` file either
/// fail to open or read with a thrown error, or read completely; nothing traps.
func checkSealedShard(_ bytes: UnsafeRawBufferPointer) {
    let path = sealedScratchPath
    let data = Data(bytes)
    guard (try? data.write(to: URL(fileURLWithPath: path))) != nil else { return }
    guard let reader = try? ShardReader(path: path) else { return }
    _ = try? reader.quickCheck()
    try? reader.forEachFlow { _ in }
    try? reader.query("SELECT count(*), sum(\"Bytes\") FROM flows") { _ in }
}

let sealedScratchPath = NSTemporaryDirectory() + "flowrec-fuzz-\(getpid()).sqlite.zst"
let fuzzTarget = ProcessInfo.processInfo.environment["FLOWREC_FUZZ_TARGET"] == "sealed" ? checkSealedShard : checkDecoder

#if FLOWREC_FUZZING
/// libFuzzer's entry when the program keeps its own `main` (SwiftPM names the entry point itself).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@main
struct FuzzDecoder {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            fuzzTarget(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        }
        exit(status)
    }
}
#else
@main
struct ReplayFuzzInputs {
    static func main() throws {
        var files: [String] = []
        for path in CommandLine.arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                FileHandle.standardError.write(Data("flowrec-fuzz: no such file \(path)\n".utf8))
                exit(2)
            }
            if isDirectory.boolValue {
                files += try FileManager.default.contentsOfDirectory(atPath: path).map { path + "/" + $0 }
            } else {
                files.append(path)
            }
        }
        for file in files {
            let data = try Data(contentsOf: URL(fileURLWithPath: file))
            data.withUnsafeBytes { fuzzTarget($0) }
        }
        print("flowrec-fuzz: \(files.count) inputs replayed, no failure")
    }
}
#endif

import Foundation
