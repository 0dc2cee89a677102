import CSQLite
import FlowModel
import Foundation
import StorageKit

/// The SQL functions a LogQL plan calls, registered on each shard connection it reads:
///
/// - `flowrec_regex_full(pattern, text)`, `flowrec_regex_search(pattern, text)`: 1 when
///   the RE2-style pattern matches the whole text / somewhere in it, 0 otherwise;
/// - `flowrec_ip(spec, text)`: LogQL's `ip()` (an address, CIDR or range);
/// - `flowrec_json_string(text)`: the text as JSON writes it inside quotes (what a line
///   filter's pattern sees);
/// - `flowrec_u64(integer)`: a uint64 counter's decimal text (the bit pattern read unsigned);
/// - `flowrec_number(text)`: the text as a number, NULL when it is not one.
final class LogQLSQLFunctions {
    private let regexes = LogQLRegexCache()
    private var ips: [String: IPMatcher?] = [:]
    /// An invalid regex found while a statement ran (SQLite only sees a failure).
    private(set) var failure: QueryError?

    static let names = ["flowrec_regex_full", "flowrec_regex_search", "flowrec_ip", "flowrec_json_string", "flowrec_u64", "flowrec_number"]

    /// Registers the functions on `db`. The connection keeps this object alive (released
    /// when a later query registers its own, or the connection closes): shard connections
    /// outlive one query (`ShardReader(path:reusable:)`).
    func register(on db: SQLiteDatabase) {
        let flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC
        let release: @convention(c) (UnsafeMutableRawPointer?) -> Void = { context in
            if let context { Unmanaged<LogQLSQLFunctions>.fromOpaque(context).release() }
        }
        // One reference per registration, each given back by SQLite through `release`.
        func retained() -> UnsafeMutableRawPointer { Unmanaged.passRetained(self).toOpaque() }
        sqlite3_create_function_v2(db.handle, "flowrec_regex_full", 2, flags, retained(), { ctx, _, args in
            LogQLSQLFunctions.this(ctx).regex(ctx, args, full: true)
        }, nil, nil, release)
        sqlite3_create_function_v2(db.handle, "flowrec_regex_search", 2, flags, retained(), { ctx, _, args in
            LogQLSQLFunctions.this(ctx).regex(ctx, args, full: false)
        }, nil, nil, release)
        sqlite3_create_function_v2(db.handle, "flowrec_ip", 2, flags, retained(), { ctx, _, args in
            LogQLSQLFunctions.this(ctx).ip(ctx, args)
        }, nil, nil, release)
        sqlite3_create_function_v2(db.handle, "flowrec_json_string", 1, flags, nil, { ctx, _, args in
            guard let args, let text = LogQLSQLFunctions.text(args[0]) else { return sqlite3_result_null(ctx) }
            var out: [UInt8] = []
            JSONEscaping.appendQuoted(text.utf8, to: &out)
            let inner = out.dropFirst().dropLast()
            inner.withUnsafeBytes { sqlite3_result_text(ctx, $0.baseAddress?.assumingMemoryBound(to: CChar.self), Int32($0.count), sqliteTransient) }
        }, nil, nil, nil)
        sqlite3_create_function_v2(db.handle, "flowrec_u64", 1, flags, nil, { ctx, _, args in
            guard let args, sqlite3_value_type(args[0]) != SQLITE_NULL else { return sqlite3_result_null(ctx) }
            let value = sqlite3_value_int64(args[0])
            let text = value < 0 ? String(UInt64(bitPattern: value)) : String(value)
            sqlite3_result_text(ctx, text, -1, sqliteTransient)
        }, nil, nil, nil)
        sqlite3_create_function_v2(db.handle, "flowrec_number", 1, flags, nil, { ctx, _, args in
            guard let args, let text = LogQLSQLFunctions.text(args[0]), let number = Double(text) else { return sqlite3_result_null(ctx) }
            sqlite3_result_double(ctx, number)
        }, nil, nil, nil)
    }

    private static func this(_ ctx: OpaquePointer?) -> LogQLSQLFunctions {
        Unmanaged<LogQLSQLFunctions>.fromOpaque(sqlite3_user_data(ctx)!).takeUnretainedValue()
    }

    private static func text(_ value: OpaquePointer?) -> String? {
        guard sqlite3_value_type(value) != SQLITE_NULL, let p = sqlite3_value_text(value) else { return nil }
        return String(decoding: UnsafeBufferPointer(start: p, count: Int(sqlite3_value_bytes(value))), as: UTF8.self)
    }

    private func regex(_ ctx: OpaquePointer?, _ args: UnsafeMutablePointer<OpaquePointer?>?, full: Bool) {
        guard let args, let pattern = LogQLSQLFunctions.text(args[0]) else { return sqlite3_result_null(ctx) }
        guard let text = LogQLSQLFunctions.text(args[1]) else { return sqlite3_result_int(ctx, 0) }
        do {
            let hit = full ? try regexes.fullMatch(pattern, text) : try regexes.search(pattern, in: text)
            sqlite3_result_int(ctx, hit ? 1 : 0)
        } catch {
            failure = error
            sqlite3_result_error(ctx, "invalid regex", -1)
        }
    }

    private func ip(_ ctx: OpaquePointer?, _ args: UnsafeMutablePointer<OpaquePointer?>?) {
        guard let args, let spec = LogQLSQLFunctions.text(args[0]) else { return sqlite3_result_null(ctx) }
        if ips[spec] == nil { ips[spec] = .some(IPMatcher(spec)) }
        guard let matcher = ips[spec] ?? nil, let text = LogQLSQLFunctions.text(args[1]) else { return sqlite3_result_int(ctx, 0) }
        sqlite3_result_int(ctx, matcher.contains(text) ? 1 : 0)
    }
}
