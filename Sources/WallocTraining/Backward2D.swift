import WallocNN
import WallocTensor

/// What `Conv2d.backward` needs: the zero-padded input in the batched "channel-major" layout.
public struct Conv2dTape: Sendable {
    /// `[Ci, N·Hp·Wp + slack]`: sample `n`'s padded image occupies columns `n·Hp·Wp ..< (n+1)·Hp·Wp`.
    let padded: Tensor
    let n: Int, h: Int, w: Int
}

/// Geometry of a stride-1 convolution in the batched shifted-GEMM layout.
struct ConvGeometry {
    let n, ci, co, h, w, kh, kw, d, ph, pw: Int
    var hp: Int { h + 2 * ph }
    var wp: Int { w + 2 * pw }
    var ho: Int { hp - d * (kh - 1) }
    var wo: Int { wp - d * (kw - 1) }
    /// Padded plane size.
    var plane: Int { hp * wp }
    /// Columns of the wide product: every sample's padded plane side by side.
    var columns: Int { n * plane }
    /// The largest kernel offset into the padded buffer.
    var slack: Int { d * (kh - 1) * wp + d * (kw - 1) }
    var offsets: [Int] {
        var o = [Int]()
        for ky in 0..<kh { for kx in 0..<kw { o.append(ky * d * wp + kx * d) } }
        return o
    }
}

/// Shifted-GEMM kernels shared by the training convolutions.
enum ShiftedGemm {
    /// `out[m, t] = Σ_k A_k[m, kdim] · B[:, shift_k + t]` for `t` in `0..<columns`, computed in
    /// column tiles spread over the worker pool (each tile accumulates every shift in cache).
    /// `a` holds the `A_k` back to back (`[shifts, m, kdim]`); `B` has row stride `ldb`.
    static func run(a: UnsafePointer<Float>, m: Int, kdim: Int, shifts: [Int],
                    b: UnsafePointer<Float>, ldb: Int, out: UnsafeMutablePointer<Float>, columns: Int) {
        let threads = Threading.count
        let tile = min(columns, max(128, min(2048, (columns / (2 * threads) + 15) / 16 * 16)))
        let tiles = (columns + tile - 1) / tile
        parallelFor(tiles) { t in
            let j = t * tile, width = min(tile, columns - j)
            for (k, s) in shifts.enumerated() {
                BLAS.gemm(m: m, n: width, k: kdim, a: a + k * m * kdim, lda: kdim,
                          b: b + s + j, ldb: ldb, beta: k == 0 ? 0 : 1, c: out + j, ldc: columns)
            }
        }
    }
}

extension Conv2d {
    func geometry(_ x: Tensor) -> ConvGeometry {
        ConvGeometry(n: x.shape[0], ci: inChannels, co: outChannels, h: x.shape[2], w: x.shape[3],
                     kh: kernel.h, kw: kernel.w, d: dilation, ph: padding.h, pw: padding.w)
    }

    /// Training forward pass: the same result as `callAsFunction`, computed with one batched
    /// shifted GEMM per kernel offset, plus the tape for `backward`.
    public func forward(training x: Tensor) -> (Tensor, Conv2dTape) {
        precondition(x.rank == 4 && x.shape[1] == inChannels, "Conv2d expects [N, \(inChannels), H, W], got \(x.shape)")
        let g = geometry(x)
        precondition(g.ho > 0 && g.wo > 0, "Conv2d input \(g.h)x\(g.w) too small")
        let ld = g.columns + g.slack
        var padded = Tensor(zeros: [g.ci, ld])
        x.withUnsafeBufferPointer { xb in
            padded.withUnsafeMutableBufferPointer { pb in
                let src = xb.baseAddress!, dst = pb.baseAddress!
                parallelFor(g.ci) { c in
                    for s in 0..<g.n {
                        for y in 0..<g.h {
                            (dst + c * ld + s * g.plane + (y + g.ph) * g.wp + g.pw)
                                .update(from: src + ((s * g.ci + c) * g.h + y) * g.w, count: g.w)
                        }
                    }
                }
            }
        }
        var wide = Tensor(uninitialized: [g.co, g.columns])
        var out = Tensor(uninitialized: [g.n, g.co, g.ho, g.wo])
        padded.withUnsafeBufferPointer { pb in
            packed.withUnsafeBufferPointer { kb in
                wide.withUnsafeMutableBufferPointer { wb in
                    ShiftedGemm.run(a: kb.baseAddress!, m: g.co, kdim: g.ci, shifts: g.offsets,
                                    b: pb.baseAddress!, ldb: ld, out: wb.baseAddress!, columns: g.columns)
                }
            }
        }
        wide.withUnsafeBufferPointer { wb in
            out.withUnsafeMutableBufferPointer { ob in
                let src = wb.baseAddress!, dst = ob.baseAddress!
                let biasValues = bias?.scalars
                parallelFor(g.co) { o in
                    let b = biasValues?[o] ?? 0
                    for s in 0..<g.n {
                        for y in 0..<g.ho {
                            let from = src + o * g.columns + s * g.plane + y * g.wp
                            let to = dst + ((s * g.co + o) * g.ho + y) * g.wo
                            for x in 0..<g.wo { to[x] = from[x] + b }
                        }
                    }
                }
            }
        }
        return (out, Conv2dTape(padded: padded, n: g.n, h: g.h, w: g.w))
    }

