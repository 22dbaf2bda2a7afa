import WallocNN
import WallocTensor

/// What `Conv1d.backward` needs: the zero-padded input in the batched channel-major layout.
public struct Conv1dTape: Sendable {
    /// `[Ci, ld]`: sample `s` occupies columns `padding + s·pitch ..< padding + s·pitch + L`.
    let padded: Tensor
    let n: Int, l: Int
}

/// Geometry of a stride-1 `Conv1d` on a batch laid side by side: one row per input channel,
/// samples `pitch` columns apart with at least `padding` zeros between them (one gap serves as
/// the right padding of a sample and the left padding of the next). Output `(s, t)` is wide
/// column `s·pitch + t`; the columns in between are computed and discarded.
struct Conv1dGeometry {
    let n, ci, co, l, k, d, p: Int
    /// Output length.
    var lo: Int { l + 2 * p - d * (k - 1) }
    /// Reach of the kernel beyond its first tap.
    var span: Int { d * (k - 1) }
    var pitch: Int { max(l + p, lo) }
    /// Wide output columns.
    var columns: Int { n * pitch }
    /// Row length of the padded input.
    var ld: Int { columns + span }
    /// Zeros in front of the output gradient, so every shift of the input-gradient product is non-negative.
    var front: Int { max(0, span - p) }
    /// Row length of the front-padded output gradient.
    var ldg: Int { front + p + columns }
    /// Few channels and a long kernel (the post filter): direct SIMD loops beat tiny GEMMs.
    var direct: Bool { ci * co <= 8 }
}

/// Kernels of the 1D training convolutions.
enum Conv1dKernels {
    /// `out[m, t] = Σ_j A_j[m, kdim] · B[:, shift_j + t]` for `t` in `0..<columns`, in column tiles
    /// spread over the worker pool (each tile accumulates every shift while it is in cache).
    static func shifted(a: UnsafePointer<Float>, m: Int, kdim: Int, shifts: [Int], b: UnsafePointer<Float>, ldb: Int,
                        out: UnsafeMutablePointer<Float>, columns: Int) {
        let threads = Threading.count
        let tile = min(columns, max(128, min(2048, (columns / (2 * threads) + 15) / 16 * 16)))
        parallelFor((columns + tile - 1) / tile) { t in
            let j = t * tile, width = min(tile, columns - j)
            for (i, s) in shifts.enumerated() {
                BLAS.gemm(m: m, n: width, k: kdim, a: a + i * m * kdim, lda: kdim, b: b + s + j, ldb: ldb,
                          beta: i == 0 ? 0 : 1, c: out + j, ldc: columns)
            }
        }
    }

