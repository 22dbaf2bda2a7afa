import Foundation
import WallocTensor

/// A static probability model over tokens `0..<count`: frequencies quantised to sum to
/// `2^precision` (the coder uses precision 12).
public struct FrequencyTable: Sendable, Codable, Equatable {
    /// Precision in bits (frequencies sum to `2^precision`).
    public let precision: Int
    /// First token with a non-zero frequency.
    public let first: Int
    /// Frequencies of tokens `first ..< first + frequencies.count`.
    public let frequencies: [UInt16]

    /// The precision of every table the coder uses.
    public static let codingPrecision = 12

    /// Quantises `histogram` (counts per token) to `2^precision`. With `coverAll`, every token
    /// below `histogram.count` gets a non-zero frequency (tables that must code data they were
    /// not fitted on).
    public init(histogram: [UInt64], precision: Int = FrequencyTable.codingPrecision, coverAll: Bool) throws {
        guard (1...15).contains(precision) else {
            throw WallocError("frequency table precision must be 1...15 bits, got \(precision)")
        }
        let total = 1 << precision
        var counts = histogram.map { Double($0) }
        let sum0 = counts.reduce(0, +)
        if coverAll {
            // A pseudo-count that keeps unseen tokens possible without costing the seen ones much.
            let pseudo = max(0.02, sum0 / Double(total) * 0.5)
            for i in counts.indices { counts[i] += pseudo }
        }
        guard let lo = counts.firstIndex(where: { $0 > 0 }), let hi = counts.lastIndex(where: { $0 > 0 }) else {
            throw WallocError("cannot build a frequency table from an empty histogram")
        }
        let used = counts.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }
        guard used <= total else {
            throw WallocError("\(used) distinct tokens do not fit a \(precision)-bit frequency table")
        }
        let sum = counts.reduce(0, +)
        var freqs = [Int](repeating: 0, count: hi - lo + 1)
        for s in lo...hi where counts[s] > 0 {
            freqs[s - lo] = max(1, Int((counts[s] * Double(total) / sum).rounded()))
        }
        // Fix the sum: take from (or give to) the tokens where it costs least.
        var diff = freqs.reduce(0, +) - total
        while diff != 0 {
            var best = -1, bestCost = Double.infinity
            for i in freqs.indices where freqs[i] > 0 && (diff < 0 || freqs[i] > 1) {
                let c = counts[i + lo], f = Double(freqs[i])
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
        guard (1...15).contains(precision), first >= 0, !frequencies.isEmpty else {
            throw WallocError("invalid frequency table (precision \(precision), first token \(first), \(frequencies.count) entries)")
        }
        let sum = frequencies.reduce(0) { $0 + Int($1) }
        guard sum == 1 << precision else {
            throw WallocError("invalid frequency table: frequencies sum to \(sum), not 2^\(precision)")
        }
        self.precision = precision
        self.first = first
        self.frequencies = frequencies
    }

    /// The tokens this table can code.
    public var range: Range<Int> { first..<(first + frequencies.count) }

    /// Whether every token in `0..<count` has a non-zero frequency.
    public func covers(alphabet count: Int) -> Bool {
        first == 0 && frequencies.count >= count && frequencies.prefix(count).allSatisfy { $0 > 0 }
    }

    /// Frequencies of tokens `0..<count` (zero outside the table).
    func dense(count: Int) -> [UInt32] {
        var out = [UInt32](repeating: 0, count: count)
        for (i, f) in frequencies.enumerated() where first + i < count { out[first + i] = UInt32(f) }
        return out
    }
}

/// rANS parameters of one token for the encoder: the renormalisation bound and a reciprocal that
/// replaces the division by the frequency (exact for states below 2^31).
struct EncodeSymbol {
    var xMax: UInt32 = 0
    var reciprocal: UInt32 = 0
    var bias: UInt32 = 0
    var complement: UInt16 = 0
    var shift: UInt16 = 0

    init() {}

    init(start: UInt32, frequency f: UInt32) {
        xMax = f << (RANS.lowerBits + 16 - RANS.precision)
        complement = UInt16(RANS.total - f)
        if f < 2 {
            reciprocal = .max
            shift = 0
            bias = start + RANS.total - 1
        } else {
            var s: UInt32 = 0
            while f > 1 << s { s += 1 }
            reciprocal = UInt32(((UInt64(1) << UInt64(s + 31)) + UInt64(f) - 1) / UInt64(f))
            shift = UInt16(s - 1)
            bias = start
        }
    }
}

/// Ready-to-use tables for one frequency table over `count` tokens.
enum CodingTables {
    /// Bytes of a decoding table: the token of each of the 2^12 slots, then per token its
    /// frequency | cumulative start << 16 (UInt32).
    static let decodeSize = Int(RANS.total) + 4 * Tokens.maximumCount

    static func buildDecode(_ freqs: UnsafePointer<UInt32>, count: Int, into table: UnsafeMutablePointer<UInt8>) {
        let info = UnsafeMutableRawPointer(table + Int(RANS.total))
        var cum = 0
        for t in 0..<Tokens.maximumCount {
            let f = t < count ? Int(freqs[t]) : 0
            info.storeBytes(of: UInt32(f) | UInt32(cum) << 16, toByteOffset: 4 * t, as: UInt32.self)
            (table + cum).update(repeating: UInt8(t), count: f)
            cum += f
        }
    }

    /// A table every slot of which decodes to the invalid token 128 (a context no valid stream
    /// uses): the state is left unchanged and the decoder reports the stream corrupt.
    static func buildInvalid(into table: UnsafeMutablePointer<UInt8>) {
        table.update(repeating: 128, count: Int(RANS.total))
        let info = UnsafeMutableRawPointer(table + Int(RANS.total))
        for t in 0..<Tokens.maximumCount { info.storeBytes(of: t == 0 ? RANS.total : 0, toByteOffset: 4 * t, as: UInt32.self) }
    }

    static func buildEncode(_ freqs: UnsafePointer<UInt32>, count: Int, into syms: UnsafeMutablePointer<EncodeSymbol>) {
        var cum: UInt32 = 0
        for t in 0..<Tokens.maximumCount {
            let f = t < count ? freqs[t] : 0
            syms[t] = f > 0 ? EncodeSymbol(start: cum, frequency: f) : EncodeSymbol()
            cum += f
        }
    }

    /// Code length in bits of each token (infinite where the frequency is 0).
    static func costs(_ freqs: [UInt32]) -> [Float] {
        freqs.map { $0 == 0 ? .infinity : Float(RANS.precision) - log2(Float($0)) }
    }
}
