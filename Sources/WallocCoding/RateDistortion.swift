import Foundation
import WallocTensor

/// Rate-distortion optimised quantisation (an encoder-side choice: any integer latents decode).
///
/// A uniform quantiser rounds each latent to the nearest level. Where the next level toward zero
/// costs far fewer bits in this coder's model, taking it lowers `distortion + λ · bits`. The
/// quantiser estimates every symbol's cost with the coder's own context model (predictor, context
/// bucket, token, raw bits) and tables fitted on the input itself, then walks the channels in
/// coding order choosing, for each latent, between the rounded level and its neighbour toward
/// zero. Each pass refits the tables on the previous pass's result.
public enum RateDistortionQuantizer {
    /// Integer latents for real-valued latents `y` (`[C, H, W]` or `[C, L]`, in quantiser steps).
    ///
    /// - `lambda`: bits are worth `lambda` squared steps of error (0: nearest level).
    /// - `channels`: only the first `channels` channels are optimised; the rest are rounded plainly.
    /// - `initialDeadzone`: the dead zone of the first pass's starting point.
    public static func quantize(_ y: Tensor, bits: Int, lambda: Float, channels: Int = .max, initialDeadzone: Float = 0,
                                passes: Int = 2) throws -> Tensor {
        let layout = try LatentCoder.layout(y.shape)
        _ = try LatentCoder.alphabet(bits: bits)
        guard lambda >= 0, lambda.isFinite else { throw WallocError("the rate-distortion λ must be a finite value ≥ 0, got \(lambda)") }
        if let bad = y.scalars.first(where: { !$0.isFinite }) { throw WallocError("the latents hold a non-finite value (\(bad))") }
        let limit = Int32((1 << (bits - 1)) - 1)
        let n = layout.plane, optimised = min(channels, layout.channels)
        var values = [Int32](repeating: 0, count: y.count)
        y.withUnsafeBufferPointer { src in
            for c in 0..<layout.channels {
                let dz = c < optimised ? initialDeadzone : 0
                for i in 0..<n {
                    let u = src[c * n + i]
                    values[c * n + i] = abs(u) < 0.5 + dz ? 0 : Int32(min(max(u.rounded(.toNearestOrEven), -Float(limit)), Float(limit)))
                }
            }
        }
        guard lambda > 0, optimised > 0 else { return Tensor(shape: y.shape, scalars: values.map(Float.init)) }
        for _ in 0..<max(1, passes) {
            let sums = Analysis.sums(values: values, layout: layout, bits: bits)
            var plans = [ChannelPlan](repeating: ChannelPlan(), count: layout.channels)
            for c in 0..<layout.channels { plans[c].predictor = sums[c].indices.min { sums[c][$0] < sums[c][$1] }! }
            let hist = values.withUnsafeBufferPointer {
                LatentCoder.histograms(values: $0.baseAddress!, layout: layout, plans: plans, bits: bits)
            }
            let costs = costTables(hist, channels: layout.channels, tokens: Tokens.count(bits: bits))
            // The coder's segments (independent stripes, neighbours outside read as zero), in parallel.
            let segments = layout.segments(span: layout.defaultSpan()), predictors = plans.map(\.predictor)
            y.withUnsafeBufferPointer { src in
                values.withUnsafeMutableBufferPointer { dst in
                    let s = src.baseAddress!, d = dst.baseAddress!
                    parallelFor(segments.count) { k in
                        walk(s, d, layout: layout, segment: segments[k], predictors: predictors, costs: costs,
                             lambda: lambda, optimised: optimised, bits: bits, limit: limit)
                    }
                }
            }
        }
        return Tensor(shape: y.shape, scalars: values.map(Float.init))
    }