    typealias V = SIMD16<Float>

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }

    /// Direct correlation for few channels: `out[o, c] = Σ_i Σ_j w[(o·ci + i)·k + j] · x[i·ldx + c + j·d]`
    /// for `c` in `0..<columns` (`x` rows must hold `columns + d·(k−1)` values). Column chunks run in
    /// parallel; within a chunk the input rows stay in L1.
    static func directCorrelate(w: UnsafePointer<Float>, co: Int, ci: Int, k: Int, d: Int, x: UnsafePointer<Float>,
                                ldx: Int, out: UnsafeMutablePointer<Float>, ldo: Int, columns: Int) {
        let chunk = 2048
        parallelFor((columns + chunk - 1) / chunk) { t in
            let c0 = t * chunk, c1 = min(columns, c0 + chunk)
            for o in 0..<co {
                let dst = out + o * ldo
                var c = c0
                while c + 64 <= c1 {
                    var a0 = V(repeating: 0), a1 = a0, a2 = a0, a3 = a0
                    for i in 0..<ci {
                        let wr = w + (o * ci + i) * k, xr = x + i * ldx + c
                        for j in 0..<k {
                            let wv = V(repeating: wr[j]), src = xr + j * d
                            a0 = a0.addingProduct(wv, load(src)); a1 = a1.addingProduct(wv, load(src + 16))
                            a2 = a2.addingProduct(wv, load(src + 32)); a3 = a3.addingProduct(wv, load(src + 48))
                        }
                    }
                    let r = UnsafeMutableRawPointer(dst + c)
                    r.storeBytes(of: a0, toByteOffset: 0, as: V.self); r.storeBytes(of: a1, toByteOffset: 64, as: V.self)
                    r.storeBytes(of: a2, toByteOffset: 128, as: V.self); r.storeBytes(of: a3, toByteOffset: 192, as: V.self)
                    c += 64
                }
                while c < c1 {
                    var s: Float = 0
                    for i in 0..<ci {
                        let wr = w + (o * ci + i) * k, xr = x + i * ldx + c
                        for j in 0..<k { s += wr[j] * xr[j * d] }
                    }
                    dst[c] = s
                    c += 1
                }
            }
        }
    }

    /// Weight gradient of `directCorrelate`: `dw[(o·ci + i)·k + j] = Σ_c g[o·ldg + c] · x[i·ldx + c + j·d]`.
    /// Partial sums per column chunk (in double), reduced in a fixed order: deterministic.
    static func directWeightGradient(g: UnsafePointer<Float>, ldg: Int, x: UnsafePointer<Float>, ldx: Int,
                                     co: Int, ci: Int, k: Int, d: Int, columns: Int) -> [Float] {
        let chunk = 2048, chunks = (columns + chunk - 1) / chunk, count = co * ci * k
        var partial = [Double](repeating: 0, count: chunks * count)
        partial.withUnsafeMutableBufferPointer { pb in
            let parts = pb.baseAddress!
            parallelFor(chunks) { t in
                let c0 = t * chunk, c1 = min(columns, c0 + chunk)
                let vectorEnd = c0 + (c1 - c0) / 16 * 16
                let dst = parts + t * count
                for o in 0..<co {
                    let gr = g + o * ldg
                    for i in 0..<ci {
                        let xr = x + i * ldx
                        var j = 0
                        while j < k {
                            let width = min(4, k - j)
                            var a0 = V(repeating: 0), a1 = a0, a2 = a0, a3 = a0
                            let x0 = xr + j * d, x1 = x0 + d, x2 = x1 + d, x3 = x2 + d
                            var c = c0
                            switch width {
                            case 4:
                                while c < vectorEnd {
                                    let gv = load(gr + c)
                                    a0 = a0.addingProduct(gv, load(x0 + c)); a1 = a1.addingProduct(gv, load(x1 + c))
                                    a2 = a2.addingProduct(gv, load(x2 + c)); a3 = a3.addingProduct(gv, load(x3 + c))
                                    c += 16
                                }
                            default:
                                while c < vectorEnd {
                                    let gv = load(gr + c)
                                    a0 = a0.addingProduct(gv, load(x0 + c))
                                    if width > 1 { a1 = a1.addingProduct(gv, load(x1 + c)) }
                                    if width > 2 { a2 = a2.addingProduct(gv, load(x2 + c)) }
                                    c += 16
                                }
                            }
                            for q in 0..<width {
                                var s = Double((q == 0 ? a0 : q == 1 ? a1 : q == 2 ? a2 : a3).sum())
                                let xq = xr + (j + q) * d
                                for cc in vectorEnd..<c1 { s += Double(gr[cc]) * Double(xq[cc]) }
                                dst[(o * ci + i) * k + j + q] = s
                            }
                            j += width
                        }
                    }
                }
            }
        }
        var dw = [Float](repeating: 0, count: count)
        for e in 0..<count {
            var s: Double = 0
            for t in 0..<chunks { s += partial[t * count + e] }
            dw[e] = Float(s)
        }
        return dw
    }
}

extension Conv1d {
    func geometry(n: Int, l: Int) -> Conv1dGeometry {
        Conv1dGeometry(n: n, ci: inChannels, co: outChannels, l: l, k: kernelSize, d: dilation, p: padding)
    }

