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

/// The encoder's per-channel choices, made on a sample of positions: the predictor with the
/// smallest sum of absolute residuals (a better guide than the samples' token entropy, which
/// is noisy on small samples), and a cross-channel term when a scaled residual of an earlier
/// channel removes at least 7% of that sum.
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

    /// Sum of absolute residuals of each predictor at `positions` of one channel.
    static func sums(_ v: UnsafePointer<Int32>, positions pos: [Int], layout: Layout, half: Int32, mask: Int32) -> [Int64] {
        let ob = layout.oneD ? 2 : layout.cols, oc = layout.oneD ? 3 : layout.cols + 1
        var s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0
        @inline(__always) func d(_ x: Int32, _ p: Int32) -> Int { Int(wrap(x &- p, half: half, mask: mask).magnitude) }
        pos.withUnsafeBufferPointer { pp in
            for p in pp {
                let a = v[p &- 1], b = v[p &- ob], c = v[p &- oc], x = v[p]
                s0 &+= d(x, 0); s1 &+= d(x, a); s2 &+= d(x, b)
                s3 &+= d(x, PredictMedian.predict(a, b, c)); s4 &+= d(x, PredictAverage.predict(a, b, c))
                s5 &+= d(x, PredictGradient.predict(a, b, c)); s6 &+= d(x, PredictExtrapolate.predict(a, b, c))
            }
        }
        return [s0, s1, s2, s3, s4, s5, s6].map { Int64($0) }
    }

    /// Per channel of an input, the sums of absolute residuals of each predictor.
    static func sums(values: [Int32], layout: Layout, bits: Int) -> [[Int64]] {
        let half = Int32(1 << (bits - 1)), mask = Int32((1 << bits) - 1)
        let pos = positions(layout)
        return values.withUnsafeBufferPointer { v in
            (0..<layout.channels).map { sums(v.baseAddress! + $0 * layout.plane, positions: pos, layout: layout, half: half, mask: mask) }
        }
    }

    static func choose(values: UnsafePointer<Int32>, layout: Layout, bits: Int, skip: [Bool], preferred: [Int]?) -> [Choice] {
        let half = Int32(1 << (bits - 1)), mask = Int32((1 << bits) - 1)
        let pos = positions(layout)
        let n = layout.plane, channels = layout.channels
        let ob = layout.oneD ? 2 : layout.cols, oc = layout.oneD ? 3 : layout.cols + 1
        var choices = [Choice](repeating: Choice(), count: channels)
        guard !pos.isEmpty else { return choices }
        // Residuals of the chosen predictors at (at most) 512 of the samples, for the
        // cross-channel terms.
        let sub = Swift.stride(from: 0, to: pos.count, by: max(1, pos.count / 512)).map { pos[$0] }
        let m = sub.count
        var residuals = [Int32](repeating: 0, count: channels * m)
        var energy = [Int64](repeating: 0, count: channels)
        for ch in 0..<channels where !skip[ch] {
            let v = values + ch * n
            let cost = sums(v, positions: pos, layout: layout, half: half, mask: mask)
            var best = 0
            for k in 1..<Predictors.count where cost[k] < cost[best] { best = k }
            if let preferred, preferred[ch] < Predictors.count, cost[preferred[ch]] * 20 <= cost[best] * 21 { best = preferred[ch] }
            choices[ch].predictor = best
            var e2: Int64 = 0
            for (i, p) in sub.enumerated() {
                let a = v[p - 1], b = v[p - ob], c = v[p - oc]
                let pred: Int32
                switch best {
                case 0: pred = 0
                case 1: pred = a
                case 2: pred = b
                case 3: pred = PredictMedian.predict(a, b, c)
                case 4: pred = PredictAverage.predict(a, b, c)
                case 5: pred = PredictGradient.predict(a, b, c)
                default: pred = PredictExtrapolate.predict(a, b, c)
                }
                let r = wrap(v[p] &- pred, half: half, mask: mask)
                residuals[ch * m + i] = r
                e2 += Int64(r) * Int64(r)
            }
            energy[ch] = e2
        }
        // The earlier channel whose residual explains most of this one's (least squares), kept
        // when it removes at least 7% of the sum of absolute residuals.
        residuals.withUnsafeBufferPointer { rp in
            let res = rp.baseAddress!
            for ch in 1..<max(1, channels) where !skip[ch] {
                let e = res + ch * m
                var bestRef = -1, bestScore = 0.0, bestDot: Int64 = 0
                for ref in 0..<ch where !skip[ref] && energy[ref] > 0 {
                    let r = res + ref * m
                    var dot = 0
                    for i in 0..<m { dot &+= Int(e[i]) &* Int(r[i]) }
                    let score = Double(dot) * Double(dot) / Double(energy[ref])
                    if score > bestScore { bestScore = score; bestRef = ref; bestDot = Int64(dot) }
                }
                guard bestRef >= 0 else { continue }
                let limit = Double(ChannelPlan.maximumCoefficient)
                let coef = Int32(max(-limit, min(limit, (16 * Double(bestDot) / Double(energy[bestRef])).rounded())))
                guard coef != 0 else { continue }
                let r = res + bestRef * m
                var own = 0, crossed = 0
                for i in 0..<m {
                    own &+= Int(e[i].magnitude)
                    crossed &+= Int(wrap(e[i] &- ((coef &* r[i] &+ 8) >> 4), half: half, mask: mask).magnitude)
                }
                if crossed * 100 < own * 93 { choices[ch].reference = bestRef; choices[ch].coefficient = coef }
            }
        }
        return choices
    }
}
