import Foundation
import StorageKit
import Testing

/// flowrec's threads carry their names to the kernel, so `top -H` and `perf` tell the
/// merger, the sealer and the listener apart from the main thread.
@Suite struct ThreadNameTests {
    /// The name a thread started with `NamedThread` reports from inside itself.
    private func nameSeen(starting name: String) -> String {
        let seen = WaitableMutex<String?>(nil)
        NamedThread.start(name) { seen.withLock { $0 = NamedThread.current() } }
        return seen.wait(until: { $0 != nil }, then: { $0 }) ?? ""
    }

    @Test func aThreadCarriesItsNameToTheKernel() {
        #expect(nameSeen(starting: "flowrec-sealer") == "flowrec-sealer")
    }

    @Test func aLongNameIsCutToTheKernelsFifteenBytes() {
        #expect(nameSeen(starting: "flowrec-compactor") == "flowrec-compact")
    }
}