    /// Training forward pass (stride 1, as every Codec1D convolution): the same result as
    /// `callAsFunction`, computed on the whole batch at once, plus the tape for `backward`.
    public func forward(training x: Tensor) -> (Tensor, Conv1dTape) {
        precondition(x.rank == 3 && x.shape[1] == inChannels, "Conv1d expects [N, \(inChannels), L], got \(x.shape)")
        precondition(stride == 1, "Conv1d training supports stride 1 only (Codec1D uses no other)")
        let g = geometry(n: x.shape[0], l: x.shape[2])
        precondition(g.lo > 0, "Conv1d input length \(g.l) too short")
        var padded = Tensor(zeros: [g.ci, g.ld])
        x.withUnsafeBufferPointer { xb in
            padded.withUnsafeMutableBufferPointer { pb in
                let src = xb.baseAddress!, dst = pb.baseAddress!
                parallelFor(g.ci) { c in
                    for s in 0..<g.n {
                        (dst + c * g.ld + g.p + s * g.pitch).update(from: src + (s * g.ci + c) * g.l, count: g.l)
                    }
                }
            }
        }
        var wide = Tensor(uninitialized: [g.co, g.columns])
        padded.withUnsafeBufferPointer { pb in
            wide.withUnsafeMutableBufferPointer { wb in
                if g.direct {
                    weight.withUnsafeBufferPointer { kb in
                        Conv1dKernels.directCorrelate(w: kb.baseAddress!, co: g.co, ci: g.ci, k: g.k, d: g.d, x: pb.baseAddress!,
                                                      ldx: g.ld, out: wb.baseAddress!, ldo: g.columns, columns: g.columns)
                    }
                } else {
                    packed.withUnsafeBufferPointer { kb in
                        Conv1dKernels.shifted(a: kb.baseAddress!, m: g.co, kdim: g.ci, shifts: (0..<g.k).map { $0 * g.d },
                                              b: pb.baseAddress!, ldb: g.ld, out: wb.baseAddress!, columns: g.columns)
                    }
                }
            }
        }
        var out = Tensor(uninitialized: [g.n, g.co, g.lo])
        wide.withUnsafeBufferPointer { wb in
            out.withUnsafeMutableBufferPointer { ob in
                let src = wb.baseAddress!, dst = ob.baseAddress!
                let biasValues = bias?.scalars
                parallelFor(g.co) { o in
                    let b = biasValues?[o] ?? 0
                    for s in 0..<g.n {
                        let from = src + o * g.columns + s * g.pitch, to = dst + (s * g.co + o) * g.lo
                        for t in 0..<g.lo { to[t] = from[t] + b }
                    }
                }
            }
        }
        return (out, Conv1dTape(padded: padded, n: g.n, l: g.l))
    }