    /// Code lengths in bits, `channel · 16 + bucket` rows of 64 tokens, from the token histograms
    /// (sparse buckets lean on the channel's overall histogram).
    static func costTables(_ hist: [UInt32], channels: Int, tokens: Int) -> [Float] {
        var costs = [Float](repeating: 0, count: channels * Buckets.count * 64)
        for c in 0..<channels {
            let h = c * LatentCoder.histogramSize
            var all = [Double](repeating: 0, count: tokens)
            for b in 0..<Buckets.count { for t in 0..<tokens { all[t] += Double(hist[h + b * 64 + t]) } }
            let total = all.reduce(0, +)
            let prior = all.map { ($0 + 0.5) / (total + 0.5 * Double(tokens)) }
            for b in 0..<Buckets.count {
                let row = (0..<tokens).map { Double(hist[h + b * 64 + $0]) }
                let count = row.reduce(0, +), weight = 8.0
                for t in 0..<tokens {
                    let p = (row[t] + weight * prior[t]) / (count + weight)
                    costs[(c * Buckets.count + b) * 64 + t] = Float(-log2(p)) + Float(Tokens.rawBits(UInt32(t)))
                }
            }
        }
        return costs
    }

    @inline(__always)
    static func predict(_ mode: Int, _ a: Int32, _ b: Int32, _ c: Int32) -> Int32 {
        switch mode {
        case 1: return PredictA.predict(a, b, c)
        case 2: return PredictB.predict(a, b, c)
        case 3: return PredictMedian.predict(a, b, c)
        case 4: return PredictAverage.predict(a, b, c)
        case 5: return PredictGradient.predict(a, b, c)
        case 6: return PredictExtrapolate.predict(a, b, c)
        default: return 0
        }
    }

    /// One greedy pass over one segment in coding order: each latent takes the nearest level or its neighbour
    /// toward zero, whichever has the smaller `error² + λ · bits` given the levels chosen so far
    /// (its predictor and context see only those, as the decoder will).
    static func walk(_ y: UnsafePointer<Float>, _ v: UnsafeMutablePointer<Int32>, layout: Layout, segment: (start: Int, count: Int),
                     predictors: [Int], costs: [Float], lambda: Float, optimised: Int, bits: Int, limit: Int32) {
        let geo = layout.geometry(segment.count), off = layout.offset(segment.start)
        let planes = WorkPlanes(geo)
        defer { planes.free() }
        let half = Int32(1 << (bits - 1)), mask = Int32((1 << bits) - 1), n = layout.plane
        let vals = planes.vals
        costs.withUnsafeBufferPointer { cost in
            for ch in 0..<layout.channels {
                planes.swapTokens()
                let tok = planes.current, prev = planes.previous, mode = predictors[ch]
                let table = cost.baseAddress! + ch * Buckets.count * 64
                for r in 0..<geo.rows {
                    let o = geo.origin(r)
                    for x in 0..<geo.cols {
                        let p = o + x, i = ch * n + off + r * layout.cols + x
                        let pred = predict(mode, vals[p + geo.oa], vals[p + geo.ob], vals[p + geo.oc])
                        var best = v[i]
                        if ch < optimised {
                            let s = 2 * (Int(tok[p + geo.oa]) + Int(tok[p + geo.ob])) + Int(tok[p + geo.oc]) + Int(tok[p + geo.od])
                                + Int(prev[p])
                            let row = table + Int(Buckets.lookup[s]) * 64, u = y[i]
                            @inline(__always) func score(_ q: Int32) -> Float {
                                let d = u - Float(q)
                                return d * d + lambda * row[Int(Tokens.token(Tokens.zigzag(wrap(q &- pred, half: half, mask: mask))))]
                            }
                            best = Int32(max(min(u.rounded(.toNearestOrEven), Float(limit)), -Float(limit)))
                            if best != 0 {
                                let toward = best - (best > 0 ? 1 : -1)
                                if score(toward) < score(best) { best = toward }
                            }
                            v[i] = best
                        }
                        vals[p] = best
                        tok[p] = UInt8(Tokens.token(Tokens.zigzag(wrap(best &- pred, half: half, mask: mask))))
                    }
                }
            }
        }
    }
}
