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
    /// Training forward pass (optionally fused with SiLU) and its tape: `callAsFunction`'s output
    /// with the statistics it used.
    public func forward(training x: Tensor, silu: Bool = false) -> (Tensor, GroupNormTape) {
        let (out, mean, rstd) = normalized(x, silu: silu)
        return (out, GroupNormTape(input: x, mean: mean, rstd: rstd, silu: silu))
    }

    /// Backward pass: adds `weight` / `bias` gradients under `prefix`, returns the input gradient.
    /// Per group: one pass forms `dy` (through the SiLU when fused) and the sums `Σ dy`, `Σ dy·x̂`,
    /// a second writes `dx = rstd·(γ·dy − mean(γ·dy) − x̂·mean(γ·dy·x̂))`; both 16 lanes wide.
    public func backward(_ tape: GroupNormTape, _ gradOutput: Tensor, prefix: String, into gradients: inout Gradients) -> Tensor {
        typealias V = VectorMath.V
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
                        weight.withUnsafeBufferPointer { gammaBuffer in
                            bias.withUnsafeBufferPointer { betaBuffer in
                                parallelFor(n * groups) { grp in
                                    let sample = grp / groups, g0 = (grp % groups) * cpg
                                    let mu = tape.mean[grp], r = tape.rstd[grp]
                                    let muV = V(repeating: mu), rV = V(repeating: r)
                                    var sumA: Float = 0, sumB: Float = 0  // Σ dy·γ, Σ dy·γ·x̂
                                    for ch in g0..<(g0 + cpg) {
                                        let base = (sample * c + ch) * s
                                        let xp = xb.baseAddress! + base, gp = gb.baseAddress! + base, dp = db.baseAddress! + base
                                        let a = gammaBuffer[ch], b = betaBuffer[ch]
                                        let aV = V(repeating: a), bV = V(repeating: b)
                                        var accDy = V(repeating: 0), accDyx = V(repeating: 0)
                                        var i = 0
                                        while i + 16 <= s {
                                            let xh = (VectorMath.load(xp + i) - muV) * rV
                                            var dy = VectorMath.load(gp + i)
                                            if tape.silu {
                                                let y = xh * aV + bV
                                                let sig = 1 / (1 + VectorMath.exp(-y))
                                                dy = dy * sig * (1 + y * (1 - sig))
                                                VectorMath.store(dy, dp + i)
                                            }
                                            accDy += dy
                                            accDyx = accDyx.addingProduct(dy, xh)
                                            i += 16
                                        }
                                        var sdy = accDy.sum(), sdyx = accDyx.sum()
                                        while i < s {
                                            let xh = (xp[i] - mu) * r
                                            var dy = gp[i]
                                            if tape.silu {
                                                let y = xh * a + b
                                                let sig = 1 / (1 + VectorMath.exp(-y))
                                                dy = dy * sig * (1 + y * (1 - sig))
                                                dp[i] = dy
                                            }
                                            sdy += dy; sdyx += dy * xh
                                            i += 1
                                        }
                                        pb[2 * (sample * c + ch)] = sdy
                                        pb[2 * (sample * c + ch) + 1] = sdyx
                                        sumA += sdy * a; sumB += sdyx * a
                                    }
                                    let meanA = V(repeating: sumA / m), meanB = V(repeating: sumB / m)
                                    for ch in g0..<(g0 + cpg) {
                                        let base = (sample * c + ch) * s
                                        let xp = xb.baseAddress! + base, dp = db.baseAddress! + base
                                        // dy lives in dx already (SiLU) or is still the incoming gradient.
                                        let dyp = tape.silu ? UnsafePointer(dp) : gb.baseAddress! + base
                                        let aV = V(repeating: gammaBuffer[ch])
                                        VectorMath.zip(xp, dyp, into: dp, count: s) { xv, dy in
                                            rV * (dy * aV - meanA - (xv - muV) * rV * meanB)
                                        }
                                    }
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
    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }

    @inline(__always)
    static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self) }

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
        var out = Tensor(uninitialized: a.shape)
        out.withUnsafeMutableBufferPointer { ob in
            a.withUnsafeBufferPointer { ab in
                b.withUnsafeBufferPointer { bb in
                    parallelChunks(ob.count, minChunk: 1 << 14) { r in
                        VectorMath.zip(ab.baseAddress! + r.lowerBound, bb.baseAddress! + r.lowerBound,
                                       into: ob.baseAddress! + r.lowerBound, count: r.count) { $0 + $1 }
                    }
                }
            }
        }
        return out
    }
}
