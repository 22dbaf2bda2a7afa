import Foundation
import WallocNN
import WallocTensor

// Layers for classifiers, with the training convention of Gradients.swift: a fully connected
// layer on `[N, in]`, max pooling, global average pooling and softmax cross-entropy.

extension Linear {
    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    /// `y = x Wᵀ + b` for `x` of shape `[N, in]`.
    public func apply(_ x: Tensor) -> Tensor {
        precondition(x.rank == 2 && x.shape[1] == inFeatures, "Linear expects [N, \(inFeatures)], got \(x.shape)")
        let n = x.shape[0], o = outFeatures
        var y = Tensor(uninitialized: [n, o])
        y.withUnsafeMutableBufferPointer { yb in
            if let bias {
                for s in 0..<n { (yb.baseAddress! + s * o).update(from: bias.scalars, count: o) }
            }
            x.withUnsafeBufferPointer { xb in
                weight.withUnsafeBufferPointer { wb in
                    BLAS.gemm(transB: true, m: n, n: o, k: inFeatures, a: xb.baseAddress!, lda: inFeatures,
                              b: wb.baseAddress!, ldb: inFeatures, beta: bias == nil ? 0 : 1, c: yb.baseAddress!, ldc: o)
                }
            }
        }
        return y
    }

    /// Training forward pass; the tape is the input.
    public func forward(training x: Tensor) -> (Tensor, Tensor) { (apply(x), x) }

    /// Adds `weight` (`dyᵀ x`) and `bias` (`Σ dy`) gradients under `prefix`; returns `dy W`.
    public func backward(_ input: Tensor, _ gradOutput: Tensor, prefix: String, into gradients: inout Gradients) -> Tensor {
        let n = input.shape[0], i = inFeatures, o = outFeatures
        precondition(gradOutput.shape == [n, o], "Linear gradient shape \(gradOutput.shape), expected \([n, o])")
        var dw = Tensor(uninitialized: [o, i])
        var dx = Tensor(uninitialized: [n, i])
        gradOutput.withUnsafeBufferPointer { gb in
            input.withUnsafeBufferPointer { xb in
                dw.withUnsafeMutableBufferPointer { db in
                    BLAS.gemm(transA: true, m: o, n: i, k: n, a: gb.baseAddress!, lda: o, b: xb.baseAddress!, ldb: i,
                              c: db.baseAddress!, ldc: i)
                }
            }
            weight.withUnsafeBufferPointer { wb in
                dx.withUnsafeMutableBufferPointer { db in
                    BLAS.gemm(m: n, n: i, k: o, a: gb.baseAddress!, lda: o, b: wb.baseAddress!, ldb: i, c: db.baseAddress!, ldc: i)
                }
            }
        }
        gradients.accumulate(key(prefix, "weight"), dw)
        if bias != nil {
            var db = [Float](repeating: 0, count: o)
            for s in 0..<n { for j in 0..<o { db[j] += gradOutput.scalars[s * o + j] } }
            gradients.accumulate(key(prefix, "bias"), Tensor(shape: [o], scalars: db))
        }
        return dx
    }
}

/// What `MaxPool.backward` needs: where each output's maximum came from.
public struct MaxPoolTape: Sendable {
    let inputShape: [Int]
    /// Flat input index of each output's maximum.
    let argmax: [Int32]
}

/// Max pooling with a `window` x `window` (2D, `[N, C, H, W]`) or `window` (1D, `[N, C, L]`)
/// window and the same stride; trailing rows or samples that do not fill a window are dropped
/// (PyTorch's `MaxPool2d(k)` / `MaxPool1d(k)`).
public enum MaxPool {
    /// Output and tape.
    public static func forward(_ x: Tensor, window k: Int) -> (Tensor, MaxPoolTape) {
        precondition(x.rank == 3 || x.rank == 4, "MaxPool expects [N, C, L] or [N, C, H, W], got \(x.shape)")
        precondition(k >= 1 && x.count < Int(Int32.max), "MaxPool window \(k)")
        let planes = x.shape[0] * x.shape[1]
        let h = x.rank == 4 ? x.shape[2] : 1, w = x.shape[x.rank - 1]
        let kh = x.rank == 4 ? k : 1
        let ho = h / kh, wo = w / k
        precondition(ho > 0 && wo > 0, "MaxPool input \(x.shape) smaller than the window \(k)")
        let outShape = x.rank == 4 ? [x.shape[0], x.shape[1], ho, wo] : [x.shape[0], x.shape[1], wo]
        var out = Tensor(uninitialized: outShape)
        var argmax = [Int32](repeating: 0, count: out.count)
        x.withUnsafeBufferPointer { xb in
            out.withUnsafeMutableBufferPointer { ob in
                argmax.withUnsafeMutableBufferPointer { ab in
                    let src = xb.baseAddress!, dst = ob.baseAddress!, arg = ab.baseAddress!
                    parallelChunks(planes, minChunk: max(1, 4096 / max(1, h * w))) { r in
                        for p in r {
                            for oy in 0..<ho {
                                for ox in 0..<wo {
                                    var best = -Float.infinity, at = p * h * w + oy * kh * w + ox * k
                                    for dy in 0..<kh {
                                        let row = p * h * w + (oy * kh + dy) * w + ox * k
                                        for dx in 0..<k where src[row + dx] > best || best.isNaN {
                                            best = src[row + dx]; at = row + dx
                                        }
                                    }
                                    let o = (p * ho + oy) * wo + ox
                                    dst[o] = src[at]
                                    arg[o] = Int32(at)
                                }
                            }
                        }
                    }
                }
            }
        }
        return (out, MaxPoolTape(inputShape: x.shape, argmax: argmax))
    }

