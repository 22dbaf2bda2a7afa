import Foundation
import WallocTensor

/// A pointer that may cross threads (tables are immutable once built).
struct SharedPointer<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>
}

/// The parametric tables every stream may use without sending them: for each of 80 scales, the
/// token distribution of a two-sided geometric residual `P(r) ∝ θ^|r|` (mean |r| from 0.002 to
/// about 88 000, a factor 1.25 apart), quantised to 12 bits with every token possible. A stream
/// names a table by its index (a few bits), so small inputs pay almost nothing for their
/// tables. The tables are computed with integer arithmetic only, so every platform builds the
/// same frequencies.
final class TableBank: @unchecked Sendable {
    static let size = 80

    /// θ · 2^32 for each scale (θ = (√(1 + m²) − 1) / m for mean |r| = m = 0.002 · 1.25^k).
    static let thetas: [UInt64] = [
        4294963, 5368701, 6710870, 8388576, 10485698, 13107078, 16383762, 20479534, 25599091, 31998224,
        39996531, 49993226, 62486771, 78099168, 97605815, 121971864, 152395782, 190360181, 237688388,
        296601948, 369767825, 460312493, 571761124, 707833671, 872004490, 1066738026, 1292408684,
        1546151831, 1821203094, 2107357087, 2392695593, 2665924698, 2918279314, 3144358020, 3341949060,
        3511296462, 3654240793, 3773482536, 3872048709, 3952951275, 4018992994, 4072674221, 4116163173,
        4151303029, 4179638305, 4202449588, 4220790214, 4235521354, 4247343800, 4256825783, 4264426746,
        4270517359, 4275396148, 4279303210, 4282431440, 4284935676, 4286940121, 4288544354, 4289828173,
        4290855505, 4291677548, 4292335296, 4292861567, 4293282630, 4293619510, 4293889034, 4294104664,
        4294277177, 4294415192, 4294525607, 4294613941, 4294684610, 4294741146, 4294786375, 4294822558,
        4294851505, 4294874663, 4294893190, 4294908011, 4294919868,
    ]

    let bits: Int
    /// Tokens per table.
    let count: Int
    /// Frequencies, `size × count`.
    let frequencies: [UInt32]
    /// Code lengths in bits, `size × count`.
    let costs: [Float]
    /// Encoder symbols, `size × Tokens.maximumCount`.
    let encode: UnsafeMutablePointer<EncodeSymbol>
    private let decodeTables = Locked<[SharedPointer<UInt8>?]>([SharedPointer<UInt8>?](repeating: nil, count: TableBank.size))

    private init(bits: Int) {
        self.bits = bits
        let count = Tokens.count(bits: bits)
        self.count = count
        var freqs = [UInt32](repeating: 0, count: TableBank.size * count)
        for k in 0..<TableBank.size {
            let f = TableBank.quantise(TableBank.masses(theta: TableBank.thetas[k], bits: bits, count: count))
            for t in 0..<count { freqs[k * count + t] = f[t] }
        }
        frequencies = freqs
        costs = CodingTables.costs(freqs)
        encode = .allocate(capacity: TableBank.size * Tokens.maximumCount)
        freqs.withUnsafeBufferPointer { f in
            for k in 0..<TableBank.size {
                CodingTables.buildEncode(f.baseAddress! + k * count, count: count, into: encode + k * Tokens.maximumCount)
            }
        }
    }

    /// Token masses of the geometric residual in fixed point.
    static func masses(theta: UInt64, bits: Int, count: Int) -> [UInt64] {
        var mass = [UInt64](repeating: 0, count: count)
        var w: UInt64 = 1 << 44  // weight of |r| = m
        var m: UInt32 = 0
        let n = UInt32(1) << UInt32(bits)
        var u: UInt32 = 0
        while u < n && w > 0 {
            // u = 2m − 1 (r = −m) and u = 2m (r = +m) share the weight θ^m.
            let t = Int(Tokens.split(u).token)
            mass[t] &+= w
            if u & 1 == 0 {
                m += 1
                let p = w.multipliedFullWidth(by: theta)
                w = p.high << 32 | p.low >> 32
            }
            u += 1
        }
        return mass
    }

