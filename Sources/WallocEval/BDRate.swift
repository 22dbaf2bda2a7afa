import Foundation
import WallocTensor

/// One point of a rate-distortion curve.
public struct RDPoint: Sendable, Equatable {
    /// The rate (bits per pixel, kbps, ...; must be > 0).
    public var rate: Double
    /// The quality (PSNR in dB, ...; higher is better).
    public var quality: Double

    public init(rate: Double, quality: Double) {
        self.rate = rate
        self.quality = quality
    }
}

/// Bjøntegaard delta rate: the mean bitrate difference of a test curve against an anchor curve
/// at equal quality, in percent (negative: the test needs fewer bits).
///
/// Both curves are interpolated as log10(rate) against quality and integrated over the quality
/// interval they share; BD-rate = 100 (10^((∫ test − ∫ anchor) / width) − 1).
public enum BDRate {
    public enum Method: String, Sendable, CaseIterable {
        /// Piecewise cubic Hermite interpolation (PCHIP, monotone; the method recommended for
        /// more than four points), two points or more per curve.
        case pchip
        /// The classic VCEG-M33 least-squares cubic polynomial, four points or more per curve.
        case cubic
    }

    public struct Result: Sendable, Equatable {
        /// The bitrate difference in percent.
        public var percent: Double
        /// The quality interval both curves cover (a single value for a one-point test curve).
        public var qualityRange: ClosedRange<Double>
        /// The interpolation used, or "point" for a one-point test curve.
        public var method: String
    }

    /// The BD-rate of `test` against `anchor`. Points with a non-positive or non-finite rate or a
    /// non-finite quality are ignored; of points with equal quality the one with the lower rate
    /// is kept. A test curve of a single point (a codec with one operating point) gives the rate
    /// difference to the anchor interpolated (PCHIP) at that point's quality.
    public static func compute(anchor: [RDPoint], test: [RDPoint], method: Method = .pchip) throws -> Result {
        let a = clean(anchor), t = clean(test)
        let needed = method == .cubic ? 4 : 2
        guard a.count >= needed else { throw WallocError("the anchor curve has \(a.count) usable point(s); \(method.rawValue) needs \(needed)") }
        if t.count == 1 {
            let q = t[0].quality
            guard q >= a.first!.quality, q <= a.last!.quality else {
                throw WallocError(String(format: "the test point's quality %.3f is outside the anchor's range %.3f...%.3f", q, a.first!.quality, a.last!.quality))
            }
            let anchorLogRate = PCHIP(a).value(at: q)
            return Result(percent: 100 * (pow(10, log10(t[0].rate) - anchorLogRate) - 1), qualityRange: q...q, method: "point")
        }
        guard t.count >= needed else { throw WallocError("the test curve has \(t.count) usable point(s); \(method.rawValue) needs \(needed)") }
        let lo = max(a.first!.quality, t.first!.quality), hi = min(a.last!.quality, t.last!.quality)
        guard hi > lo else { throw WallocError("the curves share no quality interval") }
        let ia: Double, it: Double
        switch method {
        case .pchip:
            ia = PCHIP(a).integral(from: lo, to: hi)
            it = PCHIP(t).integral(from: lo, to: hi)
        case .cubic:
            ia = try CubicFit(a).integral(from: lo, to: hi)
            it = try CubicFit(t).integral(from: lo, to: hi)
        }
        return Result(percent: 100 * (pow(10, (it - ia) / (hi - lo)) - 1), qualityRange: lo...hi, method: method.rawValue)
    }

    /// The quality a curve reaches at `rate`, interpolated (PCHIP) in log10(rate); nil outside the
    /// curve's rate range or with fewer than two usable points.
    public static func quality(at rate: Double, on curve: [RDPoint]) -> Double? {
        let usable = curve.filter { $0.rate > 0 && $0.rate.isFinite && $0.quality.isFinite }.sorted { $0.rate < $1.rate }
        var points = [RDPoint]()
        for p in usable where points.last?.rate != p.rate { points.append(p) }
        guard points.count >= 2, rate >= points.first!.rate, rate <= points.last!.rate else { return nil }
        return PCHIP(x: points.map { log10($0.rate) }, y: points.map(\.quality)).value(at: log10(rate))
    }

    /// Usable points sorted by quality, one per quality value.
    static func clean(_ points: [RDPoint]) -> [RDPoint] {
        let usable = points.filter { $0.rate > 0 && $0.rate.isFinite && $0.quality.isFinite }
            .sorted { $0.quality != $1.quality ? $0.quality < $1.quality : $0.rate < $1.rate }
        var out = [RDPoint]()
        for p in usable where out.last?.quality != p.quality { out.append(p) }
        return out
    }
}

/// Monotone piecewise cubic Hermite interpolation (of log10(rate) against quality here), with the
/// Fritsch–Carlson interior slopes (weighted harmonic mean) and the shape-preserving three-point
/// end slopes.
struct PCHIP {
    let x: [Double], y: [Double], d: [Double]

    /// log10(rate) as a function of quality.
    init(_ points: [RDPoint]) {
        self.init(x: points.map(\.quality), y: points.map { log10($0.rate) })
    }

