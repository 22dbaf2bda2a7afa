import WallocTensor

/// Group normalisation over `[N, C, ...]` (biased variance, affine), optionally fused with SiLU.
public struct GroupNorm: Module {
    public let groups: Int
    public let eps: Float
    public var weight: Tensor
    public var bias: Tensor

    public init(groups: Int, channels: Int, eps: Float = 1e-6) {
        precondition(channels % groups == 0, "GroupNorm: \(channels) channels do not split into \(groups) groups")
        self.groups = groups
        self.eps = eps
        weight = Tensor(repeating: 1, shape: [channels])
        bias = Tensor(zeros: [channels])
    }

    public var channels: Int { weight.count }

    public mutating func visitParameters(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try body(key(prefix, "weight"), &weight)
        try body(key(prefix, "bias"), &bias)
    }

    /// Per-(sample, group) mean and reciprocal standard deviation, `[N·groups]` each.
    public func statistics(_ x: Tensor) -> (mean: [Float], rstd: [Float]) {
        let n = x.shape[0], c = x.shape[1], s = x.count / max(1, n * c)
        let per = (c / groups) * s
        var mean = [Float](repeating: 0, count: n * groups), rstd = mean
        x.withUnsafeBufferPointer { xb in
            mean.withUnsafeMutableBufferPointer { mb in
                rstd.withUnsafeMutableBufferPointer { rb in
                    parallelFor(n * groups) { g in
                        let p = xb.baseAddress! + g * per
                        let m = GroupNorm.sum(p, per) / Double(per)
                        let v = GroupNorm.sumOfSquares(p, per, around: Float(m)) / Double(per)
                        mb[g] = Float(m)
                        rb[g] = Float(1 / (v + Double(eps)).squareRoot())
                    }
                }
            }
        }
        return (mean, rstd)
    }

    public func callAsFunction(_ x: Tensor, silu: Bool = false) -> Tensor {
        normalized(x, silu: silu).output
    }

    /// The output and the per-(sample, group) statistics it used (for training's tape).
    public func normalized(_ x: Tensor, silu: Bool = false) -> (output: Tensor, mean: [Float], rstd: [Float]) {
        precondition(x.rank >= 2 && x.shape[1] == channels, "GroupNorm expects [N, \(channels), ...], got \(x.shape)")
        let n = x.shape[0], c = channels, s = x.count / max(1, n * c), cpg = c / groups
        let (mean, rstd) = statistics(x)
        // Written to a new tensor (normalising a copy of `x` in place copied it first).
        var out = Tensor(uninitialized: x.shape)
        x.withUnsafeBufferPointer { xb in
            out.withUnsafeMutableBufferPointer { ob in
                weight.withUnsafeBufferPointer { wb in
                    bias.withUnsafeBufferPointer { bb in
                        parallelFor(n * c) { i in
                            let ch = i % c, g = (i / c) * groups + ch / cpg
                            let a = wb[ch] * rstd[g], b = bb[ch] - mean[g] * a
                            let src = xb.baseAddress! + i * s, dst = ob.baseAddress! + i * s
                            if silu {
                                VectorMath.map(src, into: dst, count: s) { v in
                                    let y = v * a + b
                                    return y / (1 + VectorMath.exp(-y))
                                }
                            } else {
                                VectorMath.map(src, into: dst, count: s) { $0 * a + b }
                            }
                        }
                    }
                }
            }
        }
        return (out, mean, rstd)
    }

    /// Sum of `count` floats: SIMD partial sums flushed to double every 4096 elements.
    static func sum(_ p: UnsafePointer<Float>, _ count: Int) -> Double {
        var total: Double = 0
        var i = 0
        while i < count {
            let end = min(count, i + 4096)
            var acc = SIMD16<Float>(repeating: 0)
            while i + 16 <= end {
                acc += UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)
                i += 16
            }
            var part = Double(acc.sum())
            while i < end { part += Double(p[i]); i += 1 }
            total += part
        }
        return total
    }

    /// Sum of squared deviations from `m`.
    static func sumOfSquares(_ p: UnsafePointer<Float>, _ count: Int, around m: Float) -> Double {
        var total: Double = 0
        let mv = SIMD16<Float>(repeating: m)
        var i = 0
        while i < count {
            let end = min(count, i + 4096)
            var acc = SIMD16<Float>(repeating: 0)
            while i + 16 <= end {
                let d = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self) - mv
                acc += d * d
                i += 16
            }
            var part = Double(acc.sum())
            while i < end { let d = Double(p[i] - m); part += d * d; i += 1 }
            total += part
        }
        return total
    }
}
