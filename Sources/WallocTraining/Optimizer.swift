import Foundation
import WallocNN
import WallocTensor

/// AdamW with PyTorch's semantics (`torch.optim.AdamW`): decoupled weight decay
/// `p ← p·(1 − lr·λ)`, then `p ← p − lr·m̂/(√v̂ + ε)` with bias-corrected moments.
public struct AdamW: Sendable {
    public var beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    /// First and second moments by parameter name (created on first use).
    public internal(set) var firstMoments: [String: Tensor] = [:]
    public internal(set) var secondMoments: [String: Tensor] = [:]
    /// Updates taken so far (the bias-correction exponent).
    public internal(set) var steps = 0

    public init(beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 1e-2) {
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
    }

    /// Applies one update with learning rate `lr` to every parameter of `module` that has a gradient.
    public mutating func update<M: Module>(_ module: inout M, gradients: Gradients, lr: Float) {
        steps += 1
        let t = Float(steps)
        let c1 = 1 - pow(beta1, t), c2 = 1 - pow(beta2, t)
        let b1 = beta1, b2 = beta2, eps = eps, decay = 1 - lr * weightDecay
        let stepSize = lr / c1, rootC2 = c2.squareRoot()
        module.visitParameters(prefix: "") { name, p in
            guard let g = gradients[name] else { return }
            // Taken out of the dictionaries so that updating them in place copies nothing.
            var m = firstMoments.removeValue(forKey: name) ?? Tensor(zeros: p.shape)
            var v = secondMoments.removeValue(forKey: name) ?? Tensor(zeros: p.shape)
            p.withUnsafeMutableBufferPointer { pb in
                m.withUnsafeMutableBufferPointer { mb in
                    v.withUnsafeMutableBufferPointer { vb in
                        g.withUnsafeBufferPointer { gb in
                            parallelChunks(pb.count, minChunk: 1 << 14) { r in
                                // 16 lanes at a time, the same operations in the same order as the scalar tail.
                                typealias V = SIMD16<Float>
                                var i = r.lowerBound
                                while i + 16 <= r.upperBound {
                                    let gi = UnsafeRawPointer(gb.baseAddress! + i).loadUnaligned(as: V.self)
                                    let m0 = UnsafeRawPointer(mb.baseAddress! + i).loadUnaligned(as: V.self)
                                    let v0 = UnsafeRawPointer(vb.baseAddress! + i).loadUnaligned(as: V.self)
                                    let p0 = UnsafeRawPointer(pb.baseAddress! + i).loadUnaligned(as: V.self)
                                    let m1 = b1 * m0 + (1 - b1) * gi
                                    let v1 = b2 * v0 + (1 - b2) * gi * gi
                                    let p1 = p0 * decay - stepSize * m1 / (v1.squareRoot() / rootC2 + eps)
                                    UnsafeMutableRawPointer(mb.baseAddress! + i).storeBytes(of: m1, as: V.self)
                                    UnsafeMutableRawPointer(vb.baseAddress! + i).storeBytes(of: v1, as: V.self)
                                    UnsafeMutableRawPointer(pb.baseAddress! + i).storeBytes(of: p1, as: V.self)
                                    i += 16
                                }
                                while i < r.upperBound {
                                    let gi = gb[i]
                                    mb[i] = b1 * mb[i] + (1 - b1) * gi
                                    vb[i] = b2 * vb[i] + (1 - b2) * gi * gi
                                    pb[i] = pb[i] * decay - stepSize * mb[i] / (vb[i].squareRoot() / rootC2 + eps)
                                    i += 1
                                }
                            }
                        }
                    }
                }
            }
            firstMoments[name] = m
            secondMoments[name] = v
        }
        module.parametersDidChange()
    }
}