    /// Backward pass: adds the weight gradients (`weight`, or `weight_g` and `weight_v` when
    /// weight-normalised) and `bias` under `prefix`, and returns the input gradient (an empty
    /// tensor when `inputGradient` is false).
    public func backward(_ tape: Conv1dTape, _ gradOutput: Tensor, prefix: String, into gradients: inout Gradients,
                         inputGradient: Bool = true) -> Tensor {
        let g = geometry(n: tape.n, l: tape.l)
        precondition(gradOutput.shape == [g.n, g.co, g.lo], "Conv1d gradient shape \(gradOutput.shape), expected \([g.n, g.co, g.lo])")
        // Output gradient in the wide layout after `front` zeros, zero in the discarded columns.
        var gw = Tensor(zeros: [g.co, g.ldg])
        var biasGrad = Tensor(zeros: [g.co])
        gradOutput.withUnsafeBufferPointer { gb in
            gw.withUnsafeMutableBufferPointer { wb in
                biasGrad.withUnsafeMutableBufferPointer { bb in
                    let src = gb.baseAddress!, dst = wb.baseAddress!
                    parallelFor(g.co) { o in
                        var sum: Double = 0
                        for s in 0..<g.n {
                            let from = src + (s * g.co + o) * g.lo
                            (dst + o * g.ldg + g.front + s * g.pitch).update(from: from, count: g.lo)
                            var part: Float = 0
                            for t in 0..<g.lo { part += from[t] }
                            sum += Double(part)
                        }
                        bb[o] = Float(sum)
                    }
                }
            }
        }
        if bias != nil { gradients.accumulate(key(prefix, "bias"), biasGrad) }
        // Weight gradient: dW_j = G · Xp[:, j·d ..< j·d + columns]ᵀ.
        var dWeight = Tensor(uninitialized: weight.shape)
        gw.withUnsafeBufferPointer { wb in
            tape.padded.withUnsafeBufferPointer { pb in
                let gp = wb.baseAddress! + g.front, xp = pb.baseAddress!
                if g.direct {
                    let dw = Conv1dKernels.directWeightGradient(g: gp, ldg: g.ldg, x: xp, ldx: g.ld, co: g.co, ci: g.ci,
                                                                k: g.k, d: g.d, columns: g.columns)
                    dWeight = Tensor(shape: weight.shape, scalars: dw)
                    return
                }
                var dPacked = Tensor(uninitialized: [g.k, g.co, g.ci])
                dPacked.withUnsafeMutableBufferPointer { db in
                    let dp = db.baseAddress!
                    // Row blocks of each tap's product, so the work splits evenly over the workers.
                    let parts = g.co >= 64 ? Threading.count : 1
                    let rows = (g.co + parts - 1) / parts
                    parallelFor(g.k * parts) { task in
                        let j = task / parts, r0 = (task % parts) * rows, r = min(rows, g.co - r0)
                        guard r > 0 else { return }
                        BLAS.gemm(transB: true, m: r, n: g.ci, k: g.columns, a: gp + r0 * g.ldg, lda: g.ldg,
                                  b: xp + j * g.d, ldb: g.ld, c: dp + (j * g.co + r0) * g.ci, ldc: g.ci)
                    }
                }
                dWeight.withUnsafeMutableBufferPointer { out in
                    dPacked.withUnsafeBufferPointer { db in
                        for o in 0..<g.co {
                            for i in 0..<g.ci {
                                for j in 0..<g.k { out[(o * g.ci + i) * g.k + j] = db[(j * g.co + o) * g.ci + i] }
                            }
                        }
                    }
                }
            }
        }
        if let weightNorm {
            weightNorm.backward(dWeight, prefix: prefix, into: &gradients)
        } else {
            gradients.accumulate(key(prefix, "weight"), dWeight)
        }
        guard inputGradient else { return Tensor(zeros: [0]) }
        // Input gradient over the padded columns p ..< p + columns:
        // D[:, q] = Σ_j W_jᵀ · Gf[:, front + p + q − j·d].
        var dxp = Tensor(uninitialized: [g.ci, g.columns])
        gw.withUnsafeBufferPointer { wb in
            dxp.withUnsafeMutableBufferPointer { db in
                if g.direct {
                    // The same correlation with the kernel transposed and reversed.
                    var flipped = [Float](repeating: 0, count: g.ci * g.co * g.k)
                    for o in 0..<g.co {
                        for i in 0..<g.ci {
                            for j in 0..<g.k { flipped[(i * g.co + o) * g.k + (g.k - 1 - j)] = weight.scalars[(o * g.ci + i) * g.k + j] }
                        }
                    }
                    flipped.withUnsafeBufferPointer { fb in
                        Conv1dKernels.directCorrelate(w: fb.baseAddress!, co: g.ci, ci: g.co, k: g.k, d: g.d,
                                                      x: wb.baseAddress! + g.front + g.p - g.span, ldx: g.ldg,
                                                      out: db.baseAddress!, ldo: g.columns, columns: g.columns)
                    }
                } else {
                    var transposed = [Float](repeating: 0, count: g.k * g.ci * g.co)
                    packed.withUnsafeBufferPointer { kb in
                        for j in 0..<g.k {
                            for o in 0..<g.co {
                                for i in 0..<g.ci { transposed[(j * g.ci + i) * g.co + o] = kb[(j * g.co + o) * g.ci + i] }
                            }
                        }
                    }
                    transposed.withUnsafeBufferPointer { tb in
                        Conv1dKernels.shifted(a: tb.baseAddress!, m: g.ci, kdim: g.co,
                                              shifts: (0..<g.k).map { g.front + g.p - $0 * g.d },
                                              b: wb.baseAddress!, ldb: g.ldg, out: db.baseAddress!, columns: g.columns)
                    }
                }
            }
        }
        var dx = Tensor(uninitialized: [g.n, g.ci, g.l])
        dxp.withUnsafeBufferPointer { db in
            dx.withUnsafeMutableBufferPointer { xb in
                let src = db.baseAddress!, dst = xb.baseAddress!
                parallelFor(g.ci) { c in
                    for s in 0..<g.n {
                        (dst + (s * g.ci + c) * g.l).update(from: src + c * g.columns + s * g.pitch, count: g.l)
                    }
                }
            }
        }
        return dx
    }
}

