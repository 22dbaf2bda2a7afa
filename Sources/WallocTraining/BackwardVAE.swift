import WallocNN
import WallocTensor

/// What `SpatialSelfAttention.backward` needs: the group-norm tape, its output, the projections
/// and the attention weights (`[N, P, P]`, so training crops should stay small).
public struct AttentionTape: Sendable {
    let norm: GroupNormTape
    let h: Tensor
    /// `[N, 3, C, P]`: queries, keys, values (unscaled).
    let qkv: Tensor
    /// `[N, P, P]` softmax rows (one row per query).
    let weights: Tensor
    /// `[N, C, P]` attended values before the output projection.
    let attended: Tensor
}

extension SpatialSelfAttention {
    /// Training forward pass (as `callAsFunction`, keeping the attention weights).
    public func forward(training x: Tensor) -> (Tensor, AttentionTape) {
        let n = x.shape[0], c = channels, p = x.count / max(1, n * c)
        let scale = 1 / Float(c).squareRoot()
        let (h, normTape) = groupNorm.forward(training: x)
        var qkv = Tensor(uninitialized: [n, 3, c, p])
        var weights = Tensor(uninitialized: [n, p, p])
        var attended = Tensor(uninitialized: [n, c, p])
        let projections = [toQ, toK, toV]
        h.withUnsafeBufferPointer { hb in
            qkv.withUnsafeMutableBufferPointer { qb in
                weights.withUnsafeMutableBufferPointer { wb in
                    attended.withUnsafeMutableBufferPointer { ab in
                        parallelFor(n) { s in
                            let hs = hb.baseAddress! + s * c * p, q = qb.baseAddress! + s * 3 * c * p
                            for (i, layer) in projections.enumerated() {
                                layer.weight.withUnsafeBufferPointer { lw in
                                    BLAS.gemm(m: c, n: p, k: c, a: lw.baseAddress!, lda: c, b: hs, ldb: p, c: q + i * c * p, ldc: p)
                                }
                                if let b = layer.bias {
                                    for ch in 0..<c {
                                        let row = q + (i * c + ch) * p, v = b.scalars[ch]
                                        for j in 0..<p { row[j] += v }
                                    }
                                }
                            }
                            let a = wb.baseAddress! + s * p * p
                            BLAS.gemm(transA: true, m: p, n: p, k: c, alpha: scale, a: q, lda: p, b: q + c * p, ldb: p, c: a, ldc: p)
                            for r in 0..<p { VectorMath.softmaxRow(a + r * p, count: p) }
                            BLAS.gemm(transB: true, m: c, n: p, k: p, a: q + 2 * c * p, lda: p, b: a, ldb: p,
                                      c: ab.baseAddress! + s * c * p, ldc: p)
                        }
                    }
                }
            }
        }
        var out = Tensor(uninitialized: x.shape)
        attended.withUnsafeBufferPointer { ab in
            out.withUnsafeMutableBufferPointer { ob in
                x.withUnsafeBufferPointer { xb in
                    toOut.weight.withUnsafeBufferPointer { wb in
                        let bias = toOut.bias?.scalars
                        parallelFor(n) { s in
                            let o = ob.baseAddress! + s * c * p
                            o.update(from: xb.baseAddress! + s * c * p, count: c * p)
                            BLAS.gemm(m: c, n: p, k: c, a: wb.baseAddress!, lda: c, b: ab.baseAddress! + s * c * p, ldb: p,
                                      beta: 1, c: o, ldc: p)
                            if let bias {
                                for ch in 0..<c { for j in 0..<p { o[ch * p + j] += bias[ch] } }
                            }
                        }
                    }
                }
            }
        }
        return (out, AttentionTape(norm: normTape, h: h, qkv: qkv, weights: weights, attended: attended))
    }

