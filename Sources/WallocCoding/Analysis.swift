import Foundation

/// The shape of the latents as the coder sees them: `channels` planes of `rows × cols`.
struct Layout {
    let channels: Int
    let rows: Int
    let cols: Int
    let oneD: Bool

    var plane: Int { rows * cols }
    /// Rows (images) or columns (audio) that segments split.
    var extent: Int { oneD ? cols : rows }

    /// Segments: independent stripes of `span` rows (images) or samples (audio), so large inputs
    /// code and decode in parallel. The split depends on the shape only (never on the thread
    /// count), so a stream is the same on every machine.
    static let segmentSymbols = 1 << 18

    func defaultSpan() -> Int {
        let total = channels * plane
        if total <= Layout.segmentSymbols { return extent }
        let perUnit = channels * (oneD ? 1 : cols)
        let span = (Layout.segmentSymbols + perUnit - 1) / perUnit
        return min(extent, max(oneD ? 4096 : 8, span))
    }

    /// (first row or column, count) of each segment.
    func segments(span: Int) -> [(start: Int, count: Int)] {
        stride(from: 0, to: extent, by: span).map { ($0, min(span, extent - $0)) }
    }

    func geometry(_ count: Int) -> PlaneGeometry {
        oneD ? PlaneGeometry(rows: 1, cols: count, oneD: true) : PlaneGeometry(rows: count, cols: cols, oneD: false)
    }

    /// Plane index where a segment starts.
    func offset(_ start: Int) -> Int { oneD ? start : start * cols }
}

/// The encoder's per-channel choices, made on a sample of positions: the predictor whose
/// residual tokens have the smallest (static, order-0) code length, and a cross-channel term
/// when a scaled residual of an earlier channel removes at least 7% of the sum of absolute
/// residuals.
enum Analysis {
    /// At most this many sample positions per channel, and at least one per `density` symbols.
    static let samples = 2048
    static let density = 8

    struct Choice {
        var predictor = 0
        var reference = -1
        var coefficient: Int32 = 0
    }

    /// Sample positions (plane indices, each with all of a, b, c inside the plane).
    static func positions(_ layout: Layout) -> [Int] {
        let samples = min(Analysis.samples, max(256, layout.plane / density))
        var out = [Int]()
        if layout.oneD {
            guard layout.cols > 3 else { return [] }
            let step = max(1, (layout.cols - 3) / samples)
            for i in stride(from: 3, to: layout.cols, by: step) { out.append(i) }
        } else {
            guard layout.rows > 1, layout.cols > 1 else { return [] }
            let sx = max(1, layout.cols / 512)
            let perRow = (layout.cols - 1 + sx - 1) / sx
            let sy = max(1, (layout.rows - 1) * perRow / samples)
            for y in stride(from: 1, to: layout.rows, by: sy) {
                for x in stride(from: 1, to: layout.cols, by: sx) { out.append(y * layout.cols + x) }
            }
        }
        return out
    }

    /// Token histograms (64 bins) of each predictor's residuals at `positions` of one channel.
    static func histograms(_ v: UnsafePointer<Int32>, positions pos: [Int], layout: Layout, half: Int32, mask: Int32) -> [UInt32] {
        let ob = layout.oneD ? 2 : layout.cols, oc = layout.oneD ? 3 : layout.cols + 1
        var h = [UInt32](repeating: 0, count: Predictors.count * 64)
        h.withUnsafeMutableBufferPointer { hp in
            let h = hp.baseAddress!
            @inline(__always) func count(_ m: Int, _ x: Int32, _ p: Int32) {
                let t = Tokens.split(Tokens.zigzag(wrap(x &- p, half: half, mask: mask))).token
                h[m << 6 | Int(t)] &+= 1
            }
            for p in pos {
                let a = v[p - 1], b = v[p - ob], c = v[p - oc], x = v[p]
                count(0, x, 0); count(1, x, a); count(2, x, b)
                count(3, x, PredictMedian.predict(a, b, c)); count(4, x, PredictAverage.predict(a, b, c))
                count(5, x, PredictGradient.predict(a, b, c)); count(6, x, PredictExtrapolate.predict(a, b, c))
            }
        }
        return h
    }

    /// Bits to code each predictor's residual tokens with one static table, plus their raw bits.
    static func costs(_ h: [UInt32]) -> [Double] {
        (0..<Predictors.count).map { m in
            let row = h[(m * 64)..<(m * 64 + 64)]
            let n = Double(row.reduce(0, +))
            var bits = 0.0
            for (t, c) in row.enumerated() where c > 0 {
                bits += Double(c) * (log2(n / Double(c)) + Double(Tokens.rawBits(UInt32(t))))
            }
            return bits
        }
    }