/// What `ConvTranspose1d.backward` needs: the input in channel-major layout `[Ci, N·L]`.
public struct ConvTranspose1dTape: Sendable {
    let input: Tensor
    let n: Int, l: Int
}

extension ConvTranspose1d {
    /// Training forward pass (any stride): `cols = Wᵀ·X` for the whole batch in one GEMM
    /// (`[Co·k, N·L]`), then an overlap-add; the same result as `callAsFunction`.
    public func forward(training x: Tensor) -> (Tensor, ConvTranspose1dTape) {
        precondition(x.rank == 3 && x.shape[1] == inChannels, "ConvTranspose1d expects [N, \(inChannels), L], got \(x.shape)")
        let n = x.shape[0], ci = inChannels, l = x.shape[2], co = outChannels, k = kernelSize
        let lo = outputLength(l), columns = n * l
        precondition(lo > 0, "ConvTranspose1d input length \(l) too short")
        let xc = channelMajor(x)
        var cols = Tensor(uninitialized: [co * k, columns])
        xc.withUnsafeBufferPointer { xb in
            weight.withUnsafeBufferPointer { wb in
                cols.withUnsafeMutableBufferPointer { cb in
                    BLAS.parallelGemm(transA: true, m: co * k, n: columns, k: ci, a: wb.baseAddress!, lda: co * k,
                                      b: xb.baseAddress!, ldb: columns, c: cb.baseAddress!, ldc: columns)
                }
            }
        }
        var out = Tensor(uninitialized: [n, co, lo])
        let stride = stride, padding = padding
        cols.withUnsafeBufferPointer { cb in
            out.withUnsafeMutableBufferPointer { ob in
                let biasValues = bias?.scalars
                parallelFor(n * co) { r in
                    let s = r / co, o = r % co
                    let row = ob.baseAddress! + r * lo
                    row.update(repeating: biasValues?[o] ?? 0, count: lo)
                    for j in 0..<k {
                        let src = cb.baseAddress! + (o * k + j) * columns + s * l
                        for i in 0..<l {
                            let t = i * stride + j - padding
                            if t >= 0 && t < lo { row[t] += src[i] }
                        }
                    }
                }
            }
        }
        return (out, ConvTranspose1dTape(input: xc, n: n, l: l))
    }

    /// Backward pass: weight (or `weight_g`/`weight_v`) and bias gradients under `prefix`; returns
    /// the input gradient. `dcols[(o, j), (s, i)] = g[s, o, i·stride + j − padding]` (zero outside),
    /// `dW = X · dcolsᵀ`, `dX = W · dcols`.
    public func backward(_ tape: ConvTranspose1dTape, _ gradOutput: Tensor, prefix: String, into gradients: inout Gradients) -> Tensor {
        let n = tape.n, l = tape.l, ci = inChannels, co = outChannels, k = kernelSize
        let lo = outputLength(l), columns = n * l
        precondition(gradOutput.shape == [n, co, lo], "ConvTranspose1d gradient shape \(gradOutput.shape)")
        var dcols = Tensor(uninitialized: [co * k, columns])
        var biasGrad = Tensor(zeros: [co])
        let stride = stride, padding = padding
        gradOutput.withUnsafeBufferPointer { gb in
            dcols.withUnsafeMutableBufferPointer { cb in
                biasGrad.withUnsafeMutableBufferPointer { bb in
                    parallelFor(co) { o in
                        var sum: Double = 0
                        for s in 0..<n {
                            let row = gb.baseAddress! + (s * co + o) * lo
                            var part: Float = 0
                            for t in 0..<lo { part += row[t] }
                            sum += Double(part)
                            for j in 0..<k {
                                let dst = cb.baseAddress! + (o * k + j) * columns + s * l
                                for i in 0..<l {
                                    let t = i * stride + j - padding
                                    dst[i] = t >= 0 && t < lo ? row[t] : 0
                                }
                            }
                        }
                        bb[o] = Float(sum)
                    }
                }
            }
        }
        if bias != nil { gradients.accumulate(key(prefix, "bias"), biasGrad) }
        var dWeight = Tensor(uninitialized: weight.shape)
        var dxc = Tensor(uninitialized: [ci, columns])
        tape.input.withUnsafeBufferPointer { xb in
            dcols.withUnsafeBufferPointer { cb in
                dWeight.withUnsafeMutableBufferPointer { db in
                    BLAS.parallelGemm(transB: true, m: ci, n: co * k, k: columns, a: xb.baseAddress!, lda: columns,
                                      b: cb.baseAddress!, ldb: columns, c: db.baseAddress!, ldc: co * k)
                }
                weight.withUnsafeBufferPointer { wb in
                    dxc.withUnsafeMutableBufferPointer { dx in
                        BLAS.parallelGemm(m: ci, n: columns, k: co * k, a: wb.baseAddress!, lda: co * k,
                                          b: cb.baseAddress!, ldb: columns, c: dx.baseAddress!, ldc: columns)
                    }
                }
            }
        }
        if let weightNorm {
            weightNorm.backward(dWeight, prefix: prefix, into: &gradients)
        } else {
            gradients.accumulate(key(prefix, "weight"), dWeight)
        }
        return batchMajor(dxc, n: n, channels: ci, length: l)
    }
}