    /// Rounds masses to frequencies summing to 2^12, each at least 1; the difference goes to
    /// (or comes from) the most probable tokens.
    static func quantise(_ mass: [UInt64]) -> [UInt32] {
        let total = mass.reduce(0, &+)
        var f = mass.map { m -> Int64 in
            // round(m · 2^12 / total) = ⌊(2^13 · m + total) / (2 · total)⌋ in 128 bits.
            let p = m.multipliedFullWidth(by: 2 * UInt64(RANS.total))
            let (low, carry) = p.low.addingReportingOverflow(total)
            let q = (2 * total).dividingFullWidth((p.high + (carry ? 1 : 0), low)).quotient
            return Int64(max(1, q))
        }
        var diff = Int64(RANS.total) - f.reduce(0, +)
        while diff != 0 {
            var best = 0
            for t in f.indices where f[t] > f[best] { best = t }
            let step = diff > 0 ? diff : max(diff, -(f[best] - 1))
            f[best] += step
            diff -= step
            if step == 0 { break }  // cannot happen with ≤ 64 tokens: the largest holds ≥ 64
        }
        return f.map { UInt32($0) }
    }

    /// The decoding table of scale `k`, built on first use.
    func decodeTable(_ k: Int) -> UnsafePointer<UInt8> {
        let count = self.count
        let shared = decodeTables.withLock { tables -> SharedPointer<UInt8> in
            if let t = tables[k] { return t }
            let table = UnsafeMutablePointer<UInt8>.allocate(capacity: CodingTables.decodeSize)
            frequencies.withUnsafeBufferPointer { CodingTables.buildDecode($0.baseAddress! + k * count, count: count, into: table) }
            let t = SharedPointer(pointer: table)
            tables[k] = t
            return t
        }
        return UnsafePointer(shared.pointer)
    }

    /// Mean |r| of the values each token stands for (a start for the table search).
    static let tokenMagnitudes: [Double] = (0..<Tokens.maximumCount).map { t in
        let t = UInt32(t)
        let lo = Tokens.join(t, raw: 0), hi = Tokens.join(t, raw: (1 << Tokens.rawBits(t)) - 1)
        return (Double(lo) + Double(hi)) / 4 + 0.25
    }

    /// Geometric midpoints between the scales' mean |r| (0.002 · 1.25^(k + 1/2)).
    static let boundaries: [Double] = (0..<(size - 1)).map { 0.002 * pow(1.25, Double($0) + 0.5) }

    /// The table index whose mean |r| is nearest the histogram's.
    static func guess(histogram h: UnsafePointer<UInt32>, maxToken: Int) -> Int {
        var n = 0.0, sum = 0.0
        tokenMagnitudes.withUnsafeBufferPointer { mag in
            for t in 0...maxToken { n += Double(h[t]); sum += Double(h[t]) * mag[t] }
        }
        guard n > 0 else { return 0 }
        let mean = sum / n - 0.25
        var lo = 0, hi = size - 1  // the first boundary above the mean
        while lo < hi {
            let mid = (lo + hi) / 2
            if boundaries[mid] < mean { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// The table index with the smallest cost for `histogram` (tokens `0...maxToken`), searched
    /// downhill from the index whose mean matches the histogram's, and that cost in bits.
    /// `scratch` holds at least 64 entries.
    func best(histogram h: UnsafePointer<UInt32>, maxToken: Int, scratch: UnsafeMutablePointer<(Int32, Float)>) -> (index: Int, bits: Float) {
        var m = 0
        for t in 0...maxToken {
            scratch[m] = (Int32(t), Float(h[t]))
            m += h[t] != 0 ? 1 : 0
        }
        return costs.withUnsafeBufferPointer { cp in
            func cost(_ k: Int) -> Float {
                let row = cp.baseAddress! + k * count
                var c: Float = 0
                for i in 0..<m { c += scratch[i].1 * row[Int(scratch[i].0)] }
                return c
            }
            var k = TableBank.guess(histogram: h, maxToken: maxToken)
            var c = cost(k)
            for direction in [1, -1] {
                while true {
                    let next = k + direction
                    guard next >= 0 && next < TableBank.size else { break }
                    let cn = cost(next)
                    if cn < c { k = next; c = cn } else { break }
                }
            }
            return (k, c)
        }
    }

    private static let banks = Locked<[Int: TableBank]>([:])

    /// The bank for `bits`-bit latents (built once per process).
    static func shared(bits: Int) -> TableBank {
        banks.withLock { b in
            if let bank = b[bits] { return bank }
            let bank = TableBank(bits: bits)
            b[bits] = bank
            return bank
        }
    }
}