    /// Routes each output gradient to the input that held the maximum.
    public static func backward(_ tape: MaxPoolTape, _ gradOutput: Tensor) -> Tensor {
        precondition(gradOutput.count == tape.argmax.count, "MaxPool gradient has \(gradOutput.count) values, expected \(tape.argmax.count)")
        var dx = Tensor(zeros: tape.inputShape)
        dx.withUnsafeMutableBufferPointer { db in
            gradOutput.withUnsafeBufferPointer { gb in
                // Windows do not overlap, so every input receives at most one output's gradient.
                for o in 0..<gb.count { db[Int(tape.argmax[o])] += gb[o] }
            }
        }
        return dx
    }
}

/// Mean over every spatial position: `[N, C, ...]` -> `[N, C]`.
public enum GlobalAveragePool {
    public static func forward(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 3, "GlobalAveragePool expects [N, C, ...], got \(x.shape)")
        let planes = x.shape[0] * x.shape[1], s = x.count / max(1, planes)
        var out = Tensor(uninitialized: [x.shape[0], x.shape[1]])
        x.withUnsafeBufferPointer { xb in
            out.withUnsafeMutableBufferPointer { ob in
                for p in 0..<planes {
                    var sum: Float = 0
                    let row = xb.baseAddress! + p * s
                    for i in 0..<s { sum += row[i] }
                    ob[p] = sum / Float(s)
                }
            }
        }
        return out
    }

    /// Spreads each gradient evenly over the positions it averaged.
    public static func backward(_ gradOutput: Tensor, inputShape: [Int]) -> Tensor {
        let planes = inputShape[0] * inputShape[1], s = Tensor.count(of: inputShape) / max(1, planes)
        precondition(gradOutput.count == planes, "GlobalAveragePool gradient shape \(gradOutput.shape)")
        var dx = Tensor(uninitialized: inputShape)
        dx.withUnsafeMutableBufferPointer { db in
            for p in 0..<planes {
                (db.baseAddress! + p * s).update(repeating: gradOutput.scalars[p] / Float(s), count: s)
            }
        }
        return dx
    }
}

/// Maximum over every spatial position: `[N, C, ...]` -> `[N, C]` (the tape holds the argmax).
public enum GlobalMaxPool {
    public static func forward(_ x: Tensor) -> (Tensor, MaxPoolTape) {
        precondition(x.rank >= 3 && x.count < Int(Int32.max), "GlobalMaxPool expects [N, C, ...], got \(x.shape)")
        let planes = x.shape[0] * x.shape[1], s = x.count / max(1, planes)
        var out = Tensor(uninitialized: [x.shape[0], x.shape[1]])
        var argmax = [Int32](repeating: 0, count: planes)
        x.withUnsafeBufferPointer { xb in
            for p in 0..<planes {
                var best = p * s
                for i in (p * s)..<((p + 1) * s) where xb[i] > xb[best] { best = i }
                out.scalars[p] = xb[best]
                argmax[p] = Int32(best)
            }
        }
        return (out, MaxPoolTape(inputShape: x.shape, argmax: argmax))
    }

    /// Routes each gradient to the position that held the maximum.
    public static func backward(_ tape: MaxPoolTape, _ gradOutput: Tensor) -> Tensor { MaxPool.backward(tape, gradOutput) }
}

/// Softmax cross-entropy averaged over a batch of logits `[N, K]`.
public enum SoftmaxCrossEntropy {
    /// Class probabilities `[N, K]` (softmax over each row).
    public static func probabilities(_ logits: Tensor) -> Tensor {
        precondition(logits.rank == 2, "logits must be [N, K], got \(logits.shape)")
        let n = logits.shape[0], k = logits.shape[1]
        var p = logits
        p.withUnsafeMutableBufferPointer { pb in
            for s in 0..<n {
                let row = pb.baseAddress! + s * k
                var m = -Float.infinity
                for j in 0..<k { m = max(m, row[j]) }
                var sum: Double = 0
                for j in 0..<k { row[j] = VectorMath.exp(row[j] - m); sum += Double(row[j]) }
                let inv = Float(1 / sum)
                for j in 0..<k { row[j] *= inv }
            }
        }
        return p
    }

    /// `mean_n −log softmax(logits_n)[label_n]` and its gradient `(softmax − onehot) / N`.
    public static func lossAndGradient(logits: Tensor, labels: [Int]) -> (loss: Float, gradient: Tensor) {
        let n = logits.shape[0], k = logits.shape[1]
        precondition(labels.count == n && labels.allSatisfy { (0..<k).contains($0) }, "labels must be \(n) values in 0..<\(k)")
        var g = probabilities(logits)
        var loss: Double = 0
        for s in 0..<n {
            let row = s * k
            // log-sum-exp form, so a tiny probability gives a finite, exact loss.
            var m = -Float.infinity
            for j in 0..<k { m = max(m, logits.scalars[row + j]) }
            var sum: Double = 0
            for j in 0..<k { sum += exp(Double(logits.scalars[row + j] - m)) }
            loss += log(sum) + Double(m) - Double(logits.scalars[row + labels[s]])
            g.scalars[row + labels[s]] -= 1
        }
        let inv = 1 / Float(n)
        g.withUnsafeMutableBufferPointer { VectorMath.scale($0.baseAddress!, count: $0.count, by: inv) }
        return (Float(loss / Double(n)), g)
    }
}