    /// Backward pass: parameter gradients under `prefix` (diffusers' keys), input gradient returned.
    public func backward(_ tape: AttentionTape, _ gradOutput: Tensor, prefix: String, into gradients: inout Gradients) -> Tensor {
        let n = gradOutput.shape[0], c = channels, p = gradOutput.count / max(1, n * c)
        let scale = 1 / Float(c).squareRoot()
        // dqkv per sample: [N, 3, C, P]; the attended-gradient reuses a [N, C, P] buffer.
        var dAtt = Tensor(uninitialized: [n, c, p])
        var dqkv = Tensor(uninitialized: [n, 3, c, p])
        gradOutput.withUnsafeBufferPointer { gb in
            dAtt.withUnsafeMutableBufferPointer { db in
                toOut.weight.withUnsafeBufferPointer { wb in
                    parallelFor(n) { s in
                        BLAS.gemm(transA: true, m: c, n: p, k: c, a: wb.baseAddress!, lda: c, b: gb.baseAddress! + s * c * p, ldb: p,
                                  c: db.baseAddress! + s * c * p, ldc: p)
                    }
                }
            }
        }
        accumulateLinear(gradOutput, tape.attended, n: n, rows: c, cols: c, p: p, prefix: key(prefix, "to_out.0"),
                         hasBias: toOut.bias != nil, into: &gradients)
        dAtt.withUnsafeBufferPointer { db in
            tape.qkv.withUnsafeBufferPointer { qb in
                tape.weights.withUnsafeBufferPointer { ab in
                    dqkv.withUnsafeMutableBufferPointer { dq in
                        parallelFor(n) { s in
                            let q = qb.baseAddress! + s * 3 * c * p, k = q + c * p, v = k + c * p
                            let a = ab.baseAddress! + s * p * p, dOut = db.baseAddress! + s * c * p
                            let dQ = dq.baseAddress! + s * 3 * c * p, dK = dQ + c * p, dV = dK + c * p
                            // dV = dO · A ; dA = dOᵀ · V
                            BLAS.gemm(m: c, n: p, k: p, a: dOut, lda: p, b: a, ldb: p, c: dV, ldc: p)
                            withUnsafeTemporaryAllocation(of: Float.self, capacity: p * p) { buf in
                                let dA = buf.baseAddress!
                                BLAS.gemm(transA: true, m: p, n: p, k: c, a: dOut, lda: p, b: v, ldb: p, c: dA, ldc: p)
                                // dS = A ⊙ (dA − Σ_j dA·A)
                                for r in 0..<p {
                                    let ar = a + r * p, dr = dA + r * p
                                    var dot: Float = 0
                                    for j in 0..<p { dot += ar[j] * dr[j] }
                                    for j in 0..<p { dr[j] = ar[j] * (dr[j] - dot) }
                                }
                                // S = scale · Qᵀ K: dQ = scale · K · dSᵀ, dK = scale · Q · dS
                                BLAS.gemm(transB: true, m: c, n: p, k: p, alpha: scale, a: k, lda: p, b: dA, ldb: p, c: dQ, ldc: p)
                                BLAS.gemm(m: c, n: p, k: p, alpha: scale, a: q, lda: p, b: dA, ldb: p, c: dK, ldc: p)
                            }
                        }
                    }
                }
            }
        }
        // Projection gradients and dH = Σ W_iᵀ dQKV_i.
        let projections = [(toQ, "to_q"), (toK, "to_k"), (toV, "to_v")]
        for (i, (layer, name)) in projections.enumerated() {
            var part = Tensor(uninitialized: [n, c, p])
            dqkv.withUnsafeBufferPointer { db in
                part.withUnsafeMutableBufferPointer { pb in
                    for s in 0..<n { (pb.baseAddress! + s * c * p).update(from: db.baseAddress! + (s * 3 + i) * c * p, count: c * p) }
                }
            }
            accumulateLinear(part, tape.h, n: n, rows: c, cols: c, p: p, prefix: key(prefix, name),
                             hasBias: layer.bias != nil, into: &gradients)
        }
        var dh = Tensor(uninitialized: [n, c, p])
        dqkv.withUnsafeBufferPointer { db in
            dh.withUnsafeMutableBufferPointer { hb in
                let w0 = toQ.weight.scalars, w1 = toK.weight.scalars, w2 = toV.weight.scalars
                parallelFor(n) { s in
                    for (i, w) in [w0, w1, w2].enumerated() {
                        w.withUnsafeBufferPointer { wb in
                            BLAS.gemm(transA: true, m: c, n: p, k: c, a: wb.baseAddress!, lda: c,
                                      b: db.baseAddress! + (s * 3 + i) * c * p, ldb: p, beta: i == 0 ? 0 : 1,
                                      c: hb.baseAddress! + s * c * p, ldc: p)
                        }
                    }
                }
            }
        }
        let dx = groupNorm.backward(tape.norm, dh.reshaped(gradOutput.shape), prefix: key(prefix, "group_norm"), into: &gradients)
        return Elementwise.sum(dx, gradOutput)
    }

