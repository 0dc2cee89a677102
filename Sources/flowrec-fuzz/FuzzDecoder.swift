// The decoder's fuzz target. `scripts/fuzz` builds it with libFuzzer
// (`-sanitize=fuzzer,address -DFLOWREC_FUZZING`); built normally it replays files
// through the same check, which is how a crash found by the fuzzer becomes a test:
//
//   swift run flowrec-fuzz crash-1234 corpus-dir/...
import FlowModel

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
            checkDecoder(UnsafeRawBufferPointer(start: data, count: size))
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
            data.withUnsafeBytes { checkDecoder($0) }
        }
        print("flowrec-fuzz: \(files.count) inputs replayed, no failure")
    }
}
#endif

import Foundation