    /// Backward pass: adds `weight` (and `bias`) gradients under `prefix` and returns the input
    /// gradient (an empty tensor when `inputGradient` is false).
    public func backward(_ tape: Conv2dTape, _ gradOutput: Tensor, prefix: String, into gradients: inout Gradients,
                         inputGradient: Bool = true) -> Tensor {
        let g = ConvGeometry(n: tape.n, ci: inChannels, co: outChannels, h: tape.h, w: tape.w,
                             kh: kernel.h, kw: kernel.w, d: dilation, ph: padding.h, pw: padding.w)
        precondition(gradOutput.shape == [g.n, g.co, g.ho, g.wo], "Conv2d gradient shape \(gradOutput.shape)")
        let front = g.slack, ldg = front + g.columns
        let kk = g.kh * g.kw
        // Output gradient in the wide layout, zero in the discarded columns, after `front` zeros.
        var gw = Tensor(zeros: [g.co, ldg])
        var biasGrad = Tensor(zeros: [g.co])
        gradOutput.withUnsafeBufferPointer { gb in
            gw.withUnsafeMutableBufferPointer { wb in
                biasGrad.withUnsafeMutableBufferPointer { bb in
                    let src = gb.baseAddress!, dst = wb.baseAddress!
                    parallelFor(g.co) { o in
                        var sum: Float = 0
                        for s in 0..<g.n {
                            for y in 0..<g.ho {
                                let from = src + ((s * g.co + o) * g.ho + y) * g.wo
                                let to = dst + o * ldg + front + s * g.plane + y * g.wp
                                for x in 0..<g.wo { to[x] = from[x]; sum += from[x] }
                            }
                        }
                        bb[o] = sum
                    }
                }
            }
        }
        if bias != nil { gradients.accumulate(key(prefix, "bias"), biasGrad) }
        // Weight gradient: dW_k = G · Xp[:, off_k ..< off_k + T]ᵀ, one GEMM per kernel offset.
        var dPacked = Tensor(uninitialized: [kk, g.co, g.ci])
        let offsets = g.offsets, ldx = g.columns + g.slack
        gw.withUnsafeBufferPointer { wb in
            tape.padded.withUnsafeBufferPointer { pb in
                dPacked.withUnsafeMutableBufferPointer { db in
                    let gp = wb.baseAddress! + front, xp = pb.baseAddress!, dp = db.baseAddress!
                    if kk == 1 {
                        BLAS.parallelGemm(transB: true, m: g.co, n: g.ci, k: g.columns, a: gp, lda: ldg,
                                          b: xp + offsets[0], ldb: ldx, c: dp, ldc: g.ci)
                    } else {
                        parallelFor(kk) { k in
                            BLAS.gemm(transB: true, m: g.co, n: g.ci, k: g.columns, a: gp, lda: ldg,
                                      b: xp + offsets[k], ldb: ldx, c: dp + k * g.co * g.ci, ldc: g.ci)
                        }
                    }
                }
            }
        }
        var dWeight = Tensor(uninitialized: weight.shape)
        dPacked.withUnsafeBufferPointer { db in
            dWeight.withUnsafeMutableBufferPointer { wb in
                for o in 0..<g.co {
                    for i in 0..<g.ci {
                        for k in 0..<kk { wb[(o * g.ci + i) * kk + k] = db[(k * g.co + o) * g.ci + i] }
                    }
                }
            }
        }
        gradients.accumulate(key(prefix, "weight"), dWeight)
        guard inputGradient else { return Tensor(zeros: [0]) }
        // Input gradient: dXp[:, s] = Σ_k W_kᵀ · G[:, s − off_k], a shifted GEMM over the
        // front-padded G with transposed weights.
        var transposed = Tensor(uninitialized: [kk, g.ci, g.co])
        packed.withUnsafeBufferPointer { kb in
            transposed.withUnsafeMutableBufferPointer { tb in
                for k in 0..<kk {
                    for o in 0..<g.co {
                        for i in 0..<g.ci { tb[(k * g.ci + i) * g.co + o] = kb[(k * g.co + o) * g.ci + i] }
                    }
                }
            }
        }
        var dxp = Tensor(uninitialized: [g.ci, g.columns])
        var dx = Tensor(uninitialized: [g.n, g.ci, g.h, g.w])
        gw.withUnsafeBufferPointer { wb in
            transposed.withUnsafeBufferPointer { tb in
                dxp.withUnsafeMutableBufferPointer { db in
                    ShiftedGemm.run(a: tb.baseAddress!, m: g.ci, kdim: g.co, shifts: offsets.map { front - $0 },
                                    b: wb.baseAddress!, ldb: ldg, out: db.baseAddress!, columns: g.columns)
                }
            }
        }
        dxp.withUnsafeBufferPointer { db in
            dx.withUnsafeMutableBufferPointer { xb in
                let src = db.baseAddress!, dst = xb.baseAddress!
                parallelFor(g.ci) { c in
                    for s in 0..<g.n {
                        for y in 0..<g.h {
                            (dst + ((s * g.ci + c) * g.h + y) * g.w)
                                .update(from: src + c * g.columns + s * g.plane + (y + g.ph) * g.wp + g.pw, count: g.w)
                        }
                    }
                }
            }
        }
        return dx
    }
}

