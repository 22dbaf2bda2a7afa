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

    /// Sample runs (first plane index, length): contiguous stretches whose symbols have all of
    /// a, b, c inside the plane; images sample every few rows, audio evenly spaced stretches.
    static func runs(_ layout: Layout) -> [(start: Int, count: Int)] {
        let samples = min(Analysis.samples, max(256, layout.plane / density))
        var out = [(start: Int, count: Int)]()
        if layout.oneD {
            guard layout.cols > 3 else { return [] }
            let length = min(64, layout.cols - 3)
            let pieces = max(1, samples / length)
            let step = max(length, (layout.cols - 3) / pieces)
            for i in Swift.stride(from: 3, through: layout.cols - length, by: step) { out.append((i, length)) }
        } else {
            guard layout.rows > 1, layout.cols > 1 else { return [] }
            let length = min(512, layout.cols - 1), x0 = 1 + (layout.cols - 1 - length) / 2
            let sy = max(1, (layout.rows - 1) * length / samples)
            for y in Swift.stride(from: 1, to: layout.rows, by: sy) { out.append((y * layout.cols + x0, length)) }
        }
        return out
    }

    /// Sum of absolute residuals of each predictor over the sample runs of one channel.
    static func sums(_ v: UnsafePointer<Int32>, runs: [(start: Int, count: Int)], layout: Layout, half: Int32, mask: Int32) -> [Int64] {
        let ob = layout.oneD ? 2 : layout.cols, oc = layout.oneD ? 3 : layout.cols + 1
        let half8 = SIMD8<Int32>(repeating: half), mask8 = SIMD8<Int32>(repeating: mask), zero8 = SIMD8<Int32>()
        var acc = [Int64](repeating: 0, count: Predictors.count)
        @inline(__always) func load(_ p: UnsafePointer<Int32>) -> SIMD8<Int32> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Int32>.self) }
        @inline(__always) func d(_ x: SIMD8<Int32>, _ p: SIMD8<Int32>) -> SIMD8<Int32> {
            let r = ((x &- p &+ half8) & mask8) &- half8
            let s = r &>> 31
            return (r ^ s) &- s
        }
        @inline(__always) func d(_ x: Int32, _ p: Int32) -> Int64 { Int64(wrap(x &- p, half: half, mask: mask).magnitude) }
        for run in runs {
            var s0 = zero8, s1 = zero8, s2 = zero8, s3 = zero8, s4 = zero8, s5 = zero8, s6 = zero8
            var i = 0
            while i + 8 <= run.count {
                let q = v + run.start + i
                let x = load(q), a = load(q - 1), b = load(q - ob), c = load(q - oc)
                s0 &+= d(x, zero8); s1 &+= d(x, a); s2 &+= d(x, b)
                s3 &+= d(x, PredictMedian.predict(a, b, c)); s4 &+= d(x, PredictAverage.predict(a, b, c))
                s5 &+= d(x, PredictGradient.predict(a, b, c)); s6 &+= d(x, PredictExtrapolate.predict(a, b, c))
                i += 8
            }
            acc[0] += Int64(s0.wrappedSum()); acc[1] += Int64(s1.wrappedSum()); acc[2] += Int64(s2.wrappedSum())
            acc[3] += Int64(s3.wrappedSum()); acc[4] += Int64(s4.wrappedSum()); acc[5] += Int64(s5.wrappedSum())
            acc[6] += Int64(s6.wrappedSum())
            while i < run.count {
                let p = run.start + i
                let a = v[p - 1], b = v[p - ob], c = v[p - oc], x = v[p]
                acc[0] += d(x, 0); acc[1] += d(x, a); acc[2] += d(x, b)
                acc[3] += d(x, PredictMedian.predict(a, b, c)); acc[4] += d(x, PredictAverage.predict(a, b, c))
                acc[5] += d(x, PredictGradient.predict(a, b, c)); acc[6] += d(x, PredictExtrapolate.predict(a, b, c))
                i += 1
            }
        }
        return acc
    }

    /// Per channel of an input, the sums of absolute residuals of each predictor.
    static func sums(values: [Int32], layout: Layout, bits: Int) -> [[Int64]] {
        let half = Int32(1 << (bits - 1)), mask = Int32((1 << bits) - 1)
        let r = runs(layout)
        return values.withUnsafeBufferPointer { v in
            (0..<layout.channels).map { sums(v.baseAddress! + $0 * layout.plane, runs: r, layout: layout, half: half, mask: mask) }
        }
    }

    /// Residuals of one predictor at `positions`; returns their sum of squares.
    static func residuals(predictor: Int, _ v: UnsafePointer<Int32>, at positions: UnsafeBufferPointer<Int>, ob: Int, oc: Int,
                          half: Int32, mask: Int32, into out: UnsafeMutablePointer<Int32>) -> Int64 {
        func run<P: Predictor>(_: P.Type) -> Int64 {
            var e2 = 0
            for (i, p) in positions.enumerated() {
                let r = wrap(v[p] &- P.predict(v[p &- 1], v[p &- ob], v[p &- oc]), half: half, mask: mask)
                out[i] = r
                e2 &+= Int(r) &* Int(r)
            }
            return Int64(e2)
        }
        switch predictor {
        case 0: return run(PredictZero.self)
        case 1: return run(PredictA.self)
        case 2: return run(PredictB.self)
        case 3: return run(PredictMedian.self)
        case 4: return run(PredictAverage.self)
        case 5: return run(PredictGradient.self)
        default: return run(PredictExtrapolate.self)
        }
    }

    static func choose(values: UnsafePointer<Int32>, layout: Layout, bits: Int, skip: [Bool], preferred: [Int]?) -> [Choice] {
        let half = Int32(1 << (bits - 1)), mask = Int32((1 << bits) - 1)
        let sampleRuns = runs(layout)
        let n = layout.plane, channels = layout.channels
        let ob = layout.oneD ? 2 : layout.cols, oc = layout.oneD ? 3 : layout.cols + 1
        var choices = [Choice](repeating: Choice(), count: channels)
        guard !sampleRuns.isEmpty else { return choices }
        // Residuals of the chosen predictors at (at most) 256 of the samples, for the
        // cross-channel terms.
        let total = sampleRuns.reduce(0) { $0 + $1.count }, step = max(1, total / 256)
        var sub = [Int]()
        sub.reserveCapacity(total / step + 1)
        var k = 0
        for run in sampleRuns {
            // Every `step`-th sample, counting across runs.
            var i = (step - k % step) % step
            while i < run.count { sub.append(run.start + i); i += step }
            k += run.count
        }
        let m = sub.count
        var residuals = [Int32](repeating: 0, count: channels * m)
        var energy = [Int64](repeating: 0, count: channels)
        for ch in 0..<channels where !skip[ch] {
            let v = values + ch * n
            let cost = sums(v, runs: sampleRuns, layout: layout, half: half, mask: mask)
            var best = 0
            for k in 1..<Predictors.count where cost[k] < cost[best] { best = k }
            if let preferred, preferred[ch] < Predictors.count, cost[preferred[ch]] * 20 <= cost[best] * 21 { best = preferred[ch] }
            choices[ch].predictor = best
            var e2: Int64 = 0
            if channels > 1 {
                residuals.withUnsafeMutableBufferPointer { rp in
                    sub.withUnsafeBufferPointer { sp in
                        e2 = Analysis.residuals(predictor: best, v, at: sp, ob: ob, oc: oc, half: half, mask: mask, into: rp.baseAddress! + ch * m)
                    }
                }
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
