/// The names NetObserv's agent gives TCP flag bits (`decode_tcp_flags`), in the order
/// it writes them. flowrec uses them to read `Flags` in either of its spellings.
package enum TCPFlagNames {
    package static let all: [(bit: Int64, name: String)] = [
        (1, "FIN"), (2, "SYN"), (4, "RST"), (8, "PSH"), (16, "ACK"), (32, "URG"), (64, "ECE"), (128, "CWR"),
        (256, "SYN_ACK"), (512, "FIN_ACK"), (1024, "RST_ACK"),
    ]

    /// The names of the bits set in `bits`, as the agent lists them.
    package static func names(_ bits: Int64) -> [String] {
        all.filter { bits & $0.bit != 0 }.map(\.name)
    }

    /// `["SYN","ACK"]`-style JSON text for `bits`.
    package static func jsonArray(_ bits: Int64) -> String {
        "[" + names(bits).map { "\"\($0)\"" }.joined(separator: ",") + "]"
    }

    /// The bits named in a list; unknown names are ignored.
    package static func bits(_ names: some Sequence<String>) -> Int64 {
        names.reduce(0) { acc, name in acc | (all.first { $0.name == name }?.bit ?? 0) }
    }
}