/// What `GroupNorm.backward` needs.
public struct GroupNormTape: Sendable {
    let input: Tensor
    let mean: [Float], rstd: [Float]
    let silu: Bool
}

extension GroupNorm {
    /// Training forward pass (optionally fused with SiLU) and its tape.
    public func forward(training x: Tensor, silu: Bool = false) -> (Tensor, GroupNormTape) {
        let (mean, rstd) = statistics(x)
        return (self(x, silu: silu), GroupNormTape(input: x, mean: mean, rstd: rstd, silu: silu))
    }

    /// Backward pass: adds `weight` / `bias` gradients under `prefix`, returns the input gradient.
    public func backward(_ tape: GroupNormTape, _ gradOutput: Tensor, prefix: String, into gradients: inout Gradients) -> Tensor {
        let x = tape.input
        let n = x.shape[0], c = channels, s = x.count / max(1, n * c), cpg = c / groups
        let m = Float(cpg * s)
        var dx = Tensor(uninitialized: x.shape)
        // Per-(sample, channel) sums of dy and dy·x̂, reduced over samples afterwards (deterministic).
        var partial = [Float](repeating: 0, count: 2 * n * c)
        x.withUnsafeBufferPointer { xb in
            gradOutput.withUnsafeBufferPointer { gb in
                dx.withUnsafeMutableBufferPointer { db in
                    partial.withUnsafeMutableBufferPointer { pb in
                        let gamma = weight.scalars, beta = bias.scalars
                        parallelFor(n * groups) { grp in
                            let sample = grp / groups, g0 = (grp % groups) * cpg
                            let mu = tape.mean[grp], r = tape.rstd[grp]
                            var sumA: Float = 0, sumB: Float = 0  // Σ dy·γ, Σ dy·γ·x̂
                            for ch in g0..<(g0 + cpg) {
                                let base = (sample * c + ch) * s
                                let xp = xb.baseAddress! + base, gp = gb.baseAddress! + base, dp = db.baseAddress! + base
                                let a = gamma[ch], b = beta[ch]
                                var sdy: Float = 0, sdyx: Float = 0
                                if tape.silu {
                                    VectorMath.zip(xp, gp, into: dp, count: s) { xv, gv in
                                        let xh = (xv - mu) * r
                                        let y = xh * a + b
                                        let sig = 1 / (1 + VectorMath.exp(-y))
                                        return gv * sig * (1 + y * (1 - sig))
                                    }
                                } else {
                                    dp.update(from: gp, count: s)
                                }
                                for i in 0..<s {
                                    let xh = (xp[i] - mu) * r
                                    sdy += dp[i]; sdyx += dp[i] * xh
                                }
                                pb[2 * (sample * c + ch)] = sdy
                                pb[2 * (sample * c + ch) + 1] = sdyx
                                sumA += sdy * a; sumB += sdyx * a
                            }
                            let meanA = sumA / m, meanB = sumB / m
                            for ch in g0..<(g0 + cpg) {
                                let base = (sample * c + ch) * s
                                let xp = xb.baseAddress! + base, dp = db.baseAddress! + base
                                let a = gamma[ch]
                                for i in 0..<s {
                                    let xh = (xp[i] - mu) * r
                                    dp[i] = r * (dp[i] * a - meanA - xh * meanB)
                                }
                            }
                        }
                    }
                }
            }
        }
        var dGamma = Tensor(zeros: [c]), dBeta = Tensor(zeros: [c])
        for sample in 0..<n {
            for ch in 0..<c {
                dBeta.scalars[ch] += partial[2 * (sample * c + ch)]
                dGamma.scalars[ch] += partial[2 * (sample * c + ch) + 1]
            }
        }
        gradients.accumulate(key(prefix, "weight"), dGamma)
        gradients.accumulate(key(prefix, "bias"), dBeta)
        return dx
    }
}

