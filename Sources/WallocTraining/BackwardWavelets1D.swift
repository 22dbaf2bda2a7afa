import WallocTensor
import WallocWavelets

extension WaveletAdjoint {
    /// The same map as `synthesis1D(_:levels:)` (the gradient with respect to the bands of
    /// `WaveletPacket.synthesis1D`, `[..., C, L]` -> `[..., C·2^J, L/2^J]`), vectorised: each level
    /// splits a row into even and odd samples, so both 10-tap gathers (`g0`, `g1`) read contiguous
    /// memory 16 outputs at a time; rows and column chunks run in parallel. Codec1D training uses it.
    public static func synthesis1DFast(_ g: Tensor, levels: Int) -> Tensor {
        precondition(g.rank >= 2, "1D wavelet adjoint needs [..., C, L], got \(g.shape)")
        let lead = Array(g.shape.dropLast(2))
        var planes = g.shape[g.rank - 2], len = g.shape[g.rank - 1]
        let outer = Tensor.count(of: lead)
        var cur = g
        for _ in 0..<levels {
            cur = gatherLevel(cur, rows: outer * planes, length: len)
            planes *= 2; len /= 2
        }
        cur.reshape(lead + [planes, len])
        return cur
    }

    /// One level: `[rows, length]` -> `[2·rows, length/2]`, row `r` giving `lo` (row `2r`) and `hi`
    /// (row `2r + 1`): `lo[m] = Σ_j g0[j]·x[(2m + j − 4) mod length]`, `hi` with `g1`.
    static func gatherLevel(_ x: Tensor, rows: Int, length: Int) -> Tensor {
        let n2 = length / 2, chunk = 2048
        let chunks = (n2 + chunk - 1) / chunk
        var out = Tensor(uninitialized: [rows * length])
        x.withUnsafeBufferPointer { xb in
            out.withUnsafeMutableBufferPointer { ob in
                let src = xb.baseAddress!, dst = ob.baseAddress!
                parallelFor(rows * chunks) { task in
                    let r = task / chunks, m0 = (task % chunks) * chunk, m1 = min(n2, m0 + chunk)
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * (chunk + 4)) { scratch in
                        gatherRange(src + r * length, n: length, range: m0..<m1, lo: dst + 2 * r * n2, hi: dst + (2 * r + 1) * n2,
                                    scratch: scratch.baseAddress!)
                    }
                }
            }
        }
        return out
    }

    /// Outputs `m` in `range` of one contiguous row, `lo[m] = Σ_j f0[j] x[(2m + j − 4) mod n]` (and `hi`
    /// with `f1`; 10-tap filters), vectorised in polyphase form: `e[i] = x[2(m0 + i) − 4]`,
    /// `o[i] = x[2(m0 + i) − 3]`. `scratch` holds `2 · (range.count + 4)` floats.
    static func gatherRange(_ x: UnsafePointer<Float>, n: Int, range: Range<Int>, lo: UnsafeMutablePointer<Float>,
                            hi: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                            f0: [Float] = Bior44.g0, f1: [Float] = Bior44.g1) {
        typealias V = SIMD16<Float>
        let count = range.count
        let e = scratch, o = scratch + count + 4
        for i in 0..<(count + 4) {
            let k = 2 * (range.lowerBound + i) - 4
            if k >= 0 && k + 1 < n {
                e[i] = x[k]; o[i] = x[k + 1]
            } else {
                e[i] = x[wrap(k, n)]; o[i] = x[wrap(k + 1, n)]
            }
        }
        @inline(__always) func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
        let a0 = V(repeating: f0[0]), a1 = V(repeating: f0[1]), a2 = V(repeating: f0[2]), a3 = V(repeating: f0[3])
        let a4 = V(repeating: f0[4]), a5 = V(repeating: f0[5]), a6 = V(repeating: f0[6]), a7 = V(repeating: f0[7])
        let a8 = V(repeating: f0[8]), a9 = V(repeating: f0[9])
        let b0 = V(repeating: f1[0]), b1 = V(repeating: f1[1]), b2 = V(repeating: f1[2]), b3 = V(repeating: f1[3])
        let b4 = V(repeating: f1[4]), b5 = V(repeating: f1[5]), b6 = V(repeating: f1[6]), b7 = V(repeating: f1[7])
        let b8 = V(repeating: f1[8]), b9 = V(repeating: f1[9])
        let lo = lo + range.lowerBound, hi = hi + range.lowerBound
        var m = 0
        while m + 16 <= count {
            let e0 = load(e + m), e1 = load(e + m + 1), e2 = load(e + m + 2), e3 = load(e + m + 3), e4 = load(e + m + 4)
            let o0 = load(o + m), o1 = load(o + m + 1), o2 = load(o + m + 2), o3 = load(o + m + 3), o4 = load(o + m + 4)
            var l = a0 * e0
            l = l.addingProduct(a1, o0); l = l.addingProduct(a2, e1); l = l.addingProduct(a3, o1)
            l = l.addingProduct(a4, e2); l = l.addingProduct(a5, o2); l = l.addingProduct(a6, e3)
            l = l.addingProduct(a7, o3); l = l.addingProduct(a8, e4); l = l.addingProduct(a9, o4)
            var h = b0 * e0
            h = h.addingProduct(b1, o0); h = h.addingProduct(b2, e1); h = h.addingProduct(b3, o1)
            h = h.addingProduct(b4, e2); h = h.addingProduct(b5, o2); h = h.addingProduct(b6, e3)
            h = h.addingProduct(b7, o3); h = h.addingProduct(b8, e4); h = h.addingProduct(b9, o4)
            UnsafeMutableRawPointer(lo + m).storeBytes(of: l, as: V.self)
            UnsafeMutableRawPointer(hi + m).storeBytes(of: h, as: V.self)
            m += 16
        }
        while m < count {
            var l: Float = 0, h: Float = 0
            for t in 0..<5 {
                l += f0[2 * t] * e[m + t] + f0[2 * t + 1] * o[m + t]
                h += f1[2 * t] * e[m + t] + f1[2 * t + 1] * o[m + t]
            }
            lo[m] = l; hi[m] = h
            m += 1
        }
    }
}