    /// y as a function of x; x strictly increasing, at least two points.
    init(x: [Double], y: [Double]) {
        self.x = x
        self.y = y
        let n = x.count
        let h = (0..<(n - 1)).map { x[$0 + 1] - x[$0] }
        let m = (0..<(n - 1)).map { (y[$0 + 1] - y[$0]) / h[$0] }
        var d = [Double](repeating: m[0], count: n)
        if n > 2 {
            for k in 1..<(n - 1) {
                if m[k - 1] * m[k] <= 0 {
                    d[k] = 0
                } else {
                    let w1 = 2 * h[k] + h[k - 1], w2 = h[k] + 2 * h[k - 1]
                    d[k] = (w1 + w2) / (w1 / m[k - 1] + w2 / m[k])
                }
            }
            d[0] = PCHIP.endSlope(h[0], h[1], m[0], m[1])
            d[n - 1] = PCHIP.endSlope(h[n - 2], h[n - 3], m[n - 2], m[n - 3])
        }
        self.d = d
    }

    private static func endSlope(_ h0: Double, _ h1: Double, _ m0: Double, _ m1: Double) -> Double {
        func sign(_ v: Double) -> Int { v > 0 ? 1 : (v < 0 ? -1 : 0) }
        let d = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
        if sign(d) != sign(m0) { return 0 }
        if sign(m0) != sign(m1) && abs(d) > 3 * abs(m0) { return 3 * m0 }
        return d
    }

    /// The segment holding `q` (clamped to the first and last).
    private func segment(_ q: Double) -> Int {
        var k = 0
        while k < x.count - 2 && q > x[k + 1] { k += 1 }
        return k
    }

    func value(at q: Double) -> Double {
        let k = segment(q), h = x[k + 1] - x[k], t = (q - x[k]) / h
        let t2 = t * t, t3 = t2 * t
        return (2 * t3 - 3 * t2 + 1) * y[k] + (t3 - 2 * t2 + t) * h * d[k] + (-2 * t3 + 3 * t2) * y[k + 1] + (t3 - t2) * h * d[k + 1]
    }

    /// ∫ from x[0] to q.
    private func cumulative(_ q: Double) -> Double {
        var total = 0.0
        for k in 0..<(x.count - 1) {
            let h = x[k + 1] - x[k]
            let t = min(1, max(0, (q - x[k]) / h))
            if t <= 0 { break }
            let t2 = t * t, t3 = t2 * t, t4 = t3 * t
            total += h * ((t - t3 + t4 / 2) * y[k] + (t2 / 2 - 2 * t3 / 3 + t4 / 4) * h * d[k]
                          + (t3 - t4 / 2) * y[k + 1] + (t4 / 4 - t3 / 3) * h * d[k + 1])
        }
        return total
    }

    func integral(from a: Double, to b: Double) -> Double { cumulative(b) - cumulative(a) }
}

/// The least-squares cubic polynomial through log10(rate) against quality (quality centred and
/// scaled for conditioning).
struct CubicFit {
    let coefficients: [Double] // c0 + c1 u + c2 u² + c3 u³, u = (q − mean) / scale
    let mean: Double, scale: Double

    init(_ points: [RDPoint]) throws {
        let q = points.map(\.quality), y = points.map { log10($0.rate) }
        let mean = q.reduce(0, +) / Double(q.count)
        let scale = max(1e-12, sqrt(q.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(q.count)))
        self.mean = mean
        self.scale = scale
        // Normal equations A^T A c = A^T y for the 4 columns 1, u, u², u³.
        var ata = [Double](repeating: 0, count: 16), aty = [Double](repeating: 0, count: 4)
        for (qi, yi) in zip(q, y) {
            let u = (qi - mean) / scale
            let row = [1, u, u * u, u * u * u]
            for r in 0..<4 {
                aty[r] += row[r] * yi
                for c in 0..<4 { ata[4 * r + c] += row[r] * row[c] }
            }
        }
        coefficients = try CubicFit.solve(ata, aty)
    }

    /// Gaussian elimination with partial pivoting on a 4x4 system.
    private static func solve(_ a0: [Double], _ b0: [Double]) throws -> [Double] {
        var a = a0, b = b0
        for col in 0..<4 {
            let pivot = (col..<4).max { abs(a[4 * $0 + col]) < abs(a[4 * $1 + col]) }!
            guard abs(a[4 * pivot + col]) > 1e-300 else { throw WallocError("the cubic fit is singular (repeated qualities?)") }
            if pivot != col {
                for c in 0..<4 { a.swapAt(4 * col + c, 4 * pivot + c) }
                b.swapAt(col, pivot)
            }
            for r in (col + 1)..<4 {
                let f = a[4 * r + col] / a[4 * col + col]
                for c in col..<4 { a[4 * r + c] -= f * a[4 * col + c] }
                b[r] -= f * b[col]
            }
        }
        var x = [Double](repeating: 0, count: 4)
        for r in stride(from: 3, through: 0, by: -1) {
            var s = b[r]
            for c in (r + 1)..<4 { s -= a[4 * r + c] * x[c] }
            x[r] = s / a[4 * r + r]
        }
        return x
    }

    func integral(from a: Double, to b: Double) -> Double {
        func antiderivative(_ q: Double) -> Double {
            let u = (q - mean) / scale
            return scale * (coefficients[0] * u + coefficients[1] * u * u / 2 + coefficients[2] * u * u * u / 3 + coefficients[3] * u * u * u * u / 4)
        }
        return antiderivative(b) - antiderivative(a)
    }
}
