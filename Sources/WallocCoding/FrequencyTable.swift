import Foundation
import WallocTensor

/// A static probability model over symbols `0..<alphabet`: frequencies quantised to sum to
/// `2^precision`, every symbol that can occur at least 1.
public struct FrequencyTable: Sendable, Codable, Equatable {
    /// Precision in bits (frequencies sum to `2^precision`), 1...15.
    public let precision: Int
    /// First symbol with a non-zero frequency.
    public let first: Int
    /// Frequencies of symbols `first ..< first + frequencies.count`.
    public let frequencies: [UInt16]

    public static let maximumPrecision = 15

    /// Quantises `histogram` (counts per symbol) to `2^precision`. With `coverAll`, every symbol
    /// gets a non-zero frequency (tables that must code data they were not fitted on).
    public init(histogram: [UInt64], precision: Int, coverAll: Bool) throws {
        guard (1...FrequencyTable.maximumPrecision).contains(precision) else {
            throw WallocError("frequency table precision must be 1...15 bits, got \(precision)")
        }
        let total = 1 << precision
        var counts = histogram
        if coverAll { for i in counts.indices { counts[i] += 1 } }
        guard let lo = counts.firstIndex(where: { $0 > 0 }), let hi = counts.lastIndex(where: { $0 > 0 }) else {
            throw WallocError("cannot build a frequency table from an empty histogram")
        }
        let used = counts.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }
        guard used <= total else {
            throw WallocError("\(used) distinct symbols do not fit a \(precision)-bit frequency table")
        }
        let sum = counts.reduce(0, +)
        var freqs = [Int](repeating: 0, count: hi - lo + 1)
        for s in lo...hi where counts[s] > 0 {
            freqs[s - lo] = max(1, Int((Double(counts[s]) * Double(total) / Double(sum)).rounded()))
        }
        // Fix the sum: take from (or give to) the symbols where it costs least.
        var diff = freqs.reduce(0, +) - total
        while diff != 0 {
            var best = -1, bestCost = Double.infinity
            for i in freqs.indices where freqs[i] > 0 && (diff < 0 || freqs[i] > 1) {
                let c = Double(counts[i + lo])
                let f = Double(freqs[i])
                let cost = diff > 0 ? c * log2(f / (f - 1)) : -c * log2((f + 1) / f)
                if cost < bestCost { bestCost = cost; best = i }
            }
            let step = diff > 0 ? -1 : 1
            freqs[best] += step
            diff += step
        }
        self.precision = precision
        self.first = lo
        self.frequencies = freqs.map { UInt16($0) }
    }

    /// A table from stored fields, validated (used when reading streams and models).
    public init(precision: Int, first: Int, frequencies: [UInt16]) throws {
        guard (1...FrequencyTable.maximumPrecision).contains(precision), first >= 0, !frequencies.isEmpty else {
            throw WallocError("invalid frequency table (precision \(precision), first symbol \(first), \(frequencies.count) entries)")
        }
        let sum = frequencies.reduce(0) { $0 + Int($1) }
        guard sum == 1 << precision else {
            throw WallocError("invalid frequency table: frequencies sum to \(sum), not 2^\(precision)")
        }
        self.precision = precision
        self.first = first
        self.frequencies = frequencies
    }

    /// The symbols this table can code.
    public var range: Range<Int> { first..<(first + frequencies.count) }

    /// Whether every symbol in `0..<alphabet` has a non-zero frequency.
    public func covers(alphabet: Int) -> Bool {
        first == 0 && frequencies.count >= alphabet && frequencies.prefix(alphabet).allSatisfy { $0 > 0 }
    }

    /// Bits needed to code `histogram` with this table, or nil when a symbol has no frequency.
    func cost(of histogram: [UInt64]) -> Double? {
        var bits = 0.0
        for (s, c) in histogram.enumerated() where c > 0 {
            guard range.contains(s), frequencies[s - first] > 0 else { return nil }
            bits += Double(c) * (Double(precision) - log2(Double(frequencies[s - first])))
        }
        return bits
    }

    // MARK: serialisation

    /// Compact form: precision, first symbol, count, then the frequencies as varints.
    func write(to w: inout ByteWriter) {
        w.byte(UInt8(precision))
        w.varint(UInt64(first))
        w.varint(UInt64(frequencies.count))
        for f in frequencies { w.varint(UInt64(f)) }
    }

    static func read(from r: inout ByteReader, alphabet: Int) throws -> FrequencyTable {
        let precision = Int(try r.byte())
        let first = try r.varint(max: UInt64(alphabet - 1))
        let count = try r.varint(max: UInt64(alphabet))
        guard count >= 1, Int(first) + Int(count) <= alphabet else {
            throw WallocError("corrupt stream: frequency table covers symbols outside the alphabet of \(alphabet)")
        }
        var freqs = [UInt16]()
        freqs.reserveCapacity(Int(count))
        for _ in 0..<count { freqs.append(UInt16(try r.varint(max: 1 << 15))) }
        return try FrequencyTable(precision: precision, first: Int(first), frequencies: freqs)
    }
}

/// Precomputed encoding and decoding tables for one `FrequencyTable` over an alphabet.
struct CodingTable {
    /// Per symbol: frequency (low 16 bits) and cumulative start (high 16 bits); 0 for absent symbols.
    var symbolInfo: [UInt32]
    /// Per slot (`2^precision`): symbol (bits 0-15), frequency (16-31), offset within the symbol's
    /// range (32-47).
    var slots: [UInt64]
    var precision: UInt32

    init(_ table: FrequencyTable, alphabet: Int) {
        precision = UInt32(table.precision)
        symbolInfo = [UInt32](repeating: 0, count: alphabet)
        slots = [UInt64](repeating: 0, count: 1 << table.precision)
        var cum = 0
        for (i, f) in table.frequencies.enumerated() where f > 0 {
            let s = table.first + i
            symbolInfo[s] = UInt32(f) | UInt32(cum) << 16
            for k in 0..<Int(f) { slots[cum + k] = UInt64(s) | UInt64(f) << 16 | UInt64(k) << 32 }
            cum += Int(f)
        }
    }
}