extension Gradients {
    /// The Euclidean norm of all gradients together.
    public var globalNorm: Float {
        var total: Double = 0
        for (_, g) in values {
            g.withUnsafeBufferPointer { b in
                // 16-lane float partial sums, flushed to double every 1024 elements.
                let p = b.baseAddress!, n = b.count
                var i = 0
                while i < n {
                    let end = min(n, i + 1024)
                    var acc = VectorMath.V(repeating: 0)
                    while i + 16 <= end {
                        let v = VectorMath.load(p + i)
                        acc = acc.addingProduct(v, v)
                        i += 16
                    }
                    var part = Double(acc.sum())
                    while i < end { part += Double(p[i]) * Double(p[i]); i += 1 }
                    total += part
                }
            }
        }
        return Float(total.squareRoot())
    }

    /// Scales every gradient so that the global norm is at most `maxNorm` (as
    /// `torch.nn.utils.clip_grad_norm_`: factor `maxNorm / (norm + 1e-6)` when below 1).
    /// Returns the norm before clipping.
    @discardableResult
    public mutating func clip(maxNorm: Float) -> Float {
        let norm = globalNorm
        let factor = maxNorm / (norm + 1e-6)
        guard factor < 1 else { return norm }
        var scaled = Gradients()
        for (name, g) in values {
            // Scaled out of place: one pass, where scaling a copy of the stored tensor takes two.
            let out = Tensor(uninitializedShape: g.shape) { ob in
                g.withUnsafeBufferPointer { gb in
                    let src = gb.baseAddress!, dst = ob.baseAddress!
                    parallelChunks(gb.count, minChunk: 1 << 15) { r in
                        for i in r { dst[i] = src[i] * factor }
                    }
                }
            }
            scaled.accumulate(name, out)
        }
        self = scaled
        return norm
    }
}

/// The learning-rate schedule: linear warm-up from 0 to `peak` over `warmupSteps`, then
/// reduce-on-plateau (PyTorch's `ReduceLROnPlateau`, mode "min", relative threshold) driven by
/// validation losses: after `patience` validations without a relative improvement of
/// `threshold`, the rate is multiplied by `factor`, never going below `minimum`.
public struct LearningRateSchedule: Codable, Sendable, Equatable {
    public var peak: Float
    public var warmupSteps: Int
    public var factor: Float
    public var patience: Int
    public var threshold: Float
    public var minimum: Float
    /// The current post-warm-up rate.
    public private(set) var current: Float
    public private(set) var best: Float = .greatestFiniteMagnitude
    public private(set) var badEpochs = 0
    /// When set, the rate follows a cosine from `peak` down to `minimum` over this many steps after
    /// the warm-up (and stays at `minimum` after), and validation losses do not change it.
    public var cosineSteps: Int?

    public init(peak: Float = 1e-3, warmupSteps: Int = 1000, factor: Float = 0.5, patience: Int = 5,
                threshold: Float = 1e-4, minimum: Float = 1e-6) {
        self.peak = peak; self.warmupSteps = warmupSteps; self.factor = factor; self.patience = patience
        self.threshold = threshold; self.minimum = minimum; current = peak
    }

    /// The rate for update number `step` (0-based).
    public func rate(step: Int) -> Float {
        if step < warmupSteps { return current * Float(step + 1) / Float(warmupSteps) }
        if let total = cosineSteps, total > 0 {
            let t = min(1, Float(step - warmupSteps) / Float(total))
            return minimum + (peak - minimum) * 0.5 * (1 + cos(Float.pi * t))
        }
        return current
    }

    /// Records a validation loss; reduces the rate after `patience` validations without improvement.
    public mutating func record(validationLoss loss: Float) {
        if cosineSteps != nil { best = min(best, loss); return }
        if loss < best * (1 - threshold) {
            best = loss
            badEpochs = 0
        } else {
            badEpochs += 1
            if badEpochs > patience {
                current = max(minimum, current * factor)
                badEpochs = 0
            }
        }
    }
}

/// SplitMix64: a small, fast, seedable generator whose whole state is one `UInt64` (so it can be
/// checkpointed).
public struct SplitMix64: Codable, Sendable, Equatable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 24 random bits.
    public mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 24) }

    /// Uniform integer in `0..<n`.
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(1, n))) }
}
