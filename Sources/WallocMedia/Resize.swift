import Foundation
import WallocTensor

/// Image resizing by area averaging (a box filter over the exact footprint of each output pixel,
/// like OpenCV's `INTER_AREA` when shrinking): each output sample is the mean of the input
/// region it covers, with fractional weights at the region's edges. Used to shrink training
/// photos and to make "same number of values" baselines; enlarging repeats samples. `resample`
/// uses a smooth kernel instead.
public enum Resize {
    /// `[C, H, W]` -> `[C, height, width]`.
    public static func area(_ x: Tensor, height: Int, width: Int) -> Tensor {
        precondition(x.rank == 3 && height > 0 && width > 0, "Resize.area expects [C, H, W] and a positive size")
        if x.shape[1] == height && x.shape[2] == width { return x }
        return separable(x, rows: footprints(from: x.shape[1], to: height), cols: footprints(from: x.shape[2], to: width))
    }

    /// Shrinks `x` (`[C, H, W]`) so that its longer side is at most `maxSide`, keeping the aspect
    /// ratio (sizes rounded to the nearest integer, at least 1); returns `x` when it already fits.
    public static func fit(_ x: Tensor, maxSide: Int) -> Tensor {
        let h = x.shape[1], w = x.shape[2]
        guard max(h, w) > maxSide else { return x }
        let s = Double(maxSide) / Double(max(h, w))
        return area(x, height: max(1, Int((Double(h) * s).rounded())), width: max(1, Int((Double(w) * s).rounded())))
    }

    /// Separable resampling kernels, with Pillow's names and supports.
    public enum Filter: Sendable {
        /// The triangle (tent) kernel, support 1: Pillow's `BILINEAR`.
        case triangle
        /// The windowed sinc with three lobes, support 3: Pillow's `LANCZOS`.
        case lanczos

        var support: Double { self == .triangle ? 1 : 3 }

        func weight(_ t: Double) -> Double {
            switch self {
            case .triangle: return max(0, 1 - abs(t))
            case .lanczos:
                func sinc(_ v: Double) -> Double { v == 0 ? 1 : sin(Double.pi * v) / (Double.pi * v) }
                return abs(t) < 3 ? sinc(t) * sinc(t / 3) : 0
            }
        }
    }

    /// `[C, H, W]` -> `[C, height, width]` by separable resampling with `filter`, widened by the
    /// factor when shrinking (so shrinking also low-passes). Output pixel `o` is centred on input
    /// position `(o + 0.5)·n/m − 0.5`; taps beyond the borders are dropped and the remaining
    /// weights renormalised, as Pillow's `Image.resize` does, so the results match Pillow's float
    /// resize. Images coded at a reduced size (`RateConfig.downscale`) are shrunk with the
    /// triangle and enlarged with Lanczos-3.
    public static func resample(_ x: Tensor, height: Int, width: Int, filter: Filter) -> Tensor {
        precondition(x.rank == 3 && height > 0 && width > 0, "Resize.resample expects [C, H, W] and a positive size")
        if x.shape[1] == height && x.shape[2] == width { return x }
        return separable(x, rows: taps(from: x.shape[1], to: height, filter: filter), cols: taps(from: x.shape[2], to: width, filter: filter))
    }

    /// Per output sample of one axis: its first input, how many inputs it weighs, and `stride`
    /// weights per output (the used ones summing to 1).
    struct Taps {
        var first: [Int], count: [Int], weight: [Float], stride: Int
        var outputs: Int { first.count }
    }

    /// Applies `cols` along each row into `[C, H, width]`, then `rows` down the columns.
    static func separable(_ x: Tensor, rows: Taps, cols: Taps) -> Tensor {
        let c = x.shape[0], h = x.shape[1], w = x.shape[2], height = rows.outputs, width = cols.outputs
        var mid = Tensor(uninitialized: [c, h, width])
        x.withUnsafeBufferPointer { xb in
            mid.withUnsafeMutableBufferPointer { mb in
                cols.weight.withUnsafeBufferPointer { wt in
                    let src = xb.baseAddress!, dst = mb.baseAddress!, weights = wt.baseAddress!
                    parallelFor(c * h) { r in
                        let row = src + r * w, out = dst + r * width
                        for o in 0..<width {
                            let first = cols.first[o], taps = weights + o * cols.stride
                            var s: Float = 0
                            for k in 0..<cols.count[o] { s += taps[k] * row[first + k] }
                            out[o] = s
                        }
                    }
                }
            }
        }
        var out = Tensor(zeros: [c, height, width])
        mid.withUnsafeBufferPointer { mb in
            out.withUnsafeMutableBufferPointer { ob in
                rows.weight.withUnsafeBufferPointer { wt in
                    let src = mb.baseAddress!, dst = ob.baseAddress!, weights = wt.baseAddress!
                    parallelFor(c * height) { r in
                        let ch = r / height, o = r % height
                        let first = rows.first[o], taps = weights + o * rows.stride
                        for k in 0..<rows.count[o] {
                            VectorMath.axpy(taps[k], src + (ch * h + first + k) * width, into: dst + r * width, count: width)
                        }
                    }
                }
            }
        }
        return out
    }