/// `[N, C, L]` -> `[C, N·L]`.
func channelMajor(_ x: Tensor) -> Tensor {
    let n = x.shape[0], c = x.shape[1], l = x.shape[2]
    var out = Tensor(uninitialized: [c, n * l])
    x.withUnsafeBufferPointer { xb in
        out.withUnsafeMutableBufferPointer { ob in
            parallelFor(c) { ch in
                for s in 0..<n { (ob.baseAddress! + (ch * n + s) * l).update(from: xb.baseAddress! + (s * c + ch) * l, count: l) }
            }
        }
    }
    return out
}

/// `[C, N·L]` -> `[N, C, L]`.
func batchMajor(_ x: Tensor, n: Int, channels c: Int, length l: Int) -> Tensor {
    var out = Tensor(uninitialized: [n, c, l])
    x.withUnsafeBufferPointer { xb in
        out.withUnsafeMutableBufferPointer { ob in
            parallelFor(c) { ch in
                for s in 0..<n { (ob.baseAddress! + (s * c + ch) * l).update(from: xb.baseAddress! + (ch * n + s) * l, count: l) }
            }
        }
    }
    return out
}

extension WeightNorm {
    /// Turns the gradient of the folded weight `w = g·v/‖v‖` into gradients of `weight_g` and
    /// `weight_v` (added under `prefix`): per row `r`, `dg = ⟨dw, v⟩/‖v‖` and
    /// `dv = (g/‖v‖)·(dw − dg·v/‖v‖)`.
    public func backward(_ dWeight: Tensor, prefix: String, into gradients: inout Gradients) {
        let rows = v.shape[0], inner = v.count / max(1, rows)
        var dg = Tensor(zeros: g.shape), dv = Tensor(zeros: v.shape)
        v.withUnsafeBufferPointer { vb in
            dWeight.withUnsafeBufferPointer { wb in
                dv.withUnsafeMutableBufferPointer { db in
                    for r in 0..<rows {
                        let vr = vb.baseAddress! + r * inner, wr = wb.baseAddress! + r * inner, dr = db.baseAddress! + r * inner
                        var sq: Double = 0, dot: Double = 0
                        for i in 0..<inner { sq += Double(vr[i]) * Double(vr[i]); dot += Double(wr[i]) * Double(vr[i]) }
                        guard sq > 0 else { continue }
                        let norm = sq.squareRoot(), gr = Double(g.scalars[r])
                        let dgr = dot / norm
                        dg.scalars[r] = Float(dgr)
                        let a = Float(gr / norm), b = Float(gr * dgr / (norm * norm))
                        for i in 0..<inner { dr[i] = a * wr[i] - b * vr[i] }
                    }
                }
            }
        }
        gradients.accumulate(key(prefix, "weight_g"), dg)
        gradients.accumulate(key(prefix, "weight_v"), dv)
    }
}
