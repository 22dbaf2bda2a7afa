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

    typealias V = SIMD16<Float>

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }

    @inline(__always)
    static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self) }

    /// Gathers along a strided axis: `lo[m·stride + e] = Σ_j f0[j] x[((2m + j − 4) mod n)·stride + e]`
    /// for `e` in `0..<stride` (stride 1 is a contiguous row). Filters have 10 taps.
    static func gather(_ x: UnsafePointer<Float>, n: Int, stride: Int, lo: UnsafeMutablePointer<Float>,
                       hi: UnsafeMutablePointer<Float>, f0: [Float], f1: [Float]) {
        precondition(f0.count == 10 && f1.count == 10, "wavelet adjoints take 10-tap filters")
        let n2 = n / 2
        if stride == 1 {
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * (n2 + 4)) { scratch in
                gatherRange(x, n: n, range: 0..<n2, lo: lo, hi: hi, scratch: scratch.baseAddress!, f0: f0, f1: f1)
            }
            return
        }
        // Strided: ten source rows per output row, vectorised along the contiguous axis.
        for m in 0..<n2 {
            let r0 = x + wrap(2 * m - 4, n) * stride, r1 = x + wrap(2 * m - 3, n) * stride
            let r2 = x + wrap(2 * m - 2, n) * stride, r3 = x + wrap(2 * m - 1, n) * stride
            let r4 = x + wrap(2 * m, n) * stride, r5 = x + wrap(2 * m + 1, n) * stride
            let r6 = x + wrap(2 * m + 2, n) * stride, r7 = x + wrap(2 * m + 3, n) * stride
            let r8 = x + wrap(2 * m + 4, n) * stride, r9 = x + wrap(2 * m + 5, n) * stride
            let l = lo + m * stride, h = hi + m * stride
            var e = 0
            while e + 16 <= stride {
                let v0 = load(r0 + e), v1 = load(r1 + e), v2 = load(r2 + e), v3 = load(r3 + e), v4 = load(r4 + e)
                let v5 = load(r5 + e), v6 = load(r6 + e), v7 = load(r7 + e), v8 = load(r8 + e), v9 = load(r9 + e)
                var lv = f0[0] * v0 + f0[1] * v1
                lv += f0[2] * v2 + f0[3] * v3
                lv += f0[4] * v4 + f0[5] * v5
                lv += f0[6] * v6 + f0[7] * v7
                lv += f0[8] * v8 + f0[9] * v9
                var hv = f1[0] * v0 + f1[1] * v1
                hv += f1[2] * v2 + f1[3] * v3
                hv += f1[4] * v4 + f1[5] * v5
                hv += f1[6] * v6 + f1[7] * v7
                hv += f1[8] * v8 + f1[9] * v9
                store(lv, l + e); store(hv, h + e)
                e += 16
            }
            while e < stride {
                let v0 = r0[e], v1 = r1[e], v2 = r2[e], v3 = r3[e], v4 = r4[e], v5 = r5[e], v6 = r6[e], v7 = r7[e], v8 = r8[e], v9 = r9[e]
                var lv = f0[0] * v0 + f0[1] * v1
                lv += f0[2] * v2 + f0[3] * v3
                lv += f0[4] * v4 + f0[5] * v5
                lv += f0[6] * v6 + f0[7] * v7
                lv += f0[8] * v8 + f0[9] * v9
                var hv = f1[0] * v0 + f1[1] * v1
                hv += f1[2] * v2 + f1[3] * v3
                hv += f1[4] * v4 + f1[5] * v5
                hv += f1[6] * v6 + f1[7] * v7
                hv += f1[8] * v8 + f1[9] * v9
                l[e] = lv; h[e] = hv
                e += 1
            }
        }
    }

    /// Scatters along a strided axis: `y[((2m + j − 4) mod n)·stride + e] += f0[j] lo[…] + f1[j] hi[…]`
    /// (`y` is overwritten). Computed per output: with `k = 2p + r`,
    /// `y[k] = Σ_s f0[8 + r − 2s] lo[(p + s − 2) mod n/2] + f1[8 + r − 2s] hi[…]`.
    static func scatter(lo: UnsafePointer<Float>, hi: UnsafePointer<Float>, n: Int, stride: Int,
                        y: UnsafeMutablePointer<Float>, f0: [Float], f1: [Float]) {
        precondition(f0.count == 10 && f1.count == 10, "wavelet adjoints take 10-tap filters")
        let n2 = n / 2
        if stride == 1 {
            // Duplicated inputs ld[j] = lo[(j/2 − 2) mod n2]: output k reads ld[k + 2s], with
            // coefficients alternating between the two parities across lanes.
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * (n2 + 4)) { scratch in
                let ld = scratch.baseAddress!, hd = ld + 2 * (n2 + 4)
                for i in 0..<(n2 + 4) {
                    let j = wrap(i - 2, n2)
                    ld[2 * i] = lo[j]; ld[2 * i + 1] = lo[j]
                    hd[2 * i] = hi[j]; hd[2 * i + 1] = hi[j]
                }
                // c_s: lanes alternate f0[8 − 2s] (even outputs) and f0[9 − 2s] (odd outputs).
                func alternating(_ f: [Float], _ s: Int) -> V {
                    var v = V(repeating: f[8 - 2 * s])
                    for lane in Swift.stride(from: 1, to: 16, by: 2) { v[lane] = f[9 - 2 * s] }
                    return v
                }
                let c0 = alternating(f0, 0), c1 = alternating(f0, 1), c2 = alternating(f0, 2), c3 = alternating(f0, 3), c4 = alternating(f0, 4)
                let d0 = alternating(f1, 0), d1 = alternating(f1, 1), d2 = alternating(f1, 2), d3 = alternating(f1, 3), d4 = alternating(f1, 4)
                var k = 0
                while k + 16 <= n {
                    var acc = c0 * load(ld + k)
                    acc = acc.addingProduct(d0, load(hd + k))
                    acc = acc.addingProduct(c1, load(ld + k + 2)); acc = acc.addingProduct(d1, load(hd + k + 2))
                    acc = acc.addingProduct(c2, load(ld + k + 4)); acc = acc.addingProduct(d2, load(hd + k + 4))
                    acc = acc.addingProduct(c3, load(ld + k + 6)); acc = acc.addingProduct(d3, load(hd + k + 6))
                    acc = acc.addingProduct(c4, load(ld + k + 8)); acc = acc.addingProduct(d4, load(hd + k + 8))
                    store(acc, y + k)
                    k += 16
                }
                while k < n {
                    let r = k & 1
                    var acc: Float = 0
                    for s in 0..<5 { acc += f0[8 + r - 2 * s] * ld[k + 2 * s] + f1[8 + r - 2 * s] * hd[k + 2 * s] }
                    y[k] = acc
                    k += 1
                }
            }
            return
        }
        for p in 0..<n2 {
            let k0 = wrap(p - 2, n2) * stride, k1 = wrap(p - 1, n2) * stride, k2 = wrap(p, n2) * stride
            let k3 = wrap(p + 1, n2) * stride, k4 = wrap(p + 2, n2) * stride
            for r in 0..<2 {
                let out = y + (2 * p + r) * stride
                let c0 = f0[8 + r], c1 = f0[6 + r], c2 = f0[4 + r], c3 = f0[2 + r], c4 = f0[r]
                let d0 = f1[8 + r], d1 = f1[6 + r], d2 = f1[4 + r], d3 = f1[2 + r], d4 = f1[r]
                var e = 0
                while e + 16 <= stride {
                    var acc = c0 * load(lo + k0 + e) + d0 * load(hi + k0 + e)
                    acc += c1 * load(lo + k1 + e) + d1 * load(hi + k1 + e)
                    acc += c2 * load(lo + k2 + e) + d2 * load(hi + k2 + e)
                    acc += c3 * load(lo + k3 + e) + d3 * load(hi + k3 + e)
                    acc += c4 * load(lo + k4 + e) + d4 * load(hi + k4 + e)
                    store(acc, out + e)
                    e += 16
                }
                while e < stride {
                    var acc = c0 * lo[k0 + e] + d0 * hi[k0 + e]
                    acc += c1 * lo[k1 + e] + d1 * hi[k1 + e]
                    acc += c2 * lo[k2 + e] + d2 * hi[k2 + e]
                    acc += c3 * lo[k3 + e] + d3 * hi[k3 + e]
                    acc += c4 * lo[k4 + e] + d4 * hi[k4 + e]
                    out[e] = acc
                    e += 1
                }
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