/// SiLU `x·σ(x)` as a training layer (no parameters).
public enum SiLU {
    /// The activation, returning its input as the tape.
    public static func forward(training x: Tensor) -> (Tensor, Tensor) {
        var y = x
        VectorMath.silu(&y)
        return (y, x)
    }

    /// `dx = dy · σ(x)·(1 + x·(1 − σ(x)))`.
    public static func backward(_ input: Tensor, _ gradOutput: Tensor) -> Tensor {
        var dx = Tensor(uninitialized: input.shape)
        input.withUnsafeBufferPointer { xb in
            gradOutput.withUnsafeBufferPointer { gb in
                dx.withUnsafeMutableBufferPointer { db in
                    let xp = xb.baseAddress!, gp = gb.baseAddress!, dp = db.baseAddress!
                    parallelChunks(input.count, minChunk: 1 << 14) { r in
                        VectorMath.zip(xp + r.lowerBound, gp + r.lowerBound, into: dp + r.lowerBound, count: r.count) { xv, gv in
                            let sig = 1 / (1 + VectorMath.exp(-xv))
                            return gv * sig * (1 + xv * (1 - sig))
                        }
                    }
                }
            }
        }
        return dx
    }
}

extension VectorMath {
    /// `out[i] = f(a[i], b[i])`, 16 lanes at a time.
    @inlinable @inline(__always)
    static func zip(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int,
                    _ f: (V, V) -> V) {
        var i = 0
        while i + 16 <= count {
            let va = UnsafeRawPointer(a + i).loadUnaligned(as: V.self), vb = UnsafeRawPointer(b + i).loadUnaligned(as: V.self)
            UnsafeMutableRawPointer(out + i).storeBytes(of: f(va, vb), as: V.self)
            i += 16
        }
        if i < count {
            var ta = V(repeating: 0), tb = V(repeating: 0)
            for j in 0..<(count - i) { ta[j] = a[i + j]; tb[j] = b[i + j] }
            let r = f(ta, tb)
            for j in 0..<(count - i) { out[i + j] = r[j] }
        }
    }
}

/// Element-wise helpers for the training passes.
enum Elementwise {
    /// `a + b` for equally shaped tensors, multi-threaded.
    static func sum(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.shape == b.shape, "shapes differ: \(a.shape) vs \(b.shape)")
        var out = a
        out.withUnsafeMutableBufferPointer { ob in
            b.withUnsafeBufferPointer { bb in
                parallelChunks(ob.count, minChunk: 1 << 14) { r in
                    VectorMath.add(bb.baseAddress! + r.lowerBound, into: ob.baseAddress! + r.lowerBound, count: r.count)
                }
            }
        }
        return out
    }
}
