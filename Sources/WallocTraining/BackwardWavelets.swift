import WallocTensor
import WallocWavelets

/// Transposed (adjoint) wavelet packet operators, for back-propagating through the transforms.
///
/// One periodised level with filters `(f0, f1)` either *gathers*
/// `lo[m] = Σ_j f0[j] x[(2m + j − 4) mod N]` (analysis uses `h0, h1`) or *scatters*
/// `y[(2m + j − 4) mod N] = Σ f0[j] lo[m] + f1[j] hi[m]` (synthesis uses `g0, g1`). The two are
/// each other's transposes for the same filters, so the adjoint of analysis scatters with the
/// analysis filters and the adjoint of synthesis gathers with the synthesis filters. (bior4.4 is
/// biorthogonal: `g ≠ h`, so the adjoint of synthesis is not analysis.)
public enum WaveletAdjoint {
    /// Gradient with respect to the signal of `WaveletPacket.analysis2D(x, levels:)`, given the
    /// gradient with respect to its bands (`[..., C·4^J, h, w]` -> `[..., C, h·2^J, w·2^J]`).
    public static func analysis2D(_ g: Tensor, levels: Int) -> Tensor {
        transform2D(g, levels: levels, gather: false, f0: Bior44.h0, f1: Bior44.h1)
    }

    /// Gradient with respect to the bands of `WaveletPacket.synthesis2D(bands, levels:)`, given
    /// the gradient with respect to the signal (`[..., C, H, W]` -> `[..., C·4^J, H/2^J, W/2^J]`).
    public static func synthesis2D(_ g: Tensor, levels: Int) -> Tensor {
        transform2D(g, levels: levels, gather: true, f0: Bior44.g0, f1: Bior44.g1)
    }

    /// Adjoint of `WaveletPacket.analysis1D` (`[..., C·2^J, l]` -> `[..., C, l·2^J]`).
    public static func analysis1D(_ g: Tensor, levels: Int) -> Tensor {
        transform1D(g, levels: levels, gather: false, f0: Bior44.h0, f1: Bior44.h1)
    }

    /// Adjoint of `WaveletPacket.synthesis1D` (`[..., C, L]` -> `[..., C·2^J, L/2^J]`).
    public static func synthesis1D(_ g: Tensor, levels: Int) -> Tensor {
        transform1D(g, levels: levels, gather: true, f0: Bior44.g0, f1: Bior44.g1)
    }

    /// `levels` gathering levels (band count grows, like analysis) or scattering levels (band
    /// count shrinks, like synthesis) with the given filters.
    static func transform2D(_ x: Tensor, levels: Int, gather: Bool, f0: [Float], f1: [Float]) -> Tensor {
        precondition(x.rank >= 3, "2D wavelet adjoint needs [..., C, H, W], got \(x.shape)")
        let lead = Array(x.shape.dropLast(3))
        var planes = x.shape[x.rank - 3], h = x.shape[x.rank - 2], w = x.shape[x.rank - 1]
        let outer = Tensor.count(of: lead)
        var cur = x
        for _ in 0..<levels {
            if gather {
                cur = level2D(cur, planes: outer * planes, height: h, width: w, gather: true, f0: f0, f1: f1)
                planes *= 4; h /= 2; w /= 2
            } else {
                planes /= 4; h *= 2; w *= 2
                cur = level2D(cur, planes: outer * planes, height: h, width: w, gather: false, f0: f0, f1: f1)
            }
        }
        cur.reshape(lead + [planes, h, w])
        return cur
    }

    static func transform1D(_ x: Tensor, levels: Int, gather: Bool, f0: [Float], f1: [Float]) -> Tensor {
        precondition(x.rank >= 2, "1D wavelet adjoint needs [..., C, L], got \(x.shape)")
        let lead = Array(x.shape.dropLast(2))
        var planes = x.shape[x.rank - 2], len = x.shape[x.rank - 1]
        let outer = Tensor.count(of: lead)
        var cur = x
        for _ in 0..<levels {
            if gather {
                cur = level1D(cur, rows: outer * planes, length: len, gather: true, f0: f0, f1: f1)
                planes *= 2; len /= 2
            } else {
                planes /= 2; len *= 2
                cur = level1D(cur, rows: outer * planes, length: len, gather: false, f0: f0, f1: f1)
            }
        }
        cur.reshape(lead + [planes, len])
        return cur
    }

    // MARK: one level

    @inline(__always)
    static func wrap(_ k: Int, _ n: Int) -> Int { let r = k % n; return r < 0 ? r + n : r }