    /// Adds `Σ_s G_s · X_sᵀ` (`[rows, cols]`) and `Σ G` to a linear layer's gradients.
    private func accumulateLinear(_ g: Tensor, _ x: Tensor, n: Int, rows: Int, cols: Int, p: Int, prefix: String,
                                  hasBias: Bool, into gradients: inout Gradients) {
        var dw = Tensor(zeros: [rows, cols])
        g.withUnsafeBufferPointer { gb in
            x.withUnsafeBufferPointer { xb in
                dw.withUnsafeMutableBufferPointer { wb in
                    for s in 0..<n {
                        BLAS.parallelGemm(transB: true, m: rows, n: cols, k: p, a: gb.baseAddress! + s * rows * p, lda: p,
                                          b: xb.baseAddress! + s * cols * p, ldb: p, beta: 1, c: wb.baseAddress!, ldc: cols)
                    }
                }
            }
        }
        gradients.accumulate(key(prefix, "weight"), dw)
        if hasBias {
            var db = Tensor(zeros: [rows])
            for s in 0..<n {
                for r in 0..<rows {
                    var sum: Float = 0
                    let base = (s * rows + r) * p
                    for j in 0..<p { sum += g.scalars[base + j] }
                    db.scalars[r] += sum
                }
            }
            gradients.accumulate(key(prefix, "bias"), db)
        }
    }
}

/// Tape of a `ResnetBlock2D`.
public struct ResnetTape: Sendable {
    let norm1: GroupNormTape, conv1: Conv2dTape, norm2: GroupNormTape, conv2: Conv2dTape
    let shortcut: Conv2dTape?
}

extension ResnetBlock2D {
    public func forward(training x: Tensor) -> (Tensor, ResnetTape) {
        let (a, t1) = norm1.forward(training: x, silu: true)
        let (b, t2) = conv1.forward(training: a)
        let (c, t3) = norm2.forward(training: b, silu: true)
        let (d, t4) = conv2.forward(training: c)
        var residual = x, t5: Conv2dTape? = nil
        if let shortcut { (residual, t5) = shortcut.forward(training: x) }
        return (Elementwise.sum(d, residual), ResnetTape(norm1: t1, conv1: t2, norm2: t3, conv2: t4, shortcut: t5))
    }

    public func backward(_ tape: ResnetTape, _ g: Tensor, prefix: String, into gradients: inout Gradients) -> Tensor {
        var d = conv2.backward(tape.conv2, g, prefix: key(prefix, "conv2"), into: &gradients)
        d = norm2.backward(tape.norm2, d, prefix: key(prefix, "norm2"), into: &gradients)
        d = conv1.backward(tape.conv1, d, prefix: key(prefix, "conv1"), into: &gradients)
        d = norm1.backward(tape.norm1, d, prefix: key(prefix, "norm1"), into: &gradients)
        if let shortcut, let t = tape.shortcut {
            return Elementwise.sum(d, shortcut.backward(t, g, prefix: key(prefix, "conv_shortcut"), into: &gradients))
        }
        return Elementwise.sum(d, g)
    }
}

/// Tape of a `MidBlock2D`.
public struct MidBlockTape: Sendable {
    let resnet0: ResnetTape, attention: AttentionTape, resnet1: ResnetTape
}