    /// Per channel of an input, the token histograms of each predictor (see `histograms`).
    static func histograms(values: [Int32], layout: Layout, bits: Int) -> [[UInt32]] {
        let half = Int32(1 << (bits - 1)), mask = Int32((1 << bits) - 1)
        let pos = positions(layout)
        return values.withUnsafeBufferPointer { v in
            (0..<layout.channels).map { histograms(v.baseAddress! + $0 * layout.plane, positions: pos, layout: layout, half: half, mask: mask) }
        }
    }

    static func choose(values: UnsafePointer<Int32>, layout: Layout, bits: Int, skip: [Bool], preferred: [Int]?) -> [Choice] {
        let half = Int32(1 << (bits - 1)), mask = Int32((1 << bits) - 1)
        let pos = positions(layout)
        let n = layout.plane
        let ob = layout.oneD ? 2 : layout.cols, oc = layout.oneD ? 3 : layout.cols + 1
        var choices = [Choice](repeating: Choice(), count: layout.channels)
        var residuals = [[Int32]](repeating: [], count: layout.channels)
        guard !pos.isEmpty else { return choices }
        for ch in 0..<layout.channels where !skip[ch] {
            let v = values + ch * n
            let cost = costs(histograms(v, positions: pos, layout: layout, half: half, mask: mask))
            var best = 0
            for m in 1..<Predictors.count where cost[m] < cost[best] { best = m }
            if let preferred, preferred[ch] < Predictors.count, cost[preferred[ch]] <= cost[best] * 1.05 { best = preferred[ch] }
            choices[ch].predictor = best
            residuals[ch] = pos.map { p in
                let pred: Int32
                switch best {
                case 0: pred = 0
                case 1: pred = v[p - 1]
                case 2: pred = v[p - ob]
                case 3: pred = PredictMedian.predict(v[p - 1], v[p - ob], v[p - oc])
                case 4: pred = PredictAverage.predict(v[p - 1], v[p - ob], v[p - oc])
                case 5: pred = PredictGradient.predict(v[p - 1], v[p - ob], v[p - oc])
                default: pred = PredictExtrapolate.predict(v[p - 1], v[p - ob], v[p - oc])
                }
                return wrap(v[p] - pred, half: half, mask: mask)
            }
        }
        // Cross-channel terms on (at most) 512 of the samples, spread over the plane: the
        // earlier channel whose residual explains most of this one's (least squares), kept
        // when it removes at least 7% of the sum of absolute residuals.
        let step = max(1, pos.count / 512)
        let sub = Swift.stride(from: 0, to: pos.count, by: step).map { $0 }
        residuals = residuals.map { r in r.isEmpty ? r : sub.map { r[$0] } }
        let m = sub.count
        var energy = [Int64](repeating: 0, count: layout.channels)
        for ch in 0..<layout.channels where !skip[ch] {
            residuals[ch].withUnsafeBufferPointer { r in
                var s: Int64 = 0
                for i in 0..<m { s += Int64(r[i] &* r[i]) }
                energy[ch] = s
            }
        }
        for ch in 1..<max(1, layout.channels) where !skip[ch] {
            var bestRef = -1, bestScore = 0.0, bestDot: Int64 = 0
            residuals[ch].withUnsafeBufferPointer { e in
                for ref in 0..<ch where !skip[ref] && energy[ref] > 0 {
                    var dot: Int64 = 0
                    residuals[ref].withUnsafeBufferPointer { r in
                        for i in 0..<m { dot += Int64(e[i] &* r[i]) }
                    }
                    let score = Double(dot) * Double(dot) / Double(energy[ref])
                    if score > bestScore { bestScore = score; bestRef = ref; bestDot = dot }
                }
            }
            guard bestRef >= 0 else { continue }
            let limit = Double(ChannelPlan.maximumCoefficient)
            let coef = Int32(max(-limit, min(limit, (16 * Double(bestDot) / Double(energy[bestRef])).rounded())))
            guard coef != 0 else { continue }
            let e = residuals[ch], r = residuals[bestRef]
            var own: Int64 = 0, crossed: Int64 = 0
            for i in 0..<m {
                own += Int64(abs(e[i]))
                crossed += Int64(abs(wrap(e[i] &- ((coef &* r[i] &+ 8) >> 4), half: half, mask: mask)))
            }
            if crossed * 100 < own * 93 { choices[ch].reference = bestRef; choices[ch].coefficient = coef }
        }
        return choices
    }
}