    /// Gathers along a strided axis: `lo[m·stride + e] = Σ_j f0[j] x[((2m + j − 4) mod n)·stride + e]`
    /// for `e` in `0..<stride` (stride 1 is a contiguous row).
    static func gather(_ x: UnsafePointer<Float>, n: Int, stride: Int, lo: UnsafeMutablePointer<Float>,
                       hi: UnsafeMutablePointer<Float>, f0: [Float], f1: [Float]) {
        for m in 0..<(n / 2) {
            let l = lo + m * stride, h = hi + m * stride
            for e in 0..<stride { l[e] = 0; h[e] = 0 }
            for j in 0..<f0.count {
                let a = f0[j], b = f1[j]
                let src = x + wrap(2 * m + j - 4, n) * stride
                for e in 0..<stride { l[e] += a * src[e]; h[e] += b * src[e] }
            }
        }
    }

    /// Scatters along a strided axis: `y[((2m + j − 4) mod n)·stride + e] += f0[j] lo[…] + f1[j] hi[…]`
    /// (`y` is overwritten).
    static func scatter(lo: UnsafePointer<Float>, hi: UnsafePointer<Float>, n: Int, stride: Int,
                        y: UnsafeMutablePointer<Float>, f0: [Float], f1: [Float]) {
        y.update(repeating: 0, count: n * stride)
        for m in 0..<(n / 2) {
            let l = lo + m * stride, h = hi + m * stride
            for j in 0..<f0.count {
                let a = f0[j], b = f1[j]
                let dst = y + wrap(2 * m + j - 4, n) * stride
                for e in 0..<stride { dst[e] += a * l[e] + b * h[e] }
            }
        }
    }

    /// One 2D level with the band layout of `WaveletPacket`: gathering takes rows then columns
    /// (`[planes, H, W]` -> `[4·planes, H/2, W/2]`); scattering takes columns then rows (back).
    /// `height` x `width` is the full-resolution size.
    static func level2D(_ x: Tensor, planes: Int, height: Int, width: Int, gather isGather: Bool,
                        f0: [Float], f1: [Float]) -> Tensor {
        let h2 = height / 2, w2 = width / 2, plane = height * width
        var tmp = Tensor(uninitialized: [planes * plane])
        var out = Tensor(uninitialized: [planes * plane])
        x.withUnsafeBufferPointer { xb in
            tmp.withUnsafeMutableBufferPointer { tb in
                out.withUnsafeMutableBufferPointer { ob in
                    let src = xb.baseAddress!, t = tb.baseAddress!, dst = ob.baseAddress!
                    if isGather {
                        parallelFor(planes) { p in
                            // rows: tmp[p] = [lo half (height x w2) | hi half (height x w2)]
                            for r in 0..<height {
                                let lo = t + p * plane + r * w2
                                gather(src + p * plane + r * width, n: width, stride: 1, lo: lo, hi: lo + height * w2, f0: f0, f1: f1)
                            }
                            // columns: bands (4p, 4p+1) from the lo half, (4p+2, 4p+3) from the hi half
                            for half in 0..<2 {
                                let band = dst + (4 * p + 2 * half) * h2 * w2
                                gather(t + p * plane + half * height * w2, n: height, stride: w2,
                                       lo: band, hi: band + h2 * w2, f0: f0, f1: f1)
                            }
                        }
                    } else {
                        parallelFor(planes) { p in
                            for half in 0..<2 {
                                let band = src + (4 * p + 2 * half) * h2 * w2
                                scatter(lo: band, hi: band + h2 * w2, n: height, stride: w2,
                                        y: t + p * plane + half * height * w2, f0: f0, f1: f1)
                            }
                            for r in 0..<height {
                                let lo = t + p * plane + r * w2
                                scatter(lo: lo, hi: lo + height * w2, n: width, stride: 1,
                                        y: dst + p * plane + r * width, f0: f0, f1: f1)
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// One 1D level: gathering `[rows, length]` -> `[2·rows, length/2]`, scattering back.
    static func level1D(_ x: Tensor, rows: Int, length: Int, gather isGather: Bool, f0: [Float], f1: [Float]) -> Tensor {
        let n2 = length / 2
        var out = Tensor(uninitialized: [rows * length])
        x.withUnsafeBufferPointer { xb in
            out.withUnsafeMutableBufferPointer { ob in
                let src = xb.baseAddress!, dst = ob.baseAddress!
                parallelFor(rows) { r in
                    if isGather {
                        gather(src + r * length, n: length, stride: 1, lo: dst + 2 * r * n2, hi: dst + (2 * r + 1) * n2, f0: f0, f1: f1)
                    } else {
                        scatter(lo: src + 2 * r * n2, hi: src + (2 * r + 1) * n2, n: length, stride: 1,
                                y: dst + r * length, f0: f0, f1: f1)
                    }
                }
            }
        }
        return out
    }
}