extension MidBlock2D {
    public func forward(training x: Tensor) -> (Tensor, MidBlockTape) {
        let (a, t0) = resnet0.forward(training: x)
        let (b, t1) = attention.forward(training: a)
        let (c, t2) = resnet1.forward(training: b)
        return (c, MidBlockTape(resnet0: t0, attention: t1, resnet1: t2))
    }

    public func backward(_ tape: MidBlockTape, _ g: Tensor, prefix: String, into gradients: inout Gradients) -> Tensor {
        var d = resnet1.backward(tape.resnet1, g, prefix: key(prefix, "resnets.1"), into: &gradients)
        d = attention.backward(tape.attention, d, prefix: key(prefix, "attentions.0"), into: &gradients)
        return resnet0.backward(tape.resnet0, d, prefix: key(prefix, "resnets.0"), into: &gradients)
    }
}

/// Tape of a `VAEEncoder` or `VAEDecoder`.
public struct VAETape: Sendable {
    let convIn: Conv2dTape, mid: MidBlockTape, resnets: [ResnetTape], normOut: GroupNormTape, convOut: Conv2dTape
}

extension VAEEncoder {
    public func forward(training x: Tensor) -> (Tensor, VAETape) {
        var (h, tIn) = convIn.forward(training: x)
        var tapes = [ResnetTape]()
        for r in resnets { let (o, t) = r.forward(training: h); h = o; tapes.append(t) }
        let (m, tMid) = mid.forward(training: h)
        let (nrm, tNorm) = normOut.forward(training: m, silu: true)
        let (out, tOut) = convOut.forward(training: nrm)
        return (out, VAETape(convIn: tIn, mid: tMid, resnets: tapes, normOut: tNorm, convOut: tOut))
    }

    /// Backward pass; `inputGradient: false` skips the first convolution's input gradient.
    public func backward(_ tape: VAETape, _ g: Tensor, prefix: String, into gradients: inout Gradients,
                         inputGradient: Bool = true) -> Tensor {
        var d = convOut.backward(tape.convOut, g, prefix: key(prefix, "conv_out"), into: &gradients)
        d = normOut.backward(tape.normOut, d, prefix: key(prefix, "conv_norm_out"), into: &gradients)
        d = mid.backward(tape.mid, d, prefix: key(prefix, "mid_block"), into: &gradients)
        for i in resnets.indices.reversed() {
            d = resnets[i].backward(tape.resnets[i], d, prefix: key(prefix, "down_blocks.0.resnets.\(i)"), into: &gradients)
        }
        return convIn.backward(tape.convIn, d, prefix: key(prefix, "conv_in"), into: &gradients, inputGradient: inputGradient)
    }
}

extension VAEDecoder {
    public func forward(training x: Tensor) -> (Tensor, VAETape) {
        let (a, tIn) = convIn.forward(training: x)
        var (h, tMid) = mid.forward(training: a)
        var tapes = [ResnetTape]()
        for r in resnets { let (o, t) = r.forward(training: h); h = o; tapes.append(t) }
        let (nrm, tNorm) = normOut.forward(training: h, silu: true)
        let (out, tOut) = convOut.forward(training: nrm)
        return (out, VAETape(convIn: tIn, mid: tMid, resnets: tapes, normOut: tNorm, convOut: tOut))
    }

    public func backward(_ tape: VAETape, _ g: Tensor, prefix: String, into gradients: inout Gradients) -> Tensor {
        var d = convOut.backward(tape.convOut, g, prefix: key(prefix, "conv_out"), into: &gradients)
        d = normOut.backward(tape.normOut, d, prefix: key(prefix, "conv_norm_out"), into: &gradients)
        for i in resnets.indices.reversed() {
            d = resnets[i].backward(tape.resnets[i], d, prefix: key(prefix, "up_blocks.0.resnets.\(i)"), into: &gradients)
        }
        d = mid.backward(tape.mid, d, prefix: key(prefix, "mid_block"), into: &gradients)
        return convIn.backward(tape.convIn, d, prefix: key(prefix, "conv_in"), into: &gradients)
    }
}
