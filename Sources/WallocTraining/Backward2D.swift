import WallocNN
import WallocTensor

// Conv2d's training passes are in Conv2dTraining.swift.

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

extension VectorMath {
    /// `Σ p[i]`, 16 lanes at a time.
    @inlinable
    static func sum(_ p: UnsafePointer<Float>, count: Int) -> Float {
        var acc = V(repeating: 0)
        var i = 0
        while i + 16 <= count {
            acc += UnsafeRawPointer(p + i).loadUnaligned(as: V.self)
            i += 16
        }
        var total = acc.sum()
        while i < count { total += p[i]; i += 1 }
        return total
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