    /// The taps of `filter` from `n` inputs to `m` outputs.
    static func taps(from n: Int, to m: Int, filter: Filter) -> Taps {
        let scale = Double(n) / Double(m), widen = max(scale, 1), support = filter.support * widen
        let stride = Int(support.rounded(.up)) * 2 + 1
        var t = Taps(first: [Int](repeating: 0, count: m), count: [Int](repeating: 0, count: m),
                     weight: [Float](repeating: 0, count: m * stride), stride: stride)
        var k = [Double](repeating: 0, count: stride)
        for o in 0..<m {
            let centre = (Double(o) + 0.5) * scale
            let lo = max(Int(centre - support + 0.5), 0), hi = min(Int(centre + support + 0.5), n)
            var sum = 0.0
            for i in lo..<hi {
                k[i - lo] = filter.weight((Double(i) - centre + 0.5) / widen)
                sum += k[i - lo]
            }
            t.first[o] = lo; t.count[o] = hi - lo
            for i in 0..<(hi - lo) { t.weight[o * stride + i] = Float(sum == 0 ? 0 : k[i] / sum) }
        }
        return t
    }

    /// Area averaging from `n` inputs to `m` outputs: the inputs each output covers, weighted by
    /// overlap; enlarging takes the input sample under the output pixel's centre.
    static func footprints(from n: Int, to m: Int) -> Taps {
        let scale = Double(n) / Double(m), stride = Int(scale.rounded(.up)) + 1
        var t = Taps(first: [Int](repeating: 0, count: m), count: [Int](repeating: 1, count: m),
                     weight: [Float](repeating: 0, count: m * stride), stride: stride)
        for o in 0..<m {
            if scale <= 1 {
                t.first[o] = min(n - 1, Int((Double(o) + 0.5) * scale)); t.weight[o * stride] = 1
                continue
            }
            let a = Double(o) * scale, b = Double(o + 1) * scale
            var i = Int(a), used = 0
            t.first[o] = i
            while Double(i) < b && i < n {
                let overlap = min(b, Double(i + 1)) - max(a, Double(i))
                if overlap > 1e-12 {
                    if used == 0 { t.first[o] = i }
                    t.weight[o * stride + i - t.first[o]] = Float(overlap / scale); used = i - t.first[o] + 1
                }
                i += 1
            }
            t.count[o] = max(used, 1)
        }
        return t
    }
}

/// Band-limited resampling of sampled signals, for shrinking audio the way `Resize.area` shrinks
/// images: the baseline with as many values as a codec's latents.
public enum Resample {
    /// `[C, L]` -> `[C, length]` (`length` <= `L`) through a Hann-windowed sinc low-pass whose cutoff
    /// is the output's Nyquist frequency, with `zeroCrossings` zero crossings each side. Output sample
    /// `j` sits at input position `(j + 0.5)·L/length − 0.5`, the centre of the span it replaces (as
    /// in area resizing). Samples beyond the ends count as zeros; the taps of every output sum to 1,
    /// so a constant signal passes unchanged away from the ends.
    public static func lowpass(_ x: Tensor, length: Int, zeroCrossings: Int = 16) -> Tensor {
        precondition(x.rank == 2 && length > 0 && length <= x.shape[1], "Resample.lowpass expects [C, L] and 0 < length <= L")
        let c = x.shape[0], n = x.shape[1]
        if length == n { return x }
        let r = Double(n) / Double(length)
        let half = Int((r * Double(zeroCrossings)).rounded(.up))
        let taps = 2 * half + 1
        // The fractional positions repeat with period length / gcd(n, length): one weight set per phase.
        var a = n, b = length
        while b != 0 { (a, b) = (b, a % b) }
        let period = length / a
        let phases = min(period, length)
        var weights = [Float](repeating: 0, count: phases * taps)
        var firstTap = [Int](repeating: 0, count: phases)
        for j in 0..<phases {
            let t = (Double(j) + 0.5) * r - 0.5
            let start = Int(t.rounded(.down)) - half
            firstTap[j] = start
            var sum = 0.0
            for k in 0..<taps {
                let u = Double(start + k) - t
                let v = u / r
                let sinc = v == 0 ? 1 : sin(Double.pi * v) / (Double.pi * v)
                let wpos = u / (r * Double(zeroCrossings))
                let window = abs(wpos) < 1 ? 0.5 * (1 + cos(Double.pi * wpos)) : 0
                weights[j * taps + k] = Float(sinc * window)
                sum += sinc * window
            }
            for k in 0..<taps { weights[j * taps + k] = Float(Double(weights[j * taps + k]) / sum) }
        }
        var out = Tensor(zeros: [c, length])
        x.withUnsafeBufferPointer { xb in
            out.withUnsafeMutableBufferPointer { ob in
                weights.withUnsafeBufferPointer { wb in
                    parallelFor(c) { ch in
                        let src = xb.baseAddress! + ch * n, dst = ob.baseAddress! + ch * length
                        for j in 0..<length {
                            let phase = j % period
                            // Start of this output's taps: the phase's start shifted by whole periods.
                            let start = firstTap[phase] + (j / period) * (n / a)
                            let w = wb.baseAddress! + phase * taps
                            var s: Float = 0
                            let lo = max(0, -start), hi = min(taps, n - start)
                            if lo < hi { for k in lo..<hi { s += w[k] * src[start + k] } }
                            dst[j] = s
                        }
                    }
                }
            }
        }
        return out
    }
}
