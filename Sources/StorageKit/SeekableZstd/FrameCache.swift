import Synchronization

/// Decompressed frames of seekable-zstd files, least recently used out first, bounded in
/// bytes so many readers over many files stay within a fixed memory budget. Every figure
/// it keeps is read and written under its one lock.
///
/// Frames are kept by the file's identity on disk (device, inode, size, modification
/// time), not by the open that read them: a sealed shard never changes in place (a
/// recompressed copy is a new file renamed over it, a new inode), so the next query over
/// the same shards, in the same process, finds their frames decompressed already.
package final class FrameCache: Sendable {
    private struct Key: Hashable { let file: FileIdentity; let index: Int }
    private struct State {
        var frames: [Key: (bytes: [UInt8], lastUse: UInt64)] = [:]
        var clock: UInt64 = 0
        var bytes = 0
        var loads = 0
        /// Per file with frames in the cache; dropped with its last frame, so it stays
        /// as small as the cache.
        var files: [FileIdentity: FileLoads] = [:]
        var limit: Int
    }
    private struct FileLoads { var cachedFrames = 0; var loads = FrameLoads() }
    /// What one file's readers decompressed.
    package struct FrameLoads: Equatable, Sendable {
        package var frames = 0
        package var bytes = 0
    }
    private let state: Mutex<State>

    package init(limitBytes: Int) { state = Mutex(State(limit: limitBytes)) }

    /// Bytes of decompressed frames held now.
    package var bytes: Int { state.withLock { $0.bytes } }
    /// Frames decompressed so far (cache misses), by every reader of this cache.
    package var loads: Int { state.withLock { $0.loads } }
    /// Frames of `file` decompressed since the cache last held none of its frames. Unlike
    /// the total above, readers of other files (another test, another query) leave it
    /// alone, so it says exactly what one file's readers cost.
    package func loads(of file: FileIdentity) -> FrameLoads {
        state.withLock { $0.files[file]?.loads ?? FrameLoads() }
    }
    /// Set by the process: queries keep more frames than the recorder, whose only reads
    /// of sealed files are the seal's verification pass (read once, in order).
    package var limitBytes: Int {
        get { state.withLock { $0.limit } }
        set {
            state.withLock {
                $0.limit = max(0, newValue)
                Self.evictOverLimit(&$0)
            }
        }
    }

    /// Frame `index` of `file`, from the cache or from `load` (called without the lock
    /// held, so two readers may decompress the same frame at once; both results are equal).
    package func frame(file: FileIdentity, index: Int, load: () throws -> [UInt8]) throws -> [UInt8] {
        let key = Key(file: file, index: index)
        let hit: [UInt8]? = state.withLock {
            $0.clock += 1
            guard let entry = $0.frames[key] else { return nil }
            $0.frames[key] = (entry.bytes, $0.clock)
            return entry.bytes
        }
        if let hit { return hit }
        let loaded = try load()
        state.withLock {
            $0.clock += 1
            $0.loads += 1
            $0.files[file, default: FileLoads()].loads.frames += 1
            $0.files[file, default: FileLoads()].loads.bytes += loaded.count
            if let previous = $0.frames[key] {
                $0.bytes -= previous.bytes.count
            } else {
                $0.files[file, default: FileLoads()].cachedFrames += 1
            }
            $0.bytes += loaded.count
            $0.frames[key] = (loaded, $0.clock)
            Self.evictOverLimit(&$0)
        }
        return loaded
    }

    /// Drops least recently used frames until the cache fits.
    private static func evictOverLimit(_ state: inout State) {
        while state.bytes > state.limit, let oldest = state.frames.min(by: { $0.value.lastUse < $1.value.lastUse }) {
            state.bytes -= oldest.value.bytes.count
            state.frames[oldest.key] = nil
            let file = oldest.key.file
            state.files[file]?.cachedFrames -= 1
            if state.files[file]?.cachedFrames == 0 { state.files[file] = nil }
        }
    }

}
